"""The served state is exactly what the served history implies (docs/assumptions.md), recomputed here with
plain independent arithmetic over what the wire returns; plus determinism, klines and account content."""

from __future__ import annotations

import decimal

from collections import defaultdict
from decimal import Decimal

from importers.backpack.simulator._time import parse_ts_ms
from importers.backpack.simulator.generate import generate_world

STREAMS = {
    "fills": ("/wapi/v1/history/fills", "fillHistoryQueryAll"),
    "settlements": ("/wapi/v1/history/settlement", "settlementHistoryQueryAll"),
    "interest": ("/wapi/v1/history/interest", "interestHistoryQueryAll"),
    "borrowLend": ("/wapi/v1/history/borrowLend", "borrowHistoryQueryAll"),
    "dust": ("/wapi/v1/history/dust", "dustHistoryQueryAll"),
    "deposits": ("/wapi/v1/capital/deposits", "depositQueryAll"),
    "withdrawals": ("/wapi/v1/capital/withdrawals", "withdrawalQueryAll"),
    "rfqFills": ("/wapi/v1/history/rfq/fill", "rfqFillHistoryQueryAll"),
    "quoteFills": ("/wapi/v1/history/quote/fill", "quoteFillHistoryQueryAll"),
    "funding": ("/wapi/v1/history/funding", "fundingHistoryQueryAll"),
    "orders": ("/wapi/v1/history/orders", "orderHistoryQueryAll"),
}
D = Decimal


def fetch_all(signed_get, account="main") -> dict[str, list[dict]]:
    out = {}
    for name, (path, instruction) in STREAMS.items():
        rows, offset = [], 0
        while True:
            batch = signed_get(path, instruction, {"limit": "1000", "offset": str(offset)}, account=account).json()
            rows += batch
            if len(batch) < 1000:
                break
            offset += 1000
        out[name] = rows
    return out


def expected_state(h: dict[str, list[dict]]):
    spot: dict[str, Decimal] = defaultdict(D)
    lent: dict[str, Decimal] = defaultdict(D)
    owed: dict[str, Decimal] = defaultdict(D)
    for f in h["fills"]:
        if f["symbol"].endswith("_PERP"):
            continue
        base, quote = f["symbol"].split("_")[:2]
        q, p = D(f["quantity"]), D(f["price"])
        if f["side"] == "Bid":
            spot[base] += q
            spot[quote] -= q * p
        else:
            spot[base] -= q
            spot[quote] += q * p
        spot[f["feeSymbol"]] -= D(f["fee"])
    for s in h["settlements"]:
        spot["USDC"] += D(s["quantity"])
    for i in h["interest"]:
        if i["paymentType"] == "Lend":
            lent[i["symbol"]] += D(i["quantity"])
        elif i["paymentType"] in ("Borrow", "EntryFee"):
            owed[i["symbol"]] += D(i["quantity"])
        elif i["paymentType"] == "UnrealizedPositivePnl":
            spot["USDC"] += D(i["quantity"])
        else:
            spot["USDC"] -= D(i["quantity"])
    for m in h["borrowLend"]:
        if m["source"] == "Interest":
            continue
        q, a = D(m["quantity"]), m["symbol"]
        if m["eventType"] == "Lend":
            spot[a] -= q
            lent[a] += q
        elif m["eventType"] == "LendRedeem":
            spot[a] += q
            lent[a] -= q
        elif m["eventType"] == "Borrow":
            spot[a] += q
            owed[a] += q
        else:
            spot[a] -= q
            owed[a] -= q
    for d in h["dust"]:
        spot[d["symbol"]] -= D(d["quantity"])
        spot["USDC"] += D(d["usdcReceived"])
    for d in h["deposits"]:
        if d["status"] == "confirmed":
            spot[d["symbol"]] += D(d["quantity"])
    for w in h["withdrawals"]:
        if w["status"] == "confirmed":
            spot[w["symbol"]] -= D(w["quantity"]) + D(w["fee"])
    for r in h["rfqFills"] + h["quoteFills"]:
        base, quote = r["symbol"].split("_")[:2]
        q, p = D(r["quantity"]), D(r["fillPrice"])
        sign = 1 if r["side"] == "Bid" else -1
        spot[base] += sign * q
        spot[quote] -= sign * q * p
        if "fee" in r:
            spot[r["feeSymbol"]] -= D(r["fee"])
    # perps (A-PERP-3): a fresh or flipped position opens at the fill's price, an increase moves the entry
    # to (|net| * entry + q * p) / (|net| + q) at 28 digits, a reduction leaves it
    perps = sorted((f for f in h["fills"] if f["symbol"].endswith("_PERP")),
                   key=lambda f: (parse_ts_ms(f["timestamp"]), f["tradeId"]))
    net: dict[str, Decimal] = defaultdict(D)
    entry: dict[str, Decimal] = defaultdict(D)
    c28 = decimal.Context(prec=28)
    for f in perps:
        s, q, p = f["symbol"], D(f["quantity"]), D(f["price"])
        d = q if f["side"] == "Bid" else -q
        before = net[s]
        net[s] += d
        if before == 0:
            entry[s] = p
        elif (before > 0) == (d > 0):
            entry[s] = c28.divide(c28.add(c28.multiply(abs(before), entry[s]), c28.multiply(q, p)), c28.add(abs(before), q))
        elif net[s] != 0 and (net[s] > 0) != (before > 0):
            entry[s] = p
    positions = {s: (n, entry[s]) for s, n in net.items() if n != 0}
    return spot, lent, owed, positions


def test_state__balances_equal_replayed_history(signed_get):
    for account in ("main", "sub1"):
        spot, _, _, _ = expected_state(fetch_all(signed_get, account))
        served = signed_get("/api/v1/capital", "balanceQuery", account=account).json()
        assert {a: D(b["available"]) + D(b["locked"]) + D(b["staked"]) for a, b in served.items()} == \
            {a: v for a, v in spot.items() if v != 0}
        assert all(v >= 0 for v in spot.values())


def test_state__positions_and_borrow_lend_equal_replayed_history(signed_get):
    _, lent, owed, positions = expected_state(fetch_all(signed_get))
    served = signed_get("/api/v1/position", "positionQuery").json()
    assert {p["symbol"]: (D(p["netQuantity"]), D(p["entryPrice"])) for p in served} == positions
    assert len(positions) == 2
    bl = signed_get("/api/v1/borrowLend/positions", "borrowLendPositionQuery").json()
    expected = {a: lent[a] - owed[a] for a in set(lent) | set(owed) if lent[a] - owed[a] != 0}
    assert {p["symbol"]: D(p["netQuantity"]) for p in bl} == expected
    assert any(v > 0 for v in expected.values()) and any(v < 0 for v in expected.values())
    collateral = signed_get("/api/v1/capital/collateral", "collateralQuery").json()
    by_asset = {c["symbol"]: c for c in collateral["collateral"]}
    for asset, v in lent.items():
        if v:
            assert D(by_asset[asset]["lendQuantity"]) == v


def test_state__position_filters(signed_get):
    one = signed_get("/api/v1/position", "positionQuery", {"symbol": "SOL_USDC_PERP"}).json()
    assert [p["symbol"] for p in one] == ["SOL_USDC_PERP"]
    assert signed_get("/api/v1/position", "positionQuery", {"marketType": "SPOT"}).json() == []


def test_state__generated_content(signed_get, sim):
    h = fetch_all(signed_get)
    sub = fetch_all(signed_get, "sub1")
    fills = h["fills"]
    assert len(fills) == 600
    symbols = {f["symbol"] for f in fills}
    assert {"SOL_USDC", "BTC_USDC", "ETH_USDC", "USDT_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP"} <= symbols
    times = sorted(parse_ts_ms(f["timestamp"]) for f in fills)
    assert times[-1] - times[0] >= 365 * 86_400_000
    assert all(f["fee"] == "0" or D(f["fee"]) == 0 for f in fills if f["symbol"] == "USDT_USDC")
    base_fee = {f["feeSymbol"] == f["symbol"].split("_")[0] for f in fills
                if f["side"] == "Bid" and not f["symbol"].endswith("_PERP") and f["symbol"] != "USDT_USDC"}
    assert base_fee == {True}  # A-FEE-1: the asset received
    assert sorted(f["systemOrderType"] for f in fills if f["systemOrderType"]) == ["LiquidatePositionOnAdl", "LiquidatePositionOnBook"]
    order_ids = {o["id"] for o in h["orders"]}
    assert {f["orderId"] for f in fills} <= order_ids
    sources = {s["source"] for s in h["settlements"]}
    assert {"FundingPayment", "RealizePnl", "TradingFees"} <= sources
    funding_settled = sorted(D(s["quantity"]) for s in h["settlements"] if s["source"] == "FundingPayment")
    assert funding_settled == sorted(D(f["quantity"]) for f in h["funding"]) and funding_settled
    kinds = {i["paymentType"] for i in h["interest"]}
    assert {"Lend", "Borrow"} <= kinds
    assert {"Lend", "LendRedeem", "Borrow", "BorrowRepay"} <= {m["eventType"] for m in h["borrowLend"]}
    assert h["dust"] and h["rfqFills"] and h["quoteFills"]
    assert {d["status"] for d in h["deposits"]} > {"confirmed"}
    assert {w["status"] for w in h["withdrawals"]} > {"confirmed"}
    assert any(D(w["fee"]) > 0 for w in h["withdrawals"] if w["status"] == "confirmed")
    internal_out = [w for w in h["withdrawals"] if w["isInternal"]]
    internal_in = [d for d in sub["deposits"] if d["source"] == "internal"]
    assert len(internal_out) == 1 and len(internal_in) == 1
    assert internal_out[0]["quantity"] == internal_in[0]["quantity"]
    assert isinstance(fills[0]["tradeId"], int) and isinstance(fills[0]["orderId"], str)
    assert isinstance(h["deposits"][0]["id"], int) and "fiatAmount" in h["deposits"][0]
    fracs = {len(r["createdAt"].partition(".")[2]) for r in h["deposits"]}
    assert len(fracs | {len(f["timestamp"].partition(".")[2]) for f in fills}) >= 3  # varying digits


def test_state__deterministic_by_seed(sim_world):
    again = generate_world(7, 600)
    other = generate_world(8, 600)
    for name in ("fills", "settlements", "deposits"):
        assert again.main.tables[name].blob == sim_world.main.tables[name].blob
    assert again.main.state == sim_world.main.state
    assert again.main.api_key == sim_world.main.api_key
    assert other.main.tables["fills"].blob != sim_world.main.tables["fills"].blob
    assert other.main.api_key != sim_world.main.api_key


def test_state__klines_contain_fill_prices(signed_get, sim_client):
    fills = signed_get("/wapi/v1/history/fills", "fillHistoryQueryAll", {"limit": "1000"}).json()
    for f in fills[::7]:
        ms = parse_ts_ms(f["timestamp"])
        start = ms // 60_000 * 60
        bars = sim_client.get("/api/v1/klines", params={"symbol": f["symbol"], "interval": "1m",
                                                        "startTime": str(start), "endTime": str(start + 59)}).json()
        assert len(bars) == 1, (f, bars)
        assert D(bars[0]["low"]) <= D(f["price"]) <= D(bars[0]["high"]), (f, bars)
    day = sim_client.get("/api/v1/klines", params={"symbol": "BTC_USDC_PERP", "interval": "1month",
                                                   "startTime": "1725148800"}).json()
    assert len(day) >= 13 and day[0]["start"] == "2024-09-01 00:00:00"


def test_state__public_endpoints(sim_client):
    assert sim_client.get("/api/v1/ping").text == "pong"
    assert sim_client.get("/api/v1/time").headers["content-type"].startswith("text/plain")
    markets = sim_client.get("/api/v1/markets").json()
    assert {m["marketType"] for m in markets} == {"SPOT", "PERP"}
    rfq = sim_client.get("/api/v1/markets", params={"marketType": "RFQ"}).json()
    assert {m["symbol"] for m in rfq} == {"SOL_USDC_RFQ", "BTC_USDC_RFQ"}
    assert sim_client.get("/api/v1/market", params={"symbol": "SOL_USDC"}).json()["baseSymbol"] == "SOL"
    marks = sim_client.get("/api/v1/markPrices").json()
    assert {m["symbol"] for m in marks} == {"SOL_USDC_PERP", "BTC_USDC_PERP", "ETH_USDC_PERP"}
    depth = sim_client.get("/api/v1/depth", params={"symbol": "SOL_USDC"}).json()
    assert D(depth["bids"][-1][0]) < D(depth["asks"][0][0])
    assert len(sim_client.get("/api/v1/trades", params={"symbol": "SOL_USDC", "limit": "5"}).json()) == 5
    rates = sim_client.get("/api/v1/fundingRates", params={"symbol": "SOL_USDC_PERP", "limit": "3"})
    assert len(rates.json()) == 3 and int(rates.headers["X-TOTAL"]) > 9000
    assert sim_client.get("/api/v1/ticker", params={"symbol": "ETH_USDC"}).json()["symbol"] == "ETH_USDC"
    assert len(sim_client.get("/api/v1/assets").json()) >= 5
    bad = sim_client.get("/api/v1/klines", params={"symbol": "SOL_USDC", "interval": "2s", "startTime": "0"})
    assert bad.status_code == 400 and "interval" in bad.json()["message"]
