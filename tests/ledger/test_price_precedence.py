"""Price precedence (docs/pricing.md): the user's price file > a cached kline > stablecoin par, for
every kind of event; a cached kline never beats the user's price file (issue 20's mutation)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ledger.money import D
from ledger.posting import Source, cash, deposit, trade
from ledger.valuation import EntryIn, PostingIn, ValuationSettings, Valuer, bar_start, parse_price_csv

T = datetime(2025, 3, 7, 12, 34, 56, tzinfo=timezone.utc)


class Bars:
    def __init__(self, bars):
        self.bars = {k: D(v) for k, v in bars.items()}

    def close(self, symbol, interval, start_s):
        return self.bars.get((symbol, interval, start_s))

    def why_missing(self, symbol, t, intervals):
        return f"no {symbol} bar"


def _entry(e) -> EntryIn:
    return EntryIn(1, e.key, e.time, e.kind, tuple(PostingIn(i, l.account, l.asset, l.quantity) for i, l in enumerate(e.legs)))


def _value(e, *, user_rows=(), bars=None, policy="par"):
    prices = parse_price_csv(["time,asset,price,currency,source", *user_rows], "p.csv") if user_rows else None
    valuer = Valuer(ValuationSettings(stablecoin_policy=policy), Bars(bars or {}), user_prices=prices)
    return {v.asset: v for v in valuer.value_entry(_entry(e))}


SRC = Source("main", "test", "k1", T)
KLINE = {("JTO_USDC", "1m", bar_start(T, "1m")): "2.5", ("USDT_USDC", "1m", bar_start(T, "1m")): "0.998"}
EVENTS = {
    "interest": cash(SRC, kind="interest-income", asset="JTO", quantity=D("3"), counter="Income:Interest"),
    "deposit": deposit(SRC, asset="JTO", quantity=D("3"), internal=False),
    "fee_leg": trade(SRC, kind="spot-trade", base="SOL", quote="USDC", side="buy", quantity=D("1"), price=D("150"),
                     fee=D("0.4"), fee_asset="JTO"),
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_precedence__user_beats_a_cached_kline(event):
    got = _value(EVENTS[event], user_rows=["2025-03-07T12:00:00Z,JTO,2.0,USD,my-file"], bars=KLINE)["JTO"]
    assert got.unit_price == D("2.0") and got.source == "user my-file (p.csv:2)"


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_precedence__kline_when_the_user_has_no_row(event):
    got = _value(EVENTS[event], user_rows=["2025-03-07T12:00:00Z,SOL,140,USD,my-file"], bars=KLINE)["JTO"]
    assert got.unit_price == D("2.5") and got.source.startswith("kline JTO_USDC 1m")


def test_precedence__user_beats_par_and_par_beats_a_kline_for_a_stablecoin():
    e = deposit(SRC, asset="USDT", quantity=D("10"), internal=False)
    assert _value(e, bars=KLINE)["USDT"].unit_price == 1  # par: the cached USDT_USDC kline is not used
    assert _value(e, bars=KLINE)["USDT"].source == "stablecoin par"
    user = _value(e, user_rows=["2025-03-07T12:00:00Z,USDT,0.97,USD,depeg"], bars=KLINE)["USDT"]
    assert user.unit_price == D("0.97") and user.source == "user depeg (p.csv:2)"
    market = _value(e, bars=KLINE, policy="market")["USDT"]
    assert market.unit_price == D("0.998")  # the market policy reads the kline instead of par
    market_user = _value(e, user_rows=["2025-03-07T12:00:00Z,USDT,0.97,USD,depeg"], bars=KLINE, policy="market")["USDT"]
    assert market_user.unit_price == D("0.97")


def test_precedence__user_beats_the_trade_price_and_the_quote_kline():
    e = trade(SRC, kind="spot-trade", base="JTO", quote="USDT", side="buy", quantity=D("2"), price=D("2.6"))
    got = _value(e, user_rows=["2025-03-07T12:00:00Z,JTO,2.0,USD,my-file"], bars=KLINE, policy="market")
    assert got["JTO"].unit_price == D("2.0")
    assert got["USDT"].unit_price == D("0.998")
    without = _value(e, bars=KLINE, policy="market")
    assert without["JTO"].unit_price == D("2.6") * D("0.998")  # trade-implied, through the quote's kline
