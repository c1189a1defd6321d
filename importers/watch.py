"""``reconcile watch``: tail the account streams (WEBSOCKET.md) into the live view (ledger/live.py).

One connection per venue account: a signed SUBSCRIBE to ``account.orderUpdate`` and
``account.positionUpdate``, then ``markPrice.<symbol>`` for every perp the account holds (from the last
sync's snapshot and from the position stream). Every fill becomes a provisional row keyed by its REST
natural key; nothing is journalled. On a Close, an error or a missing Pong the client reconnects with
exponential backoff and re-subscribes with a fresh signature; the time it was away is recorded as a gap,
and so is a cumulative fill quantity ``z`` that skips. The next ``reconcile sync`` confirms the fills and
fills the gaps (importers/sync.py -> ledger.live.confirm_live_fills).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit, urlunsplit

import orjson
from sqlalchemy import Engine, event, text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ledger.live import FillIn, GapIn, LiveBatch, MarkIn, PositionIn, fill_key, rfq_fill_key, set_stream_state, store_live
from ledger.types import utc_from_db

from .backpack.errors import ConfigError
from .backpack.signing import Credentials

__all__ = ["WatchAccount", "WatchOptions", "WatchReport", "SubscriptionRefused", "ws_url_for", "subscribe_frame",
           "watch", "PRIVATE_STREAMS"]

PRIVATE_STREAMS = ("account.orderUpdate", "account.positionUpdate")
PUBLIC_WS = "wss://ws.backpack.exchange/"
#: Order states after which no fill follows (its cumulative quantity is forgotten).
FINAL = frozenset({"Filled", "Cancelled", "Expired", "TriggerFailed"})
#: How many recent fill keys are remembered to drop duplicate messages before the database does.
SEEN_KEYS = 20_000


class SubscriptionRefused(ConfigError):
    """The exchange answered the signed SUBSCRIBE with an error frame on the first connection (exit 2)."""


def ws_url_for(base_url: str) -> str:
    """The WebSocket endpoint of a REST ``base_url``: the exchange's own for ``api.backpack.exchange``, else
    the same host and port with ``ws``/``wss`` and path ``/`` (the simulator serves both on one port)."""
    parts = urlsplit(base_url)
    if parts.hostname == "api.backpack.exchange":
        return PUBLIC_WS
    scheme = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}.get(parts.scheme)
    if scheme is None:
        raise ConfigError(f"base_url {base_url!r}: cannot derive a WebSocket endpoint; set ws_url")
    return urlunsplit((scheme, parts.netloc, "/", "", ""))


def subscribe_frame(creds: Credentials, streams: list[str], timestamp_ms: int, window_ms: int) -> str:
    """A signed SUBSCRIBE (WEBSOCKET.md §3): the signed string has no parameters."""
    sig = creds.sign(f"instruction=subscribe&timestamp={timestamp_ms}&window={window_ms}")
    return orjson.dumps({"method": "SUBSCRIBE", "params": streams,
                         "signature": [creds.api_key, sig, str(timestamp_ms), str(window_ms)]}).decode()


@dataclass
class WatchAccount:
    name: str
    credentials: Credentials
    ws_url: str
    window_ms: int = 5000
    #: Subscribe to ``account.rfqUpdate`` too; None: when the ledger holds RFQ records of the account.
    rfq: bool | None = None


@dataclass
class WatchOptions:
    verbose: bool = False
    quiet: bool = False
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: Client pings (RFC 6455); the server's own pings are answered automatically.
    ping_interval_s: float | None = 30.0
    ping_timeout_s: float | None = 30.0
    #: How long after the signed SUBSCRIBE an error frame counts as the subscription's refusal.
    auth_wait_s: float = 2.0
    flush_interval_s: float = 0.25
    flush_rows: int = 1000
    #: Stop after this many seconds (None: until SIGINT/SIGTERM); for tests and benchmarks.
    max_seconds: float | None = None
    clock: Callable[[], float] = time.time


@dataclass
class AccountStats:
    connects: int = 0
    events: int = 0
    fills: int = 0
    new_fills: int = 0
    duplicates: int = 0
    gaps: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class WatchReport:
    accounts: dict[str, AccountStats] = field(default_factory=dict)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _us(v) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(v) / 1_000_000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _dec(v) -> Decimal | None:
    if v is None:
        return None
    try:
        return Decimal(v if isinstance(v, (str, int)) else repr(v))
    except InvalidOperation:
        return None


class _Session:
    """One account's tail: state that survives reconnects (orders' cumulative quantities, the batch)."""

    def __init__(self, engine: Engine, acc: WatchAccount, opts: WatchOptions, out: Callable[[str], None],
                 err: Callable[[str], None], stop: asyncio.Event, stats: AccountStats):
        self.engine, self.acc, self.opts, self.out, self.err, self.stop = engine, acc, opts, out, err, stop
        self.stats = stats
        self.batch = LiveBatch(acc.name)
        self.last_flush = time.monotonic()
        self.z: dict[str, tuple[Decimal, datetime]] = {}  # order id -> (cumulative quantity, T)
        self.seen: dict[str, None] = {}  # recent fill keys (duplicates), insertion-ordered, bounded
        self.marks_subscribed: set[str] = set()
        self.held = self._held_perps()
        rfq = getattr(acc, "rfq", None)
        if rfq is None:
            with engine.connect() as conn:
                rfq = conn.execute(text("SELECT 1 FROM raw_records WHERE venue_account = :a AND endpoint IN "
                                        "('rfqFill', 'quoteFill', 'rfq', 'quote') LIMIT 1"), {"a": acc.name}).first() is not None
        self.streams = list(PRIVATE_STREAMS) + (["account.rfqUpdate"] if rfq else [])
        self.connected_at = _utc(opts.clock())
        self._up = False

    def _held_perps(self) -> set[str]:
        q = text("SELECT l.asset, l.quantity FROM snapshot_lines l JOIN snapshots s ON s.id = l.snapshot_id "
                 "WHERE l.wallet = 'Perp' AND s.id = (SELECT MAX(id) FROM snapshots WHERE venue_account = :a)")
        with self.engine.connect() as conn:
            rows = conn.execute(q, {"a": self.acc.name}).all()
            rows += conn.execute(text("SELECT symbol, quantity FROM live_positions WHERE venue_account = :a"),
                                 {"a": self.acc.name}).all()
        return {sym for sym, qty in rows if Decimal(str(qty)) != 0}

    # -- storage
    def flush(self, force: bool = False) -> None:
        b = self.batch
        if not len(b) and not b.events:
            return
        if not force and len(b.fills) < self.opts.flush_rows and time.monotonic() - self.last_flush < self.opts.flush_interval_s:
            return
        with self.engine.begin() as conn:
            self.stats.new_fills += store_live(conn, b, _utc(self.opts.clock()))
        self.batch = LiveBatch(self.acc.name)
        self.last_flush = time.monotonic()

    def gap(self, start: datetime, end: datetime, reason: str, detail: str) -> None:
        self.batch.gaps.append(GapIn(start, end, reason, detail))
        self.stats.gaps += 1
        if not self.opts.quiet:
            a, b = span_text(start, end)
            self.out(f"{self.acc.name}: live view incomplete between {a} and {b} ({reason}: {detail}); the next sync fills it")

    # -- events
    def on_message(self, raw) -> list[str]:
        """Handle one frame; returns the markPrice streams to subscribe to now."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.err(f"{self.acc.name}: a frame that is not JSON was ignored")
            return []
        if not isinstance(msg, dict):
            return []
        if "error" in msg:
            raise _ErrorFrame(msg.get("error"))
        stream, data = msg.get("stream"), msg.get("data")
        if not isinstance(stream, str) or not isinstance(data, dict):
            return []
        now = _utc(self.opts.clock())
        self.batch.events += 1
        self.batch.last_message_at = now
        self.stats.events += 1
        if stream.startswith("account.orderUpdate"):
            if data.get("e") == "orderFill":
                self._fill(data)
            elif data.get("i") is not None and data.get("e") == "orderAccepted":
                self.z.setdefault(str(data["i"]), (Decimal(0), _us(data.get("T")) or now))
            elif data.get("X") in FINAL and data.get("i") is not None:
                self.z.pop(str(data["i"]), None)
        elif stream.startswith("account.positionUpdate"):
            return self._position(data, now)
        elif stream.startswith("account.rfqUpdate"):
            if data.get("e") == "rfqFilled":
                self._rfq_fill(data)
        elif stream.startswith("markPrice."):
            mark = _dec(data.get("p"))
            sym = data.get("s") or stream[len("markPrice."):]
            if mark is not None:
                self.batch.marks[sym] = MarkIn(sym, mark, _us(data.get("T")) or now)
                if self.opts.verbose:
                    self.out(f"{self.acc.name}: mark {sym} {mark}")
        return []

    def _fill(self, d: dict) -> None:
        sym, oid, side = d.get("s"), d.get("i"), d.get("S")
        qty, price = _dec(d.get("l")), _dec(d.get("L"))
        t = _us(d.get("T"))
        if not sym or oid is None or qty is None or price is None or t is None:
            self.err(f"{self.acc.name}: an orderFill without s/i/l/L/T was ignored")
            return
        oid = str(oid)
        tid = d.get("t")
        key = fill_key(sym, tid, oid, side, d.get("l"), d.get("L"), int(d["T"]))
        self.stats.fills += 1
        if key in self.seen:
            self.stats.duplicates += 1
            return
        self.seen[key] = None
        if len(self.seen) > SEEN_KEYS:  # duplicates arrive close together: a window of recent keys suffices
            for k in list(self.seen)[:SEEN_KEYS // 2]:
                del self.seen[k]
        z = _dec(d.get("z"))
        if z is not None:
            prev = self.z.get(oid)
            before = prev[0] if prev else Decimal(0)
            if z - before != qty and z > before:
                since = prev[1] if prev else self.connected_at
                self.gap(min(since, t), t, "fills skipped",
                         f"order {oid} on {sym}: cumulative quantity {before} -> {z} but this fill is {qty}")
            if d.get("X") in FINAL:
                self.z.pop(oid, None)  # a final order gets no more fills (duplicates are caught by key)
            elif prev is None or z > prev[0]:
                self.z[oid] = (z, t)
        self.batch.fills.append(FillIn(key, sym, None if tid is None else str(tid), oid, str(side), qty, price,
                                       _dec(d.get("n")), d.get("N"), t, orjson.dumps(d).decode()))
        if self.opts.verbose:
            self.out(f"{self.acc.name}: fill {sym} {side} {qty} @ {price} fee {d.get('n')} {d.get('N')} "
                     f"trade {tid} order {oid} (provisional)")

    def _rfq_fill(self, d: dict) -> None:
        """An RFQ fill of this account: the requester's event has a side, the quoter's has none (§9.2)."""
        rfq_id, quote_id, sym, price, t = d.get("R"), d.get("u"), d.get("s"), _dec(d.get("p")), _us(d.get("T"))
        if rfq_id is None or quote_id is None or not sym or price is None or t is None:
            self.err(f"{self.acc.name}: an rfqFilled without R/u/s/p/T was ignored")
            return
        requester = d.get("S") is not None
        key = rfq_fill_key(rfq_id, quote_id, requester)
        self.stats.fills += 1
        if key in self.seen:
            self.stats.duplicates += 1
            return
        self.seen[key] = None
        self.batch.fills.append(FillIn(key, sym, str(quote_id), str(rfq_id), str(d.get("S") or ""),
                                       _dec(d.get("q")) if requester else None, price, None, None, t,
                                       orjson.dumps(d).decode()))
        if self.opts.verbose:
            self.out(f"{self.acc.name}: rfq fill {sym} {d.get('S') or '(quoter)'} {d.get('q') or d.get('Q') or ''} @ {price} "
                     f"rfq {rfq_id} quote {quote_id} (provisional)")

    def _position(self, d: dict, now: datetime) -> list[str]:
        sym, qty = d.get("s"), _dec(d.get("q"))
        if not sym or qty is None:
            return []
        self.batch.positions[sym] = PositionIn(sym, qty, _dec(d.get("B")), _dec(d.get("M")), _us(d.get("T")) or now,
                                               orjson.dumps(d).decode())
        if self.opts.verbose:
            self.out(f"{self.acc.name}: position {sym} {qty} entry {d.get('B')} mark {d.get('M')} ({d.get('e', 'snapshot')})")
        if qty != 0 and f"markPrice.{sym}" not in self.marks_subscribed:
            return [f"markPrice.{sym}"]
        return []

    # -- the connection loop
    async def run(self) -> None:
        delay = self.opts.backoff_initial_s
        down_since: datetime | None = None
        first = True
        while not self.stop.is_set():
            self._up = False
            try:
                await self._connection(first, down_since)
            except SubscriptionRefused:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError, _Lost) as exc:
                if not self.opts.quiet:
                    why = "closed by the server" if isinstance(exc, _Lost) else f"{type(exc).__name__}: {exc}"
                    self.err(f"{self.acc.name}: stream connection lost ({why}); reconnecting in {delay:.1f} s")
            finally:
                self.flush(force=True)
            first = False
            if self.stop.is_set():
                break
            if self._up:
                down_since = _utc(self.opts.clock())
                if self.stats.events:
                    delay = self.opts.backoff_initial_s
            elif down_since is None:
                down_since = _utc(self.opts.clock())
            with self.engine.begin() as conn:
                set_stream_state(conn, self.acc.name, "disconnected", down_since)
            try:
                await asyncio.wait_for(self.stop.wait(), delay * (0.8 + 0.4 * random.random()))
            except asyncio.TimeoutError:
                pass
            delay = min(self.opts.backoff_max_s, delay * 2)

    async def _connection(self, first: bool, down_since: datetime | None) -> None:
        async with connect(self.acc.ws_url, ping_interval=self.opts.ping_interval_s, ping_timeout=self.opts.ping_timeout_s,
                           max_size=1 << 22, open_timeout=10, close_timeout=2, compression=None) as ws:
            now_s = self.opts.clock()
            # re-signed on every (re)connect: a fresh timestamp inside the window
            await ws.send(subscribe_frame(self.acc.credentials, self.streams, int(now_s * 1000), self.acc.window_ms))
            self.connected_at = _utc(now_s)
            self.stats.connects += 1
            self.marks_subscribed = set()
            self._up = True
            last = down_since
            with self.engine.begin() as conn:
                if first:  # since the previous watch stopped (or the last sync, if later)
                    row = conn.execute(text("SELECT last_message_at, since FROM live_streams WHERE venue_account = :a"),
                                       {"a": self.acc.name}).first()
                    synced = conn.execute(text("SELECT MAX(last_synced_at) FROM sync_state WHERE venue_account = :a"),
                                          {"a": self.acc.name}).scalar()
                    if row is not None:
                        prev = utc_from_db(row[0] or row[1])
                        last = max(prev, utc_from_db(synced)) if synced is not None else prev
                set_stream_state(conn, self.acc.name, "connected", self.connected_at)
            if last is not None and last < self.connected_at:
                self.gap(last, self.connected_at, "disconnected", "not subscribed to the account streams")
            if not self.opts.quiet:
                self.out(f"{self.acc.name}: subscribed to {', '.join(self.streams)} at {self.acc.ws_url}")
            await self._subscribe_marks(ws, sorted(self.held))
            auth_until = time.monotonic() + self.opts.auth_wait_s
            ticker = asyncio.ensure_future(self._ticker(ws))
            try:
                async for raw in ws:
                    new = self._handle(raw, first and time.monotonic() < auth_until)
                    if new:
                        await self._subscribe_marks(ws, new)
                    if len(self.batch.fills) >= self.opts.flush_rows:
                        self.flush(force=True)
            finally:
                ticker.cancel()
            if not self.stop.is_set():
                raise _Lost()

    async def _ticker(self, ws) -> None:
        """Flush every ``flush_interval_s``; on stop (signal or ``max_seconds``) close the connection: the
        reader then takes every message already received before the loop ends."""
        deadline = time.monotonic() + self.opts.max_seconds if self.opts.max_seconds else None
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), self.opts.flush_interval_s)
            except asyncio.TimeoutError:
                pass
            self.flush()
            if deadline is not None and time.monotonic() >= deadline:
                self.stop.set()
        await ws.close()

    def _handle(self, raw, auth_phase: bool) -> list[str]:
        try:
            return self.on_message(raw)
        except _ErrorFrame as exc:
            if auth_phase and self.stats.events == 0:
                raise SubscriptionRefused(
                    f"accounts[{self.acc.name}]: the exchange refused the signed subscription to "
                    f"{', '.join(self.streams)} ({exc}); check api_key, the API secret and the clock") from None
            self.err(f"{self.acc.name}: the exchange sent an error frame: {exc}")
            return []

    async def _subscribe_marks(self, ws, symbols: list[str]) -> None:
        streams = [s if s.startswith("markPrice.") else f"markPrice.{s}" for s in symbols]
        streams = [s for s in streams if s not in self.marks_subscribed]
        if streams:
            self.marks_subscribed.update(streams)
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": streams}).decode())


class _Lost(Exception):
    """The server closed the connection (a Close frame: shutdown, or a dropped stream)."""


class _ErrorFrame(Exception):
    def __init__(self, error):
        if isinstance(error, dict):
            text_ = f"{error.get('message')} (code {error.get('code')})"
        else:
            text_ = str(error)
        super().__init__(text_[:200])


def span_text(start: datetime, end: datetime) -> tuple[str, str]:
    """Both ends to the second, or to the millisecond when they fall in one second."""
    spec = "seconds" if start.replace(microsecond=0) != end.replace(microsecond=0) else "milliseconds"
    return start.isoformat(timespec=spec), end.isoformat(timespec=spec)


#: SQLite page cache of watch's connections (KiB): the ledger's 64 MiB serves bulk syncs; watch appends
#: small batches to a few tables and runs for months, so it keeps its memory small.
SQLITE_CACHE_KIB = 8192


def _small_cache(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    def on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before (the migration check) get the setting on reopening


async def watch(engine: Engine, accounts: list[WatchAccount], opts: WatchOptions | None = None, *,
                out: Callable[[str], None] = print, err: Callable[[str], None] = print,
                stop: asyncio.Event | None = None) -> WatchReport:
    """Tail every account until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM) or ``max_seconds``."""
    opts = opts or WatchOptions()
    stop = stop or asyncio.Event()
    report = WatchReport()
    _small_cache(engine)
    sessions = []
    for acc in accounts:
        if not acc.ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"accounts[{acc.name}].ws_url: {acc.ws_url!r} is not a ws:// or wss:// URL")
        stats = report.accounts[acc.name] = AccountStats()
        sessions.append(_Session(engine, acc, opts, out, err, stop, stats))
    tasks = [asyncio.ensure_future(s.run()) for s in sessions]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                stop.set()
                await asyncio.gather(*pending, return_exceptions=True)
                raise t.exception()
    finally:
        for s in sessions:
            s.flush(force=True)
            with engine.begin() as conn:
                set_stream_state(conn, s.acc.name, "stopped", _utc(opts.clock()))
    return report
