"""The one Backpack HTTP client: signing, clock correction, rate limiting, retries and paging.

* Signing is an :class:`httpx.Auth` (:class:`BackpackAuth`) that signs the request exactly as it goes
  on the wire (REFERENCE.md §2): the query pairs are read back from the built URL, so what is signed is
  what is sent. Booleans go into URLs as lowercase ``true``/``false``.
* Retries wrap ``httpx.Client.send`` (never a transport), so every attempt is signed afresh with a new
  timestamp. 429, 5xx, connection errors and timeouts are retried with exponential backoff and full
  jitter, honouring ``Retry-After``; other 4xx raise :class:`ApiError` at once; a 401 re-syncs the clock
  once and retries once, then raises :class:`AuthError`.
* Two token buckets pace requests: the standard one (default 20/s, under the exchange's 2000/min) and
  the historical-market-data one (klines, trades history: default 30/min).
* :meth:`BackpackClient.iter_pages` walks a history endpoint to its end and yields validated pages with a
  JSON-serialisable cursor (see :class:`Page`).

Nothing here logs or raises a secret, a signature, headers or a response body.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from importers.backpack import endpoints as E
from importers.backpack.endpoints import Endpoint
from importers.backpack.errors import (
    ApiError,
    AuthError,
    ConfigError,
    MalformedResponse,
    RetryBudgetExhausted,
)
from importers.backpack.signing import DEFAULT_WINDOW_MS, MAX_WINDOW_MS, Credentials, render_value, signing_string

__all__ = [
    "CLOCK_TOLERANCE_MS",
    "HISTORY_START_MS",
    "TIME_WINDOW_MS",
    "WINDOW_OVERLAP_MS",
    "RESUME_OVERLAP_MS",
    "RESUME_OVERLAP_RECORDS",
    "CURSOR_VERSION",
    "Page",
    "TokenBucket",
    "BackpackAuth",
    "BackpackClient",
]

log = logging.getLogger(__name__)

# --- Client-side choices (docs/assumptions.md A-CLOCK-1, A-PAGE-5..8) -----------------------------------

#: A-CLOCK-1: the local clock is corrected only when it is off the server's by more than this.
CLOCK_TOLERANCE_MS = 1000
#: A-PAGE-5: where a walk of a from/to endpoint starts when there is no cursor (2023-01-01T00:00Z,
#: before Backpack Exchange opened).
HISTORY_START_MS = 1_672_531_200_000
#: A-PAGE-5: the span of one from/to window (30 days): bounds the offsets inside a window.
TIME_WINDOW_MS = 30 * 24 * 3_600_000
#: A-PAGE-6: consecutive windows overlap by this much, so a record on a window edge is read whether
#: the server treats ``from``/``to`` as inclusive or not (A-PAGE-2). Duplicates inside one walk are dropped.
WINDOW_OVERLAP_MS = 1000
#: A-PAGE-7: a walk resumed from a cursor re-reads this much time before it, to catch late records and,
#: for deposits/withdrawals, status changes (pending -> confirmed). The caller de-duplicates by key.
RESUME_OVERLAP_MS: Mapping[str, int] = {
    "fills": 3_600_000,  # 1 hour
    "deposits": 7 * 24 * 3_600_000,  # 7 days
    "withdrawals": 7 * 24 * 3_600_000,
}
DEFAULT_RESUME_OVERLAP_MS = 3_600_000
#: A-PAGE-8: a walk of a pure offset endpoint resumed from a cursor re-reads this many records.
RESUME_OVERLAP_RECORDS = 100
#: Server times outside 2020-01-01..2100-01-01 (ms) are refused as corrupt.
_PLAUSIBLE_MS = (1_577_836_800_000, 4_102_444_800_000)
#: The shape of cursors this client writes and reads (see :class:`Page`).
CURSOR_VERSION = 1
#: The longest ``Retry-After`` honoured as given (seconds); longer values are capped.
RETRY_AFTER_CAP_S = 300.0

_PAGER_PARAMS = frozenset({"limit", "offset", "sortDirection", "from", "to"})


@dataclass(frozen=True, kw_only=True)
class Page:
    """One page of a walk.

    ``records``: validated records, the JSON objects exactly as received, in server order, minus
    duplicates of records already yielded by the same walk (window overlaps).

    ``cursor``: JSON-serialisable resume point *after* this page; pass it back to
    :meth:`BackpackClient.iter_pages` (same endpoint and params) to continue. Two forms:

    * ``{"v": 1, "endpoint": name, "mode": "time", "since_ms": int}`` for endpoints with ``from``/``to``
      (fills, deposits, withdrawals): every record whose time (ms) is below ``since_ms`` has been
      yielded. A resumed walk reads from ``since_ms - overlap``.
    * ``{"v": 1, "endpoint": name, "mode": "offset", "offset": int}`` for the other history endpoints
      (read oldest first): the number of records yielded from the start of the ascending order. A
      resumed walk reads from ``offset - overlap``.
    """

    endpoint: str
    records: list[dict[str, Any]]
    cursor: dict[str, Any]


class TokenBucket:
    """A token bucket on an injected clock and sleep (so tests never really sleep)."""

    def __init__(self, rate_per_second: float, capacity: float, *, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        if not rate_per_second > 0:
            raise ConfigError(f"rate must be positive, got {rate_per_second!r}")
        self.rate = float(rate_per_second)
        self.capacity = max(1.0, float(capacity))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available. Returns the time slept."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = max(self._stamp, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        wait = (1.0 - self._tokens) / self.rate
        self._sleep(wait)
        self._tokens = 0.0
        self._stamp = self._stamp + wait
        return wait


class BackpackAuth(httpx.Auth):
    """Signs one request per REFERENCE.md §2: X-API-Key, X-Signature, X-Timestamp, X-Window.

    The parameters are read back from the request as built (decoded query pairs, or the JSON body), so
    the signature always covers what is on the wire. Each call of the flow takes a new timestamp.
    """

    def __init__(self, credentials: Credentials, instruction: str, window_ms: int, now_ms: Callable[[], int]) -> None:
        self._credentials = credentials
        self._instruction = instruction
        self._window_ms = window_ms
        self._now_ms = now_ms

    def __repr__(self) -> str:
        return f"BackpackAuth(instruction={self._instruction!r}, window_ms={self._window_ms})"

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        params: dict[str, Any] = {}
        for key, value in request.url.params.multi_items():
            if key in params:
                raise ConfigError(f"refusing to sign repeated query parameter {key!r}: send one value")
            params[key] = value
        if request.content:
            body = json.loads(request.content)
            if not isinstance(body, dict):
                raise ConfigError("only JSON object bodies are signed by this client")
            params.update(body)
        timestamp = self._now_ms()
        message = signing_string(self._instruction, params, timestamp, self._window_ms)
        request.headers["X-API-Key"] = self._credentials.api_key
        request.headers["X-Timestamp"] = str(timestamp)
        request.headers["X-Window"] = str(self._window_ms)
        request.headers["X-Signature"] = self._credentials.sign(message)
        yield request


def _validate_window(window_ms: Any) -> int:
    if isinstance(window_ms, bool) or not isinstance(window_ms, int):
        raise ConfigError(f"X-Window must be an integer number of ms, got {type(window_ms).__name__}")
    if not 0 < window_ms <= MAX_WINDOW_MS:
        raise ConfigError(f"X-Window must be between 1 and {MAX_WINDOW_MS} ms, got {window_ms}")
    return window_ms


def _wire_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Render query values as they are signed: booleans lowercase, ints as digits, None left out."""
    return {k: render_value(v) for k, v in (params or {}).items() if v is not None}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, RETRY_AFTER_CAP_S)


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None]:
    """The server's ``{"code","message"}``, one line each, or (None, None)."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None

    def one_line(value: Any) -> str | None:
        if value is None:
            return None
        return " ".join(str(value).split())[:300]

    return one_line(body.get("code")), one_line(body.get("message"))


class BackpackClient:
    """Synchronous Backpack REST client for the read endpoints in :mod:`importers.backpack.endpoints`."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None,
        *,
        window_ms: int = DEFAULT_WINDOW_MS,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rate_per_second: float = 20.0,
        historical_rate_per_minute: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sync_clock: bool = True,
        time_window_ms: int = TIME_WINDOW_MS,
    ) -> None:
        if credentials is not None and not isinstance(credentials, Credentials):
            raise ConfigError("credentials must be built with Credentials.from_base64(api_key, api_secret)")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        if not backoff_base >= 0 or not backoff_cap >= 0:
            raise ConfigError("backoff_base and backoff_cap must be non-negative")
        if not isinstance(time_window_ms, int) or time_window_ms <= WINDOW_OVERLAP_MS:
            raise ConfigError(f"time_window_ms must be an integer above {WINDOW_OVERLAP_MS}")
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.window_ms = _validate_window(window_ms)
        self.max_retries = max_retries
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self.time_window_ms = time_window_ms
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._sync_clock = sync_clock
        self._offset_ms: int | None = None if sync_clock else 0
        self._buckets = {
            E.STANDARD: TokenBucket(rate_per_second, rate_per_second, clock=clock, sleep=sleep),
            E.HISTORICAL_MARKET_DATA: TokenBucket(historical_rate_per_minute / 60.0, 1, clock=clock, sleep=sleep),
        }
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Accept": "application/json"})

    # --- lifecycle -------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        key = self._credentials.api_key[:6] + "…" if self._credentials else None
        return f"BackpackClient(base_url={self.base_url!r}, api_key={key!r}, window_ms={self.window_ms})"

    __str__ = __repr__

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "BackpackClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- clock -----------------------------------------------------------------------------------------

    @property
    def clock_offset_ms(self) -> int | None:
        """Server minus local clock as applied to X-Timestamp (0 within tolerance; None before measuring)."""
        return self._offset_ms

    def server_time_ms(self) -> int:
        """``GET /api/v1/time``: the server's clock in ms (text/plain); a malformed body is asked again."""
        return self._send(E.get("time"), {}, parse=_server_time)

    def sync_clock(self) -> int:
        """Measure the server-local clock offset and apply it when beyond CLOCK_TOLERANCE_MS."""
        before = self._clock()
        server = self.server_time_ms()
        after = self._clock()
        local_ms = (before + after) * 500.0
        diff = server - local_ms
        self._offset_ms = round(diff) if abs(diff) > CLOCK_TOLERANCE_MS else 0
        if self._offset_ms:
            log.info("backpack clock: local clock off by %d ms; correcting X-Timestamp", self._offset_ms)
        return self._offset_ms

    def now_ms(self) -> int:
        """The corrected current time in ms (measures the offset on first use)."""
        if self._offset_ms is None:
            self.sync_clock()
        return int(self._clock() * 1000) + (self._offset_ms or 0)

    # --- requests --------------------------------------------------------------------------------------

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = _retry_after(response)
            if after is not None:
                return after
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * (2 ** attempt)))

    def _send_json(self, ep: Endpoint, params: Mapping[str, Any]) -> Any:
        """``_send`` for a JSON endpoint: the parsed body. A 2xx body that is not JSON (a page cut
        short on the wire, a proxy's HTML page) or not of the endpoint's shape (an object where an
        array belongs) is retried like a 5xx; when the budget is spent it is MalformedResponse. The
        records themselves are validated after (a bad record is the exchange's data: never retried)."""
        return self._send(ep, params, parse=lambda response: _shaped(ep, _json_body(response)))

    def _send(self, ep: Endpoint, params: Mapping[str, Any], *, parse: Any = None) -> Any:
        """Send one GET with retries; each attempt is built and signed afresh. Returns a 2xx response,
        or with ``parse`` what it makes of one: a body it refuses (``ValueError``: cut short on the
        wire, say) is retried like a 5xx, and is ``MalformedResponse`` when the budget is spent."""
        if ep.signed and self._credentials is None:
            raise ConfigError(f"{ep.name} needs API credentials (a signed endpoint)")
        wire = _wire_params(params)
        retries = 0
        resynced = False
        while True:
            auth: httpx.Auth | None = None
            if ep.signed:
                if self._offset_ms is None:
                    self.sync_clock()
                assert self._credentials is not None and ep.instruction is not None
                auth = BackpackAuth(self._credentials, ep.instruction, self.window_ms, self.now_ms)
            self._buckets[ep.bucket].acquire()
            request = self._http.build_request("GET", ep.path, params=wire)
            response: httpx.Response | None = None
            try:
                response = self._http.send(request, auth=auth) if auth else self._http.send(request)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                failure = f"{type(exc).__name__} (no response)"
            else:
                status = response.status_code
                if status < 300:
                    log.debug("backpack %s: HTTP %d", ep.name, status)
                    if parse is None:
                        return response
                    try:
                        return parse(response)
                    except ValueError as exc:
                        ctype = response.headers.get("content-type", "no content-type")
                        failure = f"{exc} (HTTP {status}, {ctype}, {len(response.content)} bytes)"
                        if retries >= self.max_retries:
                            raise MalformedResponse(ep.name, failure + f" after {retries + 1} attempts") from None
                        response = None  # no Retry-After from a 2xx: our own backoff
                else:
                    code, message = _error_fields(response)
                    if status == 401:
                        if ep.signed and self._sync_clock and not resynced:
                            resynced = True
                            log.warning("backpack %s: HTTP 401; re-syncing the clock and retrying once", ep.name)
                            self.sync_clock()
                            continue
                        raise AuthError(ep.name, message or code or "")
                    if status != 429 and status < 500:
                        raise ApiError(status, code, message, ep.name)
                    failure = f"HTTP {status} {code or ''}".rstrip()
            if retries >= self.max_retries:
                raise RetryBudgetExhausted(ep.name, retries + 1, failure)
            delay = self._backoff(retries, response)
            retries += 1
            log.warning("backpack %s: %s; retry %d/%d in %.2fs", ep.name, failure, retries, self.max_retries, delay)
            self._sleep(delay)

    def _json(self, ep: Endpoint, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            ctype = response.headers.get("content-type", "no content-type")
            raise MalformedResponse(
                ep.name, f"body is not JSON (HTTP {response.status_code}, {ctype}, {len(response.content)} bytes)"
            ) from None

    def _check_params(self, ep: Endpoint, params: Mapping[str, Any] | None, *, reserved: frozenset[str]) -> dict:
        params = dict(params or {})
        unknown = sorted(set(params) - ep.params)
        if unknown:
            raise ConfigError(f"{ep.name} does not accept parameter(s) {', '.join(unknown)}")
        clash = sorted(set(params) & reserved)
        if clash:
            raise ConfigError(f"{ep.name}: parameter(s) {', '.join(clash)} are set by the pager")
        return params

    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        """One request to a state or public endpoint (or one raw page of a history endpoint); validated."""
        ep = E.get(endpoint)
        checked = self._check_params(ep, params, reserved=frozenset())
        if ep.shape == "text":
            return self._send(ep, checked).text
        body = self._send_json(ep, checked)
        ep.validate_response(body)
        count = len(body) if isinstance(body, (list, dict)) else 1
        log.info("backpack %s: %d item(s)", ep.name, count)
        return body

    # --- state and public conveniences ----------------------------------------------------------------------

    def balances(self) -> dict[str, dict[str, str]]:
        return self.get("balances")

    def collateral(self, subaccount_id: int | None = None) -> dict[str, Any]:
        return self.get("collateral", {"subaccountId": subaccount_id})

    def open_positions(self) -> list[dict[str, Any]]:
        return self.get("positions")

    def borrow_lend_positions(self) -> list[dict[str, Any]]:
        return self.get("borrowLendPositions")

    def account(self) -> dict[str, Any]:
        return self.get("account")

    def markets(self) -> list[dict[str, Any]]:
        return self.get("markets")

    def assets(self) -> list[dict[str, Any]]:
        return self.get("assets")

    def klines(self, symbol: str, interval: str, start_s: int, end_s: int | None = None,
               price_type: str | None = None) -> list[dict[str, Any]]:
        """Candles; ``start_s``/``end_s`` are Unix **seconds** (REFERENCE.md §5.4). Historical bucket."""
        return self.get("klines", {"symbol": symbol, "interval": interval, "startTime": start_s,
                                   "endTime": end_s, "priceType": price_type})

    def mark_prices(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return self.get("markPrices", {"symbol": symbol})

    def status(self) -> dict[str, Any]:
        return self.get("status")

    # --- paging ----------------------------------------------------------------------------------------------

    def _fetch_page(self, ep: Endpoint, query: dict[str, Any]) -> list[dict[str, Any]]:
        body = self._send_json(ep, query)
        ep.validate_response(body)
        log.info("backpack %s: offset %s -> %d record(s)", ep.name, query.get("offset"), len(body))
        return body

    def _read_cursor(self, ep: Endpoint, cursor: Mapping[str, Any] | None, mode: str, field: str) -> int | None:
        if cursor is None:
            return None
        if not isinstance(cursor, Mapping) or cursor.get("v") != CURSOR_VERSION or cursor.get("mode") != mode:
            raise ConfigError(f"{ep.name}: cursor is not a version-{CURSOR_VERSION} {mode!r} cursor")
        if cursor.get("endpoint") not in (None, ep.name):
            raise ConfigError(f"{ep.name}: cursor belongs to endpoint {cursor.get('endpoint')!r}")
        value = cursor.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{ep.name}: cursor field {field!r} must be a non-negative integer")
        return value

    def iter_pages(
        self,
        endpoint: str,
        cursor: Mapping[str, Any] | None = None,
        *,
        page_size: int = E.HISTORY_MAX_LIMIT,
        params: Mapping[str, Any] | None = None,
        overlap: int | None = None,
    ) -> Iterator[Page]:
        """Read a history endpoint completely, from ``cursor`` (None = the beginning) to its end.

        ``overlap`` is in ms for from/to endpoints and in records for the others; None takes the
        defaults RESUME_OVERLAP_MS / RESUME_OVERLAP_RECORDS. It applies only when resuming.
        """
        ep = E.get(endpoint)
        if not ep.paged:
            raise ConfigError(f"{ep.name} is not a paged history endpoint; use get()")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 0 < page_size <= (ep.max_limit or 0):
            raise ConfigError(f"{ep.name}: page_size must be between 1 and {ep.max_limit}, got {page_size!r}")
        if overlap is not None and (isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0):
            raise ConfigError(f"{ep.name}: overlap must be a non-negative integer")
        filters = self._check_params(ep, params, reserved=_PAGER_PARAMS)
        if ep.sort_direction:
            filters["sortDirection"] = E.SORT_ASC
        if ep.from_to:
            yield from self._walk_time(ep, cursor, page_size, filters, overlap)
        else:
            yield from self._walk_offset(ep, cursor, page_size, filters, overlap)

    def _walk_offset(self, ep: Endpoint, cursor: Mapping[str, Any] | None, limit: int, filters: dict[str, Any],
                     overlap: int | None) -> Iterator[Page]:
        """Ascending offset/limit walk: rows arriving meanwhile append at the end and are read too."""
        done = self._read_cursor(ep, cursor, "offset", "offset")
        back = RESUME_OVERLAP_RECORDS if overlap is None else overlap
        offset = 0 if done is None else max(0, done - back)
        while True:
            records = self._fetch_page(ep, {**filters, "limit": limit, "offset": offset})
            offset += len(records)
            yield Page(endpoint=ep.name, records=records,
                       cursor={"v": CURSOR_VERSION, "endpoint": ep.name, "mode": "offset", "offset": offset})
            if len(records) < limit:  # A-PAGE-3
                return

    def _walk_time(self, ep: Endpoint, cursor: Mapping[str, Any] | None, limit: int, filters: dict[str, Any],
                   overlap: int | None) -> Iterator[Page]:
        """Overlapping ``from``/``to`` windows, oldest window first, offsets inside each window.

        With ``sortDirection=Asc`` (fills) a page proves every record before its last record's ms was
        read; without it (deposits, withdrawals: newest first, A-PAGE-4) only a finished window proves
        anything, so the cursor stays at the window's start until the window ends. ``to`` is fixed per
        walk at the server's "now", so rows arriving meanwhile cannot shift offsets inside a window.
        """
        since = self._read_cursor(ep, cursor, "time", "since_ms")
        back = RESUME_OVERLAP_MS.get(ep.name, DEFAULT_RESUME_OVERLAP_MS) if overlap is None else overlap
        start = HISTORY_START_MS if since is None else max(0, since - back)
        end = self.now_ms()
        floor = HISTORY_START_MS if since is None else since  # every record below `floor` ms was yielded
        mark = floor
        window_from = min(start, end)
        seen: dict[str, int] = {}  # keys yielded at or after the current window's start, by record ms
        while True:
            window_to = min(window_from + self.time_window_ms, end)
            offset = 0
            while True:
                query = {**filters, "from": window_from, "to": window_to, "limit": limit, "offset": offset}
                records = self._fetch_page(ep, query)
                offset += len(records)
                fresh = []
                for record in records:
                    key = ep.natural_key(record)
                    if key in seen:
                        continue
                    moment = ep.record_time(record)
                    seen[key] = E.ts_ms(moment) if moment is not None else window_from
                    fresh.append(record)
                last = len(records) < limit  # A-PAGE-3
                if last:
                    mark = window_to
                elif ep.sort_direction and records:
                    moment = ep.record_time(records[-1])
                    mark = max(floor, window_from, E.ts_ms(moment) if moment is not None else 0)
                else:
                    mark = max(floor, window_from)
                yield Page(endpoint=ep.name, records=fresh,
                           cursor={"v": CURSOR_VERSION, "endpoint": ep.name, "mode": "time", "since_ms": mark})
                if last:
                    break
            if window_to >= end:
                return
            window_from = window_to - WINDOW_OVERLAP_MS
            seen = {k: ms for k, ms in seen.items() if ms >= window_from}


def _shaped(ep: Endpoint, body: Any) -> Any:
    """``body`` if its top level is the endpoint's shape (array or object), else ValueError (retried)."""
    if ep.shape == "list" and not isinstance(body, list):
        raise ValueError(f"expected a JSON array, got {type(body).__name__}")
    if ep.shape == "object" and not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    return body


def _json_body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ValueError("body is not JSON") from None


def _server_time(response: httpx.Response) -> int:
    text = response.text.strip()
    if not text.isdigit():
        raise ValueError("expected a text/plain integer of milliseconds")
    value = int(text)
    # A truncated body can still be digits: refuse a time outside 2020..2100.
    if not _PLAUSIBLE_MS[0] <= value <= _PLAUSIBLE_MS[1]:
        raise ValueError("server time is not a plausible Unix time in milliseconds")
    return value
