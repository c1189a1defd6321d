"""``reconcile export income``: income alone, and the US 2025 safe-harbor allocation schedule.

The income file has one row per income or expense leg outside spot disposals (interest received and
paid, perp funding, perp realized P&L, perp fees, liquidations: ``reports.income.CATEGORIES``), with
the jurisdiction's treatment of its category (TAX-RULES.md §1, §2, §3, §7) and, for income received
in kind, the basis of the lot it created (the engine's ``IncomeRow``). An unpriced leg has an empty
value and says so, never 0. Decimals are plain text in CSV and numbers with formats in XLSX; text
from the exchange goes through ``reports.safety.text_cell``. The first line of the file says
whether the period's data is complete (``ledger.completeness``).

The safe-harbor schedule lists ``Books.allocations``: the lots each account held of each asset when
the US per-wallet rule took effect (Rev. Proc. 2024-28), dated, with the rule that allocated them,
one row per lot.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from ledger.money import plain

from .report import income_entries
from .safety import text_cell

__all__ = ["INCOME_COLUMNS", "ALLOCATION_COLUMNS", "TREATMENT", "write_income", "write_allocations"]

INCOME_COLUMNS = ("time", "venue_account", "category", "treatment", "asset", "quantity", "unit_price", "value", "currency", "lot_basis", "entry", "raw_record")
ALLOCATION_COLUMNS = ("date", "effective", "method", "rule", "account", "asset", "quantity", "basis", "currency", "lot_id", "lot_quantity", "lot_basis", "lot_acquired")

#: Category -> treatment per jurisdiction (TAX-RULES.md): what the accountant reports the line as.
TREATMENT = {
    "us": {"interest received": "ordinary income at FMV when received (basis of the coins)", "interest paid": "investment-interest expense (§163(d); report, don't net)",
           "perp funding": "funding: ordinary income if received, expense if paid (documented election)", "perp realized P&L": "ordinary (no §1256 60/40 for offshore perps)",
           "perp trading fees": "expense of the perp trading", "perp liquidation": "ordinary loss on the perp position"},
    "uk": {"interest received": "miscellaneous income at value when received (enters the pool at that value)", "interest paid": "expense (not deductible against gains)",
           "perp funding": "part of the contract's profit or loss", "perp realized P&L": "profit or loss on the contract", "perp trading fees": "allowable cost of the contract",
           "perp liquidation": "loss on the contract"},
    "de": {"interest received": "other income §22 Nr. 3 EStG (EUR 256 Freigrenze); acquisition at value on receipt", "interest paid": "expense (Werbungskosten where related)",
           "perp funding": "§20 EStG capital income (Termingeschäft)", "perp realized P&L": "§20 Abs. 2 Nr. 3 EStG Termingeschäft", "perp trading fees": "cost of the Termingeschäft",
           "perp liquidation": "loss from the Termingeschäft (§20 Abs. 6 limits)"},
}


def _treatment(jurisdiction: str, category: str) -> str:
    return TREATMENT.get(jurisdiction, {}).get(category, "income or expense at value when received or paid")


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write(path: Path, fmt: str, columns: Sequence[str], rows: Iterable[list], *, first_line: str, kinds: Sequence[str], sheet: str) -> int:
    """CSV (plain decimals) or XLSX (numbers, dates, formats), via a temporary name. ``kinds`` per column:
    text | num | money | date | day."""
    tmp = path.with_name(path.name + ".partial")
    n = 0
    try:
        if fmt == "csv":
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow([f"# {first_line}"])
                w.writerow(columns)
                for r in rows:
                    w.writerow(["" if v is None else (plain(v) if isinstance(v, Decimal) else (_iso(v) if isinstance(v, datetime) else
                                (v.isoformat() if isinstance(v, date) else (text_cell(v) if isinstance(v, str) else v)))) for v in r])
                    n += 1
        else:
            from openpyxl import Workbook
            from openpyxl.cell import WriteOnlyCell
            from openpyxl.styles import Font

            wb = Workbook(write_only=True)
            ws = wb.create_sheet(sheet)
            for i, k in enumerate(kinds):
                ws.column_dimensions[chr(65 + i)].width = {"text": 26, "num": 18, "money": 16, "date": 20, "day": 12}[k]
            ws.freeze_panes = "A3"
            ws.print_title_rows = "2:2"
            ws.page_setup.orientation = "landscape"
            ws.page_setup.fitToWidth = 1
            ws.page_setup.fitToHeight = 0
            ws.sheet_properties.pageSetUpPr.fitToPage = True
            head = WriteOnlyCell(ws, value=first_line)
            head.font = Font(bold=True, color="C00000" if first_line.startswith("INCOMPLETE") else "000000")
            ws.append([head])
            hdr = []
            for c in columns:
                cell = WriteOnlyCell(ws, value=c)
                cell.font = Font(bold=True)
                hdr.append(cell)
            ws.append(hdr)
            fmts = {"num": "#,##0.##########", "money": "#,##0.00;[Red]-#,##0.00", "date": "yyyy-mm-dd hh:mm:ss", "day": "yyyy-mm-dd"}
            for r in rows:
                out = []
                for v, k in zip(r, kinds):
                    if v is None:
                        out.append(None)
                    elif k == "text":
                        out.append(text_cell(v) if isinstance(v, str) else v)
                    else:
                        cell = WriteOnlyCell(ws, value=v.astimezone(timezone.utc).replace(tzinfo=None) if isinstance(v, datetime) else v)
                        cell.number_format = fmts[k]
                        out.append(cell)
                ws.append(out)
                n += 1
            last = chr(65 + len(columns) - 1)
            ws.auto_filter.ref = f"A2:{last}{n + 2}"
            wb.save(tmp)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def write_income(conn, path: Path, fmt: str, *, settings, start: datetime, end: datetime, account: str | None, engine_income: list, completeness) -> int:
    """The period's income rows (see the module docstring). Returns the number of rows."""
    jurisdiction = settings.booking.jurisdiction
    lot_basis = {}
    for i in engine_income:  # income in kind: the engine's IncomeRow names the lot's basis (its value at receipt)
        lot_basis[(i.source, i.asset)] = i.value
    rows = []
    for r in income_entries(conn, start, end, account):
        rows.append([r.time, r.venue_account, r.category, _treatment(jurisdiction, r.category), r.asset, r.quantity, r.unit_price,
                     r.value if r.value is not None else None, settings.currency if r.value is not None else "unpriced",
                     lot_basis.get((r.entry_key, r.asset)), r.entry_key, r.raw_record_id])
    kinds = ("date", "text", "text", "text", "text", "num", "num", "money", "text", "money", "text", "num")
    return _write(path, fmt, INCOME_COLUMNS, rows, first_line=completeness.headline(), kinds=kinds, sheet="Income")


def write_allocations(path: Path, fmt: str, allocations: list, *, currency: str, completeness) -> int:
    """The safe-harbor allocation as a dated schedule: one row per lot allocated."""
    rows = []
    for a in allocations:
        for lot in a.lots or ():
            rows.append([a.time, a.effective, a.method, a.rule, a.account, a.asset, a.quantity, a.basis, currency, lot.id, lot.quantity, lot.cost, lot.acquired])
        if not a.lots:
            rows.append([a.time, a.effective, a.method, a.rule, a.account, a.asset, a.quantity, a.basis, currency, None, None, None, None])
    kinds = ("day", "date", "text", "text", "text", "text", "num", "money", "text", "text", "num", "money", "date")
    return _write(path, fmt, ALLOCATION_COLUMNS, rows, first_line=completeness.headline(), kinds=kinds, sheet="Safe harbor")
