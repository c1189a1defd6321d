"""The accountant's workbook (openpyxl, write-only: rows stream to the file, the workbook is never held).

Sheets: Summary (the completeness verdict first, then every total as a formula over the detail
sheets), Realized gains, Income, Fees, Perpetuals, Holdings, Open lots, Journal, Reconciliation,
Prices used, Warnings, Method comparison, and Safe harbor where the US 2025 allocation was made.

Amounts are numeric cells with number formats (money to the cent, quantities to the asset's
precision as seen in the data), times are date cells (UTC), header rows are frozen with an
auto-filter, columns have widths, and each sheet prints landscape, fit to width, with its header
row repeated. Totals are formulas (``SUM``/``SUMIF`` over the rows), so an accountant's
spreadsheet recomputes them; the test recalculates them in LibreOffice against the engine.
Exchange-supplied text goes through ``reports.safety.text_cell``.
"""

from __future__ import annotations

from openpyxl.utils import get_column_letter

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from ledger.booking import Gain
from ledger.booking.perps import Realized

from .report import FeeRow, Report
from .safety import text_cell

__all__ = ["write_workbook", "SHEETS", "JOURNAL_SHEET_LIMIT", "GAINS_SHEET_LIMIT", "PERPETUALS_NOTE", "money_format"]

SHEETS = ("Summary", "Realized gains", "Income", "Fees", "Perpetuals", "Perpetual closes", "Holdings", "Open lots", "Journal",
          "Reconciliation", "Prices used", "Warnings", "Method comparison")
#: Rows a detail sheet holds; beyond that the rows are in the CSV next to the workbook (Excel's limit is 1,048,576).
JOURNAL_SHEET_LIMIT = 100_000
GAINS_SHEET_LIMIT = 1_000_000
PERPETUALS_NOTE = ("perpetual figures from the perpetuals engine (ledger.perps.perp_books): realized P&L, fees, funding and "
                   "liquidations by market in USDC, the settlement asset; open positions at the period end valued at the exchange's mark; "
                   "every close in 'Perpetual closes'; the same figures as `reconcile export perps`")

_MONEY = "#,##0.00;[Red]-#,##0.00"
_PRICE = "#,##0.00######"
_DATE = "yyyy-mm-dd hh:mm:ss"
_DAY = "yyyy-mm-dd"
_INT = "#,##0"


def money_format(currency: str) -> str:
    """Money to the currency's cents (USD, EUR, GBP all have two decimals)."""
    return _MONEY


def _qty_format(places: int) -> str:
    return "#,##0" + ("." + "0" * places if places else "")


def _places(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return min(max(-exp, 0), 12) if isinstance(exp, int) else 0


def _naive(t: datetime) -> datetime:
    """Excel has no time zones: the UTC wall time (the header says UTC)."""
    return t.astimezone(timezone.utc).replace(tzinfo=None)


def _col(i: int) -> str:
    """The spreadsheet column of 0-based index ``i`` (openpyxl's ``get_column_letter``)."""
    return get_column_letter(i + 1)


class _Sheet:
    """One write-only sheet: header, typed columns, rows, a totals row of formulas, print setup."""

    def __init__(self, wb, title: str, columns: Sequence[tuple[str, str, float]], *, notes: Sequence[str] = (), warn: str | None = None,
                 red=None, bold=None):
        from openpyxl.cell import WriteOnlyCell

        self.ws = wb.create_sheet(title)
        self.title = title
        self.columns = columns  # (header, kind, width): kind text | money | price | qty:<asset col> | date | day | int | num
        self._Cell = WriteOnlyCell
        self.bold, self.red = bold, red
        ws = self.ws
        for i, (_h, _k, w) in enumerate(columns):
            ws.column_dimensions[_col(i)].width = w
        # A write-only sheet writes its head (views, columns) at the first row: every setting comes first.
        self.lead = (1 if warn else 0) + len(notes)  # rows above the header
        self.header_row = self.lead + 1
        ws.freeze_panes = f"A{self.header_row + 1}"
        ws.print_title_rows = f"{self.header_row}:{self.header_row}"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        if warn:
            c = WriteOnlyCell(ws, value=warn)
            c.font = red
            ws.append([c])
        for n in notes:
            ws.append([n])
        ws.append([self._styled(h, font=bold) for h, _k, _w in columns])
        self.rows = 0

    @property
    def first(self) -> int:
        return self.header_row + 1

    @property
    def last(self) -> int:
        return self.header_row + self.rows

    def _styled(self, value, fmt: str | None = None, font=None):
        c = self._Cell(self.ws, value=value)
        if fmt:
            c.number_format = fmt
        if font is not None:
            c.font = font
        return c

    def cell(self, value, kind: str, qty_fmt: str | None = None):
        if value is None:
            return None
        if kind == "text":
            return text_cell(str(value)) if isinstance(value, str) else value
        if kind == "money":
            return self._styled(value, _MONEY)
        if kind == "price":
            return self._styled(value, _PRICE)
        if kind.startswith("qty"):
            return self._styled(value, qty_fmt or "#,##0.########")
        if kind == "date":
            return self._styled(_naive(value), _DATE) if isinstance(value, datetime) else value
        if kind == "day":
            return self._styled(value, _DAY)
        if kind == "int":
            return self._styled(value, _INT)
        return value

    def append(self, values: Sequence, qty_fmt: str | None = None) -> None:
        self.ws.append([self.cell(v, k, qty_fmt) for v, (_h, k, _w) in zip(values, self.columns)])
        self.rows += 1

    def fast(self, count: int, rows, qty_formats, *, totals=(), tail=lambda: (), fields: Sequence[str] = (), qty_key: int | None = None,
             qty_of=None) -> None:
        """Leave this sheet's rows to ``reports.xlsx_fast`` (written as text after the save): the prototype
        row carrying each style goes here; ``count`` rows follow the header, then the totals, then ``tail``.

        ``rows``: the rows, each a tuple of this sheet's columns' values, or a ``RowStore`` whose rows
        have the ``fields`` given, in the sheet's column order (its stored columns are written as they are).
        ``qty_key``/``qty_of``: the column whose value (an asset) gives a row's quantity format, and how."""
        from .rowstore import RowStore
        from .xlsx_fast import STYLE_KEYS, FastSheet, columns_of

        aside = isinstance(rows, RowStore)  # rows on disk (or in memory): no database read
        if aside and fields and rows.fields == tuple(fields):
            chunks = rows.column_chunks
        else:
            kinds = [k for _h, k, _w in self.columns]
            src = rows
            chunks = lambda: columns_of(src() if callable(src) else src, kinds)  # noqa: E731

        fmts = {"money": _MONEY, "price": _PRICE, "date": _DATE, "day": _DAY, "int": _INT, "bold": None, "boldmoney": _MONEY}
        proto = []
        for k in STYLE_KEYS:
            proto.append(self._styled("x" if k == "bold" else 0, fmts[k], self.bold if k.startswith("bold") else None))
        proto += [self._styled(0, f) for f in qty_formats]
        self.ws.append(proto)
        self.rows = count if count or not totals else 1
        self.fast_sheet = FastSheet(self.title, self.columns, self.first, count, chunks, list(qty_formats), tuple(totals), tail, qty_key, qty_of, aside)
        if totals:
            self.total_row = self.last + 1

    def ref(self, col: int) -> str:
        """The range of column ``col``'s data rows (``'Sheet'!$F$2:$F$9``), empty rows allowed."""
        c = _col(col)
        return f"'{self.title}'!${c}${self.first}:${c}${max(self.last, self.first)}"

    def totals(self, label: str, cols: Iterable[int]) -> int:
        """A totals row: ``SUM`` over each of ``cols``; returns its row number."""
        cols = set(cols)
        if not self.rows:  # an empty sheet: one blank data row, so the total's range never holds the total itself
            self.ws.append([])
            self.rows = 1
        row = []
        for i, (_h, k, _w) in enumerate(self.columns):
            if i == 0:
                row.append(self._styled(label, font=self.bold))
            elif i in cols:
                c = _col(i)
                row.append(self._styled(f"=SUM({c}{self.first}:{c}{max(self.last, self.first)})", _MONEY if k == "money" else None, self.bold))
            else:
                row.append(None)
        self.ws.append(row)
        self.total_row = self.last + 1
        return self.total_row

    def close(self) -> None:
        end = _col(len(self.columns) - 1)
        self.ws.auto_filter.ref = f"A{self.header_row}:{end}{max(self.last, self.header_row)}"


def write_workbook(rep: Report, path: Path, *, journal_csv: Path | None = None) -> dict[str, str]:
    """Write the workbook to ``path`` (via a temporary name; nothing is left half-written).

    ``journal_csv``: where the whole journal is written when the period has more postings than the
    Journal sheet holds (the sheet then names it). Returns {label: formula} of the Summary's totals."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    red = Font(bold=True, color="C00000")
    big = Font(bold=True, size=13)
    wb = Workbook(write_only=True)
    cur = rep.currency
    c = rep.completeness
    warn = None if c.complete else c.headline()

    # Quantities to the asset's precision: the most decimal places the period's figures carry.
    places: dict[str, int] = dict(rep.gain_figures().places)
    for lot in rep.open_lots:
        places[lot.asset] = max(places.get(lot.asset, 0), _places(lot.quantity))
    qfmt = {a: _qty_format(min(p, 10)) for a, p in places.items()}

    def qf(asset: str) -> str:
        return qfmt.get(asset) or "#,##0.########"

    qty_formats = sorted(set(qfmt.values()) | {"#,##0.########"})

    # Summary first in the tab order, written last (its formulas name the other sheets' rows).
    summary_ws = wb.create_sheet("Summary")
    sheets: dict[str, _Sheet] = {}

    def sheet(title, columns, **kw) -> _Sheet:
        s = _Sheet(wb, title, columns, warn=warn, red=red, bold=bold, **kw)
        sheets[title] = s
        return s

    # -- Realized gains --------------------------------------------------------------------------
    gs = sheet("Realized gains", [
        ("account", "text", 22), ("asset", "text", 10), ("quantity", "qty", 16), ("acquired (UTC)", "date", 19), ("disposed (UTC)", "date", 19),
        (f"proceeds ({cur})", "money", 15), (f"cost basis ({cur})", "money", 15), (f"gain ({cur})", "money", 14), ("term", "text", 10),
        ("method", "text", 8), ("lot id", "text", 30), ("disposal id", "text", 30), ("source", "text", 30)],
        notes=["one row per (disposal, lot) fraction; exact values: reconcile export gains --format csv"])
    shown = min(len(rep.gains), GAINS_SHEET_LIMIT)
    more = len(rep.gains) - shown
    gs.fast(shown, rep.gains, qty_formats, totals=(5, 6, 7), fields=Gain._fields, qty_key=1, qty_of=qf,
            tail=lambda: [f"{more} more rows than a sheet holds: reconcile export gains --format csv"] if more else [])
    gs.close()

    # -- Income ----------------------------------------------------------------------------------
    inc = sheet("Income", [
        ("time (UTC)", "date", 19), ("account", "text", 14), ("category", "text", 20), ("asset", "text", 10), ("quantity", "qty", 16),
        (f"unit price ({cur})", "price", 14), (f"value ({cur}; + in, - out)", "money", 16), ("entry", "text", 36), ("raw record", "int", 10)],
        notes=["interest, perp funding, perp realized P&L and perp fees as posted; an unpriced leg has no value (never zero)"])
    inc.fast(len(rep.income), rep.income, qty_formats, totals=(6,))
    inc.close()

    # -- Fees ------------------------------------------------------------------------------------
    fs = sheet("Fees", [
        ("time (UTC)", "date", 19), ("account", "text", 14), ("fee", "text", 12), ("asset", "text", 10), ("quantity", "qty", 16),
        (f"unit price ({cur})", "price", 14), (f"value ({cur})", "money", 14), ("entry", "text", 36), ("raw record", "int", 10)],
        notes=["spot trading and withdrawal fees (Expenses:Fees); a negative fee is a rebate"])
    fs.fast(len(rep.fees), rep.fees, qty_formats, totals=(6,), fields=FeeRow._fields)
    fs.close()

    # -- Perpetuals (ledger.perps.perp_books) ----------------------------------------------------
    perp_sheet(wb, rep, sheet, bold)

    # -- Holdings --------------------------------------------------------------------------------
    hs = sheet("Holdings", [
        ("account", "text", 22), ("asset", "text", 10), ("quantity", "qty", 18), (f"cost basis ({cur})", "money", 16),
        (f"unit price ({cur})", "price", 14), (f"value ({cur})", "money", 16), (f"unrealized ({cur})", "money", 16), ("price source", "text", 50)],
        notes=[f"lot-tracked holdings at the period end ({_naive(rep.end).isoformat(sep=' ')} UTC, exclusive); cash under the stablecoin policy is not lot-tracked"])
    for h in rep.holdings:
        r = hs.last + 1
        value = f"=C{r}*E{r}" if h.unit_price is not None else None
        unreal = f"=F{r}-D{r}" if h.unit_price is not None else None
        hs.append([h.account, h.asset, h.quantity, h.basis, h.unit_price, value, unreal, h.price_source], qf(h.asset))
    hs.totals("total", (3, 5, 6))
    hs.close()

    # -- Open lots -------------------------------------------------------------------------------
    ls = sheet("Open lots", [
        ("account", "text", 22), ("asset", "text", 10), ("quantity", "qty", 18), (f"cost basis ({cur})", "money", 16),
        (f"unit cost ({cur})", "price", 14), ("acquired (UTC)", "date", 19), ("lot id", "text", 34), ("source", "text", 34)])
    from ledger.money import EXACT

    div = EXACT.divide
    ls.fast(len(rep.open_lots), lambda: ((lot.account, lot.asset, lot.quantity, lot.cost, div(lot.cost, lot.quantity) if lot.quantity else None,
                                          lot.acquired, lot.id, lot.source) for lot in rep.open_lots), qty_formats, totals=(3,), qty_key=1, qty_of=qf)
    ls.close()

    # -- Journal ---------------------------------------------------------------------------------
    js = sheet("Journal", [
        ("entry", "text", 36), ("time (UTC)", "date", 19), ("kind", "text", 16), ("account", "text", 36), ("asset", "text", 10),
        ("quantity", "qty", 18), (f"unit price ({cur})", "price", 14), (f"value ({cur})", "money", 14), ("venue account", "text", 12),
        ("endpoint", "text", 12), ("source key", "text", 30), ("description", "text", 40)],
        notes=[f"every posting of the period; beyond {JOURNAL_SHEET_LIMIT:,} rows the whole journal is in a CSV next to this workbook"])
    total = rep.journal_count()
    in_sheet = min(total, JOURNAL_SHEET_LIMIT)
    journal_tail: list[str] = []
    if total > in_sheet:
        if journal_csv is not None:
            from .journal import write_journal

            write_journal(rep.journal(), journal_csv, "csv")
        to = _naive(rep.end).date().isoformat()
        where = journal_csv.name if journal_csv is not None else (
            f"reconcile export journal --format csv --from {_naive(rep.start).date().isoformat()} --to {to}")
        journal_tail.append(f"{total - in_sheet:,} more postings than this sheet holds: all {total:,} are in {where}")
    js.fast(in_sheet, lambda: ((r.entry_id, r.time, r.kind, r.account, r.asset, r.quantity, r.unit_price, r.value, r.venue_account, r.endpoint,
                                r.source_key, r.description) for r in rep.journal()), qty_formats, tail=lambda: journal_tail)
    js.close()

    # -- Reconciliation --------------------------------------------------------------------------
    rs = sheet("Reconciliation", [
        ("account", "text", 14), ("as of (UTC)", "date", 19), ("exchange figures", "text", 30), ("snapshot (UTC)", "date", 19), ("ok", "text", 6),
        ("wallet", "text", 10), ("asset", "text", 14), ("ledger", "num", 18), ("exchange", "num", 18), ("difference", "num", 16), ("likely causes", "text", 60)],
        notes=[_rec_note(rep)])
    for o in rep.checks:
        basis = {"taken then": "snapshot taken then", "rolled back": "latest snapshot rolled back", "rolled forward": "earlier snapshot rolled forward",
                 "latest snapshot": "latest snapshot"}.get(o.basis, "no snapshot")
        if not o.lines:
            rs.append([o.venue_account, o.as_of, basis, o.snapshot_at, "yes" if o.ok else "NO", None, None, None, None, None, "; ".join(o.notes)])
        for l in o.lines:
            r = rs.last + 1
            rs.append([o.venue_account, o.as_of, basis, o.snapshot_at, "yes" if o.ok else "NO", l.wallet, l.asset, l.ledger, l.exchange, f"=H{r}-I{r}",
                       "; ".join(l.causes)])
    rf = rep.rollforward
    if rf is not None:
        rs.ws.append([])
        rs.ws.append([rs._styled("basis roll-forward over the period", font=bold)])
        base = rs.last + 3  # after the last line: a blank row, the title row, then opening
        rs.ws.append(["opening basis", rs.cell(rf.opening, "money")])
        rs.ws.append(["+ acquisitions", rs.cell(rf.acquisitions, "money")])
        rs.ws.append(["- basis relieved", rs.cell(rf.relieved, "money")])
        rs.ws.append(["closing basis", rs.cell(rf.closing, "money")])
        rs.ws.append(["difference (0 = closes)", rs._styled(f"=B{base}+B{base + 1}-B{base + 2}-B{base + 3}", _MONEY, bold)])
    rs.close()

    # -- Prices used -----------------------------------------------------------------------------
    pu = sheet("Prices used", [("asset", "text", 12), ("source", "text", 14), ("currency", "text", 9), ("postings", "int", 10),
                               ("lowest", "price", 14), ("highest", "price", 14), ("first (UTC)", "date", 19), ("last (UTC)", "date", 19)],
               notes=["every holding posting's value names its source (docs/pricing.md); the journal CSV has each one"])
    for p in rep.prices_used:
        pu.append([p.asset, p.source, p.currency, p.postings, p.low, p.high, p.first, p.last])
    pu.close()

    # -- Warnings --------------------------------------------------------------------------------
    ws_ = sheet("Warnings", [("kind", "text", 20), ("changes figures", "text", 9), ("account", "text", 22), ("asset", "text", 10),
                             ("time (UTC)", "date", 19), ("key", "text", 36), ("message", "text", 90)])
    from ledger.completeness import FIGURE_FINDINGS

    for reason in c.reasons():
        ws_.append(["incomplete", "yes", None, None, None, None, reason])
    for u in c.unpriced_sample:
        ws_.append(["unpriced", "yes", None, u.asset, u.time, u.entry_key, f"{u.kind}: {u.reason}"])
    for f in rep.findings:
        ws_.append([f.kind, "yes" if f.kind in FIGURE_FINDINGS else "no", f.account, f.asset, f.time, f.key,
                    f.message + (" (before the period: feeds it)" if f.time < rep.start else "")])
    ws_.close()

    # -- Method comparison -----------------------------------------------------------------------
    ms = sheet("Method comparison", [("method", "text", 10), (f"short-term ({cur})", "money", 16), (f"long-term ({cur})", "money", 16),
                                     (f"uk rules ({cur})", "money", 14), (f"total ({cur})", "money", 16), (f"proceeds ({cur})", "money", 16),
                                     (f"cost basis ({cur})", "money", 16), ("rows", "int", 8), (f"vs configured ({cur})", "money", 16), ("note", "text", 50)],
               notes=[f"the same period booked under each method (one read of the ledger, one engine per method: ledger.report_books); configured: {rep.method}"])
    conf_row = None
    for i, m in enumerate(rep.methods):
        if m.method == rep.method:
            conf_row = ms.first + i
    for m in rep.methods:
        r = ms.last + 1
        if m.note.startswith("not available"):
            ms.append([m.method, None, None, None, None, None, None, None, None, m.note])
            continue
        ms.append([m.method, m.short, m.long, m.other, f"=B{r}+C{r}+D{r}", m.proceeds, m.basis, m.rows,
                   f"=E{r}-E{conf_row}" if conf_row else None, m.note])
    ms.close()

    # -- Safe harbor (US 2025 allocation) ---------------------------------------------------------
    if rep.allocations:
        sh = sheet("Safe harbor", [("date", "day", 12), ("effective (UTC)", "date", 19), ("method", "text", 10), ("rule", "text", 30),
                                   ("account", "text", 22), ("asset", "text", 10), ("quantity", "qty", 18), (f"basis ({cur})", "money", 16), ("lots", "int", 8)],
                   notes=["the basis allocation across accounts in force from the date (US, Rev. Proc. 2024-28)"])
        for a in rep.allocations:
            sh.append([a.time, a.effective, a.method, a.rule, a.account, a.asset, a.quantity, a.basis, len(a.lots)], qf(a.asset))
        sh.close()

    # -- Summary (written last, shown first) -------------------------------------------------------
    formulas = _summary(summary_ws, rep, sheets, bold=bold, red=red, big=big)
    from .xlsx_fast import splice

    order = [ws.title for ws in wb.worksheets]
    fast = {t: s.fast_sheet for t, s in sheets.items() if getattr(s, "fast_sheet", None) is not None}
    pkg = path.with_name(path.name + ".package.partial")
    tmp = path.with_name(path.name + ".partial")
    try:
        wb.save(pkg)  # every sheet's head and the small sheets; the large sheets' rows follow in the splice
        splice(pkg, tmp, fast, order)
        tmp.replace(path)
    finally:
        for t in (pkg, tmp):
            if t.exists():
                t.unlink()
    return formulas


def perp_sheet(wb, rep: Report, sheet, bold) -> None:
    """The Perpetuals sheet (by market, with formula totals; then the open positions at the period end and
    funding by month) and the Perpetual closes sheet, all from ``rep.perps`` (``ledger.perps.PerpBooks``)."""
    pb = rep.perps
    ps = sheet("Perpetuals", [
        ("account", "text", 22), ("market", "text", 16), ("realized P&L (USDC)", "money", 16), ("fees (USDC)", "money", 14),
        ("funding received (USDC)", "money", 16), ("funding paid (USDC)", "money", 16), ("funding net (USDC)", "money", 16),
        ("liquidations (USDC)", "money", 16), ("auto-deleverage (USDC)", "money", 16), ("other settlements (USDC)", "money", 16),
        ("net (USDC)", "money", 16), ("closes", "int", 9)],
        notes=[PERPETUALS_NOTE, "net = realized - fees + funding + other settlements; liquidations and auto-deleverage are the "
               "realized P&L net of fees of those closes (parts of realized - fees, not added again)"])
    if pb is None:
        ps.ws.append(["not gathered"])
        ps.close()
        return
    for t in pb.totals:
        r = ps.last + 1
        ps.append([t.account, t.market, t.realized, t.fees, t.funding_received, t.funding_paid, f"=E{r}+F{r}", t.liquidations, t.adl, t.other,
                   f"=C{r}-D{r}+G{r}+J{r}", t.closes])
    ps.totals("total", (2, 3, 4, 5, 6, 7, 8, 9, 10))
    ps.close()
    ws, cell = ps.ws, ps.cell
    ws.append([])
    ws.append([ps._styled(f"open positions at the period end ({_naive(rep.end).isoformat(sep=' ')} UTC, exclusive), at the exchange's mark", font=bold)])
    heads = ["account", "market", "side", "quantity", "average entry", "exchange entry", "entry cost (USDC)", "mark price", "unrealized (USDC)",
             f"unrealized ({rep.currency})", "opened (UTC)", "mark source"]
    ws.append([ps._styled(h, font=bold) for h in heads])
    for p in pb.positions:
        ws.append([text_cell(p.account), text_cell(p.market), p.side, cell(p.quantity, "qty"), cell(p.average_entry, "price"), cell(p.exchange_entry, "price"),
                   cell(p.cost, "money"), cell(p.mark, "price"), cell(p.unrealized, "money"), cell(p.unrealized_reporting, "money"), cell(p.opened, "date"),
                   text_cell(p.mark_source)])
    if not pb.positions:
        ws.append(["none open"])
    ws.append([])
    ws.append([ps._styled("funding by market and month (UTC)", font=bold)])
    ws.append([ps._styled(h, font=bold) for h in ("account", "market", "month", "received (USDC)", "paid (USDC)", "net (USDC)", "payments")])
    for f in pb.funding:
        ws.append([text_cell(f.account), text_cell(f.market), f.month, cell(f.received, "money"), cell(f.paid, "money"), cell(f.net, "money"), cell(f.payments, "int")])
    for n in pb.notes:
        ws.append([text_cell(n)])
    if pb.unattributed:
        ws.append([f"{len(pb.unattributed)} settlement(s) name no known position: in no market's totals"])
    cs = sheet("Perpetual closes", [
        ("account", "text", 22), ("market", "text", 16), ("side", "text", 7), ("quantity", "qty", 14), ("opened (UTC)", "date", 19),
        ("closed (UTC)", "date", 19), ("entry price", "price", 14), ("exit price", "price", 14), ("entry cost (USDC)", "money", 16),
        ("fees (USDC)", "money", 13), ("P&L (USDC)", "money", 14), ("net (USDC)", "money", 14), ("close", "text", 12), ("method", "text", 8),
        ("lot id", "text", 30), ("source", "text", 30)],
        notes=[f"one row per closed lot fraction of the period ({pb.method}); exact values: reconcile export perps"])
    more = len(pb.realized) - GAINS_SHEET_LIMIT
    cs.fast(min(len(pb.realized), GAINS_SHEET_LIMIT), pb.realized, ("#,##0.########",), totals=(9, 10, 11), fields=Realized._fields,
            tail=lambda: [f"{more} more rows than a sheet holds: reconcile export perps --format csv"] if more > 0 else [])
    cs.close()


def _rec_note(rep: Report) -> str:
    at = _naive(rep.end).isoformat(sep=" ")
    return (f"the ledger at the period end ({at} UTC, exclusive) against the exchange: a snapshot taken then where one exists, "
            "otherwise the latest snapshot rolled back through the ledger's own flows after the period end")


def _summary(ws, rep: Report, sheets: dict[str, _Sheet], *, bold, red, big) -> dict[str, str]:
    from openpyxl.cell import WriteOnlyCell

    def st(value, fmt=None, font=None):
        c = WriteOnlyCell(ws, value=value)
        if fmt:
            c.number_format = fmt
        if font is not None:
            c.font = font
        return c

    ws.column_dimensions["A"].width = 42
    ws.column_dimensions["B"].width = 22
    ws.column_dimensions["C"].width = 70
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    c = rep.completeness
    if c.complete:
        ws.append([st("Complete: every event of the period is valued, the valuation is current, no finding changes the figures, every venue account agrees with the exchange at the period end", font=bold)])
    else:
        ws.append([st(c.headline(), font=red)])
        ws.append([st("These figures are INCOMPLETE (written with --allow-incomplete); see Warnings.", font=red)])
    ws.append([st(f"Statement {rep.label}" + (f", account {text_cell(rep.account)}" if rep.account else ", all accounts"), font=big)])
    ws.append(["period (UTC)", f"{_naive(rep.start).isoformat(sep=' ')} to {_naive(rep.end).isoformat(sep=' ')} (exclusive)"])
    ws.append(["currency, method, scope, jurisdiction", f"{rep.currency}, {rep.method}, {rep.scope}, {rep.jurisdiction}"])
    ws.append(["generated (UTC)", st(_naive(rep.generated_at), _DATE)])
    ws.append([])
    ws.append([st("item", font=bold), st(f"value ({rep.currency})", font=bold), st("from", font=bold)])
    ws.freeze_panes = None
    out: dict[str, str] = {}

    def line(label: str, formula: str, note: str, fmt: str = _MONEY) -> None:
        out[label] = formula
        ws.append([label, st(formula, fmt), note])

    g = sheets["Realized gains"]
    line("proceeds", f"=SUM({g.ref(5)})", "Realized gains, proceeds")
    line("cost basis", f"=SUM({g.ref(6)})", "Realized gains, cost basis")
    for term in rep.terms:
        line(f"gain ({term})", f'=SUMIF({g.ref(8)},"{term}",{g.ref(7)})', f"Realized gains where term = {term}")
    line("net realized gain", f"=SUM({g.ref(7)})", "Realized gains, gain")
    inc = sheets["Income"]
    for cat, _v, _n, unpriced in rep.income_by_category():
        line(f"income: {cat}", f'=SUMIF({inc.ref(2)},"{cat}",{inc.ref(6)})', "Income" + (f" ({unpriced} unpriced, not counted)" if unpriced else ""))
    fs = sheets["Fees"]
    line("fees (spot trading, withdrawal)", f"=SUM({fs.ref(6)})", "Fees")
    hs = sheets["Holdings"]
    line("holdings value at period end", f"=SUM({hs.ref(5)})", "Holdings" + ("; some holdings have no price" if any(h.unit_price is None for h in rep.holdings) else ""))
    line("unrealized at period end", f"=SUM({hs.ref(6)})", "Holdings")
    pp = sheets.get("Perpetuals")
    if pp is not None and rep.perps is not None:
        unit = "USDC" + ("" if rep.currency == "USD" else f", not converted to {rep.currency}")
        line("perpetuals: realized P&L", f"=SUM({pp.ref(2)})", f"Perpetuals, realized ({unit})")
        line("perpetuals: fees", f"=SUM({pp.ref(3)})", f"Perpetuals, fees ({unit}; rebates negative)")
        line("perpetuals: funding received", f"=SUM({pp.ref(4)})", f"Perpetuals ({unit})")
        line("perpetuals: funding paid", f"=SUM({pp.ref(5)})", f"Perpetuals ({unit})")
        line("perpetuals: liquidations (net of fees)", f"=SUM({pp.ref(7)})", f"Perpetuals, part of realized - fees ({unit})")
        line("perpetuals: net", f"=SUM({pp.ref(10)})", f"Perpetuals: realized - fees + funding + other settlements ({unit})")
        ws.append(["perpetuals: open positions at period end", st(len(rep.perps.positions), _INT), "Perpetuals, open positions"])
    else:
        ws.append(["perpetual P&L", None, "not gathered"])
    ws.append([])
    if rep.checks:
        for o in rep.checks:
            state = "agrees to the last unit" if o.ok else "NOT reconciled: " + ", ".join(o.problems)
            how = {"taken then": "snapshot taken then", "rolled back": "latest snapshot rolled back to the period end",
                   "rolled forward": "earlier snapshot rolled forward", "latest snapshot": "latest snapshot"}.get(o.basis, "no snapshot")
            ws.append([f"reconciliation {text_cell(o.venue_account)}", st(state, font=bold if o.ok else red), how])
    else:
        ws.append(["reconciliation", st("no snapshot: not reconciled", font=red), "run reconcile sync"])
    if rep.rollforward is not None:
        ws.append(["basis roll-forward", "closes" if rep.rollforward.ok else f"difference {rep.rollforward.difference}", "Reconciliation"])
    ws.append(["warnings", st(len(rep.findings) + len(c.reasons()), _INT), "Warnings"])
    ws.append(["gain rows", st(len(rep.gains), _INT), "Realized gains"])
    return out
