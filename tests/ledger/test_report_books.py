"""ledger.report_books.book_period: one read of the ledger gives what a booking per method gave."""

from __future__ import annotations

import os

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from ledger.books import book_ledger, resolve_settings
from ledger.report_books import book_period
from reconcile.config import ReportingConfig
from tests.reports import report_ledger
from tests.reports.report_ledger import UTC

_US = timedelta(microseconds=1)
METHODS = ("fifo", "lifo", "hifo", "lofo", "average")


@pytest.mark.parametrize("configured", ["fifo", "hifo"])
@pytest.mark.parametrize("period", [(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
                                    (datetime(2024, 6, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))])
def test_book_period__equals_one_book_ledger_per_method(engine, configured, period):
    report_ledger.build(engine)
    start, end = period
    rep = ReportingConfig(jurisdiction="us", method=configured)
    settings = resolve_settings(rep)
    compare = [(m, resolve_settings(rep, method=m)) for m in METHODS if m != configured]
    with engine.connect() as conn:
        pb = book_period(conn, settings, start=start, end=end, compare=compare)
        whole = book_ledger(conn, settings, until=end - _US)
        at_start = book_ledger(conn, settings, until=start - _US).open_lots
        per_method = {m: book_ledger(conn, resolve_settings(rep, method=m), until=end - _US) for m in METHODS}
    assert pb.books.gains == [g for g in whole.gains if start <= g.disposed < end] and pb.books.gains
    assert pb.books.open_lots == whole.open_lots and pb.books.findings == whole.findings and pb.books.income == whole.income
    assert pb.lots_at_start == at_start
    assert set(pb.methods) == set(METHODS)
    for m, books in per_method.items():
        gains = [g for g in books.gains if start <= g.disposed < end]
        t = pb.methods[m]
        assert t.rows == len(gains)
        assert t.short == sum((g.gain for g in gains if g.term == "short"), Decimal(0))
        assert t.long == sum((g.gain for g in gains if g.term == "long"), Decimal(0))
        assert (t.proceeds, t.basis) == (sum((g.proceeds for g in gains), Decimal(0)), sum((g.cost_basis for g in gains), Decimal(0)))
    assert pb.methods["fifo"].total != pb.methods["hifo"].total  # the ledger tells the methods apart


def test_book_period__uk_books_at_finish_and_its_rules_are_totals(engine):
    report_ledger.build(engine)
    rep = ReportingConfig(jurisdiction="uk", method="uk")
    settings = resolve_settings(rep)
    start, end = settings.year_bounds(2024)
    with engine.connect() as conn:
        pb = book_period(conn, settings, start=start, end=end)  # uk admits no other method
        whole = book_ledger(conn, settings, until=end - _US)
    gains = [g for g in whole.gains if start <= g.disposed < end]
    assert gains and pb.books.gains == gains
    assert pb.methods["uk"].other == sum((g.gain for g in gains), Decimal(0)) and pb.methods["uk"].rows == len(gains)


def test_book_period__the_forked_comparison_equals_the_in_process_one(engine, db_url, monkeypatch):
    import ledger.report_books as rb

    report_ledger.build(engine)
    monkeypatch.setattr(rb, "CHILD_MIN_ENTRIES", 0)
    rep = ReportingConfig(jurisdiction="us", method="fifo")
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    compare = [(m, resolve_settings(rep, method=m)) for m in METHODS if m != "fifo"]
    started, joined = [], []
    real, real_join = rb._start_child, rb._join_child
    monkeypatch.setattr(rb, "_start_child", lambda *a: started.append(1) or real(*a))
    monkeypatch.setattr(rb, "_join_child", lambda c: joined.append(real_join(c)) or joined[-1])
    with engine.connect() as conn:
        forked = book_period(conn, resolve_settings(rep), start=start, end=end, compare=compare)
        here = book_period(conn, resolve_settings(rep), start=start, end=end, compare=compare, parallel=False)
    assert started == [1] and set(joined[0]["methods"]) == {m for m, _s in compare}  # the child's own totals, not the fallback
    assert forked.methods == here.methods and forked.books.gains == here.books.gains and forked.lots_at_start == here.lots_at_start
    # More work for the forked process (``then``, run there with its own connection), joined when asked.
    from ledger.report_books import start_comparison

    with engine.connect() as conn:
        child = start_comparison(conn, resolve_settings(rep), start=start, end=end, compare=compare, here=1,  # the first one booked here
                                 then=lambda c: (os.getpid(), c.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()))
        assert child.methods == tuple(m for m, _s in compare[1:])
        late = book_period(conn, resolve_settings(rep), start=start, end=end, compare=compare, child=child, join=False)
        assert late.then is None and set(late.methods) == {"fifo", compare[0][0]}  # booked here; the rest once joined
        late.join()
        entries = conn.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()
    assert late.methods == here.methods and late.then[1] == entries and late.then[0] != os.getpid()
