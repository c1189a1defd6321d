"""The completeness gate around the exports that are not reports: gains, lots, the journal.

Every output over a period passes ``ledger.completeness`` (docs/reports.md, "Incomplete data is
never silent"). The report and the income export assess before they write; the gains export books
while it writes (one streaming booking, ``reports.gains.export_gains``), so here:

1. the period is assessed without the booking (unpriced events, stale valuation, missing FX): an
   incomplete period that is not allowed stops before anything is booked or written;
2. the export is written to a staging name beside ``--out`` (nothing at ``--out`` yet);
3. the booking's findings are added (``Completeness.with_findings``: those dated before the period
   end, earlier years included) and the gate asked again: refused -> the staging file is removed
   (nothing written, exit 4); allowed -> the file is moved to ``--out`` with the verdict as its
   first line (CSV: ``# INCOMPLETE DATA: ...``, XLSX: a red first row); complete -> moved as it is,
   byte for byte the format of docs/gains-export.md.

``gate(completeness)`` is the caller's decision (the CLI's ``gate_complete``): it returns when the
figures may be written and raises (exit 4) when not. It is called once per answer that matters.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.completeness import Completeness, assess

from .safety import text_cell

__all__ = ["gated_gains", "gated_lots", "gated_journal", "mark_incomplete"]

_US = timedelta(microseconds=1)


def _staging(path: Path) -> Path:
    return path.with_name(f"{path.stem}.unchecked{path.suffix}")  # the suffix kept: openpyxl reads by it


def mark_incomplete(src: Path, dst: Path, fmt: str, headline: str) -> None:
    """Copy the export ``src`` to ``dst`` with ``headline`` as its first line (CSV) or first row (XLSX),
    via a temporary name; ``src`` is removed."""
    tmp = dst.with_name(dst.name + ".partial")
    try:
        if fmt == "csv":
            import csv

            with tmp.open("w", newline="", encoding="utf-8") as out, src.open("r", newline="", encoding="utf-8") as inp:
                csv.writer(out, lineterminator="\n").writerow([text_cell(f"# {headline}")])
                shutil.copyfileobj(inp, out, 1 << 20)
        else:
            from openpyxl import Workbook, load_workbook
            from openpyxl.cell import WriteOnlyCell
            from openpyxl.styles import Font

            red = Font(bold=True, color="C00000")
            rb = load_workbook(src, read_only=True)
            wb = Workbook(write_only=True)
            for ws_in in rb.worksheets:
                ws = wb.create_sheet(ws_in.title)
                head = WriteOnlyCell(ws, value=text_cell(headline))
                head.font = red
                ws.append([head])
                for row in ws_in.iter_rows(values_only=True):
                    cells = []
                    for v in row:  # the export's cells are text (docs/gains-export.md): they stay text
                        c = WriteOnlyCell(ws, value=v)
                        if isinstance(v, str):
                            c.data_type = "s"
                        cells.append(c)
                    ws.append(cells)
            rb.close()
            wb.save(tmp)
        tmp.replace(dst)
    finally:
        if tmp.exists():
            tmp.unlink()
        if src.exists():
            src.unlink()


def _finish(staged: Path, path: Path, fmt: str, c: Completeness) -> None:
    if c.complete:
        staged.replace(path)
    else:
        mark_incomplete(staged, path, fmt, c.headline())


def gated_gains(conn, reporting: Any, settings, path: Path, fmt: str, *, year: int | None, allow: bool,
                gate: Callable[[Completeness], Any]):
    """``reports.gains.export_gains`` behind the gate; returns (``GainsExport``, ``Completeness``)."""
    from .gains import export_gains

    start, end = settings.year_bounds(year) if year is not None else (None, None)
    first = assess(conn, reporting, start=start, end=end)
    if not first.complete and not allow:
        gate(first)  # refuses (exit 4) before the booking
    staged = _staging(path)
    try:
        done = export_gains(conn, settings, staged, fmt, year=year)
        c = first.with_findings(done.findings)
        gate(c)
        _finish(staged, path, fmt, c)
    finally:
        if staged.exists():
            staged.unlink()
    return done, c


def gated_lots(conn, reporting: Any, settings, path: Path, fmt: str, *, at: datetime, gate: Callable[[Completeness], Any]):
    """The lots open at ``at`` (inclusive) behind the gate (every event up to ``at`` feeds them);
    returns (rows, findings, ``Completeness``)."""
    from ledger.books import book_ledger

    from .gains import LOTS_COLUMNS, lot_cells, write_table

    books = book_ledger(conn, settings, until=at, gains=False)
    end = at + _US
    c = gate(assess(conn, reporting, start=None, end=end, findings=books.findings_until(end)))
    staged = _staging(path)
    try:
        n = write_table(staged, fmt, LOTS_COLUMNS, (lot_cells(lot) for lot in books.open_lots), sheet="Lots")
        _finish(staged, path, fmt, c)
    finally:
        if staged.exists():
            staged.unlink()
    return n, books.findings, c


def gated_journal(conn, reporting: Any, path: Path, fmt: str, *, start: datetime | None, end: datetime | None,
                  gate: Callable[[Completeness], Any]) -> tuple[int, Completeness]:
    """The journal of [start, end) behind the gate. The journal is the ledger as posted, not a booking:
    it shows an unpriced posting as an empty value (never zero) and has no booking findings, so what
    it is refused for is a stale valuation or missing FX rates (values that are not the configured
    ones)."""
    from dataclasses import replace

    from .journal import journal_rows, write_journal

    c = gate(replace(assess(conn, reporting, start=start, end=end), unpriced=0, unpriced_sample=[]))
    staged = _staging(path)
    try:
        n = write_journal(journal_rows(conn, start=start, end=end), staged, fmt)
        _finish(staged, path, fmt, c)
    finally:
        if staged.exists():
            staged.unlink()
    return n, c

