"""The simulator's ASGI application: a hand-rolled router, the exchange's auth, rate limits and faults.

Private requests are verified as the exchange does (REFERENCE.md §2, A-SIGN-1, A-TIME-1, A-AUTH-1):
the signing string is rebuilt from the decoded query pairs (GET) or the JSON body (POST/DELETE/PATCH)
with keys sorted and the endpoint's instruction; if that fails the percent-encoded forms are tried too
(ccxt signs those). Unknown headers and unknown query parameters are ignored.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from decimal import Decimal
from urllib.parse import parse_qsl, quote, quote_plus

import orjson

from ..signing import DEFAULT_WINDOW_MS, MAX_WINDOW_MS, signing_string, verify
from ._time import render_ts
from .faults import FaultPlan
from .markets import ASSETS, HOUR_MS, INTERVALS
from .store import BY_PATH as HISTORY_BY_PATH
from .store import MARKET_TYPES, ParamError, market_type_of
from .world import World, fmt, funding_rate

__all__ = ["SimulatorApp", "RateLimits", "STATE_INSTRUCTIONS", "WRITE_INSTRUCTIONS"]

JSON = b"application/json; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"
TEXT_HTML = b"text/html; charset=utf-8"
PAGE_HEADERS = b"X-TOTAL, X-PAGE-COUNT, X-CURRENT-PAGE, X-PAGE-SIZE"
HISTORY_MAX_LIMIT = 1000
HISTORY_DEFAULT_LIMIT = 100

#: Signed account-state endpoints: path -> instruction.
STATE_INSTRUCTIONS = {
    "/api/v1/capital": "balanceQuery",
    "/api/v1/capital/collateral": "collateralQuery",
    "/api/v1/position": "positionQuery",
    "/api/v1/borrowLend/positions": "borrowLendPositionQuery",
    "/api/v1/account": "accountQuery",
    "/api/v1/orders": "orderQueryAll",
}
#: Write endpoints (verified, then refused: the simulated account is read-only): (method, path) -> instruction.
WRITE_INSTRUCTIONS = {
    ("POST", "/api/v1/order"): "orderExecute", ("DELETE", "/api/v1/order"): "orderCancel",
    ("DELETE", "/api/v1/orders"): "orderCancelAll", ("GET", "/api/v1/order"): "orderQuery",
    ("POST", "/api/v1/borrowLend"): "borrowLendExecute", ("POST", "/wapi/v1/capital/withdrawals"): "withdraw",
    ("GET", "/wapi/v1/capital/deposit/address"): "depositAddressQuery",
    ("POST", "/api/v1/account/convertDust"): "convertDust", ("PATCH", "/api/v1/account"): "accountUpdate",
}
REMOVED = {"/wapi/v1/history/pnl"}
HISTORICAL_BUCKET = {"/api/v1/klines", "/api/v1/trades/history"}


def _err(status: int, code: str, message: str) -> tuple[int, list, bytes]:
    return status, [], orjson.dumps({"code": code, "message": message})


class RateLimits:
    """Token buckets per (API key or client address, bucket): ``standard``/``historical`` per minute."""

    def __init__(self, standard: float | None = 2000, historical: float | None = 30):
        self.limits = {"standard": standard, "historical": historical}
        self.buckets: dict[tuple[str, str], list[float]] = {}

    @classmethod
    def from_env(cls) -> "RateLimits":
        """``BACKPACK_SIM_RATE_LIMITS``: ``"2000,30"`` (per minute, standard and historical) or ``off``."""
        raw = os.environ.get("BACKPACK_SIM_RATE_LIMITS", "").strip()
        if not raw:
            return cls()
        if raw.lower() in ("off", "none", "0"):
            return cls(None, None)
        std, _, hist = raw.partition(",")
        return cls(float(std), float(hist or std))

    def take(self, who: str, bucket: str, now: float) -> float:
        """0 when allowed; otherwise the seconds until a token is available."""
        limit = self.limits[bucket]
        if not limit:
            return 0.0
        rate = limit / 60.0
        state = self.buckets.get((who, bucket))
        if state is None:
            state = self.buckets[(who, bucket)] = [float(limit), now]
        tokens = min(float(limit), state[0] + (now - state[1]) * rate)
        state[1] = now
        if tokens >= 1.0:
            state[0] = tokens - 1.0
            return 0.0
        state[0] = tokens
        return (1.0 - tokens) / rate


class SimulatorApp:
    #: The WebSocket streams (simulator/ws.py StreamServer), attached by server.py.
    ws = None

    def __init__(self, world: World, *, faults: FaultPlan | None = None, rate_limits: RateLimits | None = None,
                 clock=time.time):
        self.world = world
        self.faults = faults
        self.limits = rate_limits if rate_limits is not None else RateLimits.from_env()
        self.clock = clock
        self.accounts = world.account_by_key()
        self.markets = {m.symbol: m for m in world.markets}
        self.public = {
            "/api/v1/markets": self.h_markets, "/api/v1/market": self.h_market, "/api/v1/assets": self.h_assets,
            "/api/v1/klines": self.h_klines, "/api/v1/markPrices": self.h_mark_prices,
            "/api/v1/ticker": self.h_ticker, "/api/v1/tickers": self.h_tickers, "/api/v1/depth": self.h_depth,
            "/api/v1/trades": self.h_trades, "/api/v1/trades/history": self.h_trades,
            "/api/v1/fundingRates": self.h_funding_rates, "/api/v1/time": self.h_time,
            "/api/v1/status": self.h_status, "/api/v1/ping": self.h_ping, "/api/v1/openInterest": self.h_oi,
            "/api/v1/wallets": lambda q: (200, [], b"[]"), "/api/v1/securities": lambda q: (200, [], b"[]"), "/api/v1/collateral": self.h_collateral_params,
        }
        self.requests = 0
        self.arrivals = 0  # deposits the ``insert`` fault made arrive
        self.shifted: dict[tuple, int] = {}  # listing -> rows the ``shift`` fault inserted ahead of its reader

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            if self.ws is not None:
                await self.ws(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        self.requests += 1
        body = b""
        if scope["method"] in ("POST", "DELETE", "PATCH", "PUT"):
            more = True
            while more:
                msg = await receive()
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
        fault = self.faults.draw() if self.faults is not None else None
        if fault == "drop":
            if _drop_connection(send):
                return
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", JSON), (b"content-length", b"100")]})
            return
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_s)
        if fault == "insert":
            self.arrive_deposit()
        if fault in ("429", "500", "502", "503"):
            status, headers, payload = _fault_response(fault)
            ctype = TEXT if fault == "502" else JSON
        else:
            try:
                status, headers, payload = self.handle(scope, body, shift=fault == "shift")
            except Exception as exc:  # noqa: BLE001 - the server answers 500 like the exchange would
                status, headers, payload = _err(500, "SERVER_ERROR", f"internal error: {type(exc).__name__}")
            ctype = TEXT if headers and headers[0] == (b"content-type", TEXT) else JSON
            if headers and headers[0][0] == b"content-type":
                headers = headers[1:]
            if fault == "malformed":
                status, payload = 200, payload[: max(1, len(payload) // 2)]
            elif fault == "nonjson" and ctype == JSON:
                status, ctype, payload = 200, TEXT_HTML, b"<html><body><h1>Service temporarily unavailable</h1></body></html>"
            elif fault == "wrongshape" and ctype == JSON:
                status = 200
                payload = b'{"message":"temporarily unavailable"}' if payload[:1] == b"[" else b"[]"
        out = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode()), *headers]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload})

    # ------------------------------------------------------------------ dispatch
    def arrive_deposit(self) -> None:
        """A USDC deposit lands on the main account now (the ``insert`` fault): the newest row of its
        deposit history, its balance raised with it (so the exchange still agrees with itself)."""
        from datetime import datetime, timezone
        from decimal import Decimal

        from .store import STREAMS, TableBuilder

        acc = self.world.main
        self.arrivals += 1
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        record = {"id": 990_000_000 + self.arrivals, "toAddress": "mainAddrUSDC", "fromAddress": f"arrival{self.arrivals}",
                  "source": "solana", "status": "confirmed", "transactionHash": f"0xarrival{self.arrivals:08d}", "symbol": "USDC",
                  "quantity": "1.5", "createdAt": now.strftime("%Y-%m-%dT%H:%M:%S.%f"), "fiatAmount": None, "fiatCurrency": None,
                  "institutionBic": None, "platformMemo": None}
        old = acc.tables["deposits"]
        builder = TableBuilder(STREAMS["deposits"])
        for i in range(len(old)):
            builder.add(orjson.loads(old.row(i)), old.ts[i])
        builder.add(record)
        acc.tables["deposits"] = builder.build()
        capital = orjson.loads(acc.state["capital"])
        usdc = capital.setdefault("USDC", {"available": "0", "locked": "0", "staked": "0"})
        usdc["available"] = str(Decimal(usdc["available"]) + Decimal(record["quantity"]))
        acc.state["capital"] = orjson.dumps(capital)

    def handle(self, scope, body: bytes, *, shift: bool = False) -> tuple[int, list, bytes]:
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        method = scope["method"]
        raw_qs = scope.get("query_string", b"").decode("latin-1")
        pairs = parse_qsl(raw_qs, keep_blank_values=True)
        if path in REMOVED:
            return _err(404, "RESOURCE_NOT_FOUND", "Not found")
        spec = HISTORY_BY_PATH.get(path)
        instruction = None
        if spec is not None or path in STATE_INSTRUCTIONS:
            if method != "GET":
                return _err(405, "INVALID_CLIENT_REQUEST", f"method {method} not allowed")
            instruction = spec.instruction if spec is not None else STATE_INSTRUCTIONS[path]
        elif (method, path) in WRITE_INSTRUCTIONS:
            instruction = WRITE_INSTRUCTIONS[(method, path)]
        elif path in self.public:
            if method != "GET":
                return _err(405, "INVALID_CLIENT_REQUEST", f"method {method} not allowed")
            wait = self.limits.take(_client(scope), "historical" if path in HISTORICAL_BUCKET else "standard",
                                    self.clock())
            if wait:
                return _too_many(wait)
            return self.public[path](pairs)
        else:
            return _err(404, "RESOURCE_NOT_FOUND", "Not found")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = self.authenticate(headers, instruction, method, pairs, raw_qs, body)
        if isinstance(auth, tuple):
            return auth
        account = auth
        wait = self.limits.take(account.api_key, "standard", self.clock())
        if wait:
            return _too_many(wait)
        if spec is not None:
            return self.h_history(account, spec, pairs, shift=shift)
        if instruction in WRITE_INSTRUCTIONS.values():
            return _err(403, "FORBIDDEN", "the simulated account is read-only")
        return self.h_state(account, path, pairs)

    def authenticate(self, headers: dict, instruction: str, method: str, pairs: list, raw_qs: str, body: bytes):
        key = headers.get("x-api-key")
        signature = headers.get("x-signature")
        ts_text = headers.get("x-timestamp")
        if not key or not signature or not ts_text:
            missing = [h for h, v in (("X-API-Key", key), ("X-Signature", signature), ("X-Timestamp", ts_text))
                       if not v]
            return _err(401, "UNAUTHORIZED", f"Missing {', '.join(missing)} header")
        window_text = headers.get("x-window")
        # A-TIME-2: X-Window is plain decimal digits, 1..MAX_WINDOW_MS (0 could only ever be met within
        # the same millisecond, so it is refused outright instead of sometimes); no sign, no spaces.
        if window_text is None:
            window = DEFAULT_WINDOW_MS
        elif not _digits(window_text.strip().removeprefix("-")):
            return _err(400, "INVALID_CLIENT_REQUEST", f"X-Window must be an integer between 1 and {MAX_WINDOW_MS}")
        else:
            window = int(window_text.strip())
            if not 1 <= window <= MAX_WINDOW_MS:
                return _err(400, "INVALID_CLIENT_REQUEST", f"X-Window must be between 1 and {MAX_WINDOW_MS}, got {window}")
        if not _digits(ts_text.strip()):
            return _err(401, "UNAUTHORIZED", "Invalid X-Timestamp header")
        ts = int(ts_text.strip())
        # A-SIGN-3: a repeated query key is refused (the signature covers one value per key; the real
        # server's map keeps the last one, so a signed request could carry unsigned values).
        seen: set[str] = set()
        for k, _v in pairs:
            if k in seen:
                return _err(400, "INVALID_CLIENT_REQUEST", f"query parameter `{k}` is repeated: send one value per request")
            seen.add(k)
        account = self.accounts.get(key.strip())
        if account is None:
            return _err(401, "UNAUTHORIZED", "Invalid API key")
        now = int(self.clock() * 1000)
        if now > ts + window:
            return _err(401, "UNAUTHORIZED", "Request has expired")
        if ts > now + window:
            return _err(401, "UNAUTHORIZED", "Request timestamp is too far in the future")
        for params in _candidate_params(method, pairs, raw_qs, body):
            if params is None:
                continue
            if verify(account.api_key, signing_string(instruction, params, ts, window), signature):
                return account
        return _err(401, "UNAUTHORIZED", "Invalid signature")

    # ------------------------------------------------------------------ history
    def h_history(self, account, spec, pairs: list, *, shift: bool = False) -> tuple[int, list, bytes]:
        multi: dict[str, list[str]] = {}
        for k, v in pairs:
            multi.setdefault(k, []).append(v)
        q = {k: v[-1] for k, v in multi.items()}
        try:
            limit = _int_param(q, "limit", HISTORY_DEFAULT_LIMIT)
            offset = _int_param(q, "offset", 0)
            if limit < 1 or limit > HISTORY_MAX_LIMIT:
                raise ParamError(f"limit must be between 1 and {HISTORY_MAX_LIMIT}")
            if offset < 0:
                raise ParamError("offset must not be negative")
            desc = True
            if spec.sort and "sortDirection" in q:
                direction = q["sortDirection"]
                if direction not in ("Asc", "Desc"):
                    raise ParamError(f"failed to parse parameter `sortDirection`: unknown variant `{direction}`")
                desc = direction == "Desc"
            frm = to = None
            if spec.from_to:
                frm = _int_param(q, "from", None)
                to = _int_param(q, "to", None)
            filt = []
            for name, (slot, parse) in spec.filters.items():
                if name in multi:
                    filt.append((slot, parse(multi[name])))
            filt.sort(key=lambda f: f[0])
        except ParamError as exc:
            return _err(400, "INVALID_CLIENT_REQUEST", str(exc))
        # The ``shift`` fault: a row inserted ahead of the reader of this listing; every later page of it
        # starts that many rows earlier (the reader sees rows again: it must neither lose nor double one).
        key = (account.api_key, spec.name, tuple(filt), frm, to, desc)
        ahead = self.shifted.get(key, 0) + shift
        if ahead:
            self.shifted[key] = ahead
            offset = max(0, offset - ahead)
        body, total = account.tables[spec.name].page(tuple(filt), frm, to, offset, limit, desc)
        headers = []
        if spec.headers:
            headers = [(b"x-total", str(total).encode()), (b"x-page-count", str(math.ceil(total / limit)).encode()),
                       (b"x-current-page", str(offset // limit + 1).encode()), (b"x-page-size", str(limit).encode()),
                       (b"access-control-expose-headers", PAGE_HEADERS)]
        return 200, headers, body

    def h_state(self, account, path: str, pairs: list) -> tuple[int, list, bytes]:
        q = dict(pairs)
        if path == "/api/v1/capital":
            return 200, [], account.state["capital"]
        if path == "/api/v1/capital/collateral":
            return 200, [], account.state["collateral"]
        if path == "/api/v1/borrowLend/positions":
            return 200, [], account.state["borrowLendPositions"]
        if path == "/api/v1/account":
            return 200, [], account.state["account"]
        if path == "/api/v1/orders":
            return 200, [], b"[]"
        rows = account.positions
        if "marketType" in q:
            if q["marketType"] not in MARKET_TYPES:
                return _err(400, "INVALID_CLIENT_REQUEST",
                            f"failed to parse parameter `marketType`: unknown variant `{q['marketType']}`")
            rows = [r for r in rows if market_type_of(r["symbol"]) == q["marketType"]]
        if "symbol" in q:
            rows = [r for r in rows if r["symbol"] == q["symbol"]]
        return 200, [], orjson.dumps(rows)

    # ------------------------------------------------------------------ public
    def _symbol(self, q: dict, required: bool = True):
        symbol = q.get("symbol")
        if symbol is None:
            if required:
                raise ParamError("missing parameter `symbol`")
            return None
        if symbol not in self.markets:
            raise _SymbolError(symbol)
        return self.markets[symbol]

    def _public(handler):  # noqa: N805 - a decorator for the handlers below
        def wrapped(self, pairs):
            try:
                return handler(self, pairs)
            except _SymbolError as exc:
                return _err(400, "INVALID_SYMBOL", f"Invalid symbol: {exc.args[0]}")
            except ParamError as exc:
                return _err(400, "INVALID_CLIENT_REQUEST", str(exc))
        return wrapped

    @_public
    def h_markets(self, pairs):
        types = [v for k, v in pairs if k == "marketType"] or ["SPOT", "PERP"]
        for t in types:
            if t not in MARKET_TYPES:
                raise ParamError(f"failed to parse parameter `marketType`: unknown variant `{t}`")
        return 200, [], orjson.dumps([m.render() for m in self.world.markets if m.market_type in types])

    @_public
    def h_market(self, pairs):
        return 200, [], orjson.dumps(self._symbol(dict(pairs)).render())

    @_public
    def h_assets(self, pairs):
        out = [{"symbol": s, "displayName": name, "coingeckoId": None, "tokens": [{
            "displayName": name, "blockchain": chain, "contractAddress": None, "depositEnabled": True,
            "minimumDeposit": fee, "withdrawEnabled": True, "minimumWithdrawal": fee, "maximumWithdrawal": None,
            "withdrawalFee": fee, "nativeDecimals": decimals}]} for s, name, chain, fee, decimals in ASSETS]
        return 200, [], orjson.dumps(out)

    @_public
    def h_klines(self, pairs):
        q = dict(pairs)
        m = self._symbol(q)
        interval = q.get("interval")
        if interval not in INTERVALS:
            raise ParamError(f"failed to parse parameter `interval`: unknown variant `{interval}`")
        if "startTime" not in q:
            raise ParamError("missing parameter `startTime`")
        start = _int_param(q, "startTime", None)
        end = _int_param(q, "endTime", None)
        price_type = q.get("priceType", "Last")
        if price_type not in ("Last", "Index", "Mark"):
            raise ParamError(f"failed to parse parameter `priceType`: unknown variant `{price_type}`")
        end_ms = end * 1000 if end is not None else self.world.now_ms
        bars = self.world.prices.bars(m.symbol, interval, start * 1000, end_ms)
        return 200, [(b"cache-control", b"max-age=60")], orjson.dumps(bars)

    def _mark(self, symbol: str) -> Decimal:
        return self.world.marks.get(symbol) or self.world.marks.get(symbol.split("_")[0]) or Decimal(1)

    @_public
    def h_mark_prices(self, pairs):
        q = dict(pairs)
        m = self._symbol(q, required=False)
        mtype = q.get("marketType", "PERP")
        if mtype not in MARKET_TYPES:
            raise ParamError(f"failed to parse parameter `marketType`: unknown variant `{mtype}`")
        chosen = [m] if m is not None else [x for x in self.world.markets if x.market_type == mtype]
        hour = self.world.now_ms // HOUR_MS
        out = []
        for x in chosen:
            mark = fmt(self._mark(x.symbol))
            perp = x.market_type == "PERP"
            out.append({"fundingRate": fmt(funding_rate(x.symbol, hour + 1)) if perp else None, "indexPrice": mark,
                        "markPrice": mark, "nextFundingTimestamp": (hour + 1) * HOUR_MS if perp else None,
                        "symbol": x.symbol})
        return 200, [], orjson.dumps(out)

    def _ticker(self, m, interval: str) -> dict:
        span = 7 * 24 * HOUR_MS if interval == "1w" else 24 * HOUR_MS
        now = self.world.now_ms
        bars = self.world.prices.bars(m.symbol, "1h", now - span, now - 1)
        if not bars:
            p = fmt(self._mark(m.symbol))
            return {"symbol": m.symbol, "firstPrice": p, "lastPrice": p, "priceChange": "0",
                    "priceChangePercent": "0", "high": p, "low": p, "volume": "0", "quoteVolume": "0", "trades": "0"}
        first, last = Decimal(bars[0]["open"]), Decimal(bars[-1]["close"])
        change = last - first
        return {"symbol": m.symbol, "firstPrice": fmt(first), "lastPrice": fmt(last), "priceChange": fmt(change),
                "priceChangePercent": fmt((change / first).quantize(Decimal("0.000001"))) if first else "0",
                "high": fmt(max(Decimal(b["high"]) for b in bars)), "low": fmt(min(Decimal(b["low"]) for b in bars)),
                "volume": fmt(sum((Decimal(b["volume"]) for b in bars), Decimal(0))),
                "quoteVolume": fmt(sum((Decimal(b["quoteVolume"]) for b in bars), Decimal(0))),
                "trades": str(sum(int(b["trades"]) for b in bars))}

    @_public
    def h_ticker(self, pairs):
        q = dict(pairs)
        interval = q.get("interval", "1d")
        if interval not in ("1d", "1w"):
            raise ParamError(f"failed to parse parameter `interval`: unknown variant `{interval}`")
        return 200, [], orjson.dumps(self._ticker(self._symbol(q), interval))

    @_public
    def h_tickers(self, pairs):
        q = dict(pairs)
        interval = q.get("interval", "1d")
        if interval not in ("1d", "1w"):
            raise ParamError(f"failed to parse parameter `interval`: unknown variant `{interval}`")
        return 200, [], orjson.dumps([self._ticker(m, interval) for m in self.world.markets
                                      if m.market_type in ("SPOT", "PERP")])

    @_public
    def h_depth(self, pairs):
        q = dict(pairs)
        m = self._symbol(q)
        limit = q.get("limit", "100")
        if limit not in ("5", "10", "20", "50", "100", "500", "1000"):
            raise ParamError(f"failed to parse parameter `limit`: unknown variant `{limit}`")
        n = min(int(limit), 50)
        mark = self._mark(m.symbol)
        tick = m.tick
        asks = [[fmt(mark + tick * (i + 1)), fmt(Decimal(3 + i % 7).scaleb(-min(m.qty_dp, 2)))] for i in range(n)]
        bids = [[fmt(mark - tick * (i + 1)), fmt(Decimal(2 + i % 5).scaleb(-min(m.qty_dp, 2)))] for i in range(n)]
        body = {"asks": asks, "bids": bids[::-1], "lastUpdateId": str(self.world.now_ms // 7),
                "timestamp": self.world.now_ms * 1000}
        return 200, [], orjson.dumps(body)

    @_public
    def h_trades(self, pairs):
        q = dict(pairs)
        m = self._symbol(q)
        limit = _int_param(q, "limit", 100)
        offset = _int_param(q, "offset", 0)
        if not 1 <= limit <= 1000 or offset < 0:
            raise ParamError("limit must be between 1 and 1000")
        now = self.world.now_ms
        prices = self.world.prices
        out = []
        for i in range(offset, offset + limit):
            t = now - 1 - i * 7_001
            price = prices.price_at(m.symbol, t) if hasattr(prices, "price_at") else self._mark(m.symbol)
            qty = Decimal(1 + (i * 7919) % 500).scaleb(-min(m.qty_dp, 2))
            out.append({"id": 900_000_000 - i, "price": fmt(price), "quantity": fmt(qty),
                        "quoteQuantity": fmt(price * qty), "timestamp": t, "isBuyerMaker": i % 3 == 0})
        return 200, [], orjson.dumps(out)

    @_public
    def h_funding_rates(self, pairs):
        q = dict(pairs)
        m = self._symbol(q)
        limit = _int_param(q, "limit", 100)
        offset = _int_param(q, "offset", 0)
        if not 1 <= limit <= 10000 or offset < 0:
            raise ParamError("limit must be between 1 and 10000")
        rows = []
        total = 0
        if m.market_type == "PERP":
            last = (self.world.now_ms - 1) // HOUR_MS
            first = getattr(self.world.prices, "start_ms", self.world.now_ms - 400 * 24 * HOUR_MS) // HOUR_MS + 1
            total = max(0, last - first + 1)
            for h in range(last - offset, max(first - 1, last - offset - limit), -1):
                rows.append({"symbol": m.symbol, "fundingRate": fmt(funding_rate(m.symbol, h)),
                             "intervalEndTimestamp": render_ts(h * HOUR_MS, "sec")})
        headers = [(b"x-total", str(total).encode()), (b"x-page-count", str(math.ceil(total / limit)).encode()),
                   (b"x-current-page", str(offset // limit + 1).encode()), (b"x-page-size", str(limit).encode()),
                   (b"access-control-expose-headers", PAGE_HEADERS)]
        return 200, headers, orjson.dumps(rows)

    def h_time(self, pairs):
        return 200, [(b"content-type", TEXT)], str(int(self.clock() * 1000)).encode()

    def h_ping(self, pairs):
        return 200, [(b"content-type", TEXT)], b"pong"

    def h_status(self, pairs):
        return 200, [], b'{"status":"Ok","message":null}'

    @_public
    def h_oi(self, pairs):
        q = dict(pairs)
        m = self._symbol(q, required=False)
        chosen = [m] if m is not None else [x for x in self.world.markets if x.market_type == "PERP"]
        return 200, [], orjson.dumps([{"symbol": x.symbol, "openInterest": "12345.67", "timestamp": self.world.now_ms}
                                      for x in chosen])

    def h_collateral_params(self, pairs):
        out = [{"symbol": s, "imfFunction": {"type": "sqrt", "base": "0.02", "factor": "0.0000935"},
                "mmfFunction": {"type": "sqrt", "base": "0.0125", "factor": "0.0000561"},
                "haircutFunction": {"weight": "0.9", "kind": {"type": "identity"}}} for s, *_ in ASSETS]
        return 200, [], orjson.dumps(out)


class _SymbolError(Exception):
    pass


def _int_param(q: dict, name: str, default):
    if name not in q:
        return default
    try:
        return int(q[name])
    except ValueError:
        raise ParamError(f"failed to parse parameter `{name}`: invalid digit found in string") from None


def _too_many(wait: float) -> tuple[int, list, bytes]:
    status, _, body = _err(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
    return status, [(b"retry-after", str(max(1, math.ceil(wait))).encode())], body


def _fault_response(kind: str) -> tuple[int, list, bytes]:
    if kind == "429":
        return _too_many(1.0)
    if kind == "500":
        return _err(500, "SERVER_ERROR", "Internal server error")
    if kind == "502":
        return 502, [], b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    return _err(503, "MAINTENANCE", "The exchange is under maintenance")


def _client(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "?"


def _drop_connection(send) -> bool:
    """Close the socket without writing a response (uvicorn's protocol objects expose the transport)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.close()
    cycle.disconnected = True
    return True


def _digits(text: str) -> bool:
    """Plain ASCII decimal digits (``int()`` would also take a sign, ``_`` and other scripts' digits)."""
    return bool(text) and text.isascii() and text.isdigit()


def _ambiguous(params: dict) -> bool:
    """A-SIGN-4: a key or text value holding ``&`` or ``=`` makes the signing string ambiguous (the
    string for ``a=1&b=2`` is also the string of one ``a`` whose value is ``1&b=2``): such a map is
    never verified in its decoded form; its percent-encoded form (``%26``, ``%3D``) still is."""
    return any("&" in k or "=" in k or (isinstance(v, str) and ("&" in v or "=" in v)) for k, v in params.items())


def _candidate_params(method: str, pairs: list, raw_qs: str, body: bytes):
    """Parameter maps to try, in order: decoded values (A-SIGN-1), then percent-encoded forms (ccxt)."""
    if method in ("POST", "DELETE", "PATCH", "PUT") and body.strip():
        try:
            parsed = json.loads(body, parse_float=str, parse_int=int)
        except ValueError:
            yield None
            return
        if isinstance(parsed, dict):
            plain_map = {k: v for k, v in parsed.items() if v is not None}
            if not _ambiguous(plain_map):
                yield plain_map
            yield {k: quote(str(v), safe="") if isinstance(v, str) else v for k, v in parsed.items() if v is not None}
        return
    decoded = dict(pairs)
    if not _ambiguous(decoded):
        yield decoded
    raw = {}
    for part in raw_qs.split("&"):
        if part:
            k, _, v = part.partition("=")
            raw[k] = v
    if raw != decoded:
        yield raw
        encoded = {k: quote(v, safe="") for k, v in decoded.items()}
        if encoded != raw:
            yield encoded
        plus = {k: quote_plus(v, safe="") for k, v in decoded.items()}
        if plus != raw and plus != encoded:
            yield plus
