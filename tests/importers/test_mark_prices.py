"""importers.prices.fetch_mark_prices: the 1m Mark kline ending at each instant, cached once (docs/pricing.md)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from ledger.perps import _mark_at, mark_symbol
from importers.prices import fetch_mark_prices


class FakeClient:
    def __init__(self):
        self.calls = []

    def klines(self, symbol, interval, start_s, end_s=None, price_type=None):
        self.calls.append((symbol, interval, start_s, end_s, price_type))
        start = datetime.fromtimestamp(start_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return [{"start": start, "open": "100", "high": "101", "low": "99", "close": "100.5", "volume": "1", "quoteVolume": "100", "trades": "1"}]


def test_mark_price_cached_once_and_read_at_the_instant(engine):
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    client = FakeClient()
    assert fetch_mark_prices(engine, client, ["SOL_USDC_PERP"], [t]) == 1
    (call,) = client.calls
    assert call == ("SOL_USDC_PERP", "1m", int(t.timestamp()) - 60, int(t.timestamp()) - 1, "Mark")
    assert fetch_mark_prices(engine, client, ["SOL_USDC_PERP"], [t]) == 0  # held: not asked again
    with engine.connect() as conn:
        mark, source = _mark_at(conn, "SOL_USDC_PERP", t)
        assert mark == Decimal("100.5") and "1m" in source
        missing, why = _mark_at(conn, "BTC_USDC_PERP", t)
        assert missing is None and "reconcile prices" in why
    assert mark_symbol("SOL_USDC_PERP") == "SOL_USDC_PERP@Mark"
