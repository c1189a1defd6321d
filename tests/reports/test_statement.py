"""The year-end statement (HTML and XLSX): check results, gains, income, balances; cell values compared."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ledger.journal import Entry, Journal
from ledger.money import D
from ledger.posting import Source, cash, lent, trade
from ledger.reconcile import check
from ledger.store import SnapshotLineIn, save_snapshot
from reconcile.cli import main

T = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)


def _valued(e: Entry, price: Decimal) -> Entry:
    legs = tuple(l._replace(unit_price=(price if l.asset == "BTC" else D(1)), price_currency="USD") if l.account.startswith(("Assets:", "Liabilities:")) else l for l in e.legs)
    return e._replace(legs=legs)


@pytest.fixture
def ledger_url(engine, db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    entries = [
        _valued(trade(Source("main", "fills", "b1", T), kind="spot-trade", base="BTC", quote="USDC", side="buy", quantity=D("2"), quote_quantity=D("200")), D(100)),
        _valued(trade(Source("main", "fills", "s1", T + timedelta(days=30)), kind="spot-trade", base="BTC", quote="USDC", side="sell", quantity=D("1"), quote_quantity=D("300")), D(300)),
        _valued(cash(Source("main", "interest", "i1", T + timedelta(days=31)), kind="interest-income", asset="USDC", quantity=D("2.5"), counter="Income:Interest", wallet=lent("main", "USDC")), D(1)),
    ]
    with engine.begin() as conn:
        Journal(conn).post(entries)
        save_snapshot(conn, venue_account="main", taken_at=T + timedelta(days=40), payload={},
                      lines=[SnapshotLineIn("Spot", "BTC", D("1")), SnapshotLineIn("Spot", "USDC", D("100")), SnapshotLineIn("Lent", "USDC", D("2.5"))])
        check(conn, "main")
    return db_url


def test_statement__xlsx_cells(ledger_url, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "s.xlsx"
    assert main(["statement", "--year", "2025", "--format", "xlsx", "--out", str(out), "--db", ledger_url, "--jurisdiction", "us", "--method", "fifo"]) == 0
    wb = load_workbook(out)
    summary = {r[0].value: r[1].value for r in wb["Summary"].iter_rows(min_row=2)}
    assert Decimal(str(summary["proceeds"])) == D("300") and Decimal(str(summary["cost basis"])) == D("100")
    assert Decimal(str(summary["net gain"])) == D("200") and summary["reconciled accounts"] == "main: ok"
    rec = [[c.value for c in r] for r in wb["Reconciliation"].iter_rows(min_row=2)]
    assert {(r[4], r[5]) for r in rec} == {("Spot", "BTC"), ("Spot", "USDC"), ("Lent", "USDC")} and all(r[3] == "yes" for r in rec)
    income = {r[0].value: r[1].value for r in wb["Income"].iter_rows(min_row=2)}
    assert Decimal(str(income["interest received"])) == D("2.5")
    gains = [[c.value for c in r] for r in wb["Gains"].iter_rows(min_row=2)]
    assert len(gains) == 1 and gains[0][7] == "200" and gains[0][8] == "short"


def test_statement__html_shows_check_and_escapes(ledger_url, tmp_path, engine):
    with engine.begin() as conn:
        Journal(conn).post([cash(Source("main", "deposits", "x", T), kind="deposit", asset="<script>", quantity=D("1"), counter="Equity:External")])
    out = tmp_path / "s.html"
    assert main(["statement", "--year", "2025", "--out", str(out), "--db", ledger_url, "--jurisdiction", "us", "--method", "fifo"]) == 0
    html = out.read_text()
    assert "the ledger equals the exchange to the last unit" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "interest received" in html


def test_statement__bad_format_exits_2(ledger_url, tmp_path, capsys):
    assert main(["statement", "--year", "2025", "--format", "pdf", "--out", str(tmp_path / "x"), "--db", ledger_url]) == 2
    assert "--format" in capsys.readouterr().err
