"""United States: Form 8949 by box, Schedule D, income summary, TurboTax CSV and TXF, safe-harbor schedule.

EXPORT-FORMATS.md §1-2. One Form 8949 row per (disposal, term): the engine's pieces of one disposal
with the same term are one row (column (b) ``VARIOUS`` when they come from several acquisition days),
so a disposal drawing on short and long lots is two rows (§0 rule 3). Boxes from tax year 2025:
G/H/I short, J/K/L long; earlier years A/B/C, D/E/F; the default is "no 1099-DA" (I/L, before 2025
C/F) unless ``[tax.form_1099da]`` says otherwise for that account and year.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ledger.booking.jurisdictions import tax_day
from ledger.money import EXACT, plain
from reports.safety import text_cell

from .common import ZERO, Fixed, Num, Safe, Quantize, add, cell, mdy

_add = EXACT.add  # exact: the default context keeps 28 digits

__all__ = ["Form8949Row", "form_8949_rows", "box_of", "SCHEDULE_D_LINES", "schedule_d", "write", "README_NOTES", "ROWS_PER_PAGE", "Spool", "spool"]

#: Rows per part of one Form 8949 page: 11 on the 2025 revision, 14 before (EXPORT-FORMATS.md §1.1).
ROWS_PER_PAGE = {2025: 11, 0: 14}
#: 1099-DA status -> (short box, long box), from tax year 2025 / before.
_BOXES_2025 = {"basis-reported": ("G", "J"), "basis-not-reported": ("H", "K"), "none": ("I", "L")}
_BOXES_OLD = {"basis-reported": ("A", "D"), "basis-not-reported": ("B", "E"), "none": ("C", "F")}
STATUSES = tuple(_BOXES_2025)
BOX_CAPTIONS = {
    "A": "Short-term transactions reported on Form(s) 1099-B showing basis was reported to the IRS",
    "B": "Short-term transactions reported on Form(s) 1099-B showing basis was not reported to the IRS",
    "C": "Short-term transactions not reported to you on Form 1099-B",
    "D": "Long-term transactions reported on Form(s) 1099-B showing basis was reported to the IRS",
    "E": "Long-term transactions reported on Form(s) 1099-B showing basis was not reported to the IRS",
    "F": "Long-term transactions not reported to you on Form 1099-B",
    "G": "Short-term digital asset transactions reported on Form(s) 1099-DA showing basis was reported to the IRS",
    "H": "Short-term digital asset transactions reported on Form(s) 1099-DA showing basis was not reported to the IRS",
    "I": "Short-term digital asset transactions not reported to you on Form 1099-DA",
    "J": "Long-term digital asset transactions reported on Form(s) 1099-DA showing basis was reported to the IRS",
    "K": "Long-term digital asset transactions reported on Form(s) 1099-DA showing basis was not reported to the IRS",
    "L": "Long-term digital asset transactions not reported to you on Form 1099-DA",
}
#: Schedule D line -> the boxes whose totals it carries.
SCHEDULE_D_LINES = {"1b": ("A", "G"), "2": ("B", "H"), "3": ("C", "I"), "8b": ("D", "J"), "9": ("E", "K"), "10": ("F", "L")}
#: TXF v042 refnums: (short, long) per 1099 status; no refnums exist for G-L (v042 ends at 717), so the
#: C/F numbers carry I/L as BittyTax does (unconfirmed whether TurboTax maps them to I/L).
TXF_REFNUM = {"basis-reported": (321, 323), "basis-not-reported": (711, 713), "none": (712, 714)}


def _boxes(year: int, _memo: dict = {}) -> dict:  # noqa: B006 - one entry per tax year
    """The year's versioned rule ``form_8949_boxes`` of the jurisdiction table (1099 status -> (short, long))."""
    table = _memo.get(year)
    if table is None:
        from ledger.booking.jurisdictions import jurisdiction

        table = _memo[year] = jurisdiction("us").rule("form_8949_boxes", year)
    return table


def box_of(status: str, term: str, year: int) -> str:
    short, long_ = _boxes(year)[status]
    return long_ if term == "long" else short


@dataclass(slots=True)
class Form8949Row:
    box: str
    status: str
    account: str
    asset: str
    quantity: Decimal
    acquired: str  # MM/DD/YYYY or VARIOUS
    disposed: str
    proceeds: Decimal
    cost: Decimal
    term: str
    disposal_id: str
    lot_ids: list[str]
    source_ref: str
    adjustment: Decimal = ZERO
    code: str = ""

    @property
    def gain(self) -> Decimal:
        return self.proceeds - self.cost + self.adjustment

    @property
    def description(self) -> str:
        from ledger.money import plain

        return f"{plain(self.quantity)} {self.asset}"


def form_8949_rows(run) -> list[Form8949Row]:
    """The year's gains as 8949 rows: one per (disposal, term), in disposal order, exact."""
    zone = run.settings.tax_zone
    rows: dict[tuple[str, str], Form8949Row] = {}
    days: dict[tuple[str, str], set] = {}
    for g in run.gains:
        key = (g.disposal_id, g.term)
        r = rows.get(key)
        acq = tax_day(g.acquired, zone)
        if r is None:
            status = run.form_1099da.get((g.account, run.year), "none")
            r = rows[key] = Form8949Row(box=box_of(status, g.term, run.year), status=status, account=g.account, asset=g.asset, quantity=g.quantity,
                                        acquired=mdy(acq), disposed=mdy(tax_day(g.disposed, zone)), proceeds=g.proceeds, cost=g.cost_basis,
                                        term=g.term, disposal_id=g.disposal_id, lot_ids=[g.lot_id], source_ref=g.source_ref)
            days[key] = {acq}
            continue
        r.quantity = add((r.quantity, g.quantity))
        r.proceeds = add((r.proceeds, g.proceeds))
        r.cost = add((r.cost, g.cost_basis))
        r.lot_ids.append(g.lot_id)
        days[key].add(acq)
        if len(days[key]) > 1:
            r.acquired = "VARIOUS"
    return list(rows.values())


@dataclass
class BoxTotals:
    box: str
    rows: int
    proceeds: Decimal
    cost: Decimal
    adjustment: Decimal
    gain: Decimal


def box_totals(rows: list[Form8949Row], q: Quantize) -> dict[str, tuple[BoxTotals, BoxTotals]]:
    """Per box: (exact totals, totals of the rounded rows)."""
    out: dict[str, list] = {}
    for r in rows:
        t = out.setdefault(r.box, [[0, ZERO, ZERO, ZERO], [ZERO, ZERO, ZERO]])
        e, rd = t
        e[0] += 1
        e[1] = add((e[1], r.proceeds))
        e[2] = add((e[2], r.cost))
        e[3] = add((e[3], r.adjustment))
        rd[0] = add((rd[0], q(r.proceeds)))
        rd[1] = add((rd[1], q(r.cost)))
        rd[2] = add((rd[2], q(r.adjustment)))
    res = {}
    for box, (e, rd) in sorted(out.items()):
        exact = BoxTotals(box, e[0], e[1], e[2], e[3], e[1] - e[2] + e[3])
        rounded = BoxTotals(box, e[0], rd[0], rd[1], rd[2], rd[0] - rd[1] + rd[2])
        res[box] = (exact, rounded)
    return res


def schedule_d(totals: dict[str, tuple[BoxTotals, BoxTotals]]) -> list[tuple[str, str, BoxTotals, BoxTotals]]:
    """Schedule D lines 1b/2/3, 7, 8b/9/10, 15, 16 from the box totals: (line, caption, exact, rounded)."""

    def line(boxes):
        pe = [totals[b][0] for b in boxes if b in totals]
        pr = [totals[b][1] for b in boxes if b in totals]

        def s(parts, name):
            return add(getattr(p, name) for p in parts)

        return (BoxTotals(",".join(boxes), sum(p.rows for p in pe), s(pe, "proceeds"), s(pe, "cost"), s(pe, "adjustment"), s(pe, "gain")),
                BoxTotals(",".join(boxes), sum(p.rows for p in pr), s(pr, "proceeds"), s(pr, "cost"), s(pr, "adjustment"), s(pr, "gain")))

    def combine(name, parts):
        e = [p[2] for p in parts]
        r = [p[3] for p in parts]
        mk = lambda xs: BoxTotals(name, sum(x.rows for x in xs), add(x.proceeds for x in xs), add(x.cost for x in xs), add(x.adjustment for x in xs), add(x.gain for x in xs))
        return mk(e), mk(r)

    out = []
    caps = {"1b": "Totals for all transactions reported on Form(s) 8949 with Box A or G checked",
            "2": "Totals for all transactions reported on Form(s) 8949 with Box B or H checked",
            "3": "Totals for all transactions reported on Form(s) 8949 with Box C or I checked",
            "8b": "Totals for all transactions reported on Form(s) 8949 with Box D or J checked",
            "9": "Totals for all transactions reported on Form(s) 8949 with Box E or K checked",
            "10": "Totals for all transactions reported on Form(s) 8949 with Box F or L checked"}
    short = []
    for ln in ("1b", "2", "3"):
        e, r = line(SCHEDULE_D_LINES[ln])
        short.append((ln, caps[ln], e, r))
    e7, r7 = combine("7", short)
    long_ = []
    for ln in ("8b", "9", "10"):
        e, r = line(SCHEDULE_D_LINES[ln])
        long_.append((ln, caps[ln], e, r))
    e15, r15 = combine("15", long_)
    e16, r16 = combine("16", [("7", "", e7, r7), ("15", "", e15, r15)])
    out += short
    out.append(("7", "Net short-term capital gain or (loss) (from these exports only: no lines 1a, 4, 5, 6)", e7, r7))
    out += long_
    out.append(("15", "Net long-term capital gain or (loss) (from these exports only: no lines 8a, 11-14)", e15, r15))
    out.append(("16", "Combine lines 7 and 15", e16, r16))
    return out


def _paren(q: Quantize, d: Decimal) -> str:
    """A signed amount as column (h) shows it on paper: a loss in parentheses."""
    t = q.text(abs(d))
    return f"({t})" if d < 0 else t


FORM_COLUMNS = ("(a) Description of property", "(b) Date acquired", "(c) Date sold or disposed of", "(d) Proceeds", "(e) Cost or other basis",
                "(f) Code(s)", "(g) Amount of adjustment", "(h) Gain or (loss)", "term", "account", "disposal_id", "lot_ids", "source_ref")


def README_NOTES(run) -> list[str]:
    pre = run.year < 2025
    return [
        "US notes:",
        f"  Form 8949 boxes: {'A-F (tax years before 2025; crypto without a 1099-B is C/F)' if pre else 'G/H/I short-term, J/K/L long-term (from tax year 2025)'}; "
        f"default {'C/F' if pre else 'I/L'} (no 1099-DA); reclassify per account and year with [tax.form_1099da] in reconcile.toml",
        "  one row per (disposal, term): pieces of one disposal with the same term are summed; (b) VARIOUS when they come from several days",
        "  dates MM/DD/YYYY on the tax day (UTC unless the config sets another zone); proceeds net of disposal fees; basis includes acquisition fees",
        "  column (h) = (d) - (e) + (g) of the rounded (d), (e), (g); box totals are sums of the rounded rows (form-8949-reconciliation.csv)",
        f"  Exception 2: a box with more than {ROWS_PER_PAGE[2025 if not pre else 0]} rows (one page) also gets a summary row file "
        "(form-8949-box-X-summary.csv) to enter on the form, with the full box as the attached statement (the box CSV, and the PDF with --format pdf)",
        "  TurboTax: turbotax.csv (gain/loss CSV: quantities at most 8 decimals, amounts in cents, no negatives: a negative proceeds is "
        "moved to the cost, keeping the gain) and, with --format txf, turbotax.txf (TXF v042, refnums 321/323, 711/713, 712/714; "
        "v042 has none for G-L, so I/L use 712/714 as C/F did: unconfirmed)",
        *(["  NOTE: more than 2,000 disposal rows: TaxAct and H&R Block imports fail above about 2,000 Forms 1099-B; enter the Exception 2 "
            "summary rows and attach the statement PDFs instead"] if run.gain_count > 2000 else []),
        f"  perpetual realized P&L, fees and funding: in income-summary.csv from the perpetual position engine (ledger/perps.py, "
        f"{run.perps.method if run.perps is not None else 'average'} lots; never spot lots), not as Form 8949 rows; no specific IRS guidance "
        "exists (TAX-RULES.md §1.4): the treatment column states the common practice, and funding is shown netted and as received/paid (your election)",
    ]


class _Box:
    """One box's rows as they come: the CSV body in a spool file, the exact and rounded totals."""

    __slots__ = ("box", "status", "path", "fh", "w", "n", "e", "rd")

    def __init__(self, box: str, status: str, path: Path) -> None:
        import csv

        self.box, self.status, self.path = box, status, path
        self.fh = open(path, "w", encoding="utf-8", newline="")
        self.w = csv.writer(self.fh, lineterminator="\r\n")
        self.n = 0
        self.e = [ZERO, ZERO, ZERO]  # proceeds, cost, adjustment (exact)
        self.rd = [ZERO, ZERO, ZERO]  # the rounded rows' sums


class Spool:
    """The streamed US export's first half: the year's engine pieces (``stream_gains``' batches) become
    Form 8949 rows as they arrive, one per (disposal, term); each row's cells go at once to its box's
    spool file, the TurboTax CSV and the TXF, and only the totals are kept. ``write`` then lays out the
    final files (warnings, header, the spooled rows, the totals line; the XLSX and the PDF statement read
    the box's spool back). Nothing holds the year's gains or rows.

    The engine books the pieces of one disposal together (``Engine.feed``), so a row is complete when the
    next disposal begins."""

    def __init__(self, settings, year: int, rounding: Quantize, form_1099da, formats) -> None:
        import tempfile

        self.zone, self.year, self.q = settings.tax_zone, year, rounding
        self.start, self.end = settings.year_bounds(year)
        self.status = dict(form_1099da or {})
        self.formats = tuple(formats)
        self.dir = Path(tempfile.mkdtemp(prefix="reconcile-tax-us-"))
        self.boxes: dict[str, _Box] = {}
        self.pieces = 0
        self.rows = 0
        self._open: dict[str, Form8949Row] = {}  # term -> the current disposal's row
        self._days: dict[str, set] = {}
        self._disposal: str | None = None
        self._tq = Quantize("cents") if rounding.name == "exact" else rounding
        self.tt_sums = [ZERO, ZERO]
        import csv

        self._tt = open(self.dir / "turbotax.csv", "w", encoding="utf-8", newline="")
        self._ttw = csv.writer(self._tt, lineterminator="\r\n")
        self._txf = open(self.dir / "turbotax.txf", "w", encoding="ascii", errors="replace", newline="") if "txf" in self.formats else None
        self._dates: dict = {}  # tax day -> MM/DD/YYYY

    # -- phase 1: as the engine books --------------------------------------------------------------
    def add(self, batch) -> None:
        start, end, zone, year, status_of = self.start, self.end, self.zone, self.year, self.status
        opened, days, dates = self._open, self._days, self._dates
        for g in batch:
            if not (start <= g.disposed < end):
                continue
            self.pieces += 1
            if g.disposal_id != self._disposal:
                if opened:
                    self._flush()
                self._disposal = g.disposal_id
            r = opened.get(g.term)
            acq = tax_day(g.acquired, zone)
            if r is None:
                status = status_of.get((g.account, year), "none")
                disposed = tax_day(g.disposed, zone)
                opened[g.term] = Form8949Row(box=box_of(status, g.term, year), status=status, account=g.account, asset=g.asset, quantity=g.quantity,
                                             acquired=dates.get(acq) or dates.setdefault(acq, mdy(acq)),
                                             disposed=dates.get(disposed) or dates.setdefault(disposed, mdy(disposed)), proceeds=g.proceeds,
                                             cost=g.cost_basis, term=g.term, disposal_id=g.disposal_id, lot_ids=[g.lot_id], source_ref=g.source_ref)
                days[g.term] = {acq}
                continue
            r.quantity = _add(r.quantity, g.quantity)
            r.proceeds = _add(r.proceeds, g.proceeds)
            r.cost = _add(r.cost, g.cost_basis)
            r.lot_ids.append(g.lot_id)
            d = days[g.term]
            d.add(acq)
            if len(d) > 1:
                r.acquired = "VARIOUS"

    def _flush(self) -> None:
        for r in self._open.values():
            self._emit(r)
        self._open.clear()
        self._days.clear()

    def _emit(self, r: Form8949Row) -> None:
        """One row to its box's spool, the TurboTax CSV and the TXF; the totals kept."""
        q = self.q
        b = self.boxes.get(r.box)
        if b is None:
            b = self.boxes[r.box] = _Box(r.box, r.status, self.dir / f"box-{r.box}.csv")
        description = r.description
        d, e = q(r.proceeds), q(r.cost)
        g = q(r.adjustment) if r.adjustment else None
        h = d - e + g if g is not None else d - e
        b.w.writerow([text_cell(description), r.acquired, r.disposed, format(d, "f"), format(e, "f"), text_cell(r.code), format(g, "f") if g is not None else "",
                      format(h, "f"), r.term, text_cell(r.account), text_cell(r.disposal_id), text_cell(";".join(r.lot_ids)), text_cell(r.source_ref)])
        b.n += 1
        self.rows += 1
        ex, rd = b.e, b.rd
        ex[0] = _add(ex[0], r.proceeds)
        ex[1] = _add(ex[1], r.cost)
        ex[2] = _add(ex[2], r.adjustment)
        rd[0] = _add(rd[0], d)
        rd[1] = _add(rd[1], e)
        rd[2] = _add(rd[2], g if g is not None else q(r.adjustment))
        # TurboTax (TURBOTAX_COLUMNS): amounts in cents (rounded as the form's when that is cents), no negatives:
        # a negative proceeds is moved to the cost, keeping the gain.
        tq = self._tq
        proceeds, cost = (d, e) if tq is q else (tq(r.proceeds), tq(r.cost))
        if proceeds < 0:
            cost, proceeds = cost - proceeds, ZERO
        acq = r.acquired if r.acquired != "VARIOUS" else ("various" if r.term == "short" else "VARIOUS")
        s = self.tt_sums
        s[0] = _add(s[0], proceeds)
        s[1] = _add(s[1], cost)
        self._ttw.writerow([plain(r.quantity.quantize(Q8, rounding=ROUND_HALF_UP, context=EXACT)), text_cell(r.asset), text_cell(acq), text_cell(r.disposed),
                            format(proceeds, "f"), format(cost, "f")])
        if self._txf is not None:
            short, long_ = TXF_REFNUM[r.status]
            self._txf.write(f"TD\r\nN{long_ if r.term == 'long' else short}\r\nC1\r\nL1\r\nP{_txf_text(description)}\r\nD{acq}\r\nD{r.disposed}\r\n"
                            f"${cost:f}\r\n${proceeds:f}\r\n^\r\n")

    def finish(self) -> None:
        if self._open:
            self._flush()
        for b in self.boxes.values():
            b.fh.close()
        self._tt.close()
        if self._txf is not None:
            self._txf.close()

    def totals(self) -> dict[str, tuple[BoxTotals, BoxTotals]]:
        """Per box: (exact totals, totals of the rounded rows), as ``box_totals``."""
        out = {}
        for box in sorted(self.boxes):
            b = self.boxes[box]
            e, rd = b.e, b.rd
            out[box] = (BoxTotals(box, b.n, e[0], e[1], e[2], e[0] - e[1] + e[2]), BoxTotals(box, b.n, rd[0], rd[1], rd[2], rd[0] - rd[1] + rd[2]))
        return out

    def box_rows(self, box: str):
        """The box's row cells, read back from its spool (for the XLSX and the PDF statement)."""
        import csv

        with open(self.boxes[box].path, encoding="utf-8", newline="") as fh:
            yield from csv.reader(fh)

    def cleanup(self) -> None:
        import shutil

        for b in self.boxes.values():
            b.fh.close()
        for fh in (self._tt, self._txf):
            if fh is not None:
                fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def spool(settings, year, rounding, form_1099da, formats) -> Spool:
    """The streamed export's sink (``reports.tax.run.prepare`` hands it to ``ledger.books.stream_gains``)."""
    return Spool(settings, year, rounding, form_1099da, formats)


def _copy_with_head(path: Path, head_rows, body: Path, tail_rows, *, bom: bool) -> None:
    """``path`` (via ``.partial``, renamed): the head rows (warnings, header), the spooled body as it is, the tail rows."""
    import csv
    import io
    import os
    import shutil

    def text(rows) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerows(rows)
        return buf.getvalue().encode("utf-8")

    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as out:
        if bom:
            out.write(b"\xef\xbb\xbf")
        out.write(text(head_rows))
        with open(body, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        out.write(text(tail_rows))
    os.replace(tmp, path)


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    q = run.rounding
    sp = getattr(run, "spool", None)
    if sp is None:  # a run prepared with the gains in a list: the same path, spooled here
        sp = Spool(run.settings, run.year, q, run.form_1099da, run.formats)
        sp.add(run.gains)
        sp.finish()
    run.gains = []
    try:
        return _write(run, folder, warnings, sp, q, text_cell, table)
    finally:
        sp.cleanup()


def _write(run, folder, warnings, sp: Spool, q, text_cell, table) -> dict[str, Decimal]:
    totals = sp.totals()
    page = ROWS_PER_PAGE[2025 if run.year >= 2025 else 0]
    out_totals: dict[str, Decimal] = {"rows": Decimal(sp.rows)}
    for box in sorted(sp.boxes):
        part = "Part I (short-term)" if box in "ABCGHI" else "Part II (long-term)"
        n = sp.boxes[box].n
        exact, rounded = totals[box]
        total_row = [Safe("Totals"), "", "", Fixed(rounded.proceeds), Fixed(rounded.cost), "", Fixed(rounded.adjustment), Fixed(rounded.gain), "", "", "", "", ""]
        total_cells = [cell(v) for v in total_row]
        pre = [*warnings, f"Form 8949 {run.label} {part} Box {box}: {BOX_CAPTIONS[box]}"]
        head = [[text_cell(line)] for line in pre] + [[text_cell(h) for h in FORM_COLUMNS]]
        what = f"Form 8949 {part}, box {box}: {n} rows and the totals line (columns (a)-(h), then term, account and lineage)"
        _copy_with_head(folder.path(f"form-8949-box-{box}.csv", what), head, sp.boxes[box].path, [total_cells], bom=True)
        if "xlsx" in run.formats:
            from .common import XlsxWriter

            x = XlsxWriter(folder.path(f"form-8949-box-{box}.xlsx", what + " (XLSX, same cells)"))
            try:
                x.sheet(f"8949 box {box}", len(FORM_COLUMNS))
                for h in head:
                    x.row(h)
                for r in sp.box_rows(box):
                    x.row(r)
                x.row(total_cells)
                x.close()
            except BaseException:
                x.abort()
                raise
        for k in ("proceeds", "cost", "adjustment", "gain"):
            out_totals[f"box {box} {k}"] = getattr(exact, k)
        if n > page:
            summ = [["Backpack - see attached statement", "", "", Fixed(rounded.proceeds), Fixed(rounded.cost), "M", Fixed(rounded.adjustment) if rounded.adjustment else "", Fixed(rounded.gain)]]
            table(run, folder, f"form-8949-box-{box}-summary", f"Form 8949 box {box}: the Exception 2 summary row to enter on the form ({n} transactions on the attached statement)",
                  FORM_COLUMNS[:8], summ, warnings=pre)
        if "pdf" in run.formats:
            from .pdf import form_8949_statement

            form_8949_statement(folder.path(f"form-8949-box-{box}-statement.pdf", f"Form 8949 box {box}: the attached statement (Exception 2), laid out like the form"),
                                run=run, box=box, caption=BOX_CAPTIONS[box], part=part, rows=sp.box_rows(box), count=n, totals=rounded, warnings=warnings)
    # Rounding reconciliation: exact totals to the rounded ones, per box.
    rec = []
    for box, (e, r) in totals.items():
        for k in ("proceeds", "cost", "adjustment", "gain"):
            a, b = getattr(e, k), getattr(r, k)
            rec.append([box, k, Num(a), Num(b), Num(b - a)])
    table(run, folder, "form-8949-reconciliation", "per box: the exact total of each column, the total of the rounded rows, and the difference",
          ("box", "column", "exact total", "rounded total", "rounding difference"), rec, warnings=warnings)
    # Schedule D.
    sd = schedule_d(totals)
    sd_rows = [[ln, cap, Fixed(q(r.proceeds)), Fixed(q(r.cost)), Fixed(q(r.adjustment)), Fixed(q(r.gain)), Num(e.gain), Num(r.gain - e.gain)] for ln, cap, e, r in sd]
    table(run, folder, "schedule-d", f"Schedule D {run.label}: lines 1b, 2, 3, 7, 8b, 9, 10, 15, 16 from the Form 8949 box totals",
          ("line", "description", "(d) proceeds", "(e) cost or other basis", "(g) adjustments", "(h) gain or (loss)", "exact gain or (loss)", "rounding difference"),
          sd_rows, warnings=warnings)
    for ln, _cap, e, _r in sd:
        out_totals[f"schedule-d {ln} gain"] = e.gain
    # Income summary.
    _income(run, folder, warnings, out_totals)
    # TurboTax gain/loss CSV and TXF: the same rows, spooled as they came.
    _copy_with_head(folder.path("turbotax.csv", "TurboTax gain/loss CSV (computed gains, one row per Form 8949 row; no box or term column: TurboTax infers the term from the dates)"),
                    [list(TURBOTAX_COLUMNS)], sp.dir / "turbotax.csv", [], bom=False)
    if "txf" in run.formats:
        p = folder.path("turbotax.txf", "TXF v042 of the same rows for TurboTax Desktop (record format 4: cost before proceeds)")
        import os
        import shutil

        tmp = p.with_name(p.name + ".partial")
        with open(tmp, "wb") as out:
            out.write(("\r\n".join(["V042", "Abackpack-reconcile", f"D{mdy(run.exported_on)}", "^"]) + "\r\n").encode("ascii"))
            with open(sp.dir / "turbotax.txf", "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, p)
    out_totals["turbotax proceeds"], out_totals["turbotax cost"] = sp.tt_sums
    # Safe-harbor allocation (Rev. Proc. 2024-28), dated in this year.
    allocs = [a for a in run.books.allocations if a.time.year == run.year]
    if allocs or run.year == 2025:
        from ledger.money import plain

        arows = [[a.time.isoformat(), a.effective.isoformat(), a.method, a.rule, a.account, a.asset, Num(a.quantity), Num(a.basis), Num(Decimal(len(a.lots))),
                  ";".join(f"{l.id}={plain(l.quantity)}@{plain(l.cost)}" for l in a.lots)] for a in allocs]
        table(run, folder, "safe-harbor-allocation", "US safe-harbor allocation of unused basis across accounts (Rev. Proc. 2024-28): one row per (account, asset), with the lots",
              ("date", "effective (UTC)", "method", "rule", "account", "asset", "quantity", "basis", "lots", "lot ids (id=quantity@basis)"), arows, warnings=warnings)
    return out_totals


TREATMENT_US = {
    "interest received": "ordinary income at fair market value when received (Schedule 1 / B); basis of the units received",
    "interest paid": "possibly investment interest expense (Form 4952, itemisers only): reported, not netted",
    "perp funding": "net funding (the netting election); no IRS guidance: funding received as ordinary income, paid as an expense, unless netted into P&L (your election)",
    "  of which perp funding received": "funding received: ordinary income (the gross election); part of the net line above, not to be added again",
    "  of which perp funding paid": "funding paid: an expense (the gross election); part of the net line above, not to be added again",
    "perp realized P&L": "closes of perpetual position lots (ledger/perps.py); commonly a short-term capital gain or loss; not section 1256 (your election)",
    "perp trading fees": "every perpetual fill's fee of the year (rebates negative); part of the perp result",
    "perp liquidation": "liquidation-kind settlements (backstop, liability transfer) beyond the closes' P&L; a forced close",
}


def _income(run, folder, warnings, totals) -> None:
    from .run import table

    q = run.rounding
    rows = []
    for l in run.income_lines:
        rows.append([l.category, Fixed(q(l.value)), Num(l.value), Num(Decimal(l.entries)), Num(Decimal(l.unpriced)), ";".join(sorted(l.assets)),
                     TREATMENT_US.get(l.category, "")])
        totals[f"income {l.category}"] = l.value
        if l.category == "perp funding" and run.perps is not None:  # the gross election's two figures, under the net
            for k, name in (("perp funding received", "  of which perp funding received"), ("perp funding paid", "  of which perp funding paid")):
                v = run.perps.totals[k]
                rows.append([name, Fixed(q(v)), Num(v), "", "", ";".join(sorted(l.assets)), TREATMENT_US[name]])
                totals[f"income {name.strip()}"] = v
    table(run, folder, "income-summary", "income and expense categories of the year (signed: positive is money in), with the treatment",
          ("category", f"value {run.currency} (rounded)", f"value {run.currency} (exact)", "entries", "unpriced entries (not in the value)", "assets", "treatment"),
          rows, warnings=warnings)
    from ledger.booking.jurisdictions import iso_utc

    detail = [[i.id, i.account, i.asset, Num(i.quantity), Num(i.value), iso_utc(i.time), i.source] for i in run.income]
    totals["income in kind"] = add(i.value for i in run.income)
    table(run, folder, "income-in-kind", "income received in a lot-tracked asset (the engine's income rows): value at receipt, the basis of the lot it created",
          ("id", "account", "asset", "quantity", f"value {run.currency}", "time (UTC)", "source"), detail, warnings=warnings)


TURBOTAX_COLUMNS = ("Amount", "Currency Name", "Purchase Date", "Date Sold", "Proceeds", "Cost Basis")
Q8 = Decimal("0.00000001")


def _txf_text(s: str) -> str:
    """TXF is line-oriented ASCII: no control characters, no line breaks, ASCII only."""
    if s.isascii() and s.isprintable():
        return s
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in s)
