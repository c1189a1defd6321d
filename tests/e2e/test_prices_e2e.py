"""Pricing against the simulator: sync, fetch klines, value every holding posting; a second fetch asks nothing."""

from __future__ import annotations

from collections import Counter

from importers.backpack.client import BackpackClient
from importers.prices import fetch_prices
from ledger.db import make_engine
from ledger.prices import unpriced_count, unpriced_events, value_ledger
from ledger.valuation import ValuationSettings
from tests.e2e.helpers import cli, write_config


def test_prices__simulated_account_is_fully_valued_and_refetch_asks_nothing(db_url, sim, tmp_path, capsys):
    config = write_config(tmp_path, sim.accounts, sim.base_url)
    code, _out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet", "--no-prices")
    assert code == 0, err
    engine = make_engine(db_url)
    try:
        with BackpackClient(sim.base_url, None, historical_rate_per_minute=1_000_000, sync_clock=False) as client:
            first = fetch_prices(engine, client)
            second = fetch_prices(engine, client)
        assert second.requests == 0
        report = value_ledger(engine, ValuationSettings())
        with engine.connect() as conn:
            left = unpriced_events(conn)
            assert unpriced_count(conn) == len({e.entry_key for e in left})
        # every event the simulator's klines can price is priced; what is left names its reason
        assert report.priced > 0 and first.still_missing == len(left), Counter(e.reason for e in left)
        assert all(e.reason and "not valued yet" not in e.reason for e in left)
        assert min(report.by_source.get(k, 0) for k in ("trade", "stablecoin", "kline")) > 0
        assert value_ledger(engine, ValuationSettings()).entries == len({e.entry_key for e in left})
    finally:
        engine.dispose()


def test_sync__values_what_it_imported(db_url, sim, tmp_path, capsys):
    """The nightly job is one command: sync ends valued; `prices` afterwards fetches and values nothing new."""
    config = write_config(tmp_path, sim.accounts, sim.base_url)
    code, _out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            left = unpriced_events(conn)
        assert all("not valued yet" not in e.reason for e in left), Counter(e.reason for e in left)
        with BackpackClient(sim.base_url, None, historical_rate_per_minute=1_000_000, sync_clock=False) as client:
            assert fetch_prices(engine, client).requests == 0
        assert value_ledger(engine, ValuationSettings()).entries == len({e.entry_key for e in left})
    finally:
        engine.dispose()
    code, out, err = cli(capsys, "prices", "--config", config, "--db", db_url, "--quiet")
    assert code == 0 and out.strip() == "", (out, err)
