"""The Backpack client against a fake exchange behind httpx.MockTransport (no network, no real sleeps)."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importers.backpack import client as C
from importers.backpack import endpoints as E
from importers.backpack.client import BackpackClient, TokenBucket
from importers.backpack.errors import (
    ApiError,
    AuthError,
    BackpackError,
    ConfigError,
    MalformedResponse,
    RecordError,
    RetryBudgetExhausted,
)
from importers.backpack.signing import Credentials, signing_string, verify

SEED_B64 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
PUBLIC_B64 = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
T0_S = T0.timestamp()


class FakeClock:
    def __init__(self, t: float = T0_S + 86_400 * 30) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def fill(n: int, moment: datetime, trade_id: int | None = None) -> dict:
    return {"clientId": None, "fee": "0.01", "feeSymbol": "USDC", "isMaker": False, "orderId": str(10_000 + n),
            "price": "100.5", "quantity": "1", "side": "Bid", "symbol": "SOL_USDC", "systemOrderType": None,
            "timestamp": iso(moment), "tradeId": n if trade_id is None else trade_id}


def deposit(n: int, moment: datetime) -> dict:
    return {"id": n, "symbol": "USDC", "quantity": "10", "createdAt": iso(moment), "source": "solana",
            "status": "confirmed", "fromAddress": None, "toAddress": "x", "transactionHash": None}


def dust(n: int, moment: datetime) -> dict:
    return {"id": n, "symbol": "BONK", "quantity": "5", "usdcReceived": "0.01", "timestamp": iso(moment)}


MAKERS = {"fills": fill, "deposits": deposit, "dust": dust}


class FakeExchange:
    """Implements offset/limit/sortDirection/from/to as REFERENCE.md §4 and A-PAGE-1..4 describe, and checks
    every signature. ``script`` holds failures served (in order) before normal handling."""

    def __init__(self, clock: FakeClock, *, server_offset_ms: int = 0, inclusive: bool = True) -> None:
        self.clock = clock
        self.server_offset_ms = server_offset_ms
        self.inclusive = inclusive
        self.rows: dict[str, list[dict]] = {}
        self.requests: list[httpx.Request] = []
        self.script: list[Callable[[httpx.Request], httpx.Response] | httpx.Response] = []
        self.after_page: Callable[[str, dict], None] | None = None
        self.time_calls = 0

    def now_ms(self) -> int:
        return int(self.clock.t * 1000) + self.server_offset_ms

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/api/v1/time":
            self.time_calls += 1
            return httpx.Response(200, text=str(self.now_ms()), headers={"content-type": "text/plain"})
        if self.script:
            item = self.script.pop(0)
            return item(request) if callable(item) else item
        ep = E.BY_PATH[path]
        if ep.signed:
            problem = self.auth_problem(request, ep)
            if problem:
                return httpx.Response(401, json={"code": "UNAUTHORIZED", "message": problem})
        if not ep.paged:
            return httpx.Response(200, json=self.rows.get(ep.name, {} if ep.shape == "object" else []))
        return httpx.Response(200, json=self.page(ep, dict(request.url.params)))

    def auth_problem(self, request: httpx.Request, ep: E.Endpoint) -> str | None:
        h = request.headers
        if not all(k in h for k in ("X-API-Key", "X-Signature", "X-Timestamp", "X-Window")):
            return "missing headers"
        params = {k: v for k, v in request.url.params.multi_items()}
        message = signing_string(ep.instruction, params, int(h["X-Timestamp"]), int(h["X-Window"]))
        if not verify(h["X-API-Key"], message, h["X-Signature"]):
            return "bad signature"
        ts, window, now = int(h["X-Timestamp"]), int(h["X-Window"]), self.now_ms()
        if now > ts + window or ts > now + window:
            return "Request has expired"
        return None

    def page(self, ep: E.Endpoint, q: dict) -> list[dict]:
        rows = list(self.rows.get(ep.name, []))
        if "from" in q or "to" in q:
            lo, hi = int(q.get("from", 0)), int(q.get("to", 2**62))
            def inside(r: dict) -> bool:
                ms = E.ts_ms(ep.record_time(r))
                return lo <= ms <= hi if self.inclusive else lo < ms < hi
            rows = [r for r in rows if inside(r)]
        rows.sort(key=lambda r: (ep.record_time(r), r.get("tradeId") or r.get("id") or 0))
        direction = q.get("sortDirection", E.DEFAULT_SORT_WHEN_ABSENT if ep.sort_direction else E.UNSORTED_ENDPOINT_ORDER)
        if direction == "Desc":
            rows.reverse()
        offset, limit = int(q.get("offset", 0)), int(q.get("limit", E.HISTORY_DEFAULT_LIMIT))
        out = rows[offset:offset + limit]
        if self.after_page:
            self.after_page(ep.name, q)
        return out


def make(clock: FakeClock | None = None, **kw) -> tuple[BackpackClient, FakeExchange, FakeClock]:
    clock = clock or FakeClock()
    server = FakeExchange(clock, **{k: kw.pop(k) for k in ("server_offset_ms", "inclusive") if k in kw})
    kw.setdefault("rng", random.Random(7))
    client = BackpackClient("https://api.backpack.test", Credentials.from_base64(PUBLIC_B64, SEED_B64),
                            transport=httpx.MockTransport(server), sleep=clock.sleep, clock=clock.time, **kw)
    return client, server, clock


def signed(server: FakeExchange) -> list[httpx.Request]:
    return [r for r in server.requests if "X-Signature" in r.headers]


def walk(client: BackpackClient, name: str, cursor=None, **kw) -> tuple[list[dict], dict | None, int]:
    records, last, pages = [], cursor, 0
    for page in client.iter_pages(name, cursor, **kw):
        assert page.endpoint == name
        json.dumps(page.cursor)  # JSON-serialisable
        records.extend(page.records)
        last = page.cursor
        pages += 1
    return records, last, pages


def keys(name: str, records: list[dict]) -> list[str]:
    return [E.get(name).natural_key(r) for r in records]


# --- headers, window, clock --------------------------------------------------------------------------------


def test_headers__signed_request_carries_four_headers_and_verifies():
    client, server, clock = make(window_ms=7000)
    client.balances()
    (req,) = signed(server)
    h = req.headers
    assert h["X-API-Key"] == PUBLIC_B64 and h["X-Window"] == "7000"
    assert h["X-Timestamp"] == str(int(clock.t * 1000))
    message = f"instruction=balanceQuery&timestamp={h['X-Timestamp']}&window=7000"
    assert verify(PUBLIC_B64, message, h["X-Signature"])


def test_headers__booleans_lowercase_in_url_and_signature():
    client, server, _ = make()
    server.rows["deposits"] = []
    list(client.iter_pages("deposits", params={"excludePlatform": True}))
    req = signed(server)[0]
    assert "excludePlatform=true" in str(req.url) and "True" not in str(req.url)


def test_headers__raw_value_signed_and_percent_encoded_on_wire():
    client, server, _ = make()
    server.rows["borrowLend"] = []
    list(client.iter_pages("borrowLend", params={"sources": "AutoLend,Manual"}))
    req = signed(server)[0]
    assert "sources=AutoLend%2CManual" in str(req.url)
    assert unquote(req.url.query.decode()).count("AutoLend,Manual") == 1  # the fake server verified the raw form


def test_headers__public_endpoint_unsigned():
    client, server, _ = make()
    server.rows["markets"] = [{"symbol": "SOL_USDC", "baseSymbol": "SOL", "quoteSymbol": "USDC", "marketType": "SPOT"}]
    assert client.markets()[0]["symbol"] == "SOL_USDC"
    assert not signed(server) and server.time_calls == 0


@pytest.mark.parametrize("window", [0, -1, 60001, "5000", True, 5000.0])
def test_window__invalid_rejected_before_any_request(window):
    with pytest.raises(ConfigError, match="X-Window"):
        make(window_ms=window)


def test_window__maximum_accepted():
    client, server, _ = make(window_ms=60000)
    client.balances()
    assert signed(server)[0].headers["X-Window"] == "60000"


def test_clock__offset_beyond_a_second_corrects_timestamp_once():
    client, server, clock = make(server_offset_ms=-7_500)
    client.balances()
    client.account()
    assert server.time_calls == 1
    assert client.clock_offset_ms == -7_500
    for req in signed(server):
        assert int(req.headers["X-Timestamp"]) == int(clock.t * 1000) - 7_500


def test_clock__offset_within_a_second_left_alone():
    client, server, clock = make(server_offset_ms=900)
    client.balances()
    assert client.clock_offset_ms == 0
    assert signed(server)[0].headers["X-Timestamp"] == str(int(clock.t * 1000))


def test_clock__skew_beyond_window_would_fail_without_correction():
    client, server, _ = make(server_offset_ms=120_000, sync_clock=False)
    with pytest.raises(AuthError):
        client.balances()


def test_clock__401_resyncs_once_and_retries():
    client, server, clock = make()
    client.balances()
    server.server_offset_ms = 90_000  # the local clock drifts after the first measurement
    assert client.account() == {}
    assert server.time_calls == 2 and client.clock_offset_ms == 90_000


# --- errors and retries -----------------------------------------------------------------------------------


def err(status: int, code: str = "X", message: str = "m", **headers) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message}, headers=headers)


def raise_(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc
    return handler


def test_retry__429_honours_retry_after_and_resigns():
    client, server, clock = make()
    server.script = [err(429, "TOO_MANY_REQUESTS", **{"Retry-After": "3"})]
    client.balances()
    assert 3.0 in clock.sleeps
    first, second = signed(server)
    assert first.headers["X-Timestamp"] != second.headers["X-Timestamp"]
    assert first.headers["X-Signature"] != second.headers["X-Signature"]


@pytest.mark.parametrize("failure", [
    err(500, "SERVER_ERROR"), err(502), err(503, "MAINTENANCE"),
    raise_(httpx.ConnectError("refused")), raise_(httpx.ReadTimeout("slow")), raise_(httpx.RemoteProtocolError("x")),
], ids=["500", "502", "503", "connect", "read_timeout", "protocol"])
def test_retry__transient_then_success(failure):
    client, server, clock = make()
    server.script = [failure, failure]
    assert client.balances() == {}
    attempts = signed(server)
    assert len(attempts) == 3
    assert len({r.headers["X-Timestamp"] for r in attempts}) == 3
    assert len(clock.sleeps) == 2 and all(0 <= s <= client.backoff_cap for s in clock.sleeps)


def test_retry__backoff_is_full_jitter_under_exponential_cap():
    client, server, clock = make(max_retries=5, backoff_base=1.0, backoff_cap=4.0)
    server.script = [err(503)] * 5
    client.balances()
    assert len(clock.sleeps) == 5 and len(signed(server)) == 6  # five backoffs happened, one per failure
    for attempt, slept in enumerate(clock.sleeps):
        assert 0 <= slept <= min(4.0, 2 ** attempt)
    # full jitter: not every wait is the cap (a constant sleep would pass the bound above)
    assert len(set(clock.sleeps)) > 1 and any(s < min(4.0, 2 ** a) for a, s in enumerate(clock.sleeps))


def test_retry__budget_exhausted():
    client, server, _ = make(max_retries=2)
    server.script = [err(503, "MAINTENANCE")] * 10
    with pytest.raises(RetryBudgetExhausted, match=r"^balances: gave up after 3 attempts; last failure: HTTP 503"):
        client.balances()
    assert len(signed(server)) == 3


def test_error__400_not_retried_and_carries_code_and_message():
    client, server, clock = make()
    server.script = [err(400, "INVALID_CLIENT_REQUEST", "failed to parse parameter `limit`")]
    with pytest.raises(ApiError) as info:
        list(client.iter_pages("dust"))
    e = info.value
    assert (e.status, e.code, e.endpoint) == (400, "INVALID_CLIENT_REQUEST", "dust")
    assert e.message == "failed to parse parameter `limit`" and "INVALID_CLIENT_REQUEST" in str(e)
    assert len(signed(server)) == 1 and clock.sleeps == []


def test_error__401_twice_is_auth_error_with_advice():
    client, server, _ = make()
    server.script = [err(401, "UNAUTHORIZED", "Request has expired")] * 2
    with pytest.raises(AuthError, match="check the API key and secret, and the clock") as info:
        client.balances()
    assert "balances" in str(info.value)
    assert server.time_calls == 2 and len(signed(server)) == 2


def test_error__non_json_page_is_malformed_naming_endpoint():
    client, server, clock = make(max_retries=2)
    server.script = [httpx.Response(200, text="<html>oops</html>", headers={"content-type": "text/html"})] * 3
    with pytest.raises(MalformedResponse, match="^fills: malformed response: body is not JSON .* after 3 attempts$"):
        list(client.iter_pages("fills"))
    assert len(signed(server)) == 3 and len(clock.sleeps) == 2


def test_retry__truncated_200_body_is_retried_like_a_5xx():
    """A page cut short on the wire (HTTP 200, half a JSON array) is fetched again, not fatal."""
    client, server, clock = make()
    server.script = [httpx.Response(200, content=b'[{"id": 1, "sym', headers={"content-type": "application/json"})] * 2
    assert client.balances() == {}
    attempts = signed(server)
    assert len(attempts) == 3 and len({r.headers["X-Timestamp"] for r in attempts}) == 3
    assert len(clock.sleeps) == 2 and all(0 <= s <= client.backoff_cap for s in clock.sleeps)


def test_retry__wrong_shape_200_is_retried_then_malformed_naming_the_shape():
    """A 200 of valid JSON in the wrong shape (an object where the page's array belongs: a proxy's or
    a degraded server's answer) is fetched again like a 5xx; persistent, it is MalformedResponse."""
    client, server, clock = make(max_retries=2)
    server.script = [httpx.Response(200, json={"message": "temporarily unavailable"})]
    assert [p.records for p in client.iter_pages("settlement")] == [[]]  # the retry is served normally
    assert len(signed(server)) == 2 and len(clock.sleeps) == 1
    client, server, clock = make(max_retries=2)
    server.script = [httpx.Response(200, json={"rows": []})] * 3
    with pytest.raises(MalformedResponse, match="^settlement: .*expected a JSON array, got dict .* after 3 attempts$"):
        list(client.iter_pages("settlement"))
    assert len(signed(server)) == 3 and len(clock.sleeps) == 2
    client, server, _ = make(max_retries=1)
    server.script = [httpx.Response(200, json=[])] * 2  # an array where the balances object belongs
    with pytest.raises(MalformedResponse, match="^balances: .*expected a JSON object, got list"):
        client.balances()


def test_error__wrong_typed_field_names_endpoint_record_and_field():
    client, server, _ = make()
    bad = dust(2, T0)
    bad["usdcReceived"] = 0.01
    server.rows["dust"] = [dust(1, T0), bad]
    with pytest.raises(RecordError, match=r"^dust: record dust:2 \(#1\): field 'usdcReceived' must be a decimal"):
        list(client.iter_pages("dust"))


def test_config__unknown_or_pager_params_rejected():
    client, _, _ = make()
    with pytest.raises(ConfigError, match="does not accept parameter"):
        list(client.iter_pages("fills", params={"nope": 1}))
    with pytest.raises(ConfigError, match="set by the pager"):
        list(client.iter_pages("fills", params={"from": 1}))
    with pytest.raises(ConfigError, match="page_size"):
        list(client.iter_pages("fills", page_size=1001))
    with pytest.raises(ConfigError, match="cursor"):
        list(client.iter_pages("fills", {"v": 1, "mode": "offset", "offset": 3}))


def test_config__signed_endpoint_without_credentials():
    clock = FakeClock()
    client = BackpackClient("https://x", None, transport=httpx.MockTransport(FakeExchange(clock)),
                            sleep=clock.sleep, clock=clock.time)
    with pytest.raises(ConfigError, match="needs API credentials"):
        client.balances()


def test_secret__absent_from_repr_logs_and_every_exception(caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    scenarios = [
        ([err(400, "INVALID_CLIENT_REQUEST")], ApiError),
        ([err(401)] * 2, AuthError),
        ([err(503)] * 9, RetryBudgetExhausted),
        ([raise_(httpx.ConnectError("refused"))] * 9, RetryBudgetExhausted),
        ([httpx.Response(200, text="nope")] * 3, MalformedResponse),
        ([httpx.Response(200, json=[{"id": "1"}])], RecordError),
    ]
    signatures: list[str] = []
    for script, kind in scenarios:
        client, server, _ = make(max_retries=2)
        texts += [repr(client), str(client)]
        server.script = list(script)
        with pytest.raises(kind) as info:
            list(client.iter_pages("dust"))
        texts += [str(info.value), repr(info.value)]
        signatures += [r.headers["X-Signature"] for r in signed(server)]
    for bad in (["x"], ["@@@"]):
        with pytest.raises(BackpackError) as info:
            Credentials.from_base64(PUBLIC_B64, bad[0] + SEED_B64[1:])
        texts.append(str(info.value))
    texts.append(caplog.text)
    assert signatures
    for text in texts:
        assert SEED_B64 not in text and SEED_B64[:20] not in text
        assert not any(sig in text for sig in signatures)


# --- rate limiting --------------------------------------------------------------------------------------------


def test_rate__token_bucket_paces_with_fake_clock():
    clock = FakeClock(0.0)
    bucket = TokenBucket(20.0, 20.0, clock=clock.time, sleep=clock.sleep)
    stamps = []
    for _ in range(2500):
        bucket.acquire()
        stamps.append(clock.t)
    assert stamps[19] == 0.0 and stamps[20] == pytest.approx(0.05)
    for i in range(len(stamps)):
        j = i
        while j < len(stamps) and stamps[j] < stamps[i] + 60.0:
            j += 1
        assert j - i <= 20 + 1200  # never above 2000/min
    assert stamps[-1] == pytest.approx((2500 - 20) / 20.0)


def test_rate__client_requests_paced_and_klines_bucket_separate():
    client, server, clock = make(rate_per_second=2.0)
    for _ in range(4):
        client.mark_prices()
    assert clock.sleeps == pytest.approx([0.5, 0.5])
    clock.sleeps.clear()
    for _ in range(3):
        client.klines("SOL_USDC", "1h", 1_700_000_000)
    assert clock.sleeps == pytest.approx([2.0, 2.0])  # 30/min, its own bucket
    req = server.requests[-1]
    assert dict(req.url.params) == {"symbol": "SOL_USDC", "interval": "1h", "startTime": "1700000000"}


# --- paging ---------------------------------------------------------------------------------------------------


def at(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)


def test_paging__offset_endpoint_sends_asc_and_stops_on_short_page():
    client, server, _ = make()
    server.rows["dust"] = [dust(i, T0 + timedelta(seconds=i)) for i in range(25)]
    records, cursor, pages = walk(client, "dust", page_size=10)
    assert [r["id"] for r in records] == list(range(25)) and pages == 3
    assert cursor == {"v": 1, "endpoint": "dust", "mode": "offset", "offset": 25}
    q = dict(signed(server)[0].url.params)
    assert q == {"limit": "10", "offset": "0", "sortDirection": "Asc"}


def test_paging__last_page_exactly_limit_then_empty_page():
    client, server, _ = make()
    server.rows["dust"] = [dust(i, T0) for i in range(20)]
    records, cursor, pages = walk(client, "dust", page_size=10)
    assert len(records) == 20 and pages == 3 and cursor["offset"] == 20
    assert [dict(r.url.params)["offset"] for r in signed(server)] == ["0", "10", "20"]


def test_paging__many_records_share_one_timestamp_across_boundary():
    client, server, _ = make()
    same = T0 + timedelta(days=3)
    server.rows["fills"] = [fill(i, same) for i in range(1, 38)]
    records, _, _ = walk(client, "fills", page_size=5)
    assert sorted(keys("fills", records)) == sorted(keys("fills", server.rows["fills"]))
    assert len(records) == 37


def test_paging__records_arriving_while_paging_are_read():
    client, server, clock = make()
    server.rows["dust"] = [dust(i, T0 + timedelta(seconds=i)) for i in range(30)]
    arrivals = iter(range(100, 104))

    def arrive(name, q):
        n = next(arrivals, None)
        if n is not None:
            server.rows["dust"].append(dust(n, at(int(clock.t * 1000))))

    server.after_page = arrive
    records, _, _ = walk(client, "dust", page_size=7)
    got = keys("dust", records)
    assert len(got) == len(set(got))
    assert set(keys("dust", server.rows["dust"][:30])) <= set(got)


def test_paging__time_windows_walk_from_history_start_to_now():
    client, server, clock = make(time_window_ms=400 * 86_400_000)
    server.rows["withdrawals"] = []
    _, cursor, pages = walk(client, "withdrawals")
    now = int(clock.t * 1000)
    windows = [(int(dict(r.url.params)["from"]), int(dict(r.url.params)["to"])) for r in signed(server)]
    assert windows[0][0] == C.HISTORY_START_MS and windows[-1][1] == now
    for (_, prev_to), (nxt_from, _) in zip(windows, windows[1:]):
        assert nxt_from == prev_to - C.WINDOW_OVERLAP_MS
    assert cursor == {"v": 1, "endpoint": "withdrawals", "mode": "time", "since_ms": now}
    assert "sortDirection" not in dict(signed(server)[0].url.params)


@pytest.mark.parametrize("inclusive", [True, False], ids=["bounds_inclusive", "bounds_exclusive"])
@pytest.mark.parametrize("name", ["fills", "deposits"])
def test_paging__records_on_window_edges_read_once(name, inclusive):
    span = 10 * 86_400_000
    client, server, clock = make(time_window_ms=span, inclusive=inclusive)
    clock.t = (C.HISTORY_START_MS + 5 * span) / 1000
    edges = []
    w_from = C.HISTORY_START_MS
    for _ in range(4):
        w_to = w_from + span
        edges += [w_to, w_to - 1, w_to - C.WINDOW_OVERLAP_MS, w_to - C.WINDOW_OVERLAP_MS + 1]
        w_from = w_to - C.WINDOW_OVERLAP_MS
    server.rows[name] = [MAKERS[name](i + 1, at(ms)) for i, ms in enumerate(edges)]
    records, _, _ = walk(client, name, page_size=3)
    got = keys(name, records)
    assert len(got) == len(set(got)) == len(edges)


def test_paging__resume_from_cursor_rereads_overlap_and_catches_late_records():
    client, server, clock = make()
    base = T0 + timedelta(days=10)
    server.rows["fills"] = [fill(i, base + timedelta(seconds=i)) for i in range(1, 51)]
    pages = client.iter_pages("fills", page_size=10)
    first = []
    while sum(len(p.records) for p in first) < 20:  # the empty windows before the data come first
        first.append(next(pages))
    cursor = first[-1].cursor
    pages.close()
    assert cursor["since_ms"] == E.ts_ms(base + timedelta(seconds=20))
    late = fill(900, base + timedelta(seconds=5))  # arrives late, 15 s before the cursor (within the overlap)
    server.rows["fills"].append(late)
    rest, _, _ = walk(client, "fills", cursor, page_size=10)
    seen = set(keys("fills", [r for p in first for r in p.records])) | set(keys("fills", rest))
    assert seen == set(keys("fills", server.rows["fills"]))


def test_paging__resume_offset_endpoint_with_record_overlap():
    client, server, _ = make()
    server.rows["dust"] = [dust(i, T0 + timedelta(seconds=i)) for i in range(30)]
    _, cursor, _ = walk(client, "dust", page_size=10)
    server.rows["dust"] += [dust(i, T0 + timedelta(hours=1, seconds=i)) for i in range(30, 35)]
    rest, cursor2, _ = walk(client, "dust", cursor, page_size=10, overlap=4)
    assert [r["id"] for r in rest] == list(range(26, 35)) and cursor2["offset"] == 35


def test_paging__fills_without_trade_id_deduplicated_by_hash():
    client, server, _ = make()
    server.rows["fills"] = [fill(i, T0 + timedelta(days=1), trade_id=0) for i in range(1, 6)]
    records, _, _ = walk(client, "fills", page_size=2)
    assert len(set(keys("fills", records))) == 5


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["fills", "deposits", "dust"]),
    n=st.integers(0, 60),
    page_size=st.integers(1, 13),
    distinct_times=st.integers(1, 6),
    span_days=st.integers(200, 900),
    cut=st.integers(0, 8),
    arrivals=st.integers(0, 5),
    late=st.integers(0, 5),
    seed=st.integers(0, 10**6),
)
def test_paging__property_nothing_skipped_nothing_repeated(name, n, page_size, distinct_times, span_days, cut,
                                                           arrivals, late, seed):
    rnd = random.Random(seed)
    client, server, clock = make(time_window_ms=span_days * 86_400_000)
    make_row = MAKERS[name]
    times = [T0 + timedelta(days=rnd.randint(-700, 20), milliseconds=rnd.randint(0, 999))
             for _ in range(distinct_times)]
    server.rows[name] = [make_row(i, rnd.choice(times)) for i in range(1, n + 1)]
    original = set(keys(name, server.rows[name]))
    counter = iter(range(1000, 1000 + arrivals))

    def arrive(_, q):  # new rows during the walk, stamped "now" (they append in Asc order)
        i = next(counter, None)
        if i is not None:
            server.rows[name].append(make_row(i, at(int(clock.t * 1000) + 1)))
            clock.t += 0.5

    server.after_page = arrive
    delivered: list[dict] = []
    cursor = None
    pages = client.iter_pages(name, page_size=page_size)
    for k, page in enumerate(pages):
        delivered += page.records
        cursor = page.cursor
        if k + 1 == cut:
            pages.close()  # an interrupted sync
            break
    first_walk = keys(name, delivered)
    assert len(first_walk) == len(set(first_walk)), "a single walk repeated a record"
    # Late rows stamped shortly before the cursor (within the resume overlap) must still be caught.
    if cursor is not None and cursor["mode"] == "time":
        for j in range(late):
            server.rows[name].append(make_row(5000 + j, at(max(cursor["since_ms"] - 1000 * (j + 1), 0))))
    server.after_page = None
    clock.t += 1
    rest, _, _ = walk(client, name, cursor, page_size=page_size)
    union = set(first_walk) | set(keys(name, rest))
    assert original <= union
    assert union == set(keys(name, server.rows[name]))


@pytest.mark.parametrize("body", ["17531", "99999999999999", "abc"])
def test_client__implausible_server_time_is_refused(body):
    from importers.backpack.errors import MalformedResponse

    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body, headers={"content-type": "text/plain"}))
    with BackpackClient("https://api.test", None, transport=transport, sync_clock=False) as client:
        with pytest.raises(MalformedResponse, match="time"):
            client.server_time_ms()
