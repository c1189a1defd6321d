"""The perpetuals export (docs/perps.md): realized lot fractions, funding, per-market totals, open positions.

Figures come from ``ledger.perps`` only (``stream_perps``/``perp_books``). XLSX: one workbook, four
sheets. CSV: the realized rows in ``--out`` and the other three tables beside it
(``<stem>.funding.csv``, ``<stem>.totals.csv``, ``<stem>.positions.csv``). Times are ISO-8601 UTC,
decimals plain and exact (as the gains export), every exchange-supplied text through
``reports.safety.text_cell``. Every file is written to a temporary name and renamed at the end, so a
failure leaves nothing half-written.

``export_perps`` streams: the realized rows are written as the position engine books them (a chunk of
fills at a time, never the year's rows in memory), then the funding lines, the per-market totals and
the open positions at the year end, which are small.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.booking.jurisdictions import iso_utc
from ledger.money import plain
from ledger.perps import PerpBooks

from .safety import text_cell

__all__ = ["REALIZED_COLUMNS", "FUNDING_COLUMNS", "TOTALS_COLUMNS", "POSITIONS_COLUMNS", "perps_tables", "write_perps", "export_perps", "csv_paths",
           "realized_cells"]

REALIZED_COLUMNS = ("account", "market", "side", "quantity", "opened", "closed", "entry_price", "exit_price", "entry_cost", "exit_notional",
                    "fees", "pnl", "net", "close_kind", "method", "lot_id", "source_ref")
FUNDING_COLUMNS = ("account", "market", "month", "received", "paid", "net", "payments", "asset", "received_reporting", "paid_reporting", "net_reporting",
                   "reporting_currency")
TOTALS_COLUMNS = ("account", "market", "realized", "fees", "funding_received", "funding_paid", "funding", "liquidations", "adl", "other_settlements",
                  "net", "closes", "asset", "realized_reporting", "fees_reporting", "funding_reporting", "other_settlements_reporting", "net_reporting",
                  "reporting_currency", "unvalued_amounts")
POSITIONS_COLUMNS = ("account", "market", "side", "quantity", "average_entry", "exchange_entry", "entry_cost", "mark_price", "mark_source",
                     "unrealized_usdc", "unrealized_reporting", "reporting_currency", "opened", "at")
SHEETS = ("Realized", "Funding", "Totals", "Positions")


def _t(v: datetime | None) -> str:
    return iso_utc(v) if v is not None else ""


def _d(v) -> str:
    return "" if v is None else plain(v)


def realized_cells(rows: Iterable, _safe: dict = {}) -> list[list[str]]:  # noqa: B006 - memo of account and market cells
    """The Realized table's cells of ``rows`` (``ledger.booking.perps.Realized``)."""
    tc, p, t = text_cell, plain, iso_utc
    safe = _safe
    if len(safe) > 10_000:
        safe.clear()
    out = []
    for r in rows:
        a = safe.get(r.account)
        if a is None:
            a = safe[r.account] = tc(r.account)
        mk = safe.get(r.market)
        if mk is None:
            mk = safe[r.market] = tc(r.market)
        out.append([a, mk, r.side, p(r.quantity), t(r.opened), t(r.closed), p(r.entry_price), p(r.exit_price), p(r.entry_cost),
                    p(r.quantity * r.exit_price), p(r.fees), p(r.pnl), p(r.net), r.close_kind, r.method, tc(r.lot_id), tc(r.source)])
    return out


def _small_tables(books: PerpBooks) -> dict[str, tuple[Sequence[str], list[list[str]]]]:
    tc, cur = text_cell, books.currency
    funding = [[tc(f.account), tc(f.market), f.month, plain(f.received), plain(f.paid), plain(f.net), str(f.payments), "USDC", _d(f.received_reporting),
                _d(f.paid_reporting), _d(f.net_reporting), cur] for f in books.funding]
    totals = [
        [tc(t.account), tc(t.market), plain(t.realized), plain(t.fees), plain(t.funding_received), plain(t.funding_paid), plain(t.funding),
         plain(t.liquidations), plain(t.adl), plain(t.other), plain(t.net), str(t.closes), "USDC",
         *(("", "", "", "", "") if t.unvalued else (plain(t.realized_reporting), plain(t.fees_reporting), plain(t.funding_reporting), plain(t.other_reporting),
                                                    plain(t.net_reporting))),  # type: ignore[arg-type]
         cur, str(t.unvalued)]
        for t in books.totals
    ]
    positions = [
        [tc(p.account), tc(p.market), p.side, plain(p.quantity), plain(p.average_entry), plain(p.exchange_entry), plain(p.cost), _d(p.mark), tc(p.mark_source),
         _d(p.unrealized), _d(p.unrealized_reporting), cur, _t(p.opened), _t(books.end)]
        for p in books.positions
    ]
    return {"Funding": (FUNDING_COLUMNS, funding), "Totals": (TOTALS_COLUMNS, totals), "Positions": (POSITIONS_COLUMNS, positions)}


def perps_tables(books: PerpBooks) -> dict[str, tuple[Sequence[str], list[list[str]]]]:
    """The four tables as cells: sheet name -> (columns, rows)."""
    return {"Realized": (REALIZED_COLUMNS, realized_cells(books.realized)), **_small_tables(books)}


def csv_paths(out: Path) -> dict[str, Path]:
    """Where the CSV form writes each table: the realized rows at ``out``, the others beside it."""
    stem = out.name[:-4] if out.name.lower().endswith(".csv") else out.name
    return {"Realized": out, "Funding": out.with_name(f"{stem}.funding.csv"), "Totals": out.with_name(f"{stem}.totals.csv"),
            "Positions": out.with_name(f"{stem}.positions.csv")}


class _Writer:
    """The export's files, written as the tables come: the Realized table first (streamed), then the
    small ones. Everything goes to ``.partial`` names; ``commit`` renames, ``abort`` removes."""

    def __init__(self, out: Path, fmt: str) -> None:
        if fmt not in ("csv", "xlsx"):
            raise ValueError(f"unknown format {fmt!r}: use csv or xlsx")
        self.fmt, self.out = fmt, out
        self.temps: list[tuple[Path, Path]] = []
        self.counts = dict.fromkeys(SHEETS, 0)
        self._fh = None
        self._csv = None
        self._x = None
        if fmt == "xlsx":
            from .tax.common import XlsxWriter

            self._x = XlsxWriter(out)
        self.paths = csv_paths(out) if fmt == "csv" else {}

    def table(self, name: str, columns: Sequence[str]) -> None:
        self._close_csv()
        if self._x is not None:
            self._x.sheet(name, len(columns))
            self._x.row(list(columns))
            return
        final = self.paths[name]
        tmp = final.with_name(final.name + ".partial")
        self.temps.append((tmp, final))
        self._fh = tmp.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self._csv.writerow(columns)

    def rows(self, name: str, rows: list[list[str]]) -> None:
        self.counts[name] += len(rows)
        if self._x is not None:
            row = self._x.row
            for r in rows:
                row(r)
        else:
            self._csv.writerows(rows)  # type: ignore[union-attr]

    def _close_csv(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def commit(self) -> None:
        self._close_csv()
        if self._x is not None:
            self._x.close()
        for tmp, final in self.temps:
            os.replace(tmp, final)
        self.temps = []

    def abort(self) -> None:
        self._close_csv()
        if self._x is not None:
            self._x.abort()
        for tmp, _final in self.temps:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _write_small(w: _Writer, books: PerpBooks) -> None:
    for name, (cols, rows) in _small_tables(books).items():
        w.table(name, cols)
        w.rows(name, rows)


def write_perps(books: PerpBooks, out: Path, fmt: str) -> dict[str, int]:
    """Write the export of booked ``books`` (its ``realized`` rows held); returns the row count per table.
    Nothing is left half-written on failure."""
    w = _Writer(out, fmt)
    try:
        w.table("Realized", REALIZED_COLUMNS)
        w.rows("Realized", realized_cells(books.realized))
        _write_small(w, books)
        w.commit()
    except BaseException:
        w.abort()
        raise
    return w.counts


def export_perps(conn: Any, settings: Any, out: Path, fmt: str, *, year: int, venue_account: str | None = None, method: str | None = None,
                 reporting: Any = None) -> tuple[PerpBooks, dict[str, int]]:
    """Book the year's perpetuals (``ledger.perps.stream_perps``) and write them as they are booked: the
    realized rows a chunk of fills at a time, then funding, totals and positions. Returns the books
    (without rows) and the row count per table."""
    from ledger.perps import stream_perps

    w = _Writer(out, fmt)
    try:
        w.table("Realized", REALIZED_COLUMNS)
        books = stream_perps(conn, settings, year=year, venue_account=venue_account, method=method, reporting=reporting,
                             sink=lambda rows: w.rows("Realized", realized_cells(rows)))
        _write_small(w, books)
        w.commit()
    except BaseException:
        w.abort()
        raise
    return books, w.counts
