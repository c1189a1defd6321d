"""The realized-gains export (docs/gains-export.md) and the open-lots export.

One row per (disposal, lot) fraction with the columns ``GAINS_COLUMNS``: times ISO-8601 UTC,
decimals as plain strings (never exponent notation), ``term`` short/long or, for the uk method,
the matching rule. CSV and XLSX carry the same cells; files are written to a temporary name and
renamed, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from ledger.booking.rows import instant, iso_utc
from ledger.money import plain

from .safety import is_plain_number, text_cell

__all__ = ["GAINS_COLUMNS", "LOTS_COLUMNS", "GainsWriter", "gain_cells", "lot_cells", "write_table", "write_gains", "tax_year_of"]

GAINS_COLUMNS = ("account", "asset", "quantity", "acquired", "disposed", "proceeds", "cost_basis", "gain", "term", "method", "lot_id", "disposal_id", "source_ref")
LOTS_COLUMNS = ("account", "asset", "quantity", "cost_basis", "unit_cost", "acquired", "lot_id", "source_ref")


def tax_year_of(t: datetime | str, jurisdiction: str, zone: str) -> int:
    """The tax year a moment (a datetime or a row's text time) falls in: the calendar year of the
    local date, except the UK, whose tax year 6 April YYYY - 5 April YYYY+1 is called YYYY here
    (2025 = 2025/26)."""
    if type(t) is str and zone == "UTC":  # the UTC date of iso_utc's text is its first ten characters
        year = int(t[:4])
        return year - 1 if jurisdiction == "uk" and t[5:10] < "04-06" else year
    from ledger.booking import tax_date

    d = tax_date(instant(t), zone)
    if jurisdiction == "uk" and (d.month, d.day) < (4, 6):
        return d.year - 1
    return d.year


def _iso_utc(t: datetime | str) -> str:
    """A time's cell: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (rows with text times carry it already)."""
    return t if type(t) is str else iso_utc(t)  # type: ignore[return-value]


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


def _text(v, _cell=text_cell):
    """``reports.safety.text_cell`` with a fast path for the common cell (printable, no formula
    prefix: ``text_cell`` returns it unchanged); a plain number (``-25.5``) stays a number."""
    if type(v) is not str or not v or (v.isprintable() and v[0] not in "=+-@"):
        return v
    if v[0] == "-" and is_plain_number(v):
        return v
    return _cell(v)


def gain_cells(g) -> list[str]:
    """The cells of a gain: a ``Gain`` record or a gain row (its fields in order, ``book_rows``)."""
    if type(g) is tuple:
        a, asset, q, acquired, disposed, proceeds, cost, gain, term, method, lot_id, disposal_id, source = g
    else:
        a, asset, q, acquired, disposed, proceeds, cost, gain = g.account, g.asset, g.quantity, g.acquired, g.disposed, g.proceeds, g.cost_basis, g.gain
        term, method, lot_id, disposal_id, source = g.term, g.method, g.lot_id, g.disposal_id, g.source_ref
    p, t = _plain, _text
    return [t(a), t(asset), p(q), _iso_utc(acquired), _iso_utc(disposed), p(proceeds), p(cost), p(gain), term, method, t(lot_id), t(disposal_id), t(source)]


def write_gains(path: Path, fmt: str, gains: Sequence[tuple], *, sheet: str = "Gains") -> int:
    """Write gain rows (``book_rows``; times as datetimes or as their cell text) as the gains table
    (``GainsWriter`` in one go)."""
    with GainsWriter(path, fmt, sheet=sheet) as writer:
        writer.write(gains)
        writer.commit()
    return writer.count


class GainsWriter:
    """The gains table written as gain rows come, a batch at a time (``write``), to a temporary
    name: ``commit`` renames it to ``path``; leaving the ``with`` block without a commit (an error)
    removes it, so nothing half-written is left. ``restart`` drops what was written.

    The CSV is the same text ``write_table`` writes, built a line at a time with one f-string, up to
    20,000 lines at a time: such a chunk where some text field needs quoting (a comma, quote or line
    break) is written by the csv module instead. An XLSX is written at ``commit``."""

    CHUNK = 20_000

    def __init__(self, path: Path, fmt: str, *, sheet: str = "Gains") -> None:
        if fmt not in ("csv", "xlsx"):
            raise ValueError(f"unknown format {fmt!r}: use csv or xlsx")
        self.path, self.fmt, self.sheet = path, fmt, sheet
        self.count = 0
        self._tmp = path.with_name(path.name + ".partial")
        self._held: list[tuple] = []  # xlsx: the rows, written at commit
        self._fh = None
        self._open()

    def _open(self) -> None:
        if self.fmt == "csv":
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

    def restart(self) -> None:
        """Drop every row written so far."""
        self._close()
        self.count = 0
        self._held = []
        self._open()

    def commit(self) -> None:
        if self.fmt == "xlsx":
            write_table(self._tmp, "xlsx", GAINS_COLUMNS, (gain_cells(g) for g in self._held), sheet=self.sheet)
        self._close()
        self._tmp.replace(self.path)

    def write(self, gains: Sequence[tuple]) -> None:
        self.count += len(gains)
        if self.fmt != "csv":
            self._held += gains
            return
        p, t = _plain, _text
        iso = _iso_utc  # not memoised by time: hashing an aware datetime costs more than formatting it
        write = self._fh.write  # type: ignore[union-attr]
        for start in range(0, len(gains), self.CHUNK):
            chunk = gains[start:start + self.CHUNK]
            lines: list[str] = []
            add = lines.append
            when, when_s = None, ""
            for a, asset, q, acquired, disposed, proceeds, cost, gain, term, method, lot_id, disposal_id, source in chunk:
                if disposed is not when:  # a disposal's pieces are consecutive and share its time
                    when, when_s = disposed, disposed if type(disposed) is str else iso(disposed)
                add(f"{t(a)},{t(asset)},{p(q)},{acquired if type(acquired) is str else iso(acquired)},{when_s},{p(proceeds)},{p(cost)},{p(gain)},{term},{method},{t(lot_id)},{t(disposal_id)},{t(source)}")
            add("")
            text = "\n".join(lines)
            # Every line has its 12 separating commas and its one line break: any more, or a quote or a
            # carriage return, means a text field that needs quoting somewhere in the chunk.
            if text.count(",") != 12 * len(chunk) or text.count("\n") != len(chunk) or '"' in text or "\r" in text:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(gain_cells(g) for g in chunk)
                text = buffer.getvalue()
            write(text)


def lot_cells(l) -> list[str]:
    unit = plain(l.cost / l.quantity) if l.quantity else "0"
    t = _text
    return [t(l.account), t(l.asset), plain(l.quantity), plain(l.cost), unit, _iso_utc(l.acquired), t(l.id), t(l.source)]


def write_table(path: Path, fmt: str, columns: Sequence[str], rows: Iterable[list[str]], *, sheet: str = "Sheet") -> int:
    tmp = path.with_name(path.name + ".partial")
    n = 0
    try:
        if fmt == "csv":
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(columns)
                for r in rows:
                    w.writerow([_text(c) for c in r])  # every text cell safe, whoever built the row
                    n += 1
        elif fmt == "xlsx":
            from openpyxl import Workbook

            wb = Workbook(write_only=True)
            ws = wb.create_sheet(sheet)
            ws.append(list(columns))
            for r in rows:
                ws.append([_text(c) for c in r])
                n += 1
            wb.save(tmp)
        else:
            raise ValueError(f"unknown format {fmt!r}: use csv or xlsx")
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n
