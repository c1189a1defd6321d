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

import gc
from bisect import bisect_left
from contextlib import contextmanager
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection

from .booking import Engine, Finding, Gain, Lot
from .books import BookSettings, Books

__all__ = ["MethodTotals", "PeriodBooks", "book_period"]

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


@contextmanager
def _no_cycle_collection():
    """As ``ledger.books``: the booking's acyclic tuples give the cycle collector nothing to find."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def book_period(conn: Connection, settings: BookSettings, *, start: datetime, end: datetime, venue_account: str | None = None,
                compare: Sequence[tuple[str, BookSettings]] = ()) -> PeriodBooks:
    """Book the ledger up to ``end`` (exclusive) once for ``settings`` and once per ``compare`` entry
    (a method name and its settings, e.g. from ``resolve_settings(reporting, method=m)``), over one read.
    Each compared settings must share ``settings``' cash set and currency (the bridge's inputs)."""
    from .bridge import events
    from .reader import read_entries

    for _m, s in compare:
        if s.cash != settings.cash or s.currency != settings.currency:
            raise ValueError("compared settings must share the reporting currency and stablecoin policy")
    found: list[Finding] = []
    main = Engine(settings.booking, opening_lots=settings.opening_lots)
    others = [(m, Engine(s.booking, opening_lots=s.opening_lots), MethodTotals(m)) for m, s in compare]
    configured = MethodTotals(settings.booking.method or "")
    period_gains: list[Gain] = []
    keep = period_gains.extend

    def take(gains: list[Gain]) -> None:
        if not gains:
            return
        if gains[0].disposed >= start and gains[-1].disposed < end:
            keep(gains)
        else:
            keep([g for g in gains if start <= g.disposed < end])

    checkpoint = start - _US
    at_start: list[Lot] | None = None
    with _no_cycle_collection():
        for batch in events(read_entries(conn, venue_account=venue_account, until=end - _US), settings.cash, found, currency=settings.currency):
            if at_start is None:
                cut = bisect_left(batch, (checkpoint, 3))  # the events at or before the checkpoint
                if cut < len(batch):
                    take(main.feed(batch[:cut]))
                    at_start = main.open_lots()
                    take(main.feed(batch[cut:]))
                else:
                    take(main.feed(batch))
            else:
                take(main.feed(batch))
            for _m, eng, tot in others:
                got = eng.feed(batch)
                if got:
                    tot.add(got, start, end)
        if at_start is None:
            at_start = main.open_lots()
        result = main.finish(lots=True)
        take(result.gains)
        for _m, eng, tot in others:
            tail = eng.finish(lots=False)
            if tail.gains:
                tot.add(tail.gains, start, end)
    configured.add(period_gains, start, end)
    found.sort(key=lambda f: (f.time, f.key))
    books = Books(settings=settings, gains=period_gains, open_lots=result.open_lots, income=result.income, findings=found + result.findings,
                  allocations=result.allocations)
    methods = {configured.method: configured}
    for m, _eng, tot in others:
        methods[m] = tot
    return PeriodBooks(books=books, lots_at_start=at_start, methods=methods)
