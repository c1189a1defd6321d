"""One booking for a report period: the configured method's books and every compared method's totals
from a single read of the ledger.

``ledger.books.book_ledger`` reads, bridges and books the whole ledger per call; a report asked it
once for the period end, once for the lots at the period start (the basis roll-forward) and once per
compared method (six or seven passes). ``book_period`` is the same pipeline (``docs/pipeline.md``:
``ledger.reader.read_entries`` -> ``ledger.bridge.events`` -> ``ledger.booking.Engine``) read and
bridged **once**, each batch of events fed to one engine per method:

* the configured method's engine keeps the period's gains (only those disposed of in
  [start, end)), the open lots at the period end, income, findings and allocations, and the lots
  open at the period start, taken as the booking passes it (the roll-forward's opening);
* every other method's engine hands its gains to a totals sink: short/long/other, proceeds, basis
  and rows of the period, with no gain list held.

The events are immutable tuples, so the engines share them. Nothing here books on its own: it is
``ledger.books._run``'s loop with more than one engine (the public ``book_ledger`` stays the one-method
path; ask the lead to move this next to it).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection

from . import forked
from .booking import Engine, Finding, Gain, Lot
from .books import BookSettings, Books

__all__ = ["MethodTotals", "PeriodBooks", "book_period", "start_comparison"]

_US = timedelta(microseconds=1)
_ZERO = Decimal(0)


@dataclass
class MethodTotals:
    """A method's realized figures for the period, summed as its gains are booked (none held)."""

    method: str
    short: Decimal = _ZERO
    long: Decimal = _ZERO
    other: Decimal = _ZERO  # the uk matching rules (same-day, bed-and-breakfast, s104) and any other term
    proceeds: Decimal = _ZERO
    basis: Decimal = _ZERO
    rows: int = 0

    @property
    def total(self) -> Decimal:
        return self.short + self.long + self.other

    def add(self, gains: Sequence[Gain], start: datetime, end: datetime) -> None:
        short, long, other, proceeds, basis, rows = self.short, self.long, self.other, self.proceeds, self.basis, self.rows
        for g in gains:
            if start <= g.disposed < end:
                term = g.term
                if term == "short":
                    short += g.gain
                elif term == "long":
                    long += g.gain
                else:
                    other += g.gain
                proceeds += g.proceeds
                basis += g.cost_basis
                rows += 1
        self.short, self.long, self.other, self.proceeds, self.basis, self.rows = short, long, other, proceeds, basis, rows


@dataclass
class PeriodBooks:
    """``books``: the configured method's booking up to the period end, ``books.gains`` holding only the
    gains disposed of in [start, end); ``lots_at_start``: the lots open just before ``start``;
    ``methods``: each compared method's totals of the period (the configured one included)."""

    books: Books
    lots_at_start: list[Lot]
    methods: dict[str, MethodTotals] = field(default_factory=dict)
    #: The basis the period's gains relieved from lots not open at its start (the roll-forward's
    #: acquisitions relieved within the period), summed as they were booked.
    new_lot_relief: Decimal = _ZERO
    #: What ``start_comparison``'s ``then`` returned in the forked process (None: not run there).
    then: Any = None
    #: Set while the forked process's results are not in yet (``book_period(join=False)``).
    pending: Any = None

    def join(self) -> PeriodBooks:
        """Wait for the compared methods (and ``then``) from the forked process, if any is pending."""
        if self.pending is not None:
            self.pending()
        return self


#: Below this many journal entries the compared methods are booked in process (a fork costs more).
CHILD_MIN_ENTRIES = 20_000


def _totals_child(url: str, settings: BookSettings, start: datetime, end: datetime, venue_account: str | None,
                  compare: Sequence[tuple[str, BookSettings]], then, send) -> None:
    try:
        from .db import make_engine

        engine = make_engine(url)
        with engine.connect() as conn:
            result = {"methods": _book(conn, settings, start, end, venue_account, compare, main_engine=False).methods}
            if then is not None:
                result["then"] = then(conn)
        engine.dispose()
        send.send(result)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which books them in process instead
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


def large_ledger(conn: Connection) -> bool:
    """Work on this ledger is worth a forked process: ``CHILD_MIN_ENTRIES`` entries or more, and a
    database a child can open (``ledger.forked.forkable``)."""
    from sqlalchemy import text

    if not forked.forkable(conn):
        return False
    n = conn.execute(text("SELECT COUNT(*) FROM (SELECT 1 FROM journal_entries LIMIT :n) x"), {"n": CHILD_MIN_ENTRIES}).scalar_one()
    return n >= CHILD_MIN_ENTRIES


def _start_child(conn: Connection, settings: BookSettings, start: datetime, end: datetime, venue_account: str | None,
                 compare: Sequence[tuple[str, BookSettings]], then=None):
    """Fork a process that books the compared methods through its own connection (the machine's second
    core), then runs ``then(its connection)``; None when not worth it or not possible (``ledger.forked``:
    an in-memory database, a small ledger, no fork)."""
    if not large_ledger(conn):
        return None
    handle = forked.start(conn, _totals_child, settings, start, end, venue_account, list(compare), then)
    return None if handle is None else _Child(handle, tuple(m for m, _s in compare))


class _Child(NamedTuple):
    handle: Any  # ledger.forked.start's
    methods: tuple[str, ...]  # the compared methods it books


def _join_child(child: _Child) -> dict | None:
    return forked.join(child.handle)


def start_comparison(conn: Connection, settings: BookSettings, *, start: datetime, end: datetime, venue_account: str | None = None,
                     compare: Sequence[tuple[str, BookSettings]] = (), then=None, here: int = 0):
    """Start booking the compared methods in a forked process now (None: not worth it or not possible);
    hand the result to ``book_period(child=...)`` with the same arguments. ``then(conn)``: more work for
    that process once the methods are booked (a report's perpetuals: the second core is idle by then);
    its result is ``PeriodBooks.then`` (None if the process failed: do that work in process). ``here``:
    the first ``here`` compared methods are left to ``book_period``'s own read (a share of the work for
    each core)."""
    there = list(compare)[here:]
    return _start_child(conn, settings, start, end, venue_account, there, then) if there else None


def book_period(conn: Connection, settings: BookSettings, *, start: datetime, end: datetime, venue_account: str | None = None,
                compare: Sequence[tuple[str, BookSettings]] = (), parallel: bool = True, gains=None, child=None, tap=None,
                join: bool = True) -> PeriodBooks:
    """Book the ledger up to ``end`` (exclusive) once for ``settings`` and once per ``compare`` entry
    (a method name and its settings, e.g. from ``resolve_settings(reporting, method=m)``), over one read.
    Each compared settings must share ``settings``' cash set and currency (the bridge's inputs).

    ``parallel``: on a large ledger in a database file or server, the compared methods are booked by a
    forked process over its own read while this one books the configured method (two cores: the
    comparison costs no wall time); if that process fails they are booked here. ``gains``: where the
    period's gains go (anything with ``extend``, e.g. a store on disk; default a list). ``child``: a
    process already started by ``start_comparison`` for these ``compare`` settings (started early, while
    the parent is small: a forked child's resident memory starts as its parent's). ``tap(entries)``: given
    each chunk of the journal entries read (``ledger.reader.Entry``), before they are booked: what a report
    sums of the same read (the statement's holdings by month). ``join=False``: return once the configured
    method is booked; the compared methods (and ``then``) are in only after ``PeriodBooks.join()``, so
    the caller can do other work while the forked process finishes."""
    for _m, s in compare:
        if s.cash != settings.cash or s.currency != settings.currency:
            raise ValueError("compared settings must share the reporting currency and stablecoin policy")
    if child is None and parallel and compare:
        child = _start_child(conn, settings, start, end, venue_account, compare)
    if child is None:
        return _book(conn, settings, start, end, venue_account, compare, gains=gains, tap=tap)
    there = [(m, s) for m, s in compare if m in child.methods]
    pb = _book(conn, settings, start, end, venue_account, [(m, s) for m, s in compare if m not in child.methods], gains=gains, tap=tap)

    def finish() -> None:
        got = _join_child(child)
        if got is None:
            got = {"methods": _book(conn, settings, start, end, venue_account, there, main_engine=False).methods}
        pb.methods.update(got["methods"])
        pb.then = got.get("then")
        pb.pending = None

    pb.pending = finish
    if join:
        pb.join()
    return pb


def _book(conn: Connection, settings: BookSettings, start: datetime, end: datetime, venue_account: str | None,
          compare: Sequence[tuple[str, BookSettings]], *, main_engine: bool = True, gains=None, tap=None) -> PeriodBooks:
    """The one read: the configured method's engine (unless ``main_engine`` is false: totals only) and one
    engine per compared method."""
    from .bridge import events
    from .reader import read_entries

    found: list[Finding] = []
    main = Engine(settings.booking, opening_lots=settings.opening_lots)
    others = [(m, Engine(s.booking, opening_lots=s.opening_lots), MethodTotals(m)) for m, s in compare]
    configured = MethodTotals(settings.booking.method or "")
    period_gains = [] if gains is None else gains
    keep = period_gains.extend
    opening: set[str] = set()  # the ids of the lots open at the start (every period gain comes after them)
    new_relief = [_ZERO]

    def take(batch: list[Gain]) -> None:  # a batch's gains, in booking (time) order
        if not batch:
            return
        if not (batch[0].disposed >= start and batch[-1].disposed < end):
            batch = [g for g in batch if start <= g.disposed < end]
        keep(batch)
        configured.add(batch, start, end)
        relief = new_relief[0]
        for g in batch:
            if g.lot_id not in opening:
                relief += g.cost_basis
        new_relief[0] = relief

    checkpoint = start - _US
    at_start: list[Lot] | None = None
    with forked.no_cycle_collection():
        entries = read_entries(conn, venue_account=venue_account, until=end - _US)
        if tap is not None:
            entries = _tapped(entries, tap)
        for batch in events(entries, settings.cash, found, currency=settings.currency):
            if main_engine:
                if at_start is None and (cut := bisect_left(batch, (checkpoint, 3))) < len(batch):  # the events at or before the checkpoint
                    take(main.feed(batch[:cut]))
                    at_start = main.open_lots()
                    opening.update(lot.id for lot in at_start)
                    take(main.feed(batch[cut:]))
                else:
                    take(main.feed(batch))
            for _m, eng, tot in others:
                got = eng.feed(batch)
                if got:
                    tot.add(got, start, end)
        for _m, eng, tot in others:
            tail = eng.finish(lots=False)
            if tail.gains:
                tot.add(tail.gains, start, end)
        if not main_engine:
            return PeriodBooks(books=Books(settings=settings, gains=[], open_lots=[], income=[], findings=[]), lots_at_start=[],
                               methods={m: tot for m, _eng, tot in others})
        if at_start is None:
            at_start = main.open_lots()
            opening.update(lot.id for lot in at_start)
        result = main.finish(lots=True)
        take([g for g in result.gains if start <= g.disposed < end])  # the uk method's, in its own order
    found.sort(key=lambda f: (f.time, f.key))
    books = Books(settings=settings, gains=period_gains, open_lots=result.open_lots, income=result.income, findings=found + result.findings,
                  allocations=result.allocations)
    methods = {configured.method: configured}
    for m, _eng, tot in others:
        methods[m] = tot
    return PeriodBooks(books=books, lots_at_start=at_start, methods=methods, new_lot_relief=new_relief[0])


def _tapped(chunks, tap):
    for chunk in chunks:
        tap(chunk)
        yield chunk
