"""Reconciliation: ledger against exchange figures, differences explained, results kept."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash, deposit, trade
from ledger.reconcile import Evidence, RawHint, check, compare
from ledger.schema import CheckResult
from ledger.store import SnapshotLineIn, save_snapshot

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def test_compare__equal_figures_have_no_difference():
    lines = compare({("Spot", "SOL"): D("1.5")}, {("Spot", "SOL"): D("1.50")})
    assert [l.ok for l in lines] == [True]


def test_compare__missing_inflow_named():
    (line,) = compare({("Spot", "SOL"): D("1")}, {("Spot", "SOL"): D("3")})
    assert line.difference == D("-2")
    assert any("inflow missing from history" in c for c in line.causes)


def test_compare__unknown_record_matching_the_difference_is_named():
    ev = Evidence(unknown=[RawHint("settlement", "settlement:9", "unknown", "settlement source 'X' has no posting rule", ("USDC",), (D("5"),))])
    (line,) = compare({("Spot", "USDC"): D("10")}, {("Spot", "USDC"): D("15")}, ev)
    assert "settlement:9" in line.causes[0] and "matches the difference" in line.causes[0]


def test_compare__extra_fee_names_outflow_and_fees():
    ev = Evidence(fees_by_asset={"BNB": D("0.3")})
    (line,) = compare({("Spot", "BNB"): D("1")}, {("Spot", "BNB"): D("0.9")}, ev)
    assert any("fee charged in BNB" in c for c in line.causes) and any("fees charged in BNB so far: 0.3" in c for c in line.causes)


def _post(engine, *entries):
    with engine.begin() as conn:
        Journal(conn).post(list(entries))


def _snapshot(engine, at, lines):
    with engine.begin() as conn:
        return save_snapshot(conn, venue_account="main", taken_at=at, payload={}, lines=lines)


def test_check__agreeing_ledger_is_ok_and_result_kept(engine):
    _post(
        engine,
        deposit(Source("main", "deposits", "d1", T0), asset="USDC", quantity=D("1000"), internal=False),
        trade(Source("main", "fills", "f1", T0 + timedelta(hours=1)), kind="spot-trade", base="SOL", quote="USDC", side="buy",
              quantity=D("2"), price=D("100"), fee=D("0.002"), fee_asset="SOL"),
    )
    _snapshot(engine, T0 + timedelta(days=1), [SnapshotLineIn("Spot", "USDC", D("800")), SnapshotLineIn("Spot", "SOL", D("1.998"))])
    with engine.begin() as conn:
        out = check(conn, "main")
    assert out.ok and not out.differences and out.trial_balance_zero
    with engine.connect() as conn:
        kept = conn.execute(select(CheckResult.c.ok, CheckResult.c.detail)).all()
    assert len(kept) == 1 and kept[0].ok and json.loads(kept[0].detail)["ok"] is True


def test_check__past_snapshot_and_entries_after_it(engine):
    _post(engine, deposit(Source("main", "deposits", "d1", T0), asset="USDC", quantity=D("100"), internal=False))
    _snapshot(engine, T0 + timedelta(hours=1), [SnapshotLineIn("Spot", "USDC", D("100"))])
    _post(engine, deposit(Source("main", "deposits", "d2", T0 + timedelta(days=2)), asset="USDC", quantity=D("50"), internal=False))
    _snapshot(engine, T0 + timedelta(days=3), [SnapshotLineIn("Spot", "USDC", D("140"))])
    with engine.begin() as conn:
        then = check(conn, "main", at=T0 + timedelta(days=1))
        now = check(conn, "main")
    assert then.ok  # the ledger at the old snapshot's time equals it
    assert not now.ok and now.differences[0].difference == D("10")


def test_check__no_snapshot_is_not_ok(engine):
    with engine.begin() as conn:
        out = check(conn, "main")
    assert not out.ok and "no snapshot" in out.notes[0]


def test_check__borrowed_and_lent_wallets(engine):
    from ledger.posting import borrowed, lent, move, spot

    _post(
        engine,
        deposit(Source("main", "deposits", "d1", T0), asset="USDC", quantity=D("100"), internal=False),
        move(Source("main", "borrowLend", "l1", T0), kind="lend", asset="USDC", quantity=D("60"), from_account=spot("main", "USDC"), to_account=lent("main", "USDC")),
        cash(Source("main", "borrowLend", "b1", T0), kind="borrow", asset="SOL", quantity=D("2"), counter=borrowed("main", "SOL")),
    )
    _snapshot(engine, T0 + timedelta(hours=1), [SnapshotLineIn("Spot", "USDC", D("40")), SnapshotLineIn("Lent", "USDC", D("60")),
                                                SnapshotLineIn("Borrowed", "SOL", D("-2")), SnapshotLineIn("Spot", "SOL", D("2"))])
    with engine.begin() as conn:
        assert check(conn, "main").ok


def _lot(i, cost):
    from ledger.booking import Lot

    return Lot(id=i, account="main", asset="BTC", quantity=D("1"), cost=D(cost), acquired=T0, source=i)


def _gain(lot_id, basis, when):
    from ledger.booking import Gain

    return Gain(account="main", asset="BTC", quantity=D("1"), acquired=T0, disposed=when, proceeds=D("0"), cost_basis=D(basis), gain=-D(basis),
                term="short", method="fifo", lot_id=lot_id, disposal_id="d", source_ref="s")


def test_basis_rollforward__closes_when_basis_is_conserved():
    from ledger.reconcile import basis_rollforward

    start, end = T0 + timedelta(days=10), T0 + timedelta(days=20)
    # open at start: a (100), b (50); in the period: b relieved, c (70) bought; at end: a, c.
    rf = basis_rollforward(start, end, [_lot("a", "100"), _lot("b", "50")], [_lot("a", "100"), _lot("c", "70")], [_gain("b", "50", start + timedelta(days=1))])
    assert (rf.opening, rf.acquisitions, rf.relieved, rf.closing) == (D("150"), D("70"), D("50"), D("170")) and rf.ok


def test_basis_rollforward__lost_basis_is_a_difference():
    from ledger.reconcile import basis_rollforward

    start, end = T0 + timedelta(days=10), T0 + timedelta(days=20)
    rf = basis_rollforward(start, end, [_lot("a", "100")], [_lot("a", "90")], [])
    assert not rf.ok and rf.difference == D("10")


def test_check__failed_rollforward_fails_the_check(engine):
    from ledger.reconcile import RollForward

    _post(engine, deposit(Source("main", "deposits", "d1", T0), asset="USDC", quantity=D("100"), internal=False))
    _snapshot(engine, T0 + timedelta(hours=1), [SnapshotLineIn("Spot", "USDC", D("100"))])
    rf = RollForward(T0, T0 + timedelta(days=1), D("1"), D("0"), D("0"), D("0"))
    with engine.begin() as conn:
        out = check(conn, "main", rollforward=rf)
    assert not out.ok and "roll-forward" in out.notes[-1] and out.to_json()["basis_rollforward"]["difference"] == "1"
