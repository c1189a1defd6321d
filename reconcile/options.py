"""Parsers of command-line values shared by the commands: one line naming the option and the value
(``ConfigError``, exit 2) instead of a usage box or a traceback, before anything is read or written.

Used as typer ``parser=`` callbacks (``typer.Option("--year", parser=parse_year)``) and callable
directly by a command body.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from .config import ConfigError

__all__ = ["YEAR_MIN", "YEAR_MAX", "parse_year", "parse_out", "latest_today"]

#: The years a tax year may name: from the Unix epoch (no exchange record is older) to the last year
#: whose bounds in every jurisdiction (the UK's ends on 5 April of the next year) fit in a datetime.
YEAR_MIN, YEAR_MAX = 1970, 9998


def parse_year(value: str | int, option: str = "--year") -> int:
    """``--year``: a four-digit tax year, YEAR_MIN..YEAR_MAX (2025; for the uk the year it starts),
    not one that has not begun."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(f"{option}: {text!r} is not a year (YYYY, {YEAR_MIN}-{YEAR_MAX})")
    year = int(text)
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise ConfigError(f"{option}: {year} is outside the years {YEAR_MIN}-{YEAR_MAX}")
    today = latest_today()
    if year > today.year:  # every jurisdiction names a tax year by the year it starts in
        raise ConfigError(f"{option}: tax year {year} has not begun (today is {today.isoformat()})")
    return year


def latest_today() -> date:
    """Today's date in the zone furthest ahead of UTC (UTC+14): a date after it is in the future
    wherever the user is, so its figures could only be zeros that look complete."""
    return (datetime.now(timezone.utc) + timedelta(hours=14)).date()


def parse_out(value: str, option: str = "--out") -> str:
    """``--out``: a file whose folder exists and is writable (and that is not itself a folder)."""
    path = Path(value).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{option}: folder {parent} does not exist (create it first)")
    if path.is_dir():
        raise ConfigError(f"{option}: {path} is a folder; name a file")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{option}: folder {parent} is not writable")
    return value
