"""The resumable sync loop: every history endpoint of a venue account into the ledger.

For one venue account: take a snapshot of the exchange's own figures (balances, borrow/lend
positions, open perp positions, collateral), then walk every history endpoint from its stored
cursor. Each page is one transaction: its new raw records, their journal entries and the advanced
cursor commit together (``ledger.store.store_page``), so a sync killed at any moment and run again
yields the ledger an uninterrupted run would have. Natural keys make every replay a no-op, so
``full=True`` (read everything again) and incremental runs give the identical ledger.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source
from ledger.store import Outcome, PageResult, RawIn, SnapshotLineIn, load_cursor, save_snapshot, store_page

from .backpack.endpoints import ENDPOINTS
from .backpack.extract import extract

__all__ = ["HISTORY_ENDPOINTS", "EndpointReport", "SyncReport", "SyncRun", "sync_account", "sync_accounts", "defer_first_sync", "snapshot_lines", "verify_credentials"]

#: Every history endpoint read, in this order (money-moving ones first; memo streams after).
HISTORY_ENDPOINTS: tuple[str, ...] = (
    "deposits",
    "withdrawals",
    "fills",
    "rfqFill",
    "quoteFill",
    "dust",
    "settlement",
    "funding",
    "interest",
    "borrowLend",
    "borrowLendPositionHistory",
    "positionHistory",
    "orders",
    "rfq",
    "quote",
    "strategies",
)


class PagingClient(Protocol):
    def iter_pages(self, endpoint: str, cursor: dict | None = None, **kw: Any) -> Iterable[Any]: ...
    def balances(self) -> Any: ...
    def borrow_lend_positions(self) -> Any: ...
    def open_positions(self) -> Any: ...
    def collateral(self) -> Any: ...
    def server_time_ms(self) -> int: ...


@dataclass
class EndpointReport:
    endpoint: str
    pages: int = 0
    received: int = 0
    new: int = 0
    updated: int = 0
    entries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, r: PageResult) -> None:
        self.pages += 1
        self.received += r.received
        self.new += r.new
        self.updated += r.updated
        self.entries += r.entries
        for k, v in r.by_status.items():
            self.by_status[k] = self.by_status.get(k, 0) + v

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0


@dataclass
class SyncReport:
    venue_account: str
    snapshot_id: int | None = None
    snapshot_time: datetime | None = None
    endpoints: list[EndpointReport] = field(default_factory=list)
    #: What the sync did to ``reconcile watch``'s provisional fills and gaps (ledger.live.ConfirmReport).
    live: Any = None

    @property
    def unknown(self) -> int:
        return sum(e.by_status.get("unknown", 0) for e in self.endpoints)


def snapshot_lines(balances: Any, borrow_lend: Any, positions: Any) -> list[SnapshotLineIn]:
    """The exchange's figures as ledger-comparable lines (A-BAL-1)."""
    lines: list[SnapshotLineIn] = []
    for asset, b in sorted((balances or {}).items()):
        total = sum((D(b.get(k) or "0") for k in ("available", "locked", "staked")), Decimal(0))
        lines.append(SnapshotLineIn("Spot", asset, total, dict(b)))
    for p in borrow_lend or []:
        q = D(p["netQuantity"])
        if q == 0:
            continue
        lines.append(SnapshotLineIn("Lent" if q > 0 else "Borrowed", p["symbol"], q, {"netQuantity": p["netQuantity"]}))
    for p in positions or []:
        q = D(p["netQuantity"])
        lines.append(SnapshotLineIn("Perp", p["symbol"], q, {"netQuantity": p["netQuantity"], "entryPrice": p.get("entryPrice")}))
    return lines


def prefetch(pages: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``pages`` in a background thread, up to ``depth`` ahead, so the next page is on the
    wire while this one is written (HTTP waits release the GIL). Errors re-raise here, in order;
    closing the generator stops the reader after its current page."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def reader() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        q.put((page, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((done, exc))

    t = threading.Thread(target=reader, name="page-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Statistics:
    """Keeps PostgreSQL's planner statistics current while a sync fills empty tables.

    On a first sync the tables grow from nothing faster than autovacuum analyses them; on stale
    statistics the planner takes a million-row table for a tiny one and answers each page's key
    lookup by scanning the whole endpoint. ANALYZE (a sample, ~0.1 s) whenever the raw records have
    doubled since the last one keeps every page's lookup an index probe. SQLite needs nothing.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.on = engine.dialect.name == "postgresql"
        self.added = 0
        self.threshold = 5000

    def grew(self, n: int) -> None:
        if not self.on:
            return
        self.added += n
        if self.added >= self.threshold:
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE raw_records")
                conn.exec_driver_sql("ANALYZE journal_entries")
                conn.exec_driver_sql("ANALYZE postings")
            self.threshold = self.added * 2


def verify_credentials(client: Any) -> None:
    """One signed request (the account's settings): a refused key fails here, before a sync touches
    the database (``AuthError``)."""
    client.get("account")


def journal_is_empty(engine: Engine) -> bool:
    """True when the journal holds no entry: a first sync may then defer posting to one rebuild."""
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT 1 FROM journal_entries LIMIT 1").first() is None


def finish_deferred(engine: Engine) -> int:
    """Post the records a deferred sync kept: one rebuild of the whole journal (the caller holds the
    lock and found the journal empty). Raw records were stored with their final status, so the
    rebuild rewrites no raw row. A sync killed before this point leaves raw records and cursors and
    an empty journal; the next sync defers again and ends here. Returns the records examined."""
    with engine.connect() as conn:
        waiting = conn.exec_driver_sql("SELECT 1 FROM raw_records WHERE status = 'posted' LIMIT 1").first()
    return repost(engine) if waiting is not None else 0


def defer_first_sync(engine: Engine) -> bool:
    """The deferral policy: on PostgreSQL a first sync into an empty journal keeps raw records only
    and posts them in one rebuild at the end (``finish_deferred``): its per-row foreign-key checks
    are most of a bulk load (1M fills: 231 s page by page, 154 s deferred). SQLite posts page by
    page faster than a rebuild (112 s vs 133 s), so it never defers."""
    return engine.dialect.name == "postgresql" and journal_is_empty(engine)


@dataclass
class SyncRun:
    """What ``sync_accounts`` did: one report per venue account, and the records a deferred first
    sync posted in its one rebuild (0 when it did not defer)."""

    reports: list[SyncReport]
    rebuilt_from: int = 0


def sync_accounts(
    engine: Engine,
    clients: Iterable[tuple[str, Callable[[], Any]]],
    *,
    full: bool = False,
    on_account: Callable[[str], Callable[[str, EndpointReport], None] | None] | None = None,
    on_rebuild: Callable[[], None] | None = None,
) -> SyncRun:
    """Sync every venue account (``(name, make_client)`` pairs, in order) under the deferral policy
    (``defer_first_sync``). The caller holds the database lock and has migrated the schema.
    ``on_account(name)`` may return the page callback for that account; ``on_rebuild()`` is called
    before a deferred first sync's rebuild. A failed deferred sync still posts the whole pages it
    stored, so the ledger it leaves is consistent; if even that fails (or the process is killed),
    the next sync does it."""
    defer = defer_first_sync(engine)
    run = SyncRun(reports=[])
    try:
        for name, make_client in clients:
            on_page = on_account(name) if on_account else None
            with make_client() as client:
                run.reports.append(sync_account(engine, client, name, full=full, on_page=on_page, defer_posting=defer))
    except BaseException:
        if defer:  # the first error is the one to report; if this fails too, the next sync posts
            with contextlib.suppress(Exception):
                finish_deferred(engine)
        raise
    if defer:
        if on_rebuild:
            on_rebuild()
        run.rebuilt_from = finish_deferred(engine)
    return run


def sync_account(
    engine: Engine,
    client: PagingClient,
    venue_account: str,
    *,
    full: bool = False,
    endpoints: Iterable[str] = HISTORY_ENDPOINTS,
    on_page: Callable[[str, EndpointReport], None] | None = None,
    snapshot: bool = True,
    page_size: int = 1000,
    now: Callable[[], datetime] = _utcnow,
    defer_posting: bool = False,
) -> SyncReport:
    """Sync one venue account. The caller holds the database lock (``ledger.lock``).

    ``defer_posting``: keep the raw records only (with their final status) and leave the entries to
    one :func:`repost` at the end of the sync: the bulk path for a first sync into an empty journal
    (``finish_deferred``), which checks references once instead of row by row.
    """
    report = SyncReport(venue_account)
    journal: Journal | None = None
    stats = _Statistics(engine)
    started_at = now()

    if snapshot:
        taken_ms = client.server_time_ms()
        taken_at = datetime.fromtimestamp(taken_ms / 1000, tz=timezone.utc) if isinstance(taken_ms, int) else now()
        bal, bl, pos, col = client.balances(), client.borrow_lend_positions(), client.open_positions(), client.collateral()
        with engine.begin() as conn:
            report.snapshot_id = save_snapshot(
                conn,
                venue_account=venue_account,
                taken_at=taken_at,
                payload={"balances": bal, "borrowLendPositions": bl, "positions": pos, "collateral": col},
                lines=snapshot_lines(bal, bl, pos),
            )
        report.snapshot_time = taken_at

    for name in endpoints:
        ep = ENDPOINTS[name]
        er = EndpointReport(name)
        report.endpoints.append(er)
        with engine.connect() as conn:
            cursor = None if full else load_cursor(conn, venue_account, name)
        started = time.perf_counter()

        def decide(raw: RawIn, raw_id: int, _name: str = name) -> Outcome:
            src = Source(venue_account, _name, raw.key, raw.time or report.snapshot_time or now(), raw_id)
            x = extract(_name, raw.record, src)
            # Deferring: the record keeps its final status; its entries come from the closing rebuild.
            return Outcome(x.status, () if defer_posting else x.entries, x.note)

        for page in prefetch(client.iter_pages(name, cursor, page_size=page_size)):
            raws = [RawIn(ep.natural_key(r), r, ep.record_time(r)) for r in page.records]
            with engine.begin() as conn:
                if journal is None:
                    journal = Journal(conn)
                journal.conn = conn
                res = store_page(
                    conn,
                    journal,
                    venue_account=venue_account,
                    endpoint=name,
                    records=raws,
                    decide=decide,
                    cursor=page.cursor,
                    fetched_at=now(),
                )
            er.add(res)
            stats.grew(res.new)
            er.seconds = time.perf_counter() - started
            if on_page:
                on_page(name, er)
        er.seconds = time.perf_counter() - started
    if any(e.endpoint in ("fills", "rfqFill", "quoteFill") for e in report.endpoints):
        report.live = _confirm_live(engine, venue_account, report.snapshot_time or started_at)
    return report


def _confirm_live(engine: Engine, venue_account: str, covered_until: datetime):
    """Retire the provisional fills (``reconcile watch``) the stored REST fills confirm (docs/watch.md)."""
    from ledger.live import confirm_live_fills

    with engine.begin() as conn:
        return confirm_live_fills(conn, venue_account, covered_until)


#: Entry ids in a repost are ``base + raw_id * _IDS_PER_RECORD + i`` (i: the record's i-th entry), so
#: the processes that derive entries need no coordination; every rule posts at most one entry.
_IDS_PER_RECORD = 4
#: Below this many raw records a repost derives entries in-process (starting workers costs more).
_PARALLEL_MIN = 50_000


def _derive(reader, lo: int, hi: int, venue_account: str | None, base: int, encoder, resolve):
    """The raw records with ``lo < id <= hi``: their entries as checked, ready rows
    (``ledger.journal.RowEncoder``; ``resolve(accounts, assets)`` gives ids of names the encoder
    lacks), the records whose status or note changed, and how many records were read."""
    from sqlalchemy import text

    from ledger.journal import LedgerError

    cond = " AND venue_account = :acct" if venue_account else ""
    rows = reader.execute(
        text(f"SELECT id, venue_account, endpoint, natural_key, payload, status, note FROM raw_records WHERE id > :lo AND id <= :hi{cond} ORDER BY id"),
        {"lo": lo, "hi": hi, "acct": venue_account},
    ).fetchall()
    entries: list = []
    ids: list[int] = []
    updates = []
    loads, endpoints, now = orjson.loads, ENDPOINTS, None
    for rid, acct, endpoint, key, payload, old_status, old_note in rows:
        record = loads(payload)
        ep = endpoints.get(endpoint)
        t = ep.record_time(record) if ep is not None else None
        if t is None:
            t = now = now or _utcnow()
        x = extract(endpoint, record, Source(acct, endpoint, key, t, rid))
        if x.entries:
            if len(x.entries) > _IDS_PER_RECORD:
                raise LedgerError(f"raw record {rid} posts {len(x.entries)} entries; repost allows {_IDS_PER_RECORD}")
            first = base + rid * _IDS_PER_RECORD
            entries.extend(x.entries)
            ids.extend(range(first, first + len(x.entries)))
        if x.status != old_status or x.note != old_note:
            updates.append({"id": rid, "status": x.status, "note": x.note})
    encoded, accounts, assets = encoder.encode(entries, ids)
    if encoded is None:
        got_accounts, got_assets = resolve(accounts, assets)
        encoder.accounts.update(got_accounts)
        encoder.assets.update(got_assets)
        encoded, accounts, assets = encoder.encode(entries, ids)
        assert encoded is not None, (accounts, assets)
    return encoded, updates, len(rows)


def _repost_worker(url: str, chunks: list[tuple[int, int]], venue_account: str | None, base: int, chan) -> None:
    """A forked process of ``repost``: derives the rows of its chunks on its own connection and
    sends them on ``chan``; names of accounts and assets it has no id for are asked for on it."""
    import pickle

    from sqlalchemy.pool import NullPool

    from ledger.db import make_engine
    from ledger.journal import RowEncoder

    def resolve(accounts, assets):
        chan.send(("resolve", (accounts, assets)))
        return chan.recv()

    try:
        engine = make_engine(url, poolclass=NullPool)
        encoder = RowEncoder(engine.dialect.name)
        with engine.connect() as reader:
            for lo, hi in chunks:
                chan.send(("rows", _derive(reader, lo, hi, venue_account, base, encoder, resolve)))
        chan.send(("done", None))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which rolls back
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        chan.send(("error", exc))
    finally:
        chan.close()


def repost(
    engine: Engine,
    *,
    venue_account: str | None = None,
    batch: int = 5000,
    processes: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Rebuild every journal entry from the raw records already stored (after a posting-rule change,
    or to measure posting speed: benchmarks/posting_bench.py). Entries are deleted and re-derived in
    one transaction; raw records and cursors stay. The caller holds the database lock. Returns the
    number of raw records examined.

    The rules, checks and row building (the Python work) run in ``processes`` forked workers (default:
    the CPU count, for 50,000 raw records or more in a database file), each reading its share of
    raw-id ranges on its own connection; this process only maps account names to ids and writes,
    with the database work on a writer thread (``ledger.journal.Pipeline``). Entry ids derive from
    raw ids (``_IDS_PER_RECORD``), so the ledger is the same whichever process derives what, and in
    whatever order batches arrive. Rebuilding the whole journal checks references and builds
    indexes once at the end (``ledger.bulk.journal_rebuild``). Any error (an unbalanced entry in
    any worker) rolls everything back."""
    import gc
    import multiprocessing
    import os
    from contextlib import ExitStack
    from multiprocessing.connection import wait

    from sqlalchemy import text

    from ledger.bulk import journal_rebuild

    where = "WHERE venue_account = :acct" if venue_account else ""
    params: dict[str, Any] = {"acct": venue_account} if venue_account else {}
    with engine.connect() as conn:
        lo, hi, count = conn.execute(text(f"SELECT MIN(id), MAX(id), COUNT(*) FROM raw_records {where}"), params).one()
        base = 1 if venue_account is None else conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) + 1 FROM journal_entries").scalar_one()
    dialect = engine.dialect.name
    chunks = [] if not count else [(a, min(a + batch, hi)) for a in range(lo - 1, hi, batch)]
    if processes is None:
        processes = os.cpu_count() or 1
    in_file = dialect != "sqlite" or engine.url.database not in (None, "", ":memory:")
    if count < _PARALLEL_MIN or not in_file or processes < 2 or len(chunks) < 2:
        processes = 0

    seen = 0
    procs: list = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived acyclic tuples: the cyclic collector only costs time here
    try:
        with ExitStack() as stack:
            pipes = []
            if processes:
                if dialect == "sqlite":
                    engine.dispose()  # fork with no SQLite connection open (the children open their own)
                ctx = multiprocessing.get_context("fork")
                url = engine.url.render_as_string(hide_password=False)
                for w in range(processes):
                    mine, theirs = ctx.Pipe(duplex=True)
                    p = ctx.Process(target=_repost_worker, args=(url, chunks[w::processes], venue_account, base, theirs), daemon=True, name=f"repost-{w}")
                    p.start()
                    theirs.close()
                    procs.append(p)
                    pipes.append(mine)
            conn = stack.enter_context(journal_rebuild(engine) if venue_account is None else engine.begin())
            conn.execute(text(f"DELETE FROM postings WHERE entry_id IN (SELECT id FROM journal_entries {where})" if where else "DELETE FROM postings"), params)
            conn.execute(text(f"DELETE FROM journal_entries {where}"), params)
            pipe = stack.enter_context(Journal(conn).pipeline())

            def write(derived) -> None:
                nonlocal seen
                encoded, updates, n = derived
                pipe.post_encoded(encoded)
                if updates:
                    pipe.submit(lambda u=updates: conn.execute(text("UPDATE raw_records SET status = :status, note = :note WHERE id = :id"), u))
                seen += n
                if on_batch:
                    on_batch(seen)

            if not processes:
                reader = stack.enter_context(engine.connect())
                encoder = pipe.encoder()
                for a, b in chunks:
                    write(_derive(reader, a, b, venue_account, base, encoder, pipe.resolve))
            live = list(pipes)
            while live:
                for r in wait(live):
                    try:
                        kind, body = r.recv()
                    except EOFError:
                        raise RuntimeError("a repost worker ended without reporting") from None
                    if kind == "rows":
                        write(body)
                    elif kind == "resolve":
                        r.send(pipe.resolve(*body))
                    elif kind == "done":
                        live.remove(r)
                    else:
                        raise body
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
        if gc_was_enabled:
            gc.enable()
    return seen
