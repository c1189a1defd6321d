"""The pure valuation engine and the user files' parsers (no database)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from ledger.inputs import InputError
from ledger.money import D
from ledger.posting import Source, cash, deposit, trade
from ledger.valuation import (
    UNPRICED,
    EntryIn,
    PostingIn,
    ValuationSettings,
    Valuer,
    bar_start,
    is_holding_account,
    parse_fx_csv,
    parse_price_csv,
)

T = datetime(2025, 3, 7, 12, 34, 56, tzinfo=timezone.utc)


class DictBars:
    def __init__(self, bars: dict[tuple[str, str, int], str] | None = None):
        self.bars = {k: D(v) for k, v in (bars or {}).items()}

    def close(self, symbol, interval, start_s):
        return self.bars.get((symbol, interval, start_s))

    def why_missing(self, symbol, t, intervals):
        return f"no {symbol} bar"


def entry_in(e, eid: int = 1) -> EntryIn:
    return EntryIn(eid, e.key, e.time, e.kind, tuple(PostingIn(i, l.account, l.asset, l.quantity) for i, l in enumerate(e.legs)))


def by_asset(values):
    return {v.asset: v for v in values}


def src(t=T):
    return Source("main", "test", "k1", t)


def test_valuation__stablecoin_par():
    v = Valuer(ValuationSettings(), DictBars())
    out = by_asset(v.value_entry(entry_in(deposit(src(), asset="USDT", quantity=D("10"), internal=False))))
    assert out["USDT"].unit_price == Decimal(1) and out["USDT"].source == "stablecoin par"


def test_valuation__stablecoin_market_uses_usdt_usdc_bar():
    bars = DictBars({("USDT_USDC", "1m", bar_start(T, "1m")): "0.9991"})
    v = Valuer(ValuationSettings(stablecoin_policy="market"), bars)
    out = by_asset(v.value_entry(entry_in(deposit(src(), asset="USDT", quantity=D("10"), internal=False))))
    assert out["USDT"].unit_price == D("0.9991")
    assert out["USDT"].source.startswith("stablecoin market, kline USDT_USDC 1m")


def test_valuation__fill_valued_from_its_own_price():
    e = trade(src(), kind="spot-trade", base="SOL", quote="USDC", side="buy", quantity=D("2"), price=D("150.5"),
              fee=D("0.001"), fee_asset="SOL")
    out = by_asset(Valuer(ValuationSettings(), DictBars()).value_entry(entry_in(e)))
    assert out["SOL"].unit_price == D("150.5") and out["SOL"].source == "trade @150.5 USDC"
    assert out["USDC"].unit_price == 1


def test_valuation__fee_in_third_asset_from_kline_falling_back_to_1h():
    e = trade(src(), kind="spot-trade", base="SOL", quote="USDC", side="sell", quantity=D("1"), price=D("150"),
              fee=D("0.5"), fee_asset="BPX")
    bars = DictBars({("BPX_USDC", "1h", bar_start(T, "1h")): "0.25"})
    out = by_asset(Valuer(ValuationSettings(), bars).value_entry(entry_in(e)))
    assert out["BPX"].unit_price == D("0.25")
    assert out["BPX"].source == "kline BPX_USDC 1h 2025-03-07T12:00Z close"


def test_valuation__missing_price_is_unpriced_with_reason_never_zero():
    e = cash(src(), kind="interest-income", asset="JTO", quantity=D("3"), counter="Income:Interest")
    [v] = Valuer(ValuationSettings(), DictBars()).value_entry(entry_in(e))
    assert v.unit_price is None and v.source == UNPRICED + "no JTO_USDC bar"


def test_valuation__user_price_overrides_trade_and_keeps_source():
    prices = parse_price_csv(["time,asset,price,currency,source", "2025-03-07,SOL,140,USD,coingecko"], "p.csv")
    e = trade(src(), kind="spot-trade", base="SOL", quote="USDC", side="buy", quantity=D("2"), price=D("150.5"))
    out = by_asset(Valuer(ValuationSettings(), DictBars(), user_prices=prices).value_entry(entry_in(e)))
    assert out["SOL"].unit_price == D("140") and out["SOL"].source == "user coingecko (p.csv:2)"


def test_valuation__eur_through_fx_with_weekend_lookback():
    fx = parse_fx_csv(["date,currency,rate", "2025-03-07,EUR,0.925"], "fx.csv")
    sat = datetime(2025, 3, 8, 10, tzinfo=timezone.utc)
    e = trade(src(sat), kind="spot-trade", base="SOL", quote="USDC", side="buy", quantity=D("2"), price=D("100"))
    out = by_asset(Valuer(ValuationSettings(currency="EUR"), DictBars(), fx=fx).value_entry(entry_in(e)))
    assert out["USDC"].unit_price == D("0.925") and out["USDC"].currency == "EUR"
    assert out["USDC"].source == "stablecoin par; fx EUR 2025-03-07"
    assert out["SOL"].unit_price == D("92.5")


def test_valuation__fx_gap_error_names_file_and_date():
    fx = parse_fx_csv(["date,currency,rate", "2025-03-01,EUR,0.925"], "fx.csv")
    v = Valuer(ValuationSettings(currency="EUR"), DictBars(), fx=fx)
    [out] = v.value_entry(entry_in(deposit(src(), asset="USDC", quantity=D("1"), internal=False)))
    assert out.unit_price is None
    err = v.fx_gap_error()
    assert str(err).startswith("fx.csv: no EUR rate for 2025-03-07 ") and "\n" not in str(err)


def test_valuation__user_price_in_eur_converted_to_usd():
    fx = parse_fx_csv(["date,currency,rate", "2025-03-07,EUR,0.8"], "fx.csv")
    prices = parse_price_csv(["time,asset,price,currency,source", "2025-03-07T12:00:00Z,XYZ,2,EUR,manual"], "p.csv")
    e = deposit(src(), asset="XYZ", quantity=D("1"), internal=False)
    [out] = Valuer(ValuationSettings(), DictBars(), user_prices=prices, fx=fx).value_entry(entry_in(e))
    assert out.unit_price == D("2.5") and out.currency == "USD"


def test_valuation__user_price_expires_after_a_day():
    prices = parse_price_csv(["time,asset,price,currency,source", "2025-03-06T00:00:00,XYZ,2,USD,m"], "p.csv")
    assert prices.lookup("XYZ", datetime(2025, 3, 6, 23, 59, tzinfo=timezone.utc)).price == 2
    assert prices.lookup("XYZ", datetime(2025, 3, 7, 0, 0, tzinfo=timezone.utc)) is None


def test_valuation__perp_postings_need_no_value():
    from ledger.posting import perp_fill

    e = perp_fill(src(), symbol="SOL_USDC_PERP", side="buy", quantity=D("1"), price=D("150"))
    assert Valuer(ValuationSettings(), DictBars()).value_entry(entry_in(e)) == []
    assert is_holding_account("Liabilities:Backpack:main:Borrowed:SOL")
    assert not is_holding_account("Assets:Backpack:main:Perp:SOL_USDC_PERP")


@pytest.mark.parametrize(
    "lines, message",
    [
        (["time,asset,price,currency,source", "2025-13-01,SOL,1,USD,x"], "p.csv:2: time '2025-13-01' is not"),
        (["time,asset,price,currency,source", "2025-01-01,SOL,abc,USD,x"], "p.csv:2: price 'abc' is not a decimal number"),
        (["time,asset,price,currency,source", "2025-01-01,SOL,1,CHF,x"], "p.csv:2: currency 'CHF' is not one of"),
        (["time,asset,price,currency,source", "", "2025-01-01,SOL,1,USD"], "p.csv:3: expected 5 fields, found 4"),
        (["time,asset,price", "2025-01-01,SOL,1"], "p.csv:1: header must name"),
        (["time,asset,price,currency,source", "2025-01-01,SOL,1,USD,x", "2025-01-01,sol,2,USD,y"],
         "p.csv:3: second price for SOL"),
        (["time,asset,price,currency,source", "2025-01-01,SOL,-1,USD,x"], "p.csv:2: price -1 is negative"),
    ],
)
def test_valuation__bad_price_csv_is_one_line_naming_file_and_line(lines, message):
    with pytest.raises(InputError) as err:
        parse_price_csv(lines, "p.csv")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "lines, message",
    [
        (["date,currency,rate", "2025-01-01,EUR,0"], "fx.csv:2: rate 0 must be positive"),
        (["date,currency,rate", "01/02/2025,EUR,0.9"], "fx.csv:2: date '01/02/2025' is not YYYY-MM-DD"),
        (["date,currency,rate", "2025-01-01,USD,1"], "fx.csv:2: currency 'USD' is not one of EUR, GBP"),
        (["date,currency,rate", "2025-01-01,EUR,0.9", "2025-01-01,EUR,0.91"], "fx.csv:3: second EUR rate for 2025-01-01"),
        (["date,currency,rate", "2025-01-01,EUR,1e"], "fx.csv:2: rate '1e' is not a decimal number"),
        ([], "fx.csv:1: empty file"),
    ],
)
def test_valuation__bad_fx_csv_is_one_line_naming_file_and_line(lines, message):
    with pytest.raises(InputError) as err:
        parse_fx_csv(lines, "fx.csv")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_valuation__fx_lookback_is_at_most_four_days():
    fx = parse_fx_csv(["date,currency,rate", "2025-04-17,EUR,0.88"], "fx.csv")  # Thursday before Good Friday
    assert fx.rate("EUR", date(2025, 4, 21)) == (D("0.88"), date(2025, 4, 17))  # Easter Monday
    assert fx.rate("EUR", date(2025, 4, 22)) is None
