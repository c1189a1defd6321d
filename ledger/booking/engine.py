"""The cost-basis engine: one engine for every method, scope and jurisdiction. Pure computation.

``book(events, settings, opening_lots=...) -> BookingResult`` books a whole history; ``Engine``
is the same booking fed in batches as the ledger is read (``ledger.books`` streams the ledger
through it): ``feed`` books a batch and returns its gains at once (never taken back),
``finish`` returns the rest (open lots, income, findings, allocations; the uk method's gains,
which need the next 30 days, come here).

Events are processed in one deterministic order, whatever the input order::

    (time, rank, id)    rank: acquisition 0 < transfer 1 < disposal 2

so units bought at the same instant as a sale are available to it (an exchange fill and the
fee leg share a timestamp), and a transfer moves what arrived at that instant. An event's first
three fields are these, so a sorted list of events is in this order. Ids must be unique across
all events (a duplicate id is corrupt input and raises).

Every case is a case of the one loop: transfers move lots between pools (keeping their
acquisition date), deposits of unknown basis claim opening lots, a method set per tax year
reorders a pool the first time it is used in that year, and the US per-account boundary
(``Settings.per_account_from``) splits universal pools into per-account pools once, by the safe
harbor (``safeharbor.allocate``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal, localcontext

from ledger.booking.jurisdictions import anniversary, tax_day
from ledger.booking.methods import QUANTUM, Pool, make_pool, share
from ledger.booking.model import (
    ACQUIRE,
    Acquisition,
    BookingInputError,
    BookingResult,
    Disposal,
    Event,
    Finding,
    Gain,
    IncomeRow,
    Lot,
    OpeningLot,
    SafeHarborAllocation,
    Settings,
    Transfer,
)
from ledger.booking.opening import OpeningRegister
from ledger.booking.safeharbor import allocate
from ledger.booking.stages import stage_for
from ledger.money import EXACT

__all__ = ["Engine", "book", "open_lots_at", "ordered"]

ZERO = Decimal(0)
UNIVERSAL = "*"
_UTC = timezone.utc
_new = tuple.__new__
_EVENT_TYPES = (Acquisition, Transfer, Disposal)


def ordered(events: Iterable[Event]) -> list[Event]:
    """Events in processing order (time, rank, id); rejects non-events and duplicate ids."""
    evs = list(events)
    for e in evs:
        if type(e) not in _EVENT_TYPES:
            raise BookingInputError(f"not a booking event: {type(e).__name__}")
    _check_unique(evs)
    evs.sort()
    return evs


def _check_unique(evs: list) -> None:
    if len({e[2] for e in evs}) != len(evs):
        seen: set[str] = set()
        dup = next(e[2] for e in evs if e[2] in seen or seen.add(e[2]))  # type: ignore[func-returns-value]
        raise BookingInputError(f"duplicate event id {dup!r}: ids must be unique across acquisitions, disposals and transfers")


def book(events: Iterable[Event], settings: Settings, *, opening_lots: Iterable[OpeningLot] = ()) -> BookingResult:
    """Book ``events`` under ``settings``: gains, open lots, income, findings, allocations."""
    engine = Engine(settings, opening_lots=opening_lots)
    gains = engine.feed(ordered(events))
    result = engine.finish()
    if result.gains:
        gains += result.gains
    return BookingResult(gains=gains, open_lots=result.open_lots, income=result.income, findings=result.findings, allocations=result.allocations)


def open_lots_at(events: Iterable[Event], settings: Settings, at: datetime, *, opening_lots: Iterable[OpeningLot] = ()) -> list[Lot]:
    """The lots open at instant ``at`` (inclusive): the events up to ``at`` booked alone.

    For the uk method this is the pool as known at ``at``: a later buy-back that would
    bed-and-breakfast-match a disposal before ``at`` is not yet known."""
    if at.utcoffset() is None:
        raise BookingInputError(f"open_lots_at: at must be timezone-aware, got {at.isoformat()}")
    return book([e for e in events if e.time <= at], settings, opening_lots=opening_lots).open_lots


def _sort_lots(lots: list[Lot]) -> list[Lot]:
    lots.sort(key=lambda lot: (lot.account, lot.asset, lot.acquired, lot.id))
    return lots


class Engine:
    """One booking run, fed events in processing order, a batch at a time.

    ``feed(events)``: ``events`` sorted, every one after the last event of the previous batch
    (``ledger.books`` holds back a batch's last instant, which the next batch may continue);
    returns the gains booked, in order. ``finish()``: the open lots, income, findings and
    allocations, and any gains not yet returned (the uk method's, all of them). ``feed`` then
    ``finish`` gives exactly ``book``'s result, however the events are cut into batches."""

    def __init__(self, settings: Settings, *, opening_lots: Iterable[OpeningLot] = ()) -> None:
        if not isinstance(settings, Settings):
            raise TypeError("settings must be a ledger.booking.Settings")
        self.settings = settings
        self.zone: str = settings.tax_timezone  # type: ignore[assignment]
        self.method: str = settings.method  # type: ignore[assignment]
        self.scope: str = settings.scope  # type: ignore[assignment]
        self.by_year = dict(settings.method_by_year)
        self.register = OpeningRegister(opening_lots)
        self.pools: dict[tuple[str, str], Pool] = {}
        #: Units held per (account, asset): kept only until the US boundary, which allocates by them.
        self.balances: dict[tuple[str, str], Decimal] | None = {}
        self.income: list[IncomeRow] = []
        self.findings: list[Finding] = []
        self.allocations: list[SafeHarborAllocation] = []
        self.boundary: datetime | None = settings.per_account_from()
        if self.boundary is None:
            self.balances = None
        self._last: tuple | None = None
        #: A method booked by a stage at ``finish`` (``stages.py``: uk, acb, the jp averages) holds its events here.
        self._stage = stage_for(self.method)
        self._uk: list[Event] | None = [] if self._stage is not None else None
        self._days: dict[datetime, date] = {}

    # --- driver ---------------------------------------------------------------------------

    def feed(self, events: list[Event]) -> list[Gain]:
        if not events:
            return []
        if self._last is not None and events[0] <= self._last:
            raise BookingInputError(f"event {events[0].id} fed out of order (after {self._last[2]})")
        self._last = events[-1]
        if self._uk is not None:
            self._uk += events
            return []
        gains: list[Gain] = []
        with localcontext(EXACT):
            self._run(events, gains)
        return gains

    def _run(self, events: list[Event], gains: list[Gain]) -> None:
        boundary = self.boundary
        balances = self.balances
        per_account = self.scope == "account"
        by_year = self.by_year
        zone = self.zone
        utc = zone == "UTC"
        method = self.method
        pools = self.pools
        pool_key: tuple | None = None
        pool: Pool | None = None
        add_gain = gains.append
        for e in events:
            t = e[0]
            if boundary is not None and t >= boundary:
                self._cross_us_boundary(boundary)
                boundary = balances = None
                per_account = True
                pools = self.pools
                pool_key = None
            day = t.date() if utc else tax_day(t, zone)
            if by_year:
                method = by_year.get(day.year, self.method)
            rank = e[1]
            if rank == 1:  # a transfer
                self._transfer(e, method, day, gains)  # type: ignore[arg-type]
                pool_key = None
                if balances is not None:
                    self._move(balances, e[3], e[5], -(e[6] + e[7]))
                    self._move(balances, e[4], e[5], e[6])
                continue
            account, asset, q = e[3], e[4], e[5]
            key = (account if per_account else UNIVERSAL, asset)
            if key != pool_key:
                pool_key = key
                pool = pools.get(key)
                if pool is None:
                    pool = pools[key] = make_pool(method)
            if pool.method != method:  # type: ignore[union-attr]
                pool = pools[key] = make_pool(method, pool.items())  # type: ignore[union-attr]
            if balances is not None:
                self._move(balances, account, asset, q if rank == ACQUIRE else -q)
            if rank == ACQUIRE:
                cost = e[6]
                ann = anniversary(day)
                if cost is None:
                    self._claim(e, pool, ann)  # type: ignore[arg-type]
                    continue
                pool.add(_new(Lot, (e[2], account, asset, q, cost, t, e[7])), ann)  # type: ignore[union-attr]
                if e[8] == "income":
                    self.income.append(_new(IncomeRow, (e[2], account, asset, q, cost, t, e[7])))
                continue
            # A disposal: the pieces relieved, proceeds apportioned by quantity, the last piece exact.
            parts, short = pool.take(q)  # type: ignore[union-attr]
            self._realise(parts, short, q, e[6], account, asset, t, day, e[2], e[7], method, add_gain)

    @staticmethod
    def _move(balances: dict, account: str, asset: str, delta: Decimal) -> None:
        k = (account, asset)
        balances[k] = balances.get(k, ZERO) + delta

    def _realise(self, parts, short, quantity, proceeds, account, asset, t, day, disposal_id, source, method, add_gain) -> None:
        left_p, left_q = proceeds, quantity
        last = len(parts) - 1 if not short else -1
        for i, (lot, ann) in enumerate(parts):
            lq = lot[3]
            if i == last:
                p = left_p
            else:  # share(left_p, lq, left_q), inlined: the hot loop of a large export
                v = left_p * lq / left_q
                p = v.quantize(QUANTUM)
                if p == v:
                    p = v
                left_p -= p
                left_q -= lq
            c = lot[4]
            add_gain(_new(Gain, (account, asset, lq, lot[5], t, p, c, p - c, "long" if day > ann else "short", method, lot[0], disposal_id, source)))
        if short:
            self.findings.append(_new(Finding, (
                "overspend",
                f"{disposal_id}: disposes {quantity} {asset} from {account} at {t.isoformat()} but only {quantity - short} held; {short} booked at zero basis",
                disposal_id, account, asset, t,
            )))
            add_gain(_new(Gain, (account, asset, short, t, t, left_p, ZERO, left_p, "short", method, "", disposal_id, source)))

    def open_lots(self) -> list[Lot]:
        """The lots open now, after the events fed so far (uk: the pool as known now)."""
        if self._uk is not None:
            from ledger.booking.opening import OpeningRegister as _Register

            with localcontext(EXACT):
                return self._stage(list(self._uk), self.settings, _Register(self.register.lots)).open_lots
        return _sort_lots([lot for pool in self.pools.values() for lot in pool.lots()])

    def finish(self, *, lots: bool = True) -> BookingResult:
        """The rest of the booking; ``lots=False`` skips building the open lots (an export of gains)."""
        if self._uk is not None:
            with localcontext(EXACT):
                result = self._stage(self._uk, self.settings, self.register)
            self._uk = []
            return result
        self.findings.extend(self.register.unclaimed_findings())
        open_lots = _sort_lots([lot for pool in self.pools.values() for lot in pool.lots()]) if lots else []
        return BookingResult(gains=[], open_lots=open_lots, income=self.income, findings=self.findings, allocations=self.allocations)

    # --- the rarer cases ----------------------------------------------------------------------

    def _pool(self, account: str, asset: str, method: str) -> Pool:
        key = (UNIVERSAL if self.scope == "universal" else account, asset)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = make_pool(method)
        elif pool.method != method:
            pool = self.pools[key] = make_pool(method, pool.items())
        return pool

    def _claim(self, a: Acquisition, pool: Pool, ann: date) -> None:
        """A deposit of unknown basis: opening lots cover what they can, the rest is zero basis."""
        lots, uncovered = self.register.claim(a)
        zone = self.zone
        for lot in lots:
            pool.add(lot, anniversary(tax_day(lot.acquired, zone)))
        if uncovered:
            self.findings.append(_new(Finding, (
                "missing-basis",
                f"{a.kind} {a.id}: {uncovered} {a.asset} into {a.account} at {a.time.isoformat()} has no known basis; booked at zero basis",
                a.id, a.account, a.asset, a.time,
            )))
            pool.add(_new(Lot, (a.id, a.account, a.asset, uncovered, ZERO, a.time, a.source)), ann)

    def _transfer(self, t: Transfer, method: str, day: date, gains: list[Gain]) -> None:
        source = self._pool(t.from_account, t.asset, method)
        fee_cost = ZERO
        if t.fee:
            fee_parts, fee_short = source.take(t.fee)
            if self.settings.transfer_fee_policy == "disposal":
                value = t.fee_value
                if value is None:
                    value = ZERO
                    self.findings.append(_new(Finding, (
                        "missing-fee-value",
                        f"transfer {t.id}: fee of {t.fee} {t.asset} has no market value; fee disposal booked with zero proceeds",
                        t.id, t.from_account, t.asset, t.time,
                    )))
                self._realise(fee_parts, fee_short, t.fee, value, t.from_account, t.asset, t.time, day, f"{t.id}:fee", t.source, method, gains.append)
            else:
                fee_cost = sum((lot.cost for lot, _ in fee_parts), ZERO)
                if fee_short:
                    self._overspent_transfer(t, t.fee, fee_short, "fee")
        moved, short = source.take(t.quantity)
        if short:
            self._overspent_transfer(t, t.quantity, short, "quantity")
            moved.append((_new(Lot, (t.id, t.from_account, t.asset, short, ZERO, t.time, t.source)), anniversary(day)))
        dest = self._pool(t.to_account, t.asset, method)
        left_c, left_q = fee_cost, t.quantity
        for lot, ann in moved:
            extra = share(left_c, lot.quantity, left_q) if left_c else ZERO
            left_c -= extra
            left_q -= lot.quantity
            dest.add(_new(Lot, (lot.id, t.to_account, lot.asset, lot.quantity, lot.cost + extra, lot.acquired, lot.source)), ann)

    def _overspent_transfer(self, t: Transfer, wanted: Decimal, short: Decimal, what: str) -> None:
        self.findings.append(_new(Finding, (
            "overspend",
            f"transfer {t.id}: moves {wanted} {t.asset} ({what}) from {t.from_account} at {t.time.isoformat()} but only {wanted - short} held; {short} moved at zero basis"
            if what == "quantity"
            else f"transfer {t.id}: fee of {wanted} {t.asset} from {t.from_account} at {t.time.isoformat()} exceeds holdings by {short}",
            t.id, t.from_account, t.asset, t.time,
        )))

    # --- US: per-account basis from 2025-01-01 ------------------------------------------------

    def _cross_us_boundary(self, boundary: datetime) -> None:
        pools = self.pools
        self.pools = {}
        was_universal = self.scope == "universal"
        self.scope = "account"
        self.boundary = None
        balances = self.balances or {}
        self.balances = None
        by_asset: dict[str, list[tuple[str, Pool]]] = {}
        for (account, asset), pool in sorted(pools.items()):
            by_asset.setdefault(asset, []).append((account, pool))
        zone = self.zone
        for asset, entries in by_asset.items():
            method = entries[0][1].method
            lots = [lot for _, pool in entries for lot in pool.lots()]
            held = {acct: q for (acct, a), q in balances.items() if a == asset}
            for rec in allocate(lots, held, asset=asset, boundary=boundary, universal=was_universal):
                self.allocations.append(rec)
                self.pools[(rec.account, asset)] = make_pool(method, ((lot, anniversary(tax_day(lot.acquired, zone))) for lot in rec.lots))
