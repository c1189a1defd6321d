"""generic: the year's gains table with totals by term and by asset (exact and rounded).

Streamed like the US files (``Spool``): ``prepare`` hands the sink to ``ledger.books.stream_gains``, each
of the year's engine pieces is written to the spooled gains table as it is booked and added to the
totals by term, by asset and overall; ``write`` lays out ``gains.csv`` (the spool, as it is) and its
XLSX, and the totals table. The year's gains are never held.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from ledger.booking.jurisdictions import iso_utc
from ledger.money import EXACT

from .common import Fixed, Num, cell

_add = EXACT.add  # an exact sum of two (the default context keeps 28 digits)

__all__ = ["write", "README_NOTES", "GAINS_COLUMNS", "Spool", "spool", "totals_by", "totals_rows"]

GAINS_COLUMNS = ("account", "asset", "quantity", "acquired", "disposed", "proceeds", "cost_basis", "gain", "term", "method", "lot_id", "disposal_id", "source_ref")


def README_NOTES(run) -> list[str]:
    return ["generic notes:", "  gains.csv holds the engine's rows exactly (times ISO-8601 UTC); gains-totals.csv sums them by term and by asset, "
            "exact and rounded, with the rounding difference"]


class Spool:
    """The year's pieces as they are booked: their cells to a spool file, their sums by term, asset and overall."""

    def __init__(self, settings, year: int, formats=()) -> None:
        import csv
        import tempfile

        from reports.safety import text_cell

        self.start, self.end = settings.year_bounds(year)
        self.dir = Path(tempfile.mkdtemp(prefix="reconcile-tax-generic-"))
        self.path = self.dir / "gains.csv"
        self._fh = open(self.path, "w", encoding="utf-8", newline="")
        self._w = csv.writer(self._fh, lineterminator="\r\n")
        # gains.xlsx has no warnings above its header (a data file, as gains.csv): written as the rows come
        self.xlsx = None
        if "xlsx" in formats:
            from .common import XlsxWriter

            self.xlsx = XlsxWriter(self.dir / "gains.xlsx")
            self.xlsx.sheet("gains", len(GAINS_COLUMNS))
            self.xlsx.row([text_cell(h) for h in GAINS_COLUMNS])
        self.pieces = 0
        #: (by, group) -> [rows, proceeds, cost_basis, gain]
        self.sums: dict[tuple[str, str], list] = {}

    def add(self, batch) -> None:
        start, end, c, sums, w = self.start, self.end, cell, self.sums, self._w
        for g in batch:
            if not (start <= g.disposed < end):
                continue
            self.pieces += 1
            row = [c(g.account), c(g.asset), c(g.quantity), iso_utc(g.acquired), iso_utc(g.disposed), c(g.proceeds), c(g.cost_basis), c(g.gain),
                   c(g.term), c(g.method), c(g.lot_id), c(g.disposal_id), c(g.source_ref)]
            w.writerow(row)
            if self.xlsx is not None:
                self.xlsx.row(row)
            for key in (("term", g.term), ("asset", g.asset), ("all", "all")):
                t = sums.get(key)
                if t is None:
                    t = sums[key] = [0, Decimal(0), Decimal(0), Decimal(0)]
                t[0] += 1
                t[1] = _add(t[1], g.proceeds)
                t[2] = _add(t[2], g.cost_basis)
                t[3] = _add(t[3], g.gain)

    def finish(self) -> None:
        self._fh.close()
        if self.xlsx is not None:
            self.xlsx.close()

    def cleanup(self) -> None:
        import shutil

        self._fh.close()
        if self.xlsx is not None and self.xlsx.fh is not None:
            self.xlsx.abort()
        shutil.rmtree(self.dir, ignore_errors=True)


def spool(settings, year, rounding, form_1099da, formats) -> Spool:
    """The streamed export's sink (``reports.tax.run.prepare`` hands it to ``ledger.books.stream_gains``)."""
    return Spool(settings, year, formats)


def totals_by(run, key) -> dict[str, list]:
    out: dict[str, list] = {}
    for g in run.gains:
        t = out.setdefault(key(g), [0, Decimal(0), Decimal(0), Decimal(0)])
        t[0] += 1
        t[1] = _add(t[1], g.proceeds)
        t[2] = _add(t[2], g.cost_basis)
        t[3] = _add(t[3], g.gain)
    return out


def _rows_from(sums: dict[tuple[str, str], list], q) -> list:
    rows = []
    for kind in ("term", "asset", "all"):
        for (k, name), (n, p, c, gn) in sorted((x for x in sums.items() if x[0][0] == kind)):
            rows.append([kind, name, Num(Decimal(n)), Num(p), Num(c), Num(gn), Fixed(q(p)), Fixed(q(c)), Fixed(q(p) - q(c)), Num(q(p) - q(c) - gn)])
    return rows


def totals_rows(run, q) -> list:
    sums = {}
    for kind, key in (("term", lambda g: g.term), ("asset", lambda g: g.asset), ("all", lambda g: "all")):
        for name, t in totals_by(run, key).items():
            sums[(kind, name)] = t
    return _rows_from(sums, q)


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    sp = getattr(run, "spool", None)
    if sp is None:  # a run prepared with the gains in a list: the same path, spooled here
        sp = Spool(run.settings, run.year, run.formats)
        sp.add(run.gains)
        sp.finish()
    try:
        return _write(run, folder, warnings, sp, table)
    finally:
        sp.cleanup()


def _write(run, folder, warnings, sp: Spool, table) -> dict[str, Decimal]:
    from reports.safety import text_cell

    from .us import _copy_with_head

    q = run.rounding
    what = f"every (disposal, lot) piece of tax year {run.label}, exact, as the engine booked it"
    head = [[text_cell(h) for h in GAINS_COLUMNS]]
    _copy_with_head(folder.path("gains.csv", what), head, sp.path, [], bom=False)
    if sp.xlsx is not None:
        import shutil

        shutil.move(str(sp.dir / "gains.xlsx"), str(folder.path("gains.xlsx", what + " (XLSX, same cells)")))  # written as the rows came
    rows = _rows_from(sp.sums, q)
    table(run, folder, "gains-totals", "totals by term, by asset and overall: exact, rounded, and the rounding difference",
          ("by", "group", "rows", "proceeds", "cost_basis", "gain", "proceeds (rounded)", "cost_basis (rounded)", "gain (rounded)", "rounding difference"), rows,
          warnings=warnings)
    out = {"rows": Decimal(sp.pieces)}
    for r in rows:
        out[f"{r[0]} {r[1]} gain"] = r[5].value
        out[f"{r[0]} {r[1]} proceeds"] = r[3].value
    return out
