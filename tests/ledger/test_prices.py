"""Valuation against the database (SQLite and PostgreSQL): bulk writes, sources, unpriced events."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from ledger.inputs import InputError
from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash, deposit, trade, withdrawal
from ledger.prices import Bar, store_bars, unpriced_count, unpriced_events, value_ledger
from ledger.schema import Account, Asset, JournalEntry, Posting
from ledger.valuation import FxGap, ValuationSettings, bar_start

T = datetime(2025, 3, 7, 12, 34, 56, tzinfo=timezone.utc)
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


def post(engine, *entries):
    with engine.begin() as conn:
        Journal(conn).post(list(entries))


def src(key: str, t: datetime = T) -> Source:
    return Source("main", "test", key, t)


def prices_of(engine, key: str) -> dict[tuple[str, str], tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Account.c.name, Asset.c.symbol, Posting.c.unit_price, Posting.c.price_currency, Posting.c.price_source)
            .join(Account, Account.c.id == Posting.c.account_id).join(Asset, Asset.c.id == Posting.c.asset_id)
            .join(JournalEntry, JournalEntry.c.id == Posting.c.entry_id).where(JournalEntry.c.entry_key == f"main:{key}")
        )
        return {(a, s): (p, c, so) for a, s, p, c, so in rows}


def fill(key="f1", fee_asset="USDC", fee="0.3"):
    return trade(src(key), kind="spot-trade", base="SOL", quote="USDC", side="buy", quantity=D("2"), price=D("150.5"),
                 fee=D(fee), fee_asset=fee_asset)


def test_prices__stablecoin_par_and_fill_from_its_own_price(engine):
    post(engine, fill())
    report = value_ledger(engine, ValuationSettings())
    p = prices_of(engine, "f1")
    assert p["Assets:Backpack:main:Spot:SOL", "SOL"] == (D("150.5"), "USD", "trade @150.5 USDC")
    assert p["Equity:Trading", "SOL"][0] == D("150.5")  # every posting of the asset in the entry
    assert p["Assets:Backpack:main:Spot:USDC", "USDC"] == (D(1), "USD", "stablecoin par")
    assert report.priced == 2 and report.unpriced == 0
    with engine.connect() as conn:
        assert unpriced_count(conn) == 0


def test_prices__fee_in_third_asset_valued_from_cached_kline(engine):
    post(engine, fill(fee_asset="BPX", fee="1.5"))
    with engine.begin() as conn:
        store_bars(conn, symbol="BPX_USDC", interval="1m", span=(bar_start(T, "1m"), bar_start(T, "1m") + 60),
                   bars=[Bar(bar_start(T, "1m"), D("0.2"), D("0.3"), D("0.1"), D("0.25"))], fetched_at=NOW)
    value_ledger(engine, ValuationSettings())
    p = prices_of(engine, "f1")
    assert p["Expenses:Fees:Trading", "BPX"] == (D("0.25"), "USD", "kline BPX_USDC 1m 2025-03-07T12:34Z close")


def test_prices__missing_price_is_unpriced_with_reason_and_counted(engine):
    post(engine, deposit(src("d1"), asset="JTO", quantity=D("3"), internal=False), fill())
    with engine.connect() as conn:
        assert unpriced_count(conn) == 2  # not valued yet counts too
        assert unpriced_events(conn)[0].reason.startswith("not valued yet")
    report = value_ledger(engine, ValuationSettings())
    assert report.unpriced == 1
    p = prices_of(engine, "d1")
    price, cur, source = p["Assets:Backpack:main:Spot:JTO", "JTO"]
    assert price is None and cur is None
    assert source == "unpriced: no cached JTO_USDC bar containing 2025-03-07T12:34:56Z: run `reconcile prices`"
    with engine.connect() as conn:
        assert unpriced_count(conn) == 1
        [ev] = unpriced_events(conn)
    assert (ev.entry_key, ev.asset, ev.quantity, ev.kind) == ("main:d1", "JTO", D("3"), "deposit")
    assert "no cached JTO_USDC bar" in ev.reason


def test_prices__rerun_prices_what_became_available_and_is_idempotent(engine):
    post(engine, withdrawal(src("w1"), asset="JTO", quantity=D("3"), fee=D("0.1"), internal=False))
    value_ledger(engine, ValuationSettings())
    with engine.begin() as conn:
        d = bar_start(T, "1d")
        store_bars(conn, symbol="JTO_USDC", interval="1d", span=(d, d + 86400), bars=[Bar(d, None, None, None, D("2.1"))],
                   fetched_at=NOW)
    report = value_ledger(engine, ValuationSettings())
    assert (report.full, report.entries, report.priced) == (False, 1, 1)
    assert prices_of(engine, "w1")["Expenses:Fees:Withdrawal", "JTO"][0] == D("2.1")
    again = value_ledger(engine, ValuationSettings())
    assert again.entries == 0  # nothing left to value
    post(engine, fill("f2"))  # a new sync
    assert value_ledger(engine, ValuationSettings()).entries == 1


def test_prices__user_price_file_overrides_and_keeps_source(engine, tmp_path):
    post(engine, fill())
    f = tmp_path / "prices.csv"
    f.write_text("time,asset,price,currency,source\n2025-03-07,SOL,140.25,USD,my broker statement\n")
    report = value_ledger(engine, ValuationSettings(), price_file=str(f))
    assert report.full
    p = prices_of(engine, "f1")
    assert p["Assets:Backpack:main:Spot:SOL", "SOL"] == (D("140.25"), "USD", f"user my broker statement ({f}:2)")


def test_prices__eur_via_fx_csv_and_gap_error(engine, tmp_path):
    post(engine, fill())
    fx = tmp_path / "fx.csv"
    fx.write_text("date,currency,rate\n2025-03-07,EUR,0.92\n")
    value_ledger(engine, ValuationSettings(currency="EUR"), fx_file=str(fx))
    p = prices_of(engine, "f1")
    assert p["Assets:Backpack:main:Spot:USDC", "USDC"] == (D("0.92"), "EUR", "stablecoin par; fx EUR 2025-03-07")
    assert p["Assets:Backpack:main:Spot:SOL", "SOL"][:2] == (D("138.46"), "EUR")
    post(engine, fill("f2")._replace(time=datetime(2025, 3, 20, tzinfo=timezone.utc)))
    with pytest.raises(FxGap) as err:
        value_ledger(engine, ValuationSettings(currency="EUR"), fx_file=str(fx))
    assert str(err.value).startswith(f"{fx}: no EUR rate for 2025-03-20") and "\n" not in str(err.value)
    assert prices_of(engine, "f1")["Assets:Backpack:main:Spot:SOL", "SOL"][1] == "EUR"  # nothing written


def test_prices__bad_price_file_is_input_error(engine, tmp_path):
    f = tmp_path / "prices.csv"
    f.write_text("time,asset,price,currency,source\n2025-03-07,SOL,1.2.3,USD,x\n")
    with pytest.raises(InputError, match=r"prices\.csv:2: price '1\.2\.3' is not a decimal number"):
        value_ledger(engine, ValuationSettings(), price_file=str(f))
    with pytest.raises(InputError, match=r"missing\.csv: file does not exist"):
        value_ledger(engine, ValuationSettings(), fx_file=str(tmp_path / "missing.csv"))


def test_prices__settings_object_like_the_config(engine):
    class Reporting:
        currency = "USD"
        stablecoin_policy = "par"
        price_file = None
        fx_file = None

    post(engine, cash(src("i1"), kind="interest-income", asset="USDC", quantity=D("0.5"), counter="Income:Interest"))
    assert value_ledger(engine, Reporting()).priced == 1
    assert prices_of(engine, "i1")["Income:Interest", "USDC"] == (D(1), "USD", "stablecoin par")
