"""The statement (HTML and XLSX, the single-file form of `reconcile report`) and the completeness gate."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash
from reconcile.cli import main
from tests.reports import report_ledger

T = datetime(2025, 5, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def ledger_url(engine, db_url, clean_env):
    report_ledger.build(engine)
    return db_url


def _args(url, *extra):
    return ["--db", url, "--jurisdiction", "us", "--method", "fifo", *extra]


def test_statement__xlsx_summary_says_complete_first_and_sums(ledger_url, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "s.xlsx"
    assert main(["statement", "--year", "2025", "--format", "xlsx", "--out", str(out), *_args(ledger_url)]) == 0
    wb = load_workbook(out)
    assert wb.sheetnames[0] == "Summary"
    first = wb["Summary"]["A1"].value
    assert first.startswith("Complete")
    rows = {r[0].value: r[1].value for r in wb["Summary"].iter_rows() if r and r[0].value}
    assert rows["proceeds"].startswith("=SUM('Realized gains'!")
    gains = wb["Realized gains"]
    header = [c.value for c in next(r for r in gains.iter_rows() if r[0].value == "account")]
    assert header[:3] == ["account", "asset", "quantity"]
    body = [r for r in gains.iter_rows(values_only=True) if r[1] == "BTC"]
    # s1 sells 1 BTC of lot b1 (long); s2 sells the other 1 of b1 (long) and 0.5 of b2 (short)
    assert sorted((r[8], float(r[2])) for r in body) == [("long", 1.0), ("long", 1.0), ("short", 0.5)]
    assert all(isinstance(r[3], datetime) and isinstance(r[5], (int, float)) for r in body)  # dates are dates, money numbers
    assert gains.freeze_panes and gains.auto_filter.ref


def test_statement__html_reconciles_at_the_year_end(ledger_url, tmp_path):
    out = tmp_path / "s.html"
    assert main(["statement", "--year", "2025", "--out", str(out), *_args(ledger_url)]) == 0
    html = out.read_text()
    assert "rolled back to the period end" in html and "the ledger equals the exchange to the last unit" in html
    assert 'class="banner good"' in html and "INCOMPLETE" not in html
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no external requests
    # Drill-down: every internal link lands on an element; a gain row -> its lot -> its entry -> its raw record.
    import re

    ids = set(re.findall(r'id="([^"]+)"', html))
    links = re.findall(r'href="#([^"]+)"', html)
    assert links and not [l for l in links if l not in ids]
    assert any(l.startswith("lot-") for l in links) and any(l.startswith("entry-") for l in links)
    assert html.count('<div id="raw-') == 0 or any(l.startswith("raw-") for l in links)


def test_statement__incomplete_exits_4_first_line_and_writes_nothing(ledger_url, engine, tmp_path, capsys):
    with engine.begin() as conn:  # a deposit of an asset no valuation has priced
        Journal(conn).post([cash(Source("main", "deposits", "x", T), kind="deposit", asset="<script>", quantity=D("1"), counter="Equity:External")])
    out = tmp_path / "s.html"
    capsys.readouterr()
    assert main(["statement", "--year", "2025", "--out", str(out), *_args(ledger_url)]) == 4
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("reconcile: incomplete: statement 2025: INCOMPLETE DATA: 1 unpriced event")
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    # 2024 has no unpriced event, but the exchange's snapshot has no such deposit: rolled back to the end of
    # 2024 the ledger no longer agrees with it, and an unreconciled period is incomplete too
    assert main(["statement", "--year", "2024", "--out", str(tmp_path / "y.html"), *_args(ledger_url)]) == 4
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("reconcile: incomplete: statement 2024: INCOMPLETE DATA: not reconciled with the exchange at the period end: main: ")
    assert not (tmp_path / "y.html").exists()


def test_statement__allow_incomplete_carries_the_red_banner_and_escapes(ledger_url, engine, tmp_path, capsys):
    with engine.begin() as conn:
        Journal(conn).post([cash(Source("main", "deposits", "x", T), kind="deposit", asset="<script>", quantity=D("1"), counter="Equity:External")])
    out = tmp_path / "s.html"
    assert main(["statement", "--year", "2025", "--out", str(out), "--allow-incomplete", *_args(ledger_url)]) == 0
    assert capsys.readouterr().err.startswith("warning: statement 2025: INCOMPLETE DATA")
    html = out.read_text()
    assert html.index('class="banner bad"') < html.index("<h1>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    xlsx = tmp_path / "s.xlsx"
    assert main(["statement", "--year", "2025", "--format", "xlsx", "--out", str(xlsx), "--allow-incomplete", *_args(ledger_url)]) == 0
    from openpyxl import load_workbook

    wb = load_workbook(xlsx)
    assert wb["Summary"]["A1"].value.startswith("INCOMPLETE DATA: 1 unpriced event")
    assert wb["Summary"]["A1"].font.color.rgb.endswith("C00000")
    assert all(wb[s]["A1"].value.startswith("INCOMPLETE DATA") for s in ("Realized gains", "Income", "Holdings"))


def test_statement__earlier_years_findings_feed_this_year(ledger_url, engine, tmp_path, capsys):
    """A zero-basis deposit of 2024 sold in 2025 makes 2025 incomplete (the finding is dated 2024)."""
    from tests.reports.report_ledger import valued

    with engine.begin() as conn:
        Journal(conn).post([valued(cash(Source("main", "deposits", "z", datetime(2024, 11, 1, tzinfo=timezone.utc)), kind="deposit", asset="BTC",
                                        quantity=D("0.1"), counter="Equity:External"), D(200))])
    assert main(["statement", "--year", "2025", "--out", str(tmp_path / "s.html"), *_args(ledger_url)]) == 4
    err = capsys.readouterr().err
    assert "missing-basis" in err and "dated before the period, feeding it" in err


@pytest.fixture
def unproven_url(engine, db_url, clean_env):
    """The same ledger with no snapshot: never checked against the exchange."""
    with engine.begin() as conn:
        Journal(conn).post(report_ledger.entries())
    return db_url


def test_statement__a_ledger_never_reconciled_is_incomplete(unproven_url, tmp_path, capsys):
    """No snapshot to check the period end against: exit 4 and nothing written, as for any gap; allowed, the
    red banner and the workbook's first cell say why (never the green 'Complete')."""
    out = tmp_path / "s.html"
    assert main(["statement", "--year", "2025", "--out", str(out), *_args(unproven_url)]) == 4
    err = capsys.readouterr().err
    # main is in the ledger (its wallets), so it is checked, and has nothing to be checked against
    assert err.splitlines()[0] == "reconcile: incomplete: statement 2025: INCOMPLETE DATA: not reconciled with the exchange at the period end: main: no snapshot"
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    assert main(["report", "--year", "2025", "--out", str(tmp_path / "rep"), *_args(unproven_url)]) == 4
    assert not (tmp_path / "rep").exists()
    capsys.readouterr()
    assert main(["statement", "--year", "2025", "--out", str(out), "--allow-incomplete", *_args(unproven_url)]) == 0
    assert capsys.readouterr().err.startswith("warning: statement 2025: INCOMPLETE DATA: not reconciled with the exchange")
    html = out.read_text()
    assert 'class="banner good"' not in html and "at the period end: main: no snapshot" in html.split("<h1>")[0]
    xlsx = tmp_path / "s.xlsx"
    assert main(["statement", "--year", "2025", "--format", "xlsx", "--out", str(xlsx), "--allow-incomplete", *_args(unproven_url)]) == 0
    from openpyxl import load_workbook

    assert "not reconciled with the exchange at the period end" in load_workbook(xlsx)["Summary"]["A1"].value


def test_completeness__no_check_at_all_is_not_reconciled():
    """A report with no venue account to check (an empty ledger) is not proven either."""
    from ledger.completeness import Completeness

    c = Completeness(start=None, end=None, currency="USD")
    assert c.complete and not c.with_reconciliation([]).complete
    assert c.with_reconciliation([]).reasons() == ["not reconciled with the exchange at the period end: no snapshot of any venue account to check against: run `reconcile sync`"]


def test_statement__an_account_without_a_snapshot_is_checked_too(ledger_url, engine, tmp_path, capsys):
    """main reconciles, but the ledger also holds sub's wallets, never checked: not reconciled, naming sub."""
    with engine.begin() as conn:
        Journal(conn).post(report_ledger.entries("sub"))
    assert main(["statement", "--year", "2025", "--out", str(tmp_path / "s.html"), *_args(ledger_url)]) == 4
    first = capsys.readouterr().err.splitlines()[0]
    assert first.endswith("not reconciled with the exchange at the period end: sub: no snapshot")


def test_statement__a_snapshot_that_disagrees_names_the_account(ledger_url, engine, tmp_path, capsys):
    """The exchange holds 0.1 BTC less than the ledger says at the period end: exit 4, naming main and the difference."""
    report_ledger.snapshot_as_ledger(engine, "main", taken_at=datetime(2026, 1, 11, tzinfo=timezone.utc), short={("Spot", "BTC"): D("0.1")})
    capsys.readouterr()
    assert main(["statement", "--year", "2025", "--out", str(tmp_path / "s.html"), *_args(ledger_url)]) == 4
    first = capsys.readouterr().err.splitlines()[0]
    assert "not reconciled with the exchange at the period end: main: 1 difference(s) (" in first and " BTC ledger " in first
    assert not (tmp_path / "s.html").exists()


def test_statement__bad_format_exits_2(ledger_url, tmp_path, capsys):
    assert main(["statement", "--year", "2025", "--format", "pdf", "--out", str(tmp_path / "x"), "--db", ledger_url]) == 2
    assert "--format" in capsys.readouterr().err


def test_report__writes_both_and_names_them(ledger_url, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--year", "2025", "--out", str(out), *_args(ledger_url)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report-2025.xlsx", "statement-2025.html"]
    assert "; reconciled at the period end" in capsys.readouterr().out
    # a narrower period and one account
    assert main(["report", "--year", "2025", "--from", "2025-01-01", "--to", "2025-04-01", "--account", "main", "--format", "html",
                 "--out", str(out), *_args(ledger_url)]) == 0
    html = (out / "statement-2025-01-01_2025-03-31-main.html").read_text()
    assert "venue account main" in html
    assert main(["report", "--year", "2025", "--account", "nobody", "--out", str(out), *_args(ledger_url)]) == 2
    assert main(["report", "--out", str(out), *_args(ledger_url)]) == 2
