"""The simulator's generated price path: klines inside the history and after it."""

from __future__ import annotations

from decimal import Decimal

import orjson

from importers.backpack.simulator.generate import HISTORY_DAYS, HISTORY_START_MS
from importers.backpack.simulator.markets import HOUR_MS, MAX_BARS, PricePath

END = HISTORY_START_MS + HISTORY_DAYS * 86_400_000


def test_after_the_history_the_market_stays_at_its_last_price_with_no_trades():
    path = PricePath(7, HISTORY_START_MS, END)
    last = path.price_at("BTC_USDC_PERP", END - 1)
    bars = path.bars("BTC_USDC_PERP", "1h", END - 2 * HOUR_MS, END + 3 * HOUR_MS)
    assert [b["start"][11:13] for b in bars] == ["22", "23", "00", "01", "02", "03"]
    inside, after = bars[:2], bars[2:]
    assert all(int(b["trades"]) > 0 for b in inside) and Decimal(inside[-1]["close"]) == last
    assert all(b["trades"] == "0" and Decimal(b["volume"]) == 0 for b in after)
    assert all(Decimal(b[k]) == last for b in after for k in ("open", "high", "low", "close"))


def test_a_year_end_after_the_history_has_its_minute_bar():
    path = PricePath(7, HISTORY_START_MS, END)
    ws = 1_767_225_540  # 2025-12-31T23:59:00Z, months after the history's end
    bars = path.bars("SOL_USDC_PERP", "1m", ws * 1000, (ws + 59) * 1000)
    assert len(bars) == 1 and bars[0]["end"] == "2026-01-01 00:00:00"
    assert Decimal(bars[0]["close"]) == path.price_at("SOL_USDC_PERP", END - 1)


def test_at_most_max_bars_across_the_history_end():
    path = PricePath(7, HISTORY_START_MS, END)
    bars = path.bars("BTC_USDC", "1m", END - 10 * 60_000, END + 5 * 86_400_000)
    assert len(bars) == MAX_BARS


def test_a_second_sub_account_is_opt_in_and_leaves_the_default_world_alone():
    from importers.backpack.simulator.generate import generate_world

    one = generate_world(5, 400)
    again = generate_world(5, 400)
    two = generate_world(5, 400, subaccounts=2)
    assert [a.name for a in one.accounts] == ["main", "sub1"] and [a.name for a in two.accounts] == ["main", "sub1", "sub2"]
    assert one.accounts[0].book.spot == again.accounts[0].book.spot
    sub2 = two.accounts[2]
    table = sub2.tables["deposits"]
    deposits = [orjson.loads(table.row(i)) for i in range(len(table))]
    assert any(r.get("source") == "internal" and r.get("symbol") == "SOL" for r in deposits)


def test_position_ids_are_unique_per_account_even_when_the_hash_repeats():
    """The simulator's position ids are a 32-bit hash of (market, time, order): at 1M fills a few collide. An
    id is never handed out twice, or a settlement naming it would be attributed to the wrong market."""
    from importers.backpack.simulator.book import _position_id

    taken: set[str] = set()
    first = _position_id("SOL_USDC_PERP", 1000, "42", taken)
    again = _position_id("SOL_USDC_PERP", 1000, "42", taken)  # the same hash input: a collision by construction
    assert first != again and {first, again} == taken
    assert _position_id("SOL_USDC_PERP", 1000, "42", set()) == first  # deterministic: a replay hands out the same ids
