"""The UK tax year's edges (6 April, Europe/London) through `export gains`, `statement` and `report`.

A sale at 2025-04-05T22:59:59.999999Z is 23:59:59.999999 BST on 5 April: tax year 2024/25. A sale at
2025-04-05T23:30:00Z is 00:30 BST on 6 April: tax year 2025/26 (in UTC it is still 5 April, so a tax
day derived in UTC puts it in the wrong year: issue 20's mutation). Each output is read back and the
disposals it names are compared.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, deposit, trade
from ledger.reconcile import _ledger_figures, check
from ledger.store import SnapshotLineIn, save_snapshot
from reconcile.cli import main
from tests.reports.report_ledger import valued

UTC = timezone.utc
EARLY = datetime(2025, 4, 5, 22, 59, 59, 999999, tzinfo=UTC)  # 5 April 23:59:59.999999 BST: 2024/25
LATE = datetime(2025, 4, 5, 23, 30, tzinfo=UTC)  # 6 April 00:30 BST: 2025/26


@pytest.fixture
def ledger_url(engine, db_url, clean_env):
    s = lambda k, t, ep="fills": Source("main", ep, k, t)  # noqa: E731
    with engine.begin() as conn:
        Journal(conn).post([
            valued(deposit(s("d1", datetime(2024, 1, 2, tzinfo=UTC), "deposits"), asset="USDC", quantity=D(1000), internal=False), D(1)),
            valued(trade(s("buy", datetime(2024, 3, 1, 12, tzinfo=UTC)), kind="spot-trade", base="BTC", quote="USDC", side="buy",
                         quantity=D(2), quote_quantity=D(200)), D(100)),
            valued(trade(s("early", EARLY), kind="spot-trade", base="BTC", quote="USDC", side="sell", quantity=D("0.5"), quote_quantity=D(150)), D(300)),
            valued(trade(s("late", LATE), kind="spot-trade", base="BTC", quote="USDC", side="sell", quantity=D("0.25"), quote_quantity=D(80)), D(320)),
        ])
        at = datetime(2026, 5, 1, tzinfo=UTC)
        figures = _ledger_figures(conn, "main", at)
        save_snapshot(conn, venue_account="main", taken_at=at, payload={}, lines=[SnapshotLineIn(w, a, q) for (w, a), q in sorted(figures.items())])
        check(conn, "main")
    return db_url


def _uk(url: str, *extra: str) -> list[str]:
    return ["--db", url, "--jurisdiction", "uk", *extra]


def _named(text: str) -> set[str]:
    return {n for n in ("early", "late") if f"main:{n}" in text}


@pytest.mark.parametrize(("year", "expected"), [(2024, {"early"}), (2025, {"late"})])
def test_export_gains__uk_year_edges_5_and_6_april(ledger_url, tmp_path, year, expected):
    out = tmp_path / "g.csv"
    assert main(["export", "gains", "--year", str(year), "--format", "csv", "--out", str(out), *_uk(ledger_url)]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["disposal_id"].split(":")[1].split("#")[0] for r in rows} == expected
    assert all(r["method"] == "uk" for r in rows)


@pytest.mark.parametrize(("year", "expected"), [(2024, {"early"}), (2025, {"late"})])
def test_statement_and_report__uk_year_edges_5_and_6_april(ledger_url, tmp_path, capsys, year, expected):
    html, xlsx, folder = tmp_path / "s.html", tmp_path / "s.xlsx", tmp_path / "report"
    for argv in (["statement", "--year", str(year), "--format", "html", "--out", str(html)],
                 ["statement", "--year", str(year), "--format", "xlsx", "--out", str(xlsx)],
                 ["report", "--year", str(year), "--out", str(folder), "--no-compare"]):
        code = main([*argv, *_uk(ledger_url, "--allow-incomplete")])
        assert code == 0, capsys.readouterr().err
    label = f"{year}/{(year + 1) % 100:02d}"
    text = html.read_text(encoding="utf-8")
    assert label in text
    gains_html = text  # the gain rows name their disposals (drill-down anchors)
    assert _named(gains_html) == expected
    for book in (xlsx, *sorted(folder.glob("*.xlsx"))):
        cells = " ".join(str(c.value) for ws in load_workbook(book).worksheets for row in ws.iter_rows() for c in row if c.value is not None)
        assert _named(cells) == expected, book.name
    for page in sorted(folder.glob("*.html")):
        assert _named(page.read_text(encoding="utf-8")) == expected, page.name
