"""The report workbook recalculated by LibreOffice: every formula total equals the engine's figure to the cent.

The workbook is opened headless in LibreOffice Calc (installed by the test set-up when missing),
recalculated on load and saved again; each formula cell of the original must then hold the figure
the booking engine (``ledger.books.book_ledger``) or the ledger gives, to the cent.
"""

from __future__ import annotations

import subprocess
from decimal import Decimal

import pytest

from ledger.books import book_ledger, resolve_settings
from ledger.money import EXACT
from reconcile.cli import main
from reconcile.config import ReportingConfig
from tests.reports import office, report_ledger
from tests.reports.report_ledger import UTC

CENT = Decimal("0.01")


def _recalculated(src, tmp_path):
    exe = office.soffice()
    out = tmp_path / "lo"
    proc = subprocess.run([exe, f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless", "--norestore",
                           "--convert-to", "xlsx", "--outdir", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out / src.name


def _close(got, want: Decimal) -> bool:
    return abs(Decimal(repr(got)) - want) < Decimal("0.005")


@pytest.mark.slow
def test_workbook__every_formula_total_equals_the_engine_to_the_cent(engine, db_url, clean_env, tmp_path):
    from datetime import datetime, timedelta

    from openpyxl import load_workbook

    report_ledger.build(engine)
    out = tmp_path / "rep"
    assert main(["report", "--year", "2025", "--format", "xlsx", "--out", str(out), "--db", db_url, "--jurisdiction", "us", "--method", "fifo"]) == 0
    src = out / "report-2025.xlsx"
    calc = load_workbook(_recalculated(src, tmp_path), data_only=True)
    orig = load_workbook(src)

    # The engine's figures, booked here through the public API.
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    settings = resolve_settings(ReportingConfig(jurisdiction="us", method="fifo"))
    with engine.connect() as conn:
        books = book_ledger(conn, settings, until=end - timedelta(microseconds=1))
        by_method = {}
        for m in ("fifo", "lifo", "hifo", "lofo", "average"):
            other = book_ledger(conn, resolve_settings(ReportingConfig(jurisdiction="us", method=m)), until=end - timedelta(microseconds=1))
            by_method[m] = sum((g.gain for g in other.gains if start <= g.disposed < end), Decimal(0))
    gains = [g for g in books.gains if start <= g.disposed < end]
    assert gains, "the ledger has disposals in 2025"
    s = lambda attr, term=None: sum((getattr(g, attr) for g in gains if term is None or g.term == term), Decimal(0))  # noqa: E731
    fees = Decimal("0.3") + Decimal("0.6") + Decimal("0.1")  # the 2025 fills' USDC fees at 1 USD
    interest = Decimal("2.5")
    prices = report_ledger.PRICES
    # The holdings at the year end: lots the engine left open, valued at the last ledger price of BTC.
    held_q = sum((l.quantity for l in books.open_lots if l.asset == "BTC"), Decimal(0))
    held_basis = sum((l.cost for l in books.open_lots), Decimal(0))
    held_value = EXACT.multiply(held_q, prices["b3"])
    want_summary = {
        "proceeds": s("proceeds"), "cost basis": s("cost_basis"), "gain (short)": s("gain", "short"), "gain (long)": s("gain", "long"),
        "net realized gain": s("gain"), "income: interest received": interest, "fees (spot trading, withdrawal)": fees,
        "holdings value at period end": held_value, "unrealized at period end": held_value - held_basis,
        # no perpetual activity in this ledger: zero, from sums over an empty range (tests/reports/test_report_perps.py has some)
        "perpetuals: realized P&L": Decimal(0), "perpetuals: fees": Decimal(0), "perpetuals: funding received": Decimal(0),
        "perpetuals: funding paid": Decimal(0), "perpetuals: liquidations (net of fees)": Decimal(0), "perpetuals: net": Decimal(0),
    }
    want_totals = {
        "Realized gains": {"F": s("proceeds"), "G": s("cost_basis"), "H": s("gain")},
        "Income": {"G": interest}, "Fees": {"G": fees},
        "Holdings": {"D": held_basis, "F": held_value, "G": held_value - held_basis},
        "Open lots": {"D": held_basis},
        "Perpetuals": {c: Decimal(0) for c in "CDEFGHIJK"}, "Perpetual closes": {c: Decimal(0) for c in "JKL"},
    }
    checked = 0
    for ws in orig.worksheets:
        for row in ws.iter_rows():
            label = row[0].value
            for c in row:
                if not (isinstance(c.value, str) and c.value.startswith("=")):
                    continue
                got = calc[ws.title][c.coordinate].value
                assert isinstance(got, (int, float)), (ws.title, c.coordinate, c.value, got)
                if ws.title == "Summary":
                    want = want_summary[label]
                elif label == "total":
                    want = want_totals[ws.title][c.column_letter]
                elif ws.title == "Holdings":
                    want = held_value if c.column_letter == "F" else held_value - held_basis
                elif ws.title == "Method comparison":
                    m = row[0].value
                    want = by_method[m] if c.column_letter == "E" else by_method[m] - by_method["fifo"]
                elif ws.title == "Reconciliation":
                    want = Decimal(0)  # the ledger equals the exchange at the year end; the roll-forward closes
                else:
                    raise AssertionError(f"an unexpected formula {ws.title}!{c.coordinate}: {c.value}")
                assert _close(got, want), (ws.title, c.coordinate, c.value, got, want)
                checked += 1
    assert checked >= 20
    # The cells are typed: amounts numbers with formats, dates dates; headers frozen and filtered; print setup.
    g = orig["Realized gains"]
    assert g.freeze_panes == "A3" and g.auto_filter.ref.startswith("A2:")
    assert g.page_setup.orientation == "landscape" and g.sheet_properties.pageSetUpPr.fitToPage
    assert g.print_title_rows == "$2:$2"
    data = next(r for r in g.iter_rows(min_row=3) if r[1].value == "BTC")
    assert data[5].number_format == "#,##0.00;[Red]-#,##0.00" and isinstance(data[3].value, datetime)
    assert g.column_dimensions["A"].width > 10
    assert calc["Summary"]["A1"].value.startswith("Complete")
