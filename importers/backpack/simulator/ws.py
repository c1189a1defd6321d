"""The simulator's WebSocket streams (WEBSOCKET.md): one endpoint ``/`` for public and private streams.

- Frames: ``{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [...], "signature": [key, sig, ts, window]}``;
  every event goes out as ``{"stream": <the subscribed name>, "data": {...}}`` (§2, §4).
- Private (``account.*``) subscriptions need the signature of ``instruction=subscribe&timestamp=..&window=..``
  (§3), checked with the REST window rule. A refusal is an error frame and the connection stays open
  (§13 "chosen behaviour"; the codes are this simulator's, docs/assumptions.md A-WS-1).
- Live events: with ``LiveOptions(fills=N)`` the last N fills of each account (extended back to an order
  boundary) are replayed as ``account.orderUpdate`` (``orderAccepted`` then one ``orderFill`` per fill with
  cumulative ``z``/``Z``) and, on perps, ``account.positionUpdate`` events, ``rate`` fills per second
  (0: as fast as the clients read). The replay of an account starts at its first signed subscription
  and runs on one timeline for every connection: what is emitted while a client is disconnected is lost
  to it, as on the real streams (§12). The REST history already holds the replayed fills (A-WS-2).
- ``markPrice.<symbol>``: one event per ``mark_interval_s`` at the world's mark.
- Keep-alive: protocol Ping every ``ping_interval_s`` (60), Close when no Pong within ``ping_timeout_s``
  (uvicorn's WebSocket protocol does both; server.make_server passes the figures).
- Faults (``WsFaultPlan``, ``--ws-faults``): per message ``drop`` (close the connection), ``delay``
  (hold the message ``delay_s``), ``missing`` (never sent), ``duplicate`` (sent twice).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from ..signing import MAX_WINDOW_MS, verify
from ._time import parse_ts_ms
from .faults import draw, parse_spec
from .markets import HOUR_MS
from .world import Account, World, fmt, funding_rate

__all__ = ["LiveOptions", "WsFaultPlan", "WsFaultSpecError", "StreamServer", "ERRORS", "subscribe_message"]

ZERO = Decimal(0)

#: Error frames (the code 4006 is the exchange's; the others are the simulator's, A-WS-1).
ERRORS = {
    "invalid_stream": (4006, "Invalid stream"),
    "bad_request": (4000, "Invalid request"),
    "missing_signature": (4001, "Missing signature"),
    "bad_signature": (4002, "Invalid signature"),
    "expired": (4003, "Request has expired"),
    "future": (4003, "Request timestamp is too far in the future"),
    "bad_window": (4004, "Invalid window"),
}
PRIVATE = ("account.orderUpdate", "account.positionUpdate", "account.rfqUpdate", "account.balanceUpdate")
PUBLIC_KINDS = {"bookTicker", "depth", "depth.200ms", "depth.600ms", "depth.1000ms", "markPrice", "ticker",
                "openInterest", "trade"}
ORIGIN = {None: "USER", "LiquidatePositionOnBook": "LIQUIDATION_AUTOCLOSE", "LiquidatePositionOnAdl": "ADL_AUTOCLOSE",
          "LiquidatePositionOnBackstop": "BACKSTOP_LIQUIDITY_PROVIDER", "CollateralConversion": "COLLATERAL_CONVERSION",
          "FutureExpiry": "SETTLEMENT_AUTOCLOSE"}
FAULT_KINDS = ("drop", "delay", "missing", "duplicate")


def subscribe_message(timestamp_ms: int, window_ms: int) -> str:
    """The signed string of a private SUBSCRIBE (WEBSOCKET.md §3.1): the stream names are not signed."""
    return f"instruction=subscribe&timestamp={timestamp_ms}&window={window_ms}"


class WsFaultSpecError(ValueError):
    """A malformed ``--ws-faults`` string; the message names the bad item."""


@dataclass
class WsFaultPlan:
    """``drop=0.001,delay=0.01,missing=0.01,duplicate=0.01,seed=3,delay_s=0.05``: one draw per message sent."""

    rates: dict[str, float]
    seed: int = 0
    delay_s: float = 0.05
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def parse(cls, spec: str | None) -> "WsFaultPlan | None":
        parsed = parse_spec(spec, FAULT_KINDS, {"delay_s": 0.05}, WsFaultSpecError, "ws fault")
        if parsed is None:
            return None
        rates, seed, extra = parsed
        return cls(rates=rates, seed=seed, delay_s=extra["delay_s"])

    def draw(self) -> str | None:
        return draw(self._rng, FAULT_KINDS, self.rates)


@dataclass
class LiveOptions:
    fills: int = 0  # the last N fills of each account replayed live (0: none; -1: all)
    rate: float = 200.0  # fills per second (0: as fast as the clients read)
    mark_interval_s: float = 1.0
    ping_interval_s: float | None = 60.0
    ping_timeout_s: float | None = 120.0
    queue: int = 10_000  # per-connection send queue (the replay waits for the slowest reader)

    @classmethod
    def from_dict(cls, d: dict | None) -> "LiveOptions":
        d = d or {}
        unknown = set(d) - {"fills", "rate", "mark_interval_s", "ping_interval_s", "ping_timeout_s", "queue"}
        if unknown:
            raise ValueError(f"live: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(**d)


# --------------------------------------------------------------------------------------------- replay
@dataclass
class _Event:
    stream: str  # account.orderUpdate / account.positionUpdate
    symbol: str
    body: bytes  # the data object rendered without E, starting with b"{"
    step: int  # the fill index it belongs to (pacing)


def _pos_data(symbol: str, pid, net: Decimal, entry: Decimal, realized: Decimal, mark: Decimal, t_us: int,
              e: str | None) -> dict:
    d = {} if e is None else {"e": e}
    d.update({"T": t_us, "s": symbol, "i": int(pid) if str(pid).isdigit() else pid, "q": fmt(net),
              "Q": fmt(abs(net)), "B": fmt(entry), "b": fmt(entry), "M": fmt(mark), "f": "0.02", "m": "0.0125",
              "n": fmt(abs(net) * mark), "p": fmt(realized), "P": fmt(net * (mark - entry)), "l": "0"})
    return d


def _render(d: dict) -> bytes:
    return orjson.dumps(d)


def _rfq_events(account: Account, since_ms: int) -> list[tuple[int, str, bytes]]:
    """``rfqFilled`` (WEBSOCKET.md §9) for the account's RFQ fills from ``since_ms``: the requester's from
    ``history/rfq/fill`` (side, quantity, taker price), the quoter's from ``history/quote/fill`` (no side,
    no quantity, no fee: those are REST only)."""
    out = []
    for r in account.tables["rfqFills"].records():
        ms = parse_ts_ms(r["filledAt"])
        if ms < since_ms:
            continue
        d = {"e": "rfqFilled", "T": ms * 1000, "R": int(r["rfqId"]), "u": int(r["quoteId"]), "s": r["symbol"],
             "S": r["side"]}
        if r.get("quantity") is not None:
            d["q"] = r["quantity"]
        else:
            d["Q"] = r["quoteQuantity"]
        d.update({"p": r["fillPrice"], "X": "Filled"})
        if r.get("clientId") is not None:
            d["C"] = str(r["clientId"])
        out.append((ms, r["symbol"], _render(d)))
    for r in account.tables["quoteFills"].records():
        ms = parse_ts_ms(r["filledAt"])
        if ms < since_ms:
            continue
        d = {"e": "rfqFilled", "T": ms * 1000, "R": int(r["rfqId"]), "u": int(r["quoteId"]), "s": r["symbol"],
             "p": r["fillPrice"], "X": "Filled"}
        if r.get("clientId") is not None:
            d["C"] = str(r["clientId"])
        out.append((ms, r["symbol"], _render(d)))
    out.sort(key=lambda x: x[0])
    return out


class Replay:
    """The live events of one account, precomputed; ``positions_at(k)`` is the state before step k."""

    def __init__(self, world: World, account: Account, n: int):
        fills = account.tables["fills"].records() if n else []
        if n < 0 or n >= len(fills):
            start = 0
        else:
            start = len(fills) - n
            first_orders = {fills[start]["orderId"]}
            while start > 0 and fills[start - 1]["orderId"] in first_orders:
                start -= 1
        live = fills[start:] if n else []
        wanted = {f["orderId"] for f in live}
        orders = {o["id"]: o for o in account.tables["orders"].records() if o["id"] in wanted} if live else {}
        marks = world.marks
        final = {p["symbol"]: p for p in account.positions}
        # positions before the replay: the final REST position minus the replayed perp fills
        net: dict[str, Decimal] = {s: Decimal(p["netQuantity"]) for s, p in final.items()}
        for f in live:
            if f["symbol"].endswith("_PERP"):
                q = Decimal(f["quantity"])
                net[f["symbol"]] = net.get(f["symbol"], ZERO) - (q if f["side"] == "Bid" else -q)
        self.start_net = {s: q for s, q in net.items() if q != 0}
        entry = {s: Decimal(final[s]["entryPrice"]) if s in final else ZERO for s in net}
        realized: dict[str, Decimal] = {s: ZERO for s in net}
        pids = {s: final[s]["positionId"] if s in final else str(4_000_000_000 + i) for i, s in enumerate(sorted(net))}
        self.events: list[_Event] = []
        self.snapshots: list[dict[str, dict]] = []  # per step: open positions (symbol -> data without e)
        cum: dict[str, tuple[Decimal, Decimal]] = {}
        open_pos = {s: _pos_data(s, pids[s], q, entry[s], ZERO, marks.get(s, entry[s]), 0, None)
                    for s, q in self.start_net.items()}
        last_of_order = {f["orderId"]: i for i, f in enumerate(live)}
        rfq = _rfq_events(account, parse_ts_ms(live[0]["timestamp"])) if live else []
        r_next = 0
        for k, f in enumerate(live):
            self.snapshots.append(dict(open_pos))
            f_ms = parse_ts_ms(f["timestamp"])
            while r_next < len(rfq) and rfq[r_next][0] <= f_ms:
                self.events.append(_Event("account.rfqUpdate", rfq[r_next][1], rfq[r_next][2], k))
                r_next += 1
            sym, oid = f["symbol"], f["orderId"]
            t_us = parse_ts_ms(f["timestamp"]) * 1000 + (f.get("tradeId") or 0) % 1000
            o = orders.get(oid, {})
            base = {"s": sym, "i": oid, "S": f["side"], "o": str(o.get("orderType") or "Limit").upper(),
                    "f": o.get("timeInForce") or "GTC", "q": o.get("quantity") or f["quantity"]}
            if o.get("price") is not None and base["o"] == "LIMIT":
                base["p"] = o["price"]
            if f.get("clientId") is not None:
                base["c"] = int(f["clientId"]) if str(f["clientId"]).isdigit() else f["clientId"]
            tail = {"V": o.get("selfTradePrevention") or "RejectTaker", "O": ORIGIN.get(f.get("systemOrderType"), "USER"),
                    "r": False}
            if oid not in cum:
                cum[oid] = (ZERO, ZERO)
                acc = {"e": "orderAccepted", "T": t_us - 1, **base, "X": "New", "z": "0", "Z": "0", **tail, "t": None}
                self.events.append(_Event("account.orderUpdate", sym, _render(acc), k))
            q, p = Decimal(f["quantity"]), Decimal(f["price"])
            z, zq = cum[oid]
            z, zq = z + q, zq + q * p
            cum[oid] = (z, zq)
            oq = Decimal(base["q"])
            status = "Filled" if z >= oq else "PartiallyFilled"
            fill = {"e": "orderFill", "T": t_us, **base, "X": status, "t": f.get("tradeId"), "l": f["quantity"],
                    "L": f["price"], "m": bool(f.get("isMaker")), "n": f["fee"], "N": f["feeSymbol"], "z": fmt(z),
                    "Z": fmt(zq), **tail}
            self.events.append(_Event("account.orderUpdate", sym, _render(fill), k))
            if last_of_order[oid] == k and status != "Filled":
                final_status = o.get("status") or "Cancelled"
                e = "orderExpired" if final_status == "Expired" else "orderCancelled"
                end = {"e": e, "T": t_us + 1, **base, "X": "Expired" if e == "orderExpired" else "Cancelled",
                       "z": fmt(z), "Z": fmt(zq), **tail}
                if e == "orderExpired":
                    end["R"] = o.get("expiryReason") or "ImmediateOrCancel"
                self.events.append(_Event("account.orderUpdate", sym, _render(end), k))
            if sym.endswith("_PERP"):
                old = net.get(sym, ZERO)
                signed = q if f["side"] == "Bid" else -q
                new = old + signed
                e_old = entry.get(sym, p) if old != 0 else p
                if old == 0:
                    realized[sym] = ZERO
                if old == 0 or (old > 0) == (signed > 0):  # open or increase: weighted entry
                    e_new = (abs(old) * e_old + q * p) / abs(new) if new != 0 else p
                elif abs(signed) <= abs(old):  # reduce: entry kept
                    realized[sym] = realized.get(sym, ZERO) + (q * (p - e_old) if old > 0 else q * (e_old - p))
                    e_new = e_old
                else:  # flip: the remainder opens at the fill price
                    realized[sym] = realized.get(sym, ZERO) + (abs(old) * (p - e_old) if old > 0 else abs(old) * (e_old - p))
                    e_new = p
                kind = "positionOpened" if old == 0 else ("positionClosed" if new == 0 else "positionAdjusted")
                net[sym], entry[sym] = new, e_new
                data = _pos_data(sym, pids.get(sym, "4000000000"), new, e_new, realized.get(sym, ZERO),
                                 marks.get(sym, p), t_us, kind)
                self.events.append(_Event("account.positionUpdate", sym, _render(data), k))
                if new == 0:
                    open_pos.pop(sym, None)
                else:
                    snap = dict(data)
                    snap.pop("e")
                    open_pos[sym] = snap
        for _ms, sym, body in rfq[r_next:]:
            self.events.append(_Event("account.rfqUpdate", sym, body, len(live)))
        self.final_positions = open_pos
        self.steps = len(live)

    def positions_at(self, cursor_event: int) -> dict[str, dict]:
        if not self.events or cursor_event >= len(self.events) or self.events[cursor_event].step >= len(self.snapshots):
            return self.final_positions
        return self.snapshots[self.events[cursor_event].step]


# --------------------------------------------------------------------------------------------- server
class _Conn:
    __slots__ = ("queue", "subs", "account", "closed", "ident")

    def __init__(self, size: int, ident: int):
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=size)
        self.subs: set[str] = set()
        self.account: Account | None = None
        self.closed = False
        self.ident = ident


class StreamServer:
    """The ASGI ``websocket`` scope handler (SimulatorApp hands it every websocket connection)."""

    def __init__(self, world: World, *, live: LiveOptions | None = None, faults: WsFaultPlan | None = None,
                 clock=time.time):
        self.world = world
        self.live = live or LiveOptions()
        self.faults = faults
        self.clock = clock
        self.accounts = world.account_by_key()
        self.symbols = {m.symbol for m in world.markets}
        self.conns: set[_Conn] = set()
        self._replays: dict[str, Replay] = {}
        self._cursor: dict[str, int] = {}  # account name -> next event index
        self._tasks: dict[str, asyncio.Task] = {}
        self._ids = 0
        self.sent = 0
        self.sent_fills = 0  # orderFill messages written (duplicates once)
        self.refused = 0
        self.accepted: list[tuple[str, int]] = []  # (account, signature timestamp) of each signed SUBSCRIBE served
        self.done: dict[str, asyncio.Event] = {}
        if self.live.fills:  # built before serving, so the first subscription does not wait for it
            for acc in world.accounts:
                self.replay(acc)

    # -- the replay timeline of one account
    def replay(self, account: Account) -> Replay:
        r = self._replays.get(account.name)
        if r is None:
            r = self._replays[account.name] = Replay(self.world, account, self.live.fills)
            self._cursor[account.name] = 0
        return r

    def replay_finished(self, name: str) -> bool:
        """Every live event of the account has been handed to the connections' queues."""
        r = self._replays.get(name)
        return r is not None and self._cursor.get(name, 0) >= len(r.events)

    def _start(self, account: Account) -> None:
        if account.name in self._tasks or not self.live.fills:
            return
        self.replay(account)
        self.done.setdefault(account.name, asyncio.Event())
        self._tasks[account.name] = asyncio.get_running_loop().create_task(self._run(account))

    async def _run(self, account: Account) -> None:
        r = self.replay(account)
        rate = self.live.rate
        t0 = time.monotonic()
        n = 0
        for idx, ev in enumerate(r.events):
            if rate > 0:
                wait = t0 + ev.step / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._cursor[account.name] = idx + 1
            for c in list(self.conns):
                if c.account is account and not c.closed:
                    for name in (ev.stream, f"{ev.stream}.{ev.symbol}"):
                        if name in c.subs:
                            await c.queue.put((name, ev.body))
            n += 1
            if rate <= 0 and n % 256 == 0:
                await asyncio.sleep(0)
        self.done[account.name].set()

    # -- ASGI
    async def __call__(self, scope, receive, send) -> None:
        msg = await receive()
        if msg["type"] != "websocket.connect":
            return
        if scope.get("path", "/") not in ("/", ""):
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        self._ids += 1
        conn = _Conn(self.live.queue, self._ids)
        self.conns.add(conn)
        sender = asyncio.get_running_loop().create_task(self._sender(conn, send))
        marks = asyncio.get_running_loop().create_task(self._marks(conn))
        try:
            while not conn.closed:
                msg = await receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg["type"] != "websocket.receive":
                    continue
                raw = msg.get("text")
                if raw is None:
                    raw = (msg.get("bytes") or b"").decode("utf-8", "replace")
                await self._frame(conn, raw)
        finally:
            conn.closed = True
            self.conns.discard(conn)
            marks.cancel()
            sender.cancel()
            # unblock a replay waiting on this connection's full queue
            while not conn.queue.empty():
                conn.queue.get_nowait()

    async def _sender(self, conn: _Conn, send) -> None:
        faults = self.faults
        try:
            while True:
                item = await conn.queue.get()
                if item is None:
                    await send({"type": "websocket.close", "code": 1001})
                    conn.closed = True
                    return
                name, body = item
                if name == "\x00":  # an error frame: never faulted
                    await send({"type": "websocket.send", "text": body.decode()})
                    continue
                kind = faults.draw() if faults is not None else None
                if kind == "missing":
                    continue
                if kind == "drop":
                    conn.closed = True
                    await send({"type": "websocket.close", "code": 1001})
                    return
                if kind == "delay":
                    await asyncio.sleep(faults.delay_s)
                frame = self._envelope(name, body)
                await send({"type": "websocket.send", "text": frame})
                self.sent += 1
                if b'"orderFill"' in body:
                    self.sent_fills += 1
                if kind == "duplicate":
                    await send({"type": "websocket.send", "text": self._envelope(name, body)})
                    self.sent += 1
        except (asyncio.CancelledError, OSError, RuntimeError):
            conn.closed = True
            return
        except Exception:  # noqa: BLE001 - the client went away mid-send
            conn.closed = True
            return

    def _envelope(self, name: str, body: bytes) -> str:
        e_us = int(self.clock() * 1_000_000)
        return f'{{"stream":"{name}","data":{{"E":{e_us},{body[1:].decode()}}}'

    async def _marks(self, conn: _Conn) -> None:
        interval = self.live.mark_interval_s
        if not interval or interval <= 0:
            return
        try:
            while True:
                for name in sorted(conn.subs):
                    if name.startswith("markPrice."):
                        sym = name[len("markPrice."):]
                        await conn.queue.put((name, self._mark_body(sym)))
                await asyncio.sleep(interval)
        except asyncio.CancelledError:
            return

    def _mark_body(self, symbol: str) -> bytes:
        mark = self.world.marks.get(symbol) or self.world.marks.get(symbol.split("_")[0]) or Decimal(1)
        now_ms = int(self.clock() * 1000)
        d = {"e": "markPrice", "s": symbol, "p": fmt(mark), "T": now_ms * 1000}
        if symbol.endswith("_PERP"):
            hour = self.world.now_ms // HOUR_MS
            d.update({"f": fmt(funding_rate(symbol, hour + 1)), "i": fmt(mark), "n": (now_ms // HOUR_MS + 1) * HOUR_MS})
        return orjson.dumps(d)

    # -- frames
    async def _error(self, conn: _Conn, req_id, which: str) -> None:
        code, message = ERRORS[which]
        frame = orjson.dumps({"id": req_id, "error": {"code": code, "message": message}})
        await self._direct(conn, frame)

    async def _direct(self, conn: _Conn, frame: bytes) -> None:
        # error frames bypass the fault plan and the data queue
        await conn.queue.put(("\x00", frame))

    def _valid_stream(self, name) -> bool:
        if not isinstance(name, str):
            return False
        if name in PRIVATE or name == "liquidation":
            return True
        for p in PRIVATE:
            if name.startswith(p + ".") and name[len(p) + 1:] in self.symbols:
                return True
        kind, _, symbol = name.rpartition(".")
        if kind.startswith("kline."):
            return symbol in self.symbols
        return kind in PUBLIC_KINDS and symbol in self.symbols

    def check_signature(self, sig) -> tuple[Account | None, str | None]:
        """(account, None) or (None, error name) for a ``signature`` array (WEBSOCKET.md §3)."""
        if sig is None:
            return None, "missing_signature"
        if not isinstance(sig, list) or len(sig) != 4 or not all(isinstance(x, (str, int)) for x in sig):
            return None, "bad_signature"
        key, signature, ts, window = (str(x) for x in sig)
        try:
            ts_ms, window_ms = int(ts), int(window)
        except ValueError:
            return None, "bad_signature"
        if window_ms <= 0 or window_ms > MAX_WINDOW_MS:
            return None, "bad_window"
        account = self.accounts.get(key)
        if account is None or not verify(key, subscribe_message(ts_ms, window_ms), signature):
            return None, "bad_signature"
        now_ms = int(self.clock() * 1000)
        if now_ms > ts_ms + window_ms:
            return None, "expired"
        if ts_ms > now_ms + window_ms:
            return None, "future"
        return account, None

    async def _frame(self, conn: _Conn, raw: str) -> None:
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self._error(conn, None, "bad_request")
            return
        if not isinstance(req, dict):
            await self._error(conn, None, "bad_request")
            return
        req_id = req.get("id")
        method, params = req.get("method"), req.get("params")
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            await self._error(conn, req_id, "bad_request")
            return
        if not params or not all(self._valid_stream(p) for p in params):
            await self._error(conn, req_id, "invalid_stream")
            return
        if method == "UNSUBSCRIBE":
            conn.subs.difference_update(params)
            return
        private = [p for p in params if p.startswith("account.")]
        if private:
            account, problem = self.check_signature(req.get("signature"))
            if problem is not None:
                self.refused += 1
                await self._error(conn, req_id, problem)
                return
            if conn.account is not None and conn.account is not account:
                await self._error(conn, req_id, "bad_signature")
                return
            conn.account = account
            self.accepted.append((account.name, int(str(req["signature"][2]))))
        new = [p for p in params if p not in conn.subs]
        conn.subs.update(params)
        if private:
            for name in new:
                if name.startswith("account.positionUpdate"):
                    await self._position_snapshot(conn, name)
            self._start(conn.account)
        for name in new:
            if name.startswith("markPrice."):
                await conn.queue.put((name, self._mark_body(name[len("markPrice."):])))

    async def _position_snapshot(self, conn: _Conn, name: str) -> None:
        """One message per open position, without ``e`` (WEBSOCKET.md §8.2), at the replay's cursor."""
        account = conn.account
        state = self.replay(account).positions_at(self._cursor.get(account.name, 0)) if self.live.fills else \
            {p["symbol"]: _pos_data(p["symbol"], p["positionId"], Decimal(p["netQuantity"]), Decimal(p["entryPrice"]),
                                    Decimal(p["pnlRealized"]), Decimal(p["markPrice"]), self.world.now_ms * 1000, None)
             for p in account.positions}
        symbol = name.split(".", 2)[2] if name.count(".") >= 2 else None
        for sym in sorted(state):
            if symbol is None or sym == symbol:
                d = dict(state[sym])
                d.pop("e", None)
                await conn.queue.put((name, orjson.dumps(d)))
