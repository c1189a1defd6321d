"""`reconcile export income`: income alone with the jurisdiction's treatment, and the safe-harbor schedule."""

from __future__ import annotations

import csv
from datetime import date, datetime
from decimal import Decimal

import pytest

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash, lent
from reconcile.cli import main
from tests.reports import report_ledger
from tests.reports.report_ledger import UTC


@pytest.fixture
def ledger_url(engine, db_url, clean_env):
    report_ledger.build(engine)
    return db_url


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    return lines[0][0], lines[1], lines[2:]


def test_export_income__csv_rows_treatment_and_first_line(ledger_url, tmp_path):
    out = tmp_path / "income.csv"
    assert main(["export", "income", "--year", "2025", "--out", str(out), "--db", ledger_url]) == 0
    first, header, rows = _rows(out)
    assert first.startswith("# complete")
    assert header[:4] == ["time", "venue_account", "category", "treatment"]
    assert [(r[2], D(r[7])) for r in rows] == [("interest received", Decimal("2.5"))]  # only 2025's; 2024's 1.25 is not
    assert "ordinary income" in rows[0][3]


def test_export_income__xlsx_numbers_and_dates(ledger_url, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "income.xlsx"
    assert main(["export", "income", "--year", "2024", "--format", "xlsx", "--out", str(out), "--db", ledger_url]) == 0
    ws = load_workbook(out)["Income"]
    row = [c.value for c in ws[3]]
    assert isinstance(row[0], datetime) and row[7] == 1.25 and ws["H3"].number_format.startswith("#,##0.00")
    assert ws.freeze_panes == "A3"


def test_export_income__unpriced_leg_is_incomplete_never_zero(ledger_url, engine, tmp_path, capsys):
    with engine.begin() as conn:
        Journal(conn).post([cash(Source("main", "interest", "i9", datetime(2025, 7, 1, tzinfo=UTC)), kind="interest-income", asset="ABC",
                                 quantity=D("4"), counter="Income:Interest", wallet=lent("main", "ABC"))])
    out = tmp_path / "income.csv"
    assert main(["export", "income", "--year", "2025", "--out", str(out), "--db", ledger_url]) == 4
    assert not out.exists()
    assert main(["export", "income", "--year", "2025", "--out", str(out), "--db", ledger_url, "--allow-incomplete"]) == 0
    first, _h, rows = _rows(out)
    assert first.startswith("# INCOMPLETE DATA")
    abc = [r for r in rows if r[4] == "ABC"][0]
    assert abc[7] == "" and abc[8] == "unpriced"


def test_export_income__safe_harbor_schedule_is_dated(ledger_url, tmp_path):
    out = tmp_path / "sh.csv"
    assert main(["export", "income", "--year", "2025", "--safe-harbor", "--out", str(out), "--db", ledger_url]) == 0  # the default jurisdiction: us
    _first, header, rows = _rows(out)
    assert header[:2] == ["date", "effective"]
    assert rows and all(date.fromisoformat(r[0]) == date(2025, 1, 1) for r in rows)
    btc = [r for r in rows if r[5] == "BTC"]
    assert sum(D(r[10]) for r in btc) == D(3)  # the 3 BTC held on 1 January 2025, lot by lot
    assert main(["export", "income", "--year", "2024", "--safe-harbor", "--out", str(tmp_path / "none.csv"), "--db", ledger_url]) == 0
    assert _rows(tmp_path / "none.csv")[2] == []
