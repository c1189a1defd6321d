"""``reconcile export gains`` and ``reconcile export lots`` through the CLI, on SQLite and PostgreSQL.

Report tests compare cell values (STYLE.md): the CSV read back with ``csv``, the XLSX with openpyxl.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from ledger.journal import Entry, Journal
from ledger.money import D, plain
from ledger.posting import Source, trade
from reconcile.cli import main

COLUMNS = ["account", "asset", "quantity", "acquired", "disposed", "proceeds", "cost_basis", "gain", "term", "method", "lot_id", "disposal_id", "source_ref"]
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def _trade(key: str, when: str, side: str, qty: str, usdc: str) -> Entry:
    e = trade(Source("main", "history/fills", key, datetime.fromisoformat(when).replace(tzinfo=timezone.utc)), kind="spot-trade", base="BTC",
              quote="USDC", side=side, quantity=D(qty), quote_quantity=D(usdc))
    price = D(usdc) / D(qty)
    legs = tuple(leg._replace(unit_price=price if leg.asset == "BTC" else D(1), price_currency="USD") if leg.account.startswith("Assets:") else leg for leg in e.legs)
    return e._replace(legs=legs)


@pytest.fixture
def ledger_url(engine, db_url, tmp_path, monkeypatch):
    """A ledger: 2 BTC bought 2024-01-10; sold 2025-01-10 (short), 2025-01-11 (long), 1E-8 on 2025-04-10."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    with engine.begin() as conn:
        Journal(conn).post([
            _trade("b1", "2024-01-10T12:00:00", "buy", "2", "200"),
            _trade("s1", "2025-01-10T12:00:00", "sell", "1", "300"),
            _trade("s2", "2025-01-11T12:00:00", "sell", "0.5", "100"),
            _trade("s3", "2025-04-10T12:00:00", "sell", "0.00000001", "0.001"),
        ])
    return db_url


def _csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _export(url, out, *args) -> int:
    return main(["export", "gains", "--out", str(out), "--db", url, *args])


def test_export_gains__columns_iso_times_plain_decimals_terms(ledger_url, tmp_path):
    out = tmp_path / "g.csv"
    assert _export(ledger_url, out, "--year", "2025", "--format", "csv", "--jurisdiction", "us", "--method", "fifo") == 0
    header, *rows = _csv(out)
    assert header == COLUMNS
    by_disposal = {r[COLUMNS.index("disposal_id")]: dict(zip(COLUMNS, r)) for r in rows}
    assert set(by_disposal) == {"main:s1#out", "main:s2#out", "main:s3#out"}
    for r in by_disposal.values():
        assert ISO_UTC.match(r["acquired"]) and ISO_UTC.match(r["disposed"])
        for col in ("quantity", "proceeds", "cost_basis", "gain"):
            # a plain decimal (never exponent notation), in its shortest spelling (no trailing zeros)
            assert re.fullmatch(r"-?\d+(\.\d*[1-9])?", r[col]), (col, r[col])
            assert plain(Decimal(r[col])) == r[col], (col, r[col])
        assert r["method"] == "fifo" and r["lot_id"] == "main:b1#in" and r["account"] == "main" and r["asset"] == "BTC"
    s1, s2, s3 = by_disposal["main:s1#out"], by_disposal["main:s2#out"], by_disposal["main:s3#out"]
    assert (s1["acquired"], s1["disposed"]) == ("2024-01-10T12:00:00.000000Z", "2025-01-10T12:00:00.000000Z")
    assert (s1["quantity"], s1["proceeds"], s1["cost_basis"], s1["gain"], s1["term"]) == ("1", "300", "100", "200", "short")  # the anniversary is short
    assert (s2["quantity"], s2["gain"], s2["term"], s2["source_ref"]) == ("0.5", "50", "long", "main:s2")
    assert (s3["quantity"], s3["proceeds"], s3["cost_basis"]) == ("0.00000001", "0.001", "0.000001")  # never 1E-8


def test_export_gains__year_filter(ledger_url, tmp_path):
    out = tmp_path / "g.csv"
    assert _export(ledger_url, out, "--year", "2024") == 0
    assert _csv(out) == [COLUMNS]
    assert _export(ledger_url, out, "--all-years") == 0
    assert len(_csv(out)) == 4


def test_export_gains__uk_tax_year_starts_6_april_and_terms_are_rules(ledger_url, tmp_path):
    out = tmp_path / "g.csv"
    assert _export(ledger_url, out, "--year", "2024", "--jurisdiction", "uk") == 0  # 2024/25: up to 5 April 2025
    _, *rows = _csv(out)
    assert sorted(r[COLUMNS.index("disposed")][:10] for r in rows) == ["2025-01-10", "2025-01-11"]
    assert {r[COLUMNS.index("term")] for r in rows} == {"s104"} and {r[COLUMNS.index("method")] for r in rows} == {"uk"}
    assert _export(ledger_url, out, "--year", "2025", "--jurisdiction", "uk") == 0  # 2025/26
    _, *rows = _csv(out)
    assert [r[COLUMNS.index("disposed")][:10] for r in rows] == ["2025-04-10"]


def test_export_gains__xlsx_cells_equal_csv_cells(ledger_url, tmp_path):
    from openpyxl import load_workbook

    assert _export(ledger_url, tmp_path / "g.csv", "--year", "2025", "--format", "csv") == 0
    assert _export(ledger_url, tmp_path / "g.xlsx", "--year", "2025", "--format", "xlsx") == 0
    ws = load_workbook(tmp_path / "g.xlsx", read_only=True).active
    cells = [["" if v is None else v for v in row] for row in ws.iter_rows(values_only=True)]
    assert cells == _csv(tmp_path / "g.csv")
    assert len(cells) == 4


def test_export_gains__bad_method_is_exit_2_one_line(ledger_url, tmp_path, capsys):
    assert _export(ledger_url, tmp_path / "g.csv", "--year", "2025", "--method", "nifo") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--method" in err and "nifo" in err
    assert not (tmp_path / "g.csv").exists()


def test_export_gains__year_or_all_years_required(ledger_url, tmp_path, capsys):
    assert _export(ledger_url, tmp_path / "g.csv") == 2
    assert _export(ledger_url, tmp_path / "g.csv", "--year", "2025", "--all-years") == 2


def test_export_lots__open_lots_with_basis(ledger_url, tmp_path):
    out = tmp_path / "lots.csv"
    assert main(["export", "lots", "--at", "2025-01-10", "--out", str(out), "--db", ledger_url, "--method", "fifo"]) == 0
    header, *rows = _csv(out)
    assert header == ["account", "asset", "quantity", "cost_basis", "unit_cost", "acquired", "lot_id", "source_ref"]
    assert rows == [["main", "BTC", "1", "100", "100", "2024-01-10T12:00:00.000000Z", "main:b1#in", "main:b1"]]
    assert main(["export", "lots", "--at", "2024-01-09", "--out", str(out), "--db", ledger_url]) == 0
    assert _csv(out) == [header]


def test_export_gains__quiet_prints_the_warnings_count_only(ledger_url, engine, tmp_path, capsys):
    with engine.begin() as conn:
        Journal(conn).post([_trade("s4", "2025-06-01T12:00:00", "sell", "5", "500")])  # more than held: an overspend
    assert _export(ledger_url, tmp_path / "g.csv", "--year", "2025", "--allow-incomplete") == 0
    loud = capsys.readouterr().err
    assert "warnings: 1 overspend" in loud and "overspend: main:s4#out" in loud
    assert _export(ledger_url, tmp_path / "q.csv", "--year", "2025", "--quiet", "--allow-incomplete") == 0
    quiet = capsys.readouterr().err
    assert "warnings: 1 overspend" in quiet and "main:s4#out" not in quiet
    assert _csv(tmp_path / "q.csv") == _csv(tmp_path / "g.csv")


def test_export_gains__a_finding_that_changes_the_figures_is_exit_4_nothing_written(ledger_url, engine, tmp_path, capsys):
    with engine.begin() as conn:
        Journal(conn).post([_trade("s4", "2025-06-01T12:00:00", "sell", "5", "500")])  # an overspend: zero basis for 2.5 BTC
    out = tmp_path / "g.csv"
    assert _export(ledger_url, out, "--year", "2025") == 4
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "reconcile: incomplete: export gains 2025: INCOMPLETE DATA: 1 finding(s) that change the figures: 1 overspend"
    assert not out.exists() and list(tmp_path.glob("g*")) == []  # no staging or partial file either
    assert _export(ledger_url, out, "--year", "2024") == 0  # the 2025 overspend does not feed 2024
    assert _csv(out) == [COLUMNS]
    # Allowed: the verdict is the file's first line, then the export as always (the figures the engine gives).
    assert _export(ledger_url, out, "--year", "2025", "--allow-incomplete") == 0
    first, header, *rows = _csv(out)
    assert first == ["# INCOMPLETE DATA: 1 finding(s) that change the figures: 1 overspend"] and header == COLUMNS
    assert sum(Decimal(r[COLUMNS.index("proceeds")]) for r in rows) == Decimal("900.001")
    from openpyxl import load_workbook

    assert _export(ledger_url, tmp_path / "g.xlsx", "--year", "2025", "--format", "xlsx", "--allow-incomplete") == 0
    cells = [["" if v is None else v for v in row] for row in load_workbook(tmp_path / "g.xlsx", read_only=True).active.iter_rows(values_only=True)]
    assert cells[0][0].startswith("INCOMPLETE DATA: 1 finding(s)") and cells[1] == COLUMNS and cells[1:] == [header, *rows]


def test_export_lots__an_earlier_missing_basis_feeds_the_lots_exit_4(ledger_url, engine, tmp_path, capsys):
    from ledger.posting import cash

    deposit = cash(Source("main", "deposits", "d1", datetime(2024, 3, 1, tzinfo=timezone.utc)), kind="deposit", asset="BTC", quantity=D("1"),
                   counter="Equity:External")
    legs = tuple(leg._replace(unit_price=D(150), price_currency="USD") if leg.account.startswith("Assets:") else leg for leg in deposit.legs)
    with engine.begin() as conn:
        Journal(conn).post([deposit._replace(legs=legs)])  # no basis known: a missing-basis finding in 2024
    out = tmp_path / "lots.csv"
    assert main(["export", "lots", "--at", "2025-12-31", "--out", str(out), "--db", ledger_url]) == 4
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("reconcile: incomplete: export lots at 2025-12-31: INCOMPLETE DATA: 1 finding(s) that change the figures: 1 missing-basis")
    assert not out.exists()
    assert main(["export", "lots", "--at", "2024-02-01", "--out", str(out), "--db", ledger_url]) == 0  # before the deposit: complete
    assert not out.read_text().startswith("#")
    assert main(["export", "lots", "--at", "2025-12-31", "--out", str(out), "--db", ledger_url, "--allow-incomplete"]) == 0
    assert _csv(out)[0][0].startswith("# INCOMPLETE DATA:")


def test_export_gains__unpriced_event_of_the_year_is_exit_4_and_the_count_is_status_s(ledger_url, engine, tmp_path, capsys):
    from ledger.posting import cash
    from ledger.prices import unpriced_count

    with engine.begin() as conn:  # a deposit with no value at all
        Journal(conn).post([cash(Source("main", "deposits", "u1", datetime(2025, 3, 1, tzinfo=timezone.utc)), kind="deposit", asset="XYZ",
                                 quantity=D("3"), counter="Equity:External")])
    with engine.connect() as conn:
        whole = unpriced_count(conn)
    assert _export(ledger_url, tmp_path / "g.csv", "--year", "2025") == 4
    first = capsys.readouterr().err.splitlines()[0]
    assert f"INCOMPLETE DATA: {whole} unpriced event(s) in the period" in first and whole == 1
    assert not (tmp_path / "g.csv").exists()
