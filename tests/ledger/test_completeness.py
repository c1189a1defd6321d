"""ledger.completeness: what is incomplete about a period, from one function."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from ledger.books import book_ledger, resolve_settings
from ledger.completeness import EXIT_INCOMPLETE, assess
from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash
from ledger.prices import unpriced_count
from ledger.schema import ValuationState
from reconcile.config import ReportingConfig
from tests.reports import report_ledger
from tests.reports.report_ledger import UTC, valued

Y25 = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
Y24 = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
REP = ReportingConfig(jurisdiction="us", method="fifo")


def _assess(conn, period, rep=REP):
    books = book_ledger(conn, resolve_settings(rep))
    return assess(conn, rep, start=period[0], end=period[1], findings=books.findings_until(period[1]))


def test_completeness__a_valued_ledger_is_complete(engine):
    report_ledger.build(engine)
    with engine.connect() as conn:
        c = _assess(conn, Y25)
    assert c.complete and c.reasons() == [] and c.headline().startswith("complete")
    assert EXIT_INCOMPLETE == 4


def test_completeness__unpriced_events_of_the_period_only_and_the_same_count_as_status(engine):
    report_ledger.build(engine)
    with engine.begin() as conn:
        Journal(conn).post([cash(Source("main", "deposits", "u", datetime(2025, 5, 1, tzinfo=UTC)), kind="deposit", asset="XYZ",
                                 quantity=D("3"), counter="Equity:External")])
    with engine.connect() as conn:
        c25, c24 = _assess(conn, Y25), _assess(conn, Y24)
        whole = unpriced_count(conn)
    assert c25.unpriced == 1 == whole and c25.unpriced_sample[0].asset == "XYZ"
    assert not c25.complete and "1 unpriced event(s)" in c25.headline()
    assert c24.unpriced == 0


def test_completeness__findings_of_earlier_years_feed_the_period(engine):
    report_ledger.build(engine)
    with engine.begin() as conn:  # a 2024 deposit with no known basis, sold in 2025
        Journal(conn).post([valued(cash(Source("main", "deposits", "z", datetime(2024, 11, 1, tzinfo=UTC)), kind="deposit", asset="BTC",
                                        quantity=D("0.1"), counter="Equity:External"), D(200))])
    with engine.connect() as conn:
        c = _assess(conn, Y25)
    assert [f.kind for f in c.findings] == ["missing-basis"] and c.earlier_findings == 1
    assert "dated before the period, feeding it" in c.headline()


def test_completeness__currency_changed_since_valuation_is_stale(engine):
    report_ledger.build(engine)
    with engine.begin() as conn:
        conn.execute(ValuationState.insert(), [{"id": 1, "fingerprint": "x", "valued_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
                                                          "currency": "USD", "stablecoin_policy": "par"}])
    eur = replace(REP, currency="EUR")
    with engine.connect() as conn:
        c = _assess(conn, Y25, eur)
        same = _assess(conn, Y25, replace(REP, stablecoin_policy="market"))
    assert any("values are in USD" in s and "reporting currency is EUR" in s for s in c.stale)
    assert any("stablecoin policy 'par'" in s for s in same.stale)
    # EUR without an FX file: every valued day of the period lacks a rate
    assert c.missing_fx and c.missing_fx[0].year == 2025 and "no EUR FX rate" in c.headline()


def test_completeness__postings_valued_in_another_currency_are_stale_without_a_state_row(engine):
    report_ledger.build(engine)  # valued in USD, no valuation_state row (an older database)
    with engine.connect() as conn:
        c = _assess(conn, Y25, replace(REP, currency="GBP"))
    assert any("valued in USD, not GBP" in s for s in c.stale)


def test_completeness__fx_file_with_rates_is_complete_for_fx(engine, tmp_path):
    report_ledger.build(engine)
    fx = tmp_path / "fx.csv"
    fx.write_text("date,currency,rate\n2025-01-01,EUR,0.9\n2025-06-01,EUR,0.92\n")
    with engine.connect() as conn:
        c = assess(conn, replace(REP, currency="EUR", fx_file=str(fx)), start=Y25[0], end=Y25[1])
    from ledger.valuation import FX_LOOKBACK_DAYS

    # days within the look-back of a rate are covered; the rest are named
    for d in c.missing_fx:
        assert not (0 <= (d - datetime(2025, 1, 1).date()).days <= FX_LOOKBACK_DAYS) and not (0 <= (d - datetime(2025, 6, 1).date()).days <= FX_LOOKBACK_DAYS)
