"""Fetching klines into the price cache, against a fake exchange behind httpx.MockTransport."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

from importers.backpack.client import BackpackClient
from importers.prices import KLINE_MAX_BARS, fetch_prices, plan_windows
from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash, deposit, trade
from ledger.prices import unpriced_count, unpriced_events, value_ledger
from ledger.valuation import ValuationSettings, bar_start

T = datetime(2025, 3, 7, 12, 34, 56, tzinfo=timezone.utc)
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


class FakeMarket:
    """Serves /api/v1/markets and /api/v1/klines from given bars; counts requests."""

    def __init__(self, bars: dict[tuple[str, str], dict[int, str]], markets: set[str]):
        self.bars = bars
        self.markets = markets
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/api/v1/markets":
            return httpx.Response(200, json=[{"symbol": s, "baseSymbol": s.split("_")[0], "quoteSymbol": "USDC",
                                              "marketType": "SPOT"} for s in sorted(self.markets)])
        assert request.url.path == "/api/v1/klines"
        q = request.url.params
        step = {"1m": 60, "1h": 3600, "1d": 86400}[q["interval"]]
        lo, hi = int(q["startTime"]), int(q["endTime"])
        rows = []
        for s, close in sorted(self.bars.get((q["symbol"], q["interval"]), {}).items()):
            if lo <= s <= hi and len(rows) < KLINE_MAX_BARS:
                fmt = "%Y-%m-%d %H:%M:%S"
                rows.append({"start": datetime.fromtimestamp(s, timezone.utc).strftime(fmt),
                             "end": datetime.fromtimestamp(s + step, timezone.utc).strftime(fmt),
                             "open": close, "high": close, "low": close, "close": close, "volume": "1",
                             "quoteVolume": close, "trades": "1"})
        return httpx.Response(200, json=rows)

    def klines_asked(self) -> list[tuple[str, str, int, int]]:
        return [(r.url.params["symbol"], r.url.params["interval"], int(r.url.params["startTime"]), int(r.url.params["endTime"]))
                for r in self.requests if r.url.path == "/api/v1/klines"]


def client_for(fake: FakeMarket) -> BackpackClient:
    clock = {"t": NOW.timestamp()}

    def sleep(s: float) -> None:
        clock["t"] += s

    return BackpackClient("https://api.example", None, transport=httpx.MockTransport(fake), sync_clock=False,
                          sleep=sleep, clock=lambda: clock["t"])


def post(engine, *entries):
    with engine.begin() as conn:
        Journal(conn).post(list(entries))


def src(key: str, t: datetime = T) -> Source:
    return Source("main", "test", key, t)


def test_prices__fetch_falls_back_to_1h_and_second_run_asks_nothing(engine):
    t2 = T + timedelta(hours=3)
    post(engine,
         trade(src("f1"), kind="spot-trade", base="SOL", quote="USDC", side="buy", quantity=D("2"), price=D("150"),
               fee=D("1.5"), fee_asset="BPX"),
         deposit(src("d1", t2), asset="JTO", quantity=D("3"), internal=False))
    fake = FakeMarket({("BPX_USDC", "1m"): {bar_start(T, "1m"): "0.25"},
                       ("JTO_USDC", "1h"): {bar_start(t2, "1h"): "2.5"}},
                      markets={"BPX_USDC", "JTO_USDC", "SOL_USDC"})
    report = fetch_prices(engine, client_for(fake), now=NOW)
    assert (report.requests, report.needed, report.still_missing) == (4, 2, 0)  # markets, BPX 1m, JTO 1m, JTO 1h
    assert report.windows == {"1m": 2, "1h": 1}
    asked = fake.klines_asked()
    assert ("BPX_USDC", "1m", bar_start(T, "1m"), bar_start(T, "1m") + 60 * KLINE_MAX_BARS - 1) in asked  # seconds
    assert ("JTO_USDC", "1h", bar_start(t2, "1h"), bar_start(t2, "1h") + 3600 * KLINE_MAX_BARS - 1) in asked
    fake.requests.clear()
    again = fetch_prices(engine, client_for(fake), now=NOW)
    assert (again.requests, len(fake.requests)) == (0, 0)
    value_ledger(engine, ValuationSettings())
    with engine.connect() as conn:
        assert unpriced_count(conn) == 0
    fake.requests.clear()
    assert fetch_prices(engine, client_for(fake), now=NOW).requests == 0 and fake.requests == []


def test_prices__no_bar_anywhere_is_asked_once_and_reported(engine):
    post(engine, deposit(src("d1"), asset="JTO", quantity=D("3"), internal=False))
    fake = FakeMarket({}, markets={"JTO_USDC"})
    report = fetch_prices(engine, client_for(fake), now=NOW)
    assert (report.requests, report.still_missing) == (4, 1)  # markets + 1m + 1h + 1d
    fake.requests.clear()
    assert fetch_prices(engine, client_for(fake), now=NOW).requests == 0 and fake.requests == []
    value_ledger(engine, ValuationSettings())
    with engine.connect() as conn:
        [ev] = unpriced_events(conn)
    assert ev.reason == "the exchange has no JTO_USDC bar containing 2025-03-07T12:34:56Z (1m/1h/1d)"


def test_prices__unknown_market_is_never_asked_for_klines(engine):
    post(engine, deposit(src("d1"), asset="XYZ", quantity=D("3"), internal=False))
    fake = FakeMarket({}, markets={"SOL_USDC"})
    report = fetch_prices(engine, client_for(fake), now=NOW)
    assert (report.requests, report.no_market) == (1, ["XYZ_USDC"]) and fake.klines_asked() == []
    fake.requests.clear()
    assert fetch_prices(engine, client_for(fake), now=NOW).requests == 0
    value_ledger(engine, ValuationSettings())
    with engine.connect() as conn:
        assert unpriced_events(conn)[0].reason.startswith("the exchange lists no XYZ_USDC market")


def test_prices__events_close_together_share_one_request_and_fills_need_none(engine):
    entries = [cash(src(f"i{n}", T + timedelta(hours=n)), kind="interest-income", asset="SOL", quantity=D("0.01"),
                    counter="Income:Interest") for n in range(16)]  # 16 hours < 1000 minutes
    entries.append(trade(src("f1"), kind="spot-trade", base="ETH", quote="USDC", side="buy", quantity=D("1"), price=D("3000")))
    post(engine, *entries)
    bars = {bar_start(T + timedelta(hours=n), "1m"): "150" for n in range(16)}
    fake = FakeMarket({("SOL_USDC", "1m"): bars}, markets={"SOL_USDC", "ETH_USDC"})
    report = fetch_prices(engine, client_for(fake), now=NOW)
    assert report.requests == 2 and [a[0] for a in fake.klines_asked()] == ["SOL_USDC"]
    assert value_ledger(engine, ValuationSettings()).unpriced == 0


def test_prices__period_and_assets_filters(engine):
    post(engine, deposit(src("d1"), asset="JTO", quantity=D("3"), internal=False),
         deposit(src("d2", T + timedelta(days=40)), asset="BPX", quantity=D("3"), internal=False))
    fake = FakeMarket({("JTO_USDC", "1m"): {bar_start(T, "1m"): "2"}}, markets={"JTO_USDC", "BPX_USDC"})
    assert fetch_prices(engine, client_for(fake), start=T + timedelta(days=1), now=NOW, assets=["JTO"]).requests == 0
    report = fetch_prices(engine, client_for(fake), start=T - timedelta(days=1), end=T + timedelta(days=1), now=NOW)
    assert report.requests == 2 and [a[0] for a in fake.klines_asked()] == ["JTO_USDC"]


def test_prices__open_bar_is_not_asked_for():
    now_s = int(NOW.timestamp()) + 30  # half a minute into a bar
    assert plan_windows([now_s - 10], "1m", until_s=now_s) == []  # its minute is still open
    assert plan_windows([now_s - 40], "1m", until_s=now_s) == [(now_s - 90, now_s - 30)]
    assert plan_windows([0, 59_999, 60_000], "1m", until_s=10**9) == [(0, 60_000), (60_000, 120_000)]
