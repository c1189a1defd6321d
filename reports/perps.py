"""The perpetuals export (docs/perps.md): realized lot fractions, funding, per-market totals, open positions.

Figures come from ``ledger.perps.perp_books`` only. XLSX: one workbook, four sheets. CSV: the realized
rows in ``--out`` and the other three tables beside it (``<stem>.funding.csv``, ``<stem>.totals.csv``,
``<stem>.positions.csv``). Times are ISO-8601 UTC, decimals plain and exact (as the gains export), every
exchange-supplied text through ``reports.safety.text_cell``. Every file is written to a temporary
name and renamed at the end, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from ledger.booking.jurisdictions import iso_utc
from ledger.money import plain
from ledger.perps import PerpBooks

from .safety import text_cell

__all__ = ["REALIZED_COLUMNS", "FUNDING_COLUMNS", "TOTALS_COLUMNS", "POSITIONS_COLUMNS", "perps_tables", "write_perps", "csv_paths"]

REALIZED_COLUMNS = ("account", "market", "side", "quantity", "opened", "closed", "entry_price", "exit_price", "entry_cost", "exit_notional",
                    "fees", "pnl", "net", "close_kind", "method", "lot_id", "source_ref")
FUNDING_COLUMNS = ("account", "market", "month", "received", "paid", "net", "payments", "asset")
TOTALS_COLUMNS = ("account", "market", "realized", "fees", "funding_received", "funding_paid", "funding", "liquidations", "adl", "other_settlements",
                  "net", "closes", "asset")
POSITIONS_COLUMNS = ("account", "market", "side", "quantity", "average_entry", "exchange_entry", "entry_cost", "mark_price", "mark_source",
                     "unrealized_usdc", "unrealized_reporting", "reporting_currency", "opened", "at")


def _t(v: datetime | None) -> str:
    return iso_utc(v) if v is not None else ""


def _d(v) -> str:
    return "" if v is None else plain(v)


def perps_tables(books: PerpBooks) -> dict[str, tuple[Sequence[str], list[list[str]]]]:
    """The four tables as cells: sheet name -> (columns, rows)."""
    tc = text_cell
    realized = [
        [tc(r.account), tc(r.market), r.side, plain(r.quantity), _t(r.opened), _t(r.closed), plain(r.entry_price), plain(r.exit_price), plain(r.entry_cost),
         plain(r.quantity * r.exit_price), plain(r.fees), plain(r.pnl), plain(r.net), r.close_kind, r.method, tc(r.lot_id), tc(r.source)]
        for r in books.realized
    ]
    funding = [[tc(f.account), tc(f.market), f.month, plain(f.received), plain(f.paid), plain(f.net), str(f.payments), "USDC"] for f in books.funding]
    totals = [
        [tc(t.account), tc(t.market), plain(t.realized), plain(t.fees), plain(t.funding_received), plain(t.funding_paid), plain(t.funding),
         plain(t.liquidations), plain(t.adl), plain(t.other), plain(t.net), str(t.closes), "USDC"]
        for t in books.totals
    ]
    positions = [
        [tc(p.account), tc(p.market), p.side, plain(p.quantity), plain(p.average_entry), plain(p.exchange_entry), plain(p.cost), _d(p.mark), tc(p.mark_source),
         _d(p.unrealized), _d(p.unrealized_reporting), books.currency, _t(p.opened), _t(books.end)]
        for p in books.positions
    ]
    return {"Realized": (REALIZED_COLUMNS, realized), "Funding": (FUNDING_COLUMNS, funding), "Totals": (TOTALS_COLUMNS, totals),
            "Positions": (POSITIONS_COLUMNS, positions)}


def csv_paths(out: Path) -> dict[str, Path]:
    """Where the CSV form writes each table: the realized rows at ``out``, the others beside it."""
    stem = out.name[:-4] if out.name.lower().endswith(".csv") else out.name
    return {"Realized": out, "Funding": out.with_name(f"{stem}.funding.csv"), "Totals": out.with_name(f"{stem}.totals.csv"),
            "Positions": out.with_name(f"{stem}.positions.csv")}


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[list[str]]) -> Path:
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
    return tmp


def write_perps(books: PerpBooks, out: Path, fmt: str) -> dict[str, int]:
    """Write the export; returns the row count per table. Nothing is left half-written on failure."""
    tables = perps_tables(books)
    if fmt == "xlsx":
        from openpyxl import Workbook

        tmp = out.with_name(out.name + ".partial")
        try:
            wb = Workbook(write_only=True)
            for name, (cols, rows) in tables.items():
                ws = wb.create_sheet(name)
                ws.append(list(cols))
                for r in rows:
                    ws.append(r)
            wb.save(tmp)
            tmp.replace(out)
        finally:
            if tmp.exists():
                tmp.unlink()
    elif fmt == "csv":
        paths = csv_paths(out)
        temps: list[tuple[Path, Path]] = []
        try:
            for name, (cols, rows) in tables.items():
                temps.append((_write_csv(paths[name], cols, rows), paths[name]))
            for tmp, final in temps:
                tmp.replace(final)
        finally:
            for tmp, _final in temps:
                if tmp.exists():
                    tmp.unlink()
    else:
        raise ValueError(f"unknown format {fmt!r}: use csv or xlsx")
    return {name: len(rows) for name, (_c, rows) in tables.items()}
