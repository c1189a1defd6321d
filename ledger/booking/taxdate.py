"""The local tax day and the holding period: the one place that turns UTC instants into dates.

Holding periods use calendar anniversaries, never day counts. A unit is held long-term when
the disposal's tax date is *after* the first anniversary of the acquisition's tax date:

- US (Pub. 544): the holding period starts the day after acquisition, so a sale on the
  anniversary is short-term, the day after is long-term.
- DE (§23(1) Nr. 2 EStG, §§187(1)/188(2) BGB): the year ends at the end of the anniversary,
  so a sale on the anniversary is within the year (taxable), the day after is tax-free.

Both come to the same comparison; only the zone of the tax date differs. An acquisition on
29 February has its anniversary on 28 February (BGB §188(3): the period ends on the last day
of the month when the corresponding day is missing).
"""

from __future__ import annotations

from datetime import date, datetime, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["zone", "tax_date", "anniversary", "is_long_term", "holding_term"]

_UTC = timezone.utc


@lru_cache(maxsize=None)
def zone(name: str) -> tzinfo:
    """The tzinfo for a zone name; 'UTC' is the fixed UTC zone."""
    return _UTC if name == "UTC" else ZoneInfo(name)


def tax_date(instant: datetime, zone_name: str) -> date:
    """The calendar date of a UTC ``instant`` in the tax zone ``zone_name``."""
    if zone_name == "UTC":
        return instant.astimezone(_UTC).date() if instant.tzinfo is not _UTC else instant.date()
    return instant.astimezone(zone(zone_name)).date()


@lru_cache(maxsize=65536)
def anniversary(acquired: date) -> date:
    """The first anniversary of ``acquired``; 29 February maps to 28 February."""
    try:
        return acquired.replace(year=acquired.year + 1)
    except ValueError:
        return acquired.replace(year=acquired.year + 1, day=28)


def is_long_term(acquired: date, disposed: date) -> bool:
    """Held more than one year: the disposal date is after the first anniversary."""
    return disposed > anniversary(acquired)


def holding_term(acquired: datetime, disposed: datetime, zone_name: str) -> str:
    """'long' or 'short' for units acquired and disposed at these UTC instants."""
    return "long" if is_long_term(tax_date(acquired, zone_name), tax_date(disposed, zone_name)) else "short"
