"""The report's perpetuals: the Perpetuals sheet, the Summary's perpetual lines and the statement's
section carry ``ledger.perps.perp_books``' figures (spot and perp fills posted from raw records as a
sync stores them; the figures are asked of the perpetuals engine here, independently)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from reconcile.cli import main
from tests.reports import office

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

CENT = Decimal("0.005")


@pytest.fixture
def perp_ledger(engine, db_url, clean_env):
    from posting_bench import store_raw

    from importers.sync import repost
    from ledger.prices import value_ledger
    from ledger.valuation import ValuationSettings

    store_raw(engine, 500)  # 200 perp fills over two markets, 300 spot fills (USDC-quoted: they price themselves)
    repost(engine, processes=0)
    value_ledger(engine, ValuationSettings())
    return db_url


def _perp_books(engine):
    from ledger.books import resolve_settings
    from ledger.perps import perp_books
    from reconcile.config import ReportingConfig

    settings = resolve_settings(ReportingConfig(jurisdiction="us", method="fifo"))
    with engine.connect() as conn:
        return perp_books(conn, settings, year=2025)


def test_report__perpetuals_sheet_summary_and_statement_carry_perp_books(engine, perp_ledger, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "rep"
    assert main(["report", "--year", "2025", "--format", "xlsx,html", "--out", str(out), "--db", perp_ledger, "--jurisdiction", "us",
                 "--method", "fifo", "--allow-incomplete"]) == 0
    pb = _perp_books(engine)
    assert {t.market for t in pb.totals} == {"SOL_USDC_PERP", "BTC_USDC_PERP"} and pb.realized and pb.positions
    wb = load_workbook(out / "report-2025.xlsx")
    ws = wb["Perpetuals"]
    rows = list(ws.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows) if r[0] == "account")
    by_market = {r[1]: r for r in rows[head + 1:head + 1 + len(pb.totals)]}
    for t in pb.totals:
        r = by_market[t.market]
        assert abs(Decimal(repr(r[2])) - t.realized) < CENT and abs(Decimal(repr(r[3])) - t.fees) < CENT and r[11] == t.closes
        assert r[6].startswith("=") and r[10].startswith("=")  # funding net and net are formulas over the row
    pos_head = next(i for i, r in enumerate(rows) if r[0] == "account" and r[2] == "side")
    positions = {(r[1], r[2]): r for r in rows[pos_head + 1:pos_head + 1 + len(pb.positions)]}
    for p in pb.positions:
        assert abs(Decimal(repr(positions[(p.market, p.side)][3])) - p.quantity) < Decimal("1e-9")
    closes = [r for r in wb["Perpetual closes"].iter_rows(values_only=True) if r[1] in {"SOL_USDC_PERP", "BTC_USDC_PERP"}]
    assert len(closes) == len(pb.realized)
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["perpetuals: net"].startswith("=SUM('Perpetuals'!$K$")
    assert summary["perpetuals: open positions at period end"] == len(pb.positions)
    html = (out / "statement-2025.html").read_text(encoding="utf-8")
    net = sum((t.net for t in pb.totals), Decimal(0))
    assert 'id="perps"' in html and f"{net:,.2f}" in html
    for t in pb.totals:
        assert f"{t.realized:,.2f}" in html and f"{t.fees:,.2f}" in html
    assert "reported by <code>reconcile export perps</code> when that lands" not in html


@pytest.mark.slow
def test_report__perpetual_formulas_recalculate_to_perp_books_in_libreoffice(engine, perp_ledger, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "rep"
    assert main(["report", "--year", "2025", "--format", "xlsx", "--out", str(out), "--db", perp_ledger, "--jurisdiction", "us",
                 "--method", "fifo", "--allow-incomplete", "--no-compare"]) == 0
    src = out / "report-2025.xlsx"
    proc = subprocess.run([office.soffice(), f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless", "--norestore",
                           "--convert-to", "xlsx", "--outdir", str(tmp_path / "lo"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    calc = load_workbook(tmp_path / "lo" / src.name, data_only=True)
    pb = _perp_books(engine)
    s = lambda attr: sum((getattr(t, attr) for t in pb.totals), Decimal(0))  # noqa: E731
    want = {"perpetuals: realized P&L": s("realized"), "perpetuals: fees": s("fees"), "perpetuals: funding received": s("funding_received"),
            "perpetuals: funding paid": s("funding_paid"), "perpetuals: liquidations (net of fees)": s("liquidations"),
            "perpetuals: net": sum((t.net for t in pb.totals), Decimal(0))}
    got = {r[0]: r[1] for r in calc["Summary"].iter_rows(values_only=True) if r and r[0] in want}
    assert set(got) == set(want)
    for k, v in want.items():
        assert abs(Decimal(repr(got[k])) - v) < CENT, (k, got[k], v)
    assert want["perpetuals: realized P&L"] != 0 and want["perpetuals: fees"] != 0
