"""The perpetual position engine (ledger/booking/perps.py): hand-checked sequences as data, and the
flat-to-flat property for every method.

Each case is fills ``(side, quantity, price, fee[, systemOrderType])`` at one-minute steps and, per
method, the realized rows expected ``(side, quantity, entry_price, exit_price, pnl, fees, close_kind)``
worked out by hand (in the comments), plus the position left open ``(net, average entry, exchange entry)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.booking.perps import PERP_METHODS, PerpEngine, PerpFill, book_perps, close_kind, exchange_unrealized, perp_method_for

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
D = Decimal


def fills(spec, market="SOL_USDC_PERP", account="main"):
    out = []
    for i, row in enumerate(spec):
        side, q, p, fee, *system = row
        out.append(PerpFill(f"{account}:fills:{i}", account, market, T0 + timedelta(minutes=i), side, D(q), D(p), D(fee), system[0] if system else None))
    return out


CASES = {
    # long 2 @100 (fee 0.2), sell 3 @110 (fee 0.33): closes 2 (pnl +20, fees 0.2 + 0.22), opens 1 short @110 (fee 0.11)
    "flip long to short in one fill": dict(
        fills=[("buy", "2", "100", "0.2"), ("sell", "3", "110", "0.33")],
        rows={m: [("long", "2", "100", "110", "20", "0.42", "user")] for m in PERP_METHODS},
        open=("-1", "110", "110"),
    ),
    # short 1 @50 and 1 @40 (entry 45), liquidated buying 2 @60: average pnl 2*(45-60) = -30 in two dated pieces;
    # fifo -10 and -20; the liquidation fee 1.2 splits 0.6/0.6, opening fees 0.05/0.04 follow the lots (average: pooled 0.045 each)
    "liquidation of a short": dict(
        fills=[("sell", "1", "50", "0.05"), ("sell", "1", "40", "0.04"), ("buy", "2", "60", "1.2", "LiquidatePositionOnBook")],
        rows={
            "average": [("short", "1", "45", "60", "-15", "0.645", "liquidation"), ("short", "1", "45", "60", "-15", "0.645", "liquidation")],
            "fifo": [("short", "1", "50", "60", "-10", "0.65", "liquidation"), ("short", "1", "40", "60", "-20", "0.64", "liquidation")],
        },
        open=None,
    ),
    # long 10 @100 (fee 1); sell 9 @110 (fee 0.9): +90; buy 1 @200 (fee 0.2): average entry (1*100 + 1*200)/2 = 150;
    # sell 2 @150 (fee 0.2): average 0 and 0; fifo: the lot @100 left (+50), the lot @200 (-50)
    "increase after a partial close": dict(
        fills=[("buy", "10", "100", "1"), ("sell", "9", "110", "0.9"), ("buy", "1", "200", "0.2"), ("sell", "2", "150", "0.2")],
        rows={
            "average": [("long", "9", "100", "110", "90", "1.8", "user"), ("long", "1", "150", "150", "0", "0.25", "user"),
                        ("long", "1", "150", "150", "0", "0.25", "user")],
            "fifo": [("long", "9", "100", "110", "90", "1.8", "user"), ("long", "1", "100", "150", "50", "0.2", "user"),
                     ("long", "1", "200", "150", "-50", "0.3", "user")],
        },
        open=None,
    ),
    # FIFO against average on the same fills: buys 1 @100, 1 @120, 1 @140 (no fees); sell 2 @130, then 1 @110.
    # average entry 120: +10, +10, then -10. fifo: +30 (lot 100), +10 (lot 120), then -30 (lot 140). Both total +10.
    "fifo against average": dict(
        fills=[("buy", "1", "100", "0"), ("buy", "1", "120", "0"), ("buy", "1", "140", "0"), ("sell", "2", "130", "0"), ("sell", "1", "110", "0")],
        rows={
            "average": [("long", "1", "120", "130", "10", "0", "user"), ("long", "1", "120", "130", "10", "0", "user"),
                        ("long", "1", "120", "110", "-10", "0", "user")],
            "fifo": [("long", "1", "100", "130", "30", "0", "user"), ("long", "1", "120", "130", "10", "0", "user"),
                     ("long", "1", "140", "110", "-30", "0", "user")],
        },
        open=None,
    ),
    # ADL takes 0.5 of a 2 @100 long at 130 (+15); a maker rebate (-0.01) on the opening is a negative fee.
    "ADL partial close, rebate": dict(
        fills=[("buy", "2", "100", "-0.01"), ("sell", "0.5", "130", "0", "LiquidatePositionOnAdl")],
        rows={m: [("long", "0.5", "100", "130", "15", "-0.0025", "adl")] for m in PERP_METHODS},
        open=("1.5", "100", "100"),
    ),
    # three opens, exchange entry (1*10 + 2*13)/3 = 12, then (3*12 + 3*9)/6 = 10.5
    "increases move the exchange entry": dict(
        fills=[("sell", "1", "10", "0"), ("sell", "2", "13", "0"), ("sell", "3", "9", "0")],
        rows={m: [] for m in PERP_METHODS},
        open=("-6", "10.5", "10.5"),
    ),
}


@pytest.mark.parametrize("method", PERP_METHODS)
@pytest.mark.parametrize("name", list(CASES))
def test_hand_checked_sequences(name, method):
    case = CASES[name]
    res = book_perps(fills(case["fills"]), method)
    got = [(r.side, r.quantity, r.entry_price, r.exit_price, r.pnl, r.fees, r.close_kind) for r in res.realized]
    want = [(s, D(q), D(e), D(x), D(p), D(f), k) for s, q, e, x, p, f, k in case["rows"][method]]
    assert got == want
    for r in res.realized:
        assert r.net == r.pnl - r.fees and r.method == method
    if case["open"] is None:
        assert res.positions == []
    else:
        (pos,) = res.positions
        assert (pos.quantity, pos.average_entry, pos.exchange_entry) == tuple(D(v) for v in case["open"])


def test_rows_name_their_lots_and_sources():
    res = book_perps(fills(CASES["fifo against average"]["fills"]), "fifo")
    assert [(r.lot_id, r.source) for r in res.realized] == [
        ("main:fills:0", "main:fills:3"), ("main:fills:1", "main:fills:3"), ("main:fills:2", "main:fills:4")]
    assert [r.opened for r in res.realized] == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    assert all(r.closed == T0 + timedelta(minutes=3) for r in res.realized[:2])


def test_flip_splits_its_fee_and_the_cycle():
    res = book_perps(fills(CASES["flip long to short in one fill"]["fills"]), "average")
    (cycle,) = res.cycles  # the long cycle ends inside the flip fill; the short one is still open
    assert cycle.cash_flow == D("20") and cycle.fees == D("0.42") and cycle.net == D("19.58") and cycle.difference == 0
    (pos,) = res.positions
    assert pos.lots[0].fee == D("0.11") and pos.lots[0].cost == D("110")


def test_markets_and_accounts_are_apart():
    a = fills([("buy", "1", "100", "0")], market="SOL_USDC_PERP")
    b = fills([("sell", "1", "50", "0")], market="BTC_USDC_PERP")
    c = fills([("sell", "1", "90", "0")], market="SOL_USDC_PERP", account="sub1")
    res = book_perps(sorted(a + b + c, key=lambda f: f.time), "fifo")
    assert res.realized == []
    assert sorted((p.account, p.market, p.quantity) for p in res.positions) == [
        ("main", "BTC_USDC_PERP", D(-1)), ("main", "SOL_USDC_PERP", D(1)), ("sub1", "SOL_USDC_PERP", D(-1))]


def test_exchange_entry_rounds_at_28_digits_and_unrealized():
    res = book_perps(fills([("buy", "1", "100", "0"), ("buy", "2", "101", "0")]), "average")
    (pos,) = res.positions
    assert pos.exchange_entry == D("100.6666666666666666666666667")  # 28 significant digits
    assert pos.cost == D(302)
    assert exchange_unrealized(pos.quantity, D("102"), pos.exchange_entry) == D("3.9999999999999999999999999")


def test_settings_and_kinds():
    assert perp_method_for("us") == "average" and perp_method_for("de", "fifo") == "fifo"
    with pytest.raises(ValueError):
        perp_method_for("us", "hifo")
    assert close_kind(None) == "user" and close_kind("LiquidatePositionOnBackstop") == "liquidation"
    assert close_kind("LiquidatePositionOnAdl") == "adl" and close_kind("SomethingNew") == "system"
    with pytest.raises(ValueError):
        PerpEngine("lifo")
    with pytest.raises(ValueError):
        PerpEngine().feed(PerpFill("x", "a", "M", T0, "buy", D(0), D(1), D(0)))


# -- the property: every sequence that ends flat conserves cash, for every method ------------------
_qty = st.integers(min_value=1, max_value=5000).map(lambda n: D(n).scaleb(-2))
_price = st.integers(min_value=1, max_value=10**7).map(lambda n: D(n).scaleb(-3))
_fee = st.integers(min_value=-100, max_value=10_000).map(lambda n: D(n).scaleb(-6))


@st.composite
def flat_sequences(draw):
    """Random fills on two markets; each market's last fill brings it back to flat."""
    out = []
    for market in ("SOL_USDC_PERP", "BTC_USDC_PERP"):
        net = D(0)
        for _ in range(draw(st.integers(min_value=1, max_value=12))):
            side = draw(st.sampled_from(("buy", "sell")))
            q = draw(_qty)
            out.append((market, side, q, draw(_price), draw(_fee), draw(st.sampled_from((None, None, "LiquidatePositionOnBook", "LiquidatePositionOnAdl")))))
            net += q if side == "buy" else -q
        if net:
            out.append((market, "sell" if net > 0 else "buy", abs(net), draw(_price), draw(_fee), None))
    order = draw(st.permutations(range(len(out))))
    # keep each market's own order, interleave the markets
    per = {m: [x for x in out if x[0] == m] for m in ("SOL_USDC_PERP", "BTC_USDC_PERP")}
    seq, idx = [], {m: 0 for m in per}
    for k in order:
        m = out[k][0]
        if idx[m] < len(per[m]):
            seq.append(per[m][idx[m]])
            idx[m] += 1
    for m in per:
        seq += per[m][idx[m]:]
    return [PerpFill(f"f{i}", "main", m, T0 + timedelta(seconds=i), s, q, p, fe, sy) for i, (m, s, q, p, fe, sy) in enumerate(seq)]


@settings(max_examples=150, deadline=None)
@given(flat_sequences())
def test_property_flat_sequence_realized_equals_cash_flow_less_fees(seq):
    for method in PERP_METHODS:
        res = book_perps(seq, method)
        assert res.positions == []
        for market in ("SOL_USDC_PERP", "BTC_USDC_PERP"):
            mine = [f for f in seq if f.market == market]
            cash = sum(((f.quantity * f.price) * (1 if f.side == "sell" else -1) for f in mine), D(0))
            fees = sum((f.fee for f in mine), D(0))
            rows = [r for r in res.realized if r.market == market]
            assert sum((r.net for r in rows), D(0)) == cash - fees
            assert sum((r.pnl for r in rows), D(0)) == cash
            assert sum((r.quantity for r in rows), D(0)) * 2 == sum((f.quantity for f in mine), D(0))
        assert all(c.difference == 0 and c.pnl == c.cash_flow for c in res.cycles)
