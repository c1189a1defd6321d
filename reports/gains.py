"""The realized-gains export (docs/gains-export.md) and the open-lots export.

One row per (disposal, lot) fraction with the columns ``GAINS_COLUMNS``: times ISO-8601 UTC,
decimals as plain strings (never exponent notation), ``term`` short/long or, for the uk method,
the matching rule. CSV and XLSX carry the same cells; files are written to a temporary name and
renamed, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from ledger.money import plain

__all__ = ["GAINS_COLUMNS", "LOTS_COLUMNS", "gain_cells", "lot_cells", "write_table", "tax_year_of"]

GAINS_COLUMNS = ("account", "asset", "quantity", "acquired", "disposed", "proceeds", "cost_basis", "gain", "term", "method", "lot_id", "disposal_id", "source_ref")
LOTS_COLUMNS = ("account", "asset", "quantity", "cost_basis", "unit_cost", "acquired", "lot_id", "source_ref")


def tax_year_of(t: datetime, jurisdiction: str, zone: str) -> int:
    """The tax year a moment falls in: the calendar year of the local date, except the UK, whose
    tax year 6 April YYYY - 5 April YYYY+1 is called YYYY here (2025 = 2025/26)."""
    from ledger.booking import tax_date

    d = tax_date(t, zone)
    if jurisdiction == "uk" and (d.month, d.day) < (4, 6):
        return d.year - 1
    return d.year


def _iso(t: datetime, _cache: dict = {}) -> str:  # noqa: B006 - a deliberate memo: pieces repeat their lot's and disposal's times
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    s = _cache.get(t)
    if s is None:
        if len(_cache) > 1_000_000:
            _cache.clear()
        u = t if t.tzinfo is timezone.utc else t.astimezone(timezone.utc)
        s = _cache[t] = u.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return s


def _plain(d: Decimal, _fmt=format) -> str:
    """``ledger.money.plain`` inlined for the export's hot loop (same output; tested against it)."""
    s = _fmt(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("0", "-0") else s


def gain_cells(g) -> list[str]:
    p = _plain
    return [g.account, g.asset, p(g.quantity), _iso(g.acquired), _iso(g.disposed), p(g.proceeds), p(g.cost_basis), p(g.gain),
            g.term, g.method, g.lot_id, g.disposal_id, g.source_ref]


def lot_cells(l) -> list[str]:
    unit = plain(l.cost / l.quantity) if l.quantity else "0"
    return [l.account, l.asset, plain(l.quantity), plain(l.cost), unit, _iso(l.acquired), l.id, l.source]


def write_table(path: Path, fmt: str, columns: Sequence[str], rows: Iterable[list[str]], *, sheet: str = "Sheet") -> int:
    tmp = path.with_name(path.name + ".partial")
    n = 0
    try:
        if fmt == "csv":
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(columns)
                for r in rows:
                    w.writerow(r)
                    n += 1
        elif fmt == "xlsx":
            from openpyxl import Workbook

            wb = Workbook(write_only=True)
            ws = wb.create_sheet(sheet)
            ws.append(list(columns))
            for r in rows:
                ws.append(r)
                n += 1
            wb.save(tmp)
        else:
            raise ValueError(f"unknown format {fmt!r}: use csv or xlsx")
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n
