"""The realized-gains export (docs/gains-export.md) and the open-lots export.

One row per (disposal, lot) fraction with the columns ``GAINS_COLUMNS``: times ISO-8601 UTC,
decimals as plain strings (never exponent notation), ``term`` short/long or, for the uk method,
the matching rule. CSV and XLSX carry the same cells; files are written to a temporary name and
renamed, so a failure leaves nothing half-written. Exchange-supplied text goes through
``reports.safety.text_cell``.

``export_gains`` is the whole export: the ledger booked by ``ledger.books.stream_gains`` and each
batch of gains written as it is booked, so a million rows are never held at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path

from ledger.booking import Finding, Gain, Lot, iso_utc
from ledger.books import BookSettings, book_ledger, stream_gains
from ledger.money import EXACT, plain

from .safety import FORMULA_PREFIXES, UNSAFE_CHARACTERS, text_cell

_PREFIXES = frozenset(FORMULA_PREFIXES)
_UNSAFE = UNSAFE_CHARACTERS

__all__ = ["GAINS_COLUMNS", "LOTS_COLUMNS", "GainsWriter", "GainsExport", "export_gains", "export_lots", "gain_cells", "lot_cells", "write_table",
           "write_gains"]

GAINS_COLUMNS = ("account", "asset", "quantity", "acquired", "disposed", "proceeds", "cost_basis", "gain", "term", "method", "lot_id", "disposal_id", "source_ref")
LOTS_COLUMNS = ("account", "asset", "quantity", "cost_basis", "unit_cost", "acquired", "lot_id", "source_ref")


def _plain(d: Decimal, _str=str) -> str:
    """``ledger.money.plain`` for the export's hot loop (same output; tested against it). ``str``
    is plain notation unless it shows an exponent, and then it is the same digits as ``"f"``."""
    s = _str(d)
    if s[-1] != "0" and "E" not in s:  # the common case: plain, nothing to trim
        return s
    if "E" in s:
        s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "0" or s == "-0" else s


def gain_cells(g: Gain) -> list[str]:
    """The cells of a gain, in ``GAINS_COLUMNS`` order."""
    p, t = _plain, text_cell
    return [t(g.account), t(g.asset), p(g.quantity), iso_utc(g.acquired), iso_utc(g.disposed), p(g.proceeds), p(g.cost_basis), p(g.gain),
            g.term, g.method, t(g.lot_id), t(g.disposal_id), t(g.source_ref)]


def lot_cells(lot: Lot) -> list[str]:
    unit = plain(lot.cost / lot.quantity) if lot.quantity else "0"
    t = text_cell
    return [t(lot.account), t(lot.asset), plain(lot.quantity), plain(lot.cost), unit, iso_utc(lot.acquired), t(lot.id), t(lot.source)]


def write_gains(path: Path, fmt: str, gains: Sequence[Gain], *, sheet: str = "Gains") -> int:
    """Write gains as the gains table (``GainsWriter`` in one go)."""
    with GainsWriter(path, fmt, sheet=sheet) as writer:
        writer.write(gains)
        writer.commit()
    return writer.count


class GainsWriter:
    """The gains table written as gains come, a batch at a time (``write``), to a temporary name:
    ``commit`` renames it to ``path``; leaving the ``with`` block without a commit (an error)
    removes it, so nothing half-written is left.

    The CSV is the same text ``write_table`` writes, built a line at a time with one f-string, up to
    20,000 lines at a time: such a chunk where some text field needs quoting or neutralising (a
    comma, quote, line break, a leading formula character or a control character) is written
    through ``gain_cells`` and the csv module instead. An XLSX is written at ``commit``."""

    CHUNK = 20_000

    def __init__(self, path: Path, fmt: str, *, sheet: str = "Gains") -> None:
        if fmt not in ("csv", "xlsx"):
            raise ValueError(f"unknown format {fmt!r}: use csv or xlsx")
        self.path, self.fmt, self.sheet = path, fmt, sheet
        self.count = 0
        self._tmp = path.with_name(path.name + ".partial")
        self._held: list[Gain] = []  # xlsx: the rows, written at commit
        self._fh = None
        if fmt == "csv":
            self._fh = self._tmp.open("w", newline="", encoding="utf-8")
            self._fh.write(",".join(GAINS_COLUMNS) + "\n")

    def __enter__(self) -> GainsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self._close()
        if self._tmp.exists():
            self._tmp.unlink()

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def commit(self) -> None:
        if self.fmt == "xlsx":
            write_table(self._tmp, "xlsx", GAINS_COLUMNS, (gain_cells(g) for g in self._held), sheet=self.sheet)
        self._close()
        self._tmp.replace(self.path)

    def write(self, gains: Sequence[Gain]) -> None:
        self.count += len(gains)
        if self.fmt != "csv":
            self._held += gains
            return
        p = _plain
        write = self._fh.write  # type: ignore[union-attr]
        for start in range(0, len(gains), self.CHUNK):
            chunk = gains[start:start + self.CHUNK]
            lines: list[str] = []
            add = lines.append
            last, when_s = None, ""
            care = False
            prefixes = _PREFIXES
            for a, asset, q, acquired, disposed, proceeds, cost, gain, term, method, lot_id, disposal_id, source in chunk:
                if disposed is not last:  # a disposal's pieces are consecutive and share its time: formatted once
                    last, when_s = disposed, iso_utc(disposed)
                if not care and (a[:1] in prefixes or asset[:1] in prefixes or lot_id[:1] in prefixes or disposal_id[:1] in prefixes
                                 or source[:1] in prefixes):
                    care = True
                add(f"{a},{asset},{p(q)},{iso_utc(acquired)},{when_s},{p(proceeds)},{p(cost)},{p(gain)},{term},{method},{lot_id},{disposal_id},{source}")
            add("")
            text = "\n".join(lines)
            # Every line has its 12 separating commas and its one line break: any more, a quote, a carriage
            # return, a text cell starting like a formula or a control character means a text field that
            # needs the careful path somewhere in the chunk.
            if care or text.count(",") != 12 * len(chunk) or text.count("\n") != len(chunk) or '"' in text or "\r" in text or _UNSAFE.search(text):
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(gain_cells(g) for g in chunk)
                text = buffer.getvalue()
            write(text)


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
            from openpyxl.cell import WriteOnlyCell

            wb = Workbook(write_only=True)
            ws = wb.create_sheet(sheet)
            ws.append(list(columns))
            for r in rows:
                cells = []
                for v in r:  # text cells are text: openpyxl would store a text starting with '=' as a formula
                    c = WriteOnlyCell(ws, value=v)
                    if isinstance(v, str):
                        c.data_type = "s"
                    cells.append(c)
                ws.append(cells)
                n += 1
            wb.save(tmp)
        else:
            raise ValueError(f"unknown format {fmt!r}: use csv or xlsx")
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


@dataclass(frozen=True)
class GainsExport:
    """What ``export_gains`` wrote: the rows, their net gain (exact), and the findings."""

    rows: int
    net: Decimal
    findings: list[Finding]


def export_gains(conn, settings: BookSettings, path: Path, fmt: str, *, year: int | None) -> GainsExport:
    """The gains of tax year ``year`` (``None``: every year) to ``path``, booked and written a batch at
    a time."""
    total = Decimal(0)
    # The tax year's [start, end) as instants: ``start <= t < end`` is ``tax_year(t) == year`` (tested), without a tax day per row.
    start, end = settings.year_bounds(year) if year is not None else (None, None)
    with GainsWriter(path, fmt, sheet="Gains" if year is None else f"Gains {year}") as writer:

        def put(gains: list[Gain]) -> None:
            nonlocal total
            if year is not None:
                gains = [g for g in gains if start <= g.disposed < end]
            writer.write(gains)
            with localcontext(EXACT):  # exact: the default context keeps 28 digits
                total = sum((g.gain for g in gains), total)

        books = stream_gains(conn, settings, put)
        writer.commit()
    return GainsExport(rows=writer.count, net=total, findings=books.findings)


def export_lots(conn, settings: BookSettings, path: Path, fmt: str, *, at) -> tuple[int, list[Finding]]:
    """The lots open at instant ``at`` (inclusive) to ``path``; returns their number and the findings."""
    books = book_ledger(conn, settings, until=at, gains=False)
    n = write_table(path, fmt, LOTS_COLUMNS, (lot_cells(lot) for lot in books.open_lots), sheet="Lots")
    return n, books.findings
