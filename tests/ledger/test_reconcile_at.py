"""Reconciliation at a date: a snapshot taken then, else the latest snapshot rolled back through the ledger's flows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, deposit
from ledger.reconcile import check, snapshot_basis
from ledger.store import SnapshotLineIn, save_snapshot
from reconcile.cli import main
from tests.reports import report_ledger
from tests.reports.report_ledger import UTC

YEAR_END = datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_check_at__rolls_the_latest_snapshot_back_and_agrees(engine):
    report_ledger.build(engine)  # one snapshot, taken 2026-01-10, equal to the ledger then
    with engine.begin() as conn:
        basis = snapshot_basis(conn, "main", YEAR_END)
        assert basis[2] == "rolled back" and basis[3] > 0
        out = check(conn, "main", at=YEAR_END, keep=False)
    assert out.ok and out.basis == "rolled back" and out.as_of == YEAR_END and out.problems == []
    # the figures are the year end's, not today's: 3 BTC were held at the end of 2024
    assert {(l.wallet, l.asset): l.ledger for l in out.lines}[("Spot", "BTC")] == D(3)
    assert any("rolled back" in n for n in out.notes)


def test_check_at__a_snapshot_taken_then_is_used(engine):
    report_ledger.build(engine)
    with engine.begin() as conn:
        save_snapshot(conn, venue_account="main", taken_at=datetime(2024, 12, 31, 12, tzinfo=UTC), payload={},
                      lines=[SnapshotLineIn("Spot", "BTC", D(3)), SnapshotLineIn("Spot", "USDC", D("1649.25")), SnapshotLineIn("Lent", "USDC", D("1.25"))])
        out = check(conn, "main", at=YEAR_END, keep=False)
    assert out.basis == "taken then" and out.snapshot_at == datetime(2024, 12, 31, 12, tzinfo=UTC)
    assert out.ok, [(l.wallet, l.asset, l.ledger, l.exchange) for l in out.lines]


def test_check_at__a_real_difference_is_named(engine):
    report_ledger.build(engine)
    with engine.begin() as conn:  # the exchange's snapshot misses 0.5 BTC the ledger has (a withdrawal not in history)
        save_snapshot(conn, venue_account="main", taken_at=datetime(2026, 2, 1, tzinfo=UTC), payload={},
                      lines=[SnapshotLineIn("Spot", "BTC", D("0.25")), SnapshotLineIn("Spot", "USDC", D("2147.75") - D("0.3") - D("0.6") - D("0.1") + D("0")),
                             SnapshotLineIn("Lent", "USDC", D("3.75"))])
        out = check(conn, "main", at=YEAR_END, keep=False)
    assert not out.ok and any(l.asset == "BTC" for l in out.differences)
    assert out.problems and "difference" in out.problems[0]


def _cli_check(db_url, capsys, at):
    capsys.readouterr()
    code = main(["check", "--db", db_url, "--account", "main", "--at", at])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_check_at_cli__exit_0_when_it_agrees_3_only_on_a_difference(engine, db_url, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    report_ledger.build(engine)
    code, text = _cli_check(db_url, capsys, "2024-12-31")
    assert code == 0, text
    assert "rolled back" in text and "main: ledger equals the exchange to the last unit" in text
    with engine.begin() as conn:  # a later deposit the exchange never saw: the latest snapshot now differs
        Journal(conn).post([deposit(Source("main", "deposits", "late", datetime(2026, 1, 5, tzinfo=UTC)), asset="USDC", quantity=D("7"), internal=False)])
        save_snapshot(conn, venue_account="main", taken_at=datetime(2026, 1, 20, tzinfo=UTC), payload={},
                      lines=[SnapshotLineIn("Spot", "BTC", D("0.25"))])
    code, text = _cli_check(db_url, capsys, "2024-12-31")
    assert code == 3
    last = [l for l in text.splitlines() if l.startswith("main:")][-1]
    assert last.startswith("main: not reconciled: ") and "difference(s)" in last and "0 difference(s)" not in last


def test_check_cli__every_account_of_the_ledger_is_checked_snapshot_or_not(engine, db_url, tmp_path, monkeypatch, capsys):
    """No accounts configured: the check covers every venue account the ledger holds wallets of, not only
    those with a snapshot: sub, posted but never synced, is named as not reconciled (exit 3)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    report_ledger.build(engine)
    with engine.begin() as conn:
        Journal(conn).post(report_ledger.entries("sub"))
    capsys.readouterr()
    assert main(["check", "--db", db_url]) == 3
    got = capsys.readouterr()  # a failing account's report goes to stderr
    assert "main: ledger equals the exchange to the last unit" in got.out and got.err.splitlines()[-1] == "sub: not reconciled: no snapshot"


@settings(max_examples=15, deadline=None)
@given(days=st.integers(min_value=-30, max_value=800))
def test_check_at__exit_3_always_names_a_problem(days):
    """Whatever the date, a failing check says why (never 'not reconciled' with nothing to show)."""
    from ledger.db import make_engine, upgrade

    eng = make_engine("sqlite://")
    upgrade(eng)
    report_ledger.build(eng)
    at = report_ledger.T0 + timedelta(days=days)
    with eng.begin() as conn:
        out = check(conn, "main", at=at, keep=False)
    assert out.ok == (out.problems == [])
    assert out.ok  # the one snapshot equals the ledger, so rolled back to any date it agrees
    eng.dispose()


def _outcome_figures(outcomes):
    return [(o.venue_account, o.ok, o.basis, o.as_of, [(l.wallet, l.asset, l.ledger, l.exchange) for l in o.lines], o.notes, o.problems,
             (o.rollforward.opening, o.rollforward.acquisitions, o.rollforward.relieved, o.rollforward.closing, o.rollforward.ok)) for o in outcomes]


def test_check_accounts__the_balance_scan_in_a_forked_process_gives_the_in_process_outcome(engine, monkeypatch):
    """``check --at`` on a large ledger scans the balances in a forked process while the roll-forward
    books: the outcome is the in-process one, and a child that fails leaves the scan to this process."""
    from ledger import forked, report_books
    from ledger.books import resolve_settings
    from ledger.reconcile import check_accounts
    from reconcile.config import ReportingConfig

    report_ledger.build(engine)
    with engine.begin() as conn:  # an entry the exchange never saw: one line differs, so the figures matter
        Journal(conn).post([deposit(Source("main", "deposits", "late", datetime(2024, 6, 5, tzinfo=UTC)), asset="USDC", quantity=D("7"), internal=False)])
    settings = resolve_settings(ReportingConfig())
    joined: list = []
    real_join = forked.join
    monkeypatch.setattr(forked, "join", lambda child: joined.append(real_join(child)) or joined[-1])

    monkeypatch.setattr(report_books, "large_ledger", lambda conn: False)
    here = check_accounts(engine, ["main"], at=YEAR_END, settings=settings)
    assert joined == []  # a small ledger: no fork
    monkeypatch.setattr(report_books, "large_ledger", lambda conn: True)
    there = check_accounts(engine, ["main"], at=YEAR_END, settings=settings)
    assert len(joined) == 1 and isinstance(joined[0], dict) and joined[0]["result"]  # the child's scan was taken
    assert _outcome_figures(there) == _outcome_figures(here)
    assert not here[0].ok and any(l.asset == "USDC" for l in here[0].differences)

    monkeypatch.setattr(forked, "join", lambda child: (real_join(child), None)[1])  # the child's result lost: scanned here
    assert _outcome_figures(check_accounts(engine, ["main"], at=YEAR_END, settings=settings)) == _outcome_figures(here)
    with pytest.raises(ValueError, match="give settings"):  # a check at a date without the booking's settings: said at once
        check_accounts(engine, ["main"], at=YEAR_END)
