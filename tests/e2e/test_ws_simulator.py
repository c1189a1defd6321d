"""The simulator's WebSocket streams (importers/backpack/simulator/ws.py) against WEBSOCKET.md."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from importers.backpack.signing import sign
from importers.backpack.simulator.generate import generate_world
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


def _raw_upgrade(url: str):
    """A bare TCP WebSocket client that never answers a Ping (the libraries all do)."""
    import base64
    import os
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET / HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    return sock, head.split(b"\r\n\r\n", 1)[1]


def _opcodes(sock, buf: bytes, until: float) -> list[int]:
    ops = []
    while time.monotonic() < until:
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            start = 2 + (2 if n == 126 else 8 if n == 127 else 0)
            if n >= 126 and len(buf) < start:
                break
            if n == 126:
                n = int.from_bytes(buf[2:4], "big")
            elif n == 127:
                n = int.from_bytes(buf[2:10], "big")
            if len(buf) < start + n:
                break
            ops.append(buf[0] & 0x0F)
            buf = buf[start + n:]
            if ops[-1] == 0x8:
                return ops
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        buf += chunk
    return ops


def test_the_server_pings_and_closes_a_connection_that_never_pongs():
    with serve_in_thread(seed=3, fills=120, live={"ping_interval_s": 0.3, "ping_timeout_s": 0.5, "mark_interval_s": 0}) as h:
        sock, rest = _raw_upgrade(h.ws_url)
        sock.settimeout(0.2)
        try:
            ops = _opcodes(sock, rest, time.monotonic() + 5)
        finally:
            sock.close()
        assert 0x9 in ops and ops[-1] == 0x8  # a Ping, then a Close since no Pong came
        # a client that answers the pings stays connected past the timeout
        with connect(h.ws_url) as ws:
            time.sleep(1.2)
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["depth.NOPE_USDC"]}))
            assert "error" in json.loads(ws.recv(timeout=2))


def test_a_scenario_sets_the_live_replay(tmp_path):
    import orjson

    from importers.backpack.simulator.scenario import ScenarioError, load_scenario, scenario_of

    doc = scenario_of(generate_world(3, 120))
    doc["live"] = {"fills": 7, "rate": 0, "mark_interval_s": 0}
    path = tmp_path / "s.json"
    path.write_bytes(orjson.dumps(doc))
    world = load_scenario(path)
    assert world.live == doc["live"]
    with serve_in_thread(world=world) as h:
        key, secret = h.accounts["main"]
        with connect(h.ws_url) as ws:
            ws.send(signed(key, secret, ["account.orderUpdate"]))
            fills = [m for m in read_all(ws) if m["data"]["e"] == "orderFill"]
        assert len(fills) >= 7
    doc["live"] = 5
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(ScenarioError, match="live"):
        load_scenario(path)


def test_simulate_cli_announces_ws_url_and_refuses_a_bad_ws_fault_spec():
    import subprocess
    import sys

    from importers.backpack.simulator.server import run_cli

    assert run_cli("127.0.0.1", 0, 1, 100, None, None, None, ws_faults="lag=1") == 2
    proc = subprocess.Popen([sys.executable, "-m", "reconcile.cli", "simulate", "--fills", "120", "--live-fills", "5",
                             "--live-rate", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["ws_url"] == info["base_url"].replace("http://", "ws://") + "/"
        with connect(info["ws_url"]) as ws:
            ws.send(signed(info["api_key"], info["api_secret"], ["account.orderUpdate"]))
            assert any(m["data"]["e"] == "orderFill" for m in read_all(ws))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
