"""importers/watch.py and ledger/live.py without a server: frames, keys, gap detection, confirmation rules."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from importers.backpack.errors import ConfigError
from importers.backpack.signing import Credentials
from importers.watch import AccountStats, WatchOptions, _Session, subscribe_frame, ws_url_for
from ledger.db import make_engine, upgrade
from ledger.live import confirm_live_fills, fill_key
from ledger.store import RawIn, store_page
from ledger.journal import Journal
from ledger.store import Outcome

SEED = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
KEY = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="


def test_ws_url_is_derived_from_base_url():
    assert ws_url_for("https://api.backpack.exchange") == "wss://ws.backpack.exchange/"
    assert ws_url_for("http://127.0.0.1:8123") == "ws://127.0.0.1:8123/"
    assert ws_url_for("https://proxy.example:8443/api") == "wss://proxy.example:8443/"
    with pytest.raises(ConfigError):
        ws_url_for("ftp://x")


def test_subscribe_frame_is_the_reference_frame():
    frame = json.loads(subscribe_frame(Credentials.from_base64(KEY, SEED), ["account.orderUpdate"], 1614550000000, 5000))
    assert frame == {"method": "SUBSCRIBE", "params": ["account.orderUpdate"], "signature": [
        KEY, "yBAaT13kqiWSAUgb7fMAYPPcROr7MHp0omxnGgQDliC4/KJP1mGhfn4Yx06F7LWdgriEnuPfc0ThMrJz3z8zDw==",
        "1614550000000", "5000"]}


def test_fill_key_is_the_rest_natural_key():
    from importers.backpack.endpoints import ENDPOINTS

    rest = {"tradeId": 61234567, "orderId": "6712345678", "side": "Bid", "symbol": "SOL_USDC_PERP", "quantity": "1.00",
            "price": "142.10", "timestamp": "2026-01-01T00:01:00.456"}
    assert fill_key("SOL_USDC_PERP", 61234567, "6712345678", "Bid", "1.00", "142.10", 1) == ENDPOINTS["fills"].natural_key(rest)
    assert fill_key("SOL_USDC_PERP", None, "6712345678", "Bid", "1.00", "142.10", 7).startswith("ws:")
    assert fill_key("SOL_USDC_PERP", 0, "6712345678", "Bid", "1.00", "142.10", 7).startswith("ws:")


@pytest.fixture
def eng(tmp_path):
    e = make_engine(f"sqlite:///{tmp_path}/live.db")
    upgrade(e)
    yield e
    e.dispose()


def _session(eng) -> _Session:
    return _Session(eng, type("A", (), {"name": "main", "ws_url": "ws://x/", "window_ms": 5000, "credentials": None})(),
                    WatchOptions(), lambda s: None, lambda s: None, asyncio.Event(), AccountStats())


def _fill(oid: str, tid, qty: str, z: str, t: int, price: str = "100") -> bytes:
    return orjson.dumps({"stream": "account.orderUpdate", "data": {
        "e": "orderFill", "E": t + 5, "T": t, "s": "SOL_USDC", "i": oid, "S": "Bid", "t": tid, "l": qty, "L": price,
        "n": "0.01", "N": "SOL", "m": False, "z": z, "Z": "0", "X": "PartiallyFilled"}})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qtys=st.lists(st.integers(1, 50), min_size=1, max_size=8), keep=st.lists(st.booleans(), min_size=8, max_size=8),
       dup=st.lists(st.booleans(), min_size=8, max_size=8))
def test_a_gap_is_recorded_exactly_when_a_fill_before_a_received_one_is_missing(eng, qtys, keep, dup):
    """z is cumulative: a received fill whose z jumps by more than its l means earlier fills were lost; a
    lost last fill cannot be seen; duplicates are neither gaps nor second rows."""
    s = _session(eng)
    s.on_message(orjson.dumps({"stream": "account.orderUpdate", "data": {
        "e": "orderAccepted", "T": 1, "s": "SOL_USDC", "i": "9", "S": "Bid", "z": "0", "Z": "0", "X": "New"}}))
    z = 0
    missed_before_received = False
    lost = False
    for k, q in enumerate(qtys):
        z += q
        if not keep[k]:
            lost = True
            continue
        if lost:
            missed_before_received = True
            lost = False
        msg = _fill("9", 1000 + k, str(q), str(z), 10_000 + k)
        s.on_message(msg)
        if dup[k]:
            s.on_message(msg)
    assert (s.stats.gaps > 0) == missed_before_received
    assert len(s.batch.fills) == sum(1 for k in range(len(qtys)) if keep[k])
    assert s.stats.duplicates == sum(1 for k in range(len(qtys)) if keep[k] and dup[k])


def test_an_error_frame_right_after_subscribe_is_a_refusal(eng):
    from importers.watch import SubscriptionRefused

    s = _session(eng)
    with pytest.raises(SubscriptionRefused, match="refused the signed subscription"):
        s._handle(b'{"id":null,"error":{"code":4002,"message":"Invalid signature"}}', True)
    assert s._handle(b'{"id":null,"error":{"code":4006,"message":"Invalid stream"}}', False) == []


def _store_rest_fill(eng, rec: dict) -> None:
    from importers.backpack.endpoints import ENDPOINTS

    ep = ENDPOINTS["fills"]
    with eng.begin() as conn:
        store_page(conn, Journal(conn), venue_account="main", endpoint="fills",
                   records=[RawIn(ep.natural_key(rec), rec, ep.record_time(rec))],
                   decide=lambda raw, raw_id: Outcome("memo", (), None), cursor=None,
                   fetched_at=datetime.now(timezone.utc))


def test_confirmation_by_key_by_fallback_and_a_mismatch(eng):
    s = _session(eng)
    t0 = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
    s.on_message(_fill("1", 11, "1.5", "1.5", t0))
    s.on_message(_fill("2", None, "2", "2", t0 + 1000))  # no trade id: the fallback rule
    s.on_message(_fill("3", 13, "3", "3", t0 + 2000, price="100"))  # REST will say another price
    s.flush(force=True)
    base = {"clientId": None, "fee": "0.01", "feeSymbol": "SOL", "isMaker": False, "side": "Bid", "symbol": "SOL_USDC",
            "systemOrderType": None, "timestamp": "2026-01-01T00:00:00.001"}
    _store_rest_fill(eng, {**base, "orderId": "1", "tradeId": 11, "quantity": "1.5", "price": "100"})
    _store_rest_fill(eng, {**base, "orderId": "2", "tradeId": None, "quantity": "2", "price": "100"})
    _store_rest_fill(eng, {**base, "orderId": "3", "tradeId": 13, "quantity": "3", "price": "101"})
    with eng.begin() as conn:
        rep = confirm_live_fills(conn, "main", datetime(2026, 1, 2, tzinfo=timezone.utc))
        rows = dict(conn.execute(text("SELECT order_id, status FROM live_fills")).all())
        note = conn.execute(text("SELECT note FROM live_fills WHERE order_id = '3'")).scalar_one()
    assert (rep.confirmed, rep.mismatched) == (2, 1)
    assert rows == {"1": "confirmed", "2": "confirmed", "3": "mismatch"}
    assert "price 100 vs REST 101" in note


def test_a_fill_already_synced_is_confirmed_when_watch_stores_it(eng):
    rest = {"clientId": None, "fee": "0.01", "feeSymbol": "SOL", "isMaker": False, "side": "Bid", "symbol": "SOL_USDC",
            "systemOrderType": None, "timestamp": "2026-01-01T00:00:00.001", "orderId": "5", "tradeId": 55,
            "quantity": "1", "price": "100"}
    _store_rest_fill(eng, rest)
    s = _session(eng)
    s.on_message(_fill("5", 55, "1", "1", 1_767_225_600_001_000))
    s.flush(force=True)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT status FROM live_fills")).scalar_one() == "confirmed"


def test_rfq_stream_is_subscribed_when_the_ledger_holds_rfq_records(eng):
    from importers.backpack.endpoints import ENDPOINTS

    assert "account.rfqUpdate" not in _session(eng).streams
    rec = {"rfqId": "7", "clientId": None, "quoteId": "8", "symbol": "SOL_USDC_RFQ", "side": "Bid", "quantity": "1",
           "quoteQuantity": "100", "fillPrice": "100", "createdAt": "2026-01-01T00:00:00", "filledAt": "2026-01-01T00:00:01",
           "systemOrderType": None}
    ep = ENDPOINTS["rfqFill"]
    with eng.begin() as conn:
        store_page(conn, Journal(conn), venue_account="main", endpoint="rfqFill",
                   records=[RawIn(ep.natural_key(rec), rec, ep.record_time(rec))],
                   decide=lambda raw, raw_id: Outcome("memo", (), None), cursor=None, fetched_at=datetime.now(timezone.utc))
    s = _session(eng)
    assert s.streams == ["account.orderUpdate", "account.positionUpdate", "account.rfqUpdate"]
    # the requester's event carries the REST key of that fill: stored and confirmed at once
    s.on_message(orjson.dumps({"stream": "account.rfqUpdate", "data": {
        "e": "rfqFilled", "E": 2, "T": 1_767_225_601_000_000, "R": 7, "u": 8, "s": "SOL_USDC_RFQ", "S": "Bid", "q": "1",
        "p": "100", "X": "Filled"}}))
    s.flush(force=True)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT fill_key, status FROM live_fills")).all() == [("rfqFill:7:8", "confirmed")]
