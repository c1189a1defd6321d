"""The portfolio value series of the statement: the holdings summed from the booking's read give what a balance query per month end gives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from ledger.db import balances
from ledger.money import EXACT
from ledger.prices import prices_at
from reconcile.config import ReportingConfig
from ledger.reader import read_entries
from reports.report import HoldingSums, _value_series
from tests.reports import report_ledger
from tests.reports.report_ledger import UTC

_US = timedelta(microseconds=1)


def _by_balances(conn, reporting, points, cash):
    out = []
    for t in points:
        held: dict[str, Decimal] = {}
        for prefix in ("Assets:Backpack", "Liabilities:Backpack"):
            for (name, asset), q in balances(conn, prefix=prefix, until=t).items():
                if ":Perp:" not in name:
                    held[asset] = held.get(asset, Decimal(0)) + q
        held = {a: q for a, q in held.items() if q != 0}
        prices = prices_at(conn, reporting, sorted(a for a in held if a not in cash), t)
        total = Decimal(0)
        for a, q in held.items():
            total += q if a in cash else EXACT.multiply(q, prices[a].unit_price)
        out.append((t.date(), total, 0))
    return out


def test_value_series__equals_the_balances_at_each_month_end(engine):
    report_ledger.build(engine)
    reporting = ReportingConfig(jurisdiction="us", method="fifo")
    cash = frozenset({"USD", "USDC", "USDT"})
    for start, end in ((datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
                       (datetime(2024, 2, 15, tzinfo=UTC), datetime(2025, 3, 20, tzinfo=UTC))):
        with engine.connect() as conn:
            sums = HoldingSums(start, end)
            for chunk in read_entries(conn, until=end - _US, chunk=7):
                sums.add(chunk)
            got = _value_series(conn, reporting, start, end, sums, cash)
            points = [datetime(d.year, d.month, d.day, tzinfo=timezone.utc) + timedelta(days=1) - _US for d, _v, _m in got[:-1]] + [end - _US]
            want = _by_balances(conn, reporting, points, cash)
        assert [(d, v) for d, v, _m in got] == [(d, v) for d, v, _m in want]
        assert len({v for _d, v, _m in got}) > 1  # the ledger moves over the period


def test_report__figures_taken_on_the_way_equal_those_of_the_rows(engine):
    """The gains' totals and the fees' total and daily sums are taken as the rows go to disk; they equal
    what the rows read back give."""
    from dataclasses import replace

    from ledger.books import resolve_settings
    from reports.report import GainFigures, build_report

    report_ledger.build(engine)
    reporting = ReportingConfig(jurisdiction="us", method="fifo")
    settings = resolve_settings(reporting)
    start, end = settings.year_bounds(2025)
    with engine.connect() as conn:
        rep = build_report(conn, reporting, settings, start=start, end=end, label="2025", allow_incomplete=True)
        gains, fees = list(rep.gains), list(rep.fees)
        assert gains and fees
        assert rep.gain_figures() == GainFigures.of(gains, rep._months())
        assert rep.fee_total() == sum((f.value for f in fees if f.value is not None), Decimal(0))
        again = replace(rep, fees=fees, _fee_days=None, _fee_total=None)
        assert rep.cumulative_flows() == again.cumulative_flows()
        assert rep.gain_total("gain", "short") == sum((g.gain for g in gains if g.term == "short"), Decimal(0))


def test_report__a_gate_that_stops_the_report_stops_the_started_proofs_too(engine, monkeypatch):
    """The period-end check's perpetuals proof and the report's perpetuals are started with the booking
    (forked on a large ledger); when the gate stops the report (an incomplete period, not allowed), no
    forked process is left behind."""
    import multiprocessing

    import pytest

    import ledger.perps as perps
    from ledger.books import resolve_settings
    from reports.report import build_report

    import ledger.report_books as report_books

    report_ledger.build(engine)
    monkeypatch.setattr(perps, "CHILD_MIN_FILLS", 0)  # fork the proof even for this small ledger
    monkeypatch.setattr(report_books, "CHILD_MIN_ENTRIES", 0)  # and the report's perpetuals
    reporting = ReportingConfig(jurisdiction="us", method="fifo")
    settings = resolve_settings(reporting)
    start, end = settings.year_bounds(2025)
    started, calls = [], []
    real = perps.start_perp_proof
    forked = []
    monkeypatch.setattr(perps, "start_perp_proof", lambda *a, **k: started.append(real(*a, **k)) or forked.append(started[-1].proc is not None) or started[-1])

    def gate(completeness):
        calls.append(completeness)
        if started:  # the call after the booking, while the proof is out
            raise SystemExit(4)

    with engine.connect() as conn, pytest.raises(SystemExit):
        build_report(conn, reporting, settings, start=start, end=end, label="2025", accounts=["main"], gate=gate, compare=False)
    assert forked == [True] and started[0].proc is None  # it was forked, and is stopped
    assert multiprocessing.active_children() == []


def test_report__refuses_to_run_while_a_sync_writes_and_writes_nothing(engine, db_url, clean_env, tmp_path, capsys):
    """The report and the statement hold the readers' lock (their forked helpers read through connections
    of their own): while a sync holds the writer's lock they exit at once, name it, and write nothing;
    afterwards they run."""
    from ledger.lock import database_lock
    from reconcile.cli import main

    report_ledger.build(engine)
    out = tmp_path / "out"
    argv = ["report", "--year", "2025", "--format", "xlsx,html", "--out", str(out), "--db", db_url, "--allow-incomplete"]
    with database_lock(engine):
        capsys.readouterr()
        assert main(argv) != 0
        assert capsys.readouterr().err.strip() == "reconcile: error: another sync is running on this database; try again when it has finished"
        assert main(["statement", "--year", "2025", "--out", str(tmp_path / "s.html"), "--db", db_url, "--allow-incomplete"]) != 0
        assert "another sync is running" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "s.html").exists()
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report-2025.xlsx", "statement-2025.html"]
