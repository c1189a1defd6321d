"""The simulator's WebSocket streams (importers/backpack/simulator/ws.py) against WEBSOCKET.md."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from importers.backpack.signing import sign
from importers.backpack.simulator.server import serve_in_thread
from importers.backpack.simulator.ws import WsFaultPlan, WsFaultSpecError, subscribe_message

VECTOR_SEED = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="  # bytes 0x01..0x20


def signed(key: str, secret: str, params, ts: int | None = None, window: int = 5000) -> str:
    ts = int(time.time() * 1000) if ts is None else ts
    return json.dumps({"method": "SUBSCRIBE", "params": params,
                       "signature": [key, sign(secret, subscribe_message(ts, window)), str(ts), str(window)]})


def read_all(ws, quiet: float = 0.4, limit: int = 100_000) -> list[dict]:
    out = []
    while len(out) < limit:
        try:
            out.append(json.loads(ws.recv(timeout=quiet)))
        except (TimeoutError, ConnectionClosed):
            break
    return out


@pytest.fixture(scope="module")
def live_sim():
    with serve_in_thread(seed=3, fills=300, live={"fills": 40, "rate": 0, "mark_interval_s": 0}) as h:
        yield h


def test_subscribe_signature_matches_the_reference_vector():
    msg = subscribe_message(1614550000000, 5000)
    assert msg == "instruction=subscribe&timestamp=1614550000000&window=5000"
    assert sign(VECTOR_SEED, msg) == "yBAaT13kqiWSAUgb7fMAYPPcROr7MHp0omxnGgQDliC4/KJP1mGhfn4Yx06F7LWdgriEnuPfc0ThMrJz3z8zDw=="


@pytest.mark.parametrize("case", ["forged", "expired", "future", "missing", "wide_window", "other_key"])
def test_a_bad_subscribe_frame_is_refused_and_the_connection_stays_open(case):
    with serve_in_thread(seed=3, fills=120, live={"fills": 5, "rate": 0, "mark_interval_s": 0}) as h:
        key, secret = h.accounts["main"]
        _, other_secret = h.accounts["sub1"]
        now = int(time.time() * 1000)
        frames = {
            "forged": signed(key, other_secret, ["account.orderUpdate"]),
            "expired": signed(key, secret, ["account.orderUpdate"], ts=now - 6000),
            "future": signed(key, secret, ["account.orderUpdate"], ts=now + 60_000),
            "missing": json.dumps({"method": "SUBSCRIBE", "params": ["account.orderUpdate"]}),
            "wide_window": signed(key, secret, ["account.orderUpdate"], window=60_001),
            "other_key": signed("ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=", VECTOR_SEED, ["account.orderUpdate"]),
        }
        with connect(h.ws_url) as ws:
            ws.send(frames[case])
            got = read_all(ws)
            assert len(got) == 1 and set(got[0]) == {"id", "error"}, got
            assert got[0]["id"] is None and isinstance(got[0]["error"]["code"], int) and got[0]["error"]["message"]
            assert h.app.ws.refused == 1
            # still open: a correct frame on the same connection is served
            ws.send(signed(key, secret, ["account.orderUpdate"]))
            events = read_all(ws)
            assert events and all(e["stream"] == "account.orderUpdate" for e in events)


def test_an_id_is_echoed_and_an_unknown_stream_is_4006(live_sim):
    with connect(live_sim.ws_url) as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["depth.NOPE_USDC"], "id": 7}))
        assert read_all(ws) == [{"id": 7, "error": {"code": 4006, "message": "Invalid stream"}}]
        ws.send("not json")
        assert "error" in read_all(ws)[0]


def test_live_fills_are_the_rest_fills_and_positions_end_at_the_rest_position(live_sim):
    key, secret = live_sim.accounts["main"]
    account = live_sim.world.main
    rest_fills = {(f["symbol"], f["tradeId"], f["orderId"]): f for f in account.tables["fills"].records()}
    with connect(live_sim.ws_url) as ws:
        ws.send(signed(key, secret, ["account.orderUpdate", "account.positionUpdate"]))
        got = read_all(ws)
    orders = [m["data"] for m in got if m["stream"] == "account.orderUpdate"]
    fills = [d for d in orders if d["e"] == "orderFill"]
    assert len(fills) >= 40
    seen = set()
    for d in orders:  # orderAccepted precedes every fill of its order; z is cumulative
        if d["e"] == "orderAccepted":
            seen.add(d["i"])
        assert d["i"] in seen
        assert isinstance(d["E"], int) and isinstance(d["T"], int) and isinstance(d["i"], str)
    z: dict[str, Decimal] = {}
    for d in fills:
        rest = rest_fills[(d["s"], d["t"], d["i"])]
        assert (d["l"], d["L"], d["n"], d["N"], d["S"], d["m"]) == (
            rest["quantity"], rest["price"], rest["fee"], rest["feeSymbol"], rest["side"], rest["isMaker"])
        z[d["i"]] = z.get(d["i"], Decimal(0)) + Decimal(d["l"])
        assert Decimal(d["z"]) == z[d["i"]]
    positions = [m["data"] for m in got if m["stream"] == "account.positionUpdate"]
    assert positions
    if live_sim.app.ws.replay(account).start_net:  # positions open at subscribe: a snapshot without e first
        assert "e" not in positions[0] and positions[0]["s"] in live_sim.app.ws.replay(account).start_net
    last = {}
    for d in positions:
        last[d["s"]] = d
    rest_pos = {p["symbol"]: Decimal(p["netQuantity"]) for p in account.positions}
    assert {s: Decimal(d["q"]) for s, d in last.items() if Decimal(d["q"]) != 0} == rest_pos


def test_mark_price_stream():
    with serve_in_thread(seed=3, fills=120, live={"mark_interval_s": 0.1}) as h:
        with connect(h.ws_url) as ws:
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["markPrice.SOL_USDC_PERP"]}))
            got = read_all(ws, quiet=0.35, limit=3)
    assert len(got) == 3 and all(m["stream"] == "markPrice.SOL_USDC_PERP" for m in got)
    d = got[0]["data"]
    assert d["e"] == "markPrice" and Decimal(d["p"]) == h.world.marks["SOL_USDC_PERP"]
    assert d["n"] % 3_600_000 == 0 and d["n"] < 10**13  # next funding time in ms


def test_stream_faults_drop_duplicate_and_miss_messages():
    with serve_in_thread(seed=3, fills=300, live={"fills": 100, "rate": 0, "mark_interval_s": 0},
                         ws_faults="missing=0.1,duplicate=0.1,seed=5") as h:
        key, secret = h.accounts["main"]
        with connect(h.ws_url) as ws:
            ws.send(signed(key, secret, ["account.orderUpdate"]))
            got = read_all(ws)
        events = len(h.app.ws.replay(h.world.main).events) - sum(
            1 for e in h.app.ws.replay(h.world.main).events if e.stream != "account.orderUpdate")
        keys = [json.dumps(m["data"] | {"E": 0}, sort_keys=True) for m in got]
        assert len(set(keys)) < events  # some never arrived
        assert len(keys) > len(set(keys))  # some arrived twice
    with serve_in_thread(seed=3, fills=300, live={"fills": 100, "rate": 0, "mark_interval_s": 0},
                         ws_faults="drop=0.05,seed=1") as h:
        key, secret = h.accounts["main"]
        with connect(h.ws_url) as ws:
            ws.send(signed(key, secret, ["account.orderUpdate"]))
            got = read_all(ws)
        assert ws.close_code == 1001  # dropped by the server mid-stream
        assert 0 < len(got) < 100


def test_ws_fault_spec_errors():
    assert WsFaultPlan.parse("") is None
    with pytest.raises(WsFaultSpecError, match="unknown ws fault"):
        WsFaultPlan.parse("lag=0.1")
    with pytest.raises(WsFaultSpecError, match="outside"):
        WsFaultPlan.parse("drop=2")
