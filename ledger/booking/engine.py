"""The cost-basis engine: ``book(events, settings) -> BookingResult``. Pure computation.

Events are processed in one deterministic order, whatever the input order::

    (time, rank, id)    rank: acquisition 0 < transfer 1 < disposal 2

so units bought at the same instant as a sale are available to it (an exchange fill and the
fee leg share a timestamp), and a transfer moves what arrived at that instant. Ids must be
unique across all events (a duplicate id is corrupt input and raises).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal, localcontext

from ledger.booking.methods import Pool, make_pool, share
from ledger.booking.model import (
    Acquisition,
    BookingInputError,
    BookingResult,
    BookingRows,
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
from ledger.booking.rows import FAST_METHODS, book_simple, event_row, fast_path_applies, gain_record, gain_row, iso_utc, pool_lots, row_event, simple_booker, text_times
from ledger.booking.safeharbor import US_ACCOUNT_SCOPE_FROM, allocate
from ledger.booking.taxdate import anniversary, tax_date, zone
from ledger.money import EXACT

__all__ = ["book", "book_rows", "RowBooking", "open_lots_at", "ordered"]

ZERO = Decimal(0)
_RANK = {Acquisition: 0, Transfer: 1, Disposal: 2}
UNIVERSAL = "*"


def ordered(events: Iterable[Event]) -> list[Event]:
    """Events in processing order (time, rank, id); rejects non-events and duplicate ids."""
    evs = list(events)
    rank = _RANK
    ids = set()
    for e in evs:
        if type(e) not in rank:
            raise BookingInputError(f"not a booking event: {type(e).__name__}")
        ids.add(e.id)
    if len(ids) != len(evs):
        seen: set[str] = set()
        dup = next(e.id for e in evs if e.id in seen or seen.add(e.id))  # type: ignore[func-returns-value]
        raise BookingInputError(f"duplicate event id {dup!r}: ids must be unique across acquisitions, disposals and transfers")
    evs.sort(key=lambda e: (e.time, rank[type(e)], e.id))
    return evs


def _us_boundary(settings: Settings) -> datetime | None:
    """The instant US basis becomes per account (Rev. Proc. 2024-28), or None outside the US."""
    if settings.jurisdiction != "us":
        return None
    return datetime.combine(US_ACCOUNT_SCOPE_FROM, datetime.min.time(), zone(settings.tax_timezone)).astimezone(timezone.utc)  # type: ignore[arg-type]


def _sort_lots(lots: list[Lot]) -> list[Lot]:
    lots.sort(key=lambda lot: (lot.account, lot.asset, lot.acquired, lot.id))
    return lots


def book(events: Iterable[Event], settings: Settings, *, opening_lots: Iterable[OpeningLot] = ()) -> BookingResult:
    """Book ``events`` under ``settings``: gains, open lots, income, findings, allocations."""
    if not isinstance(settings, Settings):
        raise TypeError("settings must be a ledger.booking.Settings")
    evs = ordered(events)
    opening = tuple(opening_lots)
    if settings.method in FAST_METHODS and not opening:
        rows = [event_row(e) for e in evs]
        if fast_path_applies(rows, settings, _us_boundary(settings), False):
            gains, lots, income, findings = book_simple(rows, settings)
            return BookingResult(gains=[gain_record(g) for g in gains], open_lots=_sort_lots(lots), income=income, findings=findings, allocations=[])
    register = OpeningRegister(opening)
    with localcontext(EXACT):
        if settings.method == "uk":
            from ledger.booking.uk import book_uk

            return book_uk(evs, settings, register)
        return _Booker(settings, register).run(evs)


def book_rows(rows: Iterable[tuple], settings: Settings, *, opening_lots: Iterable[OpeningLot] = ()) -> BookingRows:
    """``book`` on event rows (``ledger.booking.rows``), with each gain a row: the bulk form for
    callers that build the events themselves (the ledger bridge) and write the gains out.

    Rows are trusted: they are not validated field by field as records are (``row_event``
    builds the validated record), but ids must still be unique. Rows with text times give gains
    with text times (``ledger.booking.rows``)."""
    rows = list(rows)
    _check_unique(rows)
    rows.sort()
    opening = tuple(opening_lots)
    if not isinstance(settings, Settings):
        raise TypeError("settings must be a ledger.booking.Settings")
    text = text_times(rows)  # book_simple books text times; the general engine books datetimes
    boundary = _us_boundary(settings)
    if fast_path_applies(rows, settings, boundary if boundary is None or not text else iso_utc(boundary), bool(opening)):
        gains, lots, income, findings = book_simple(rows, settings)
        return BookingRows(gains=gains, open_lots=_sort_lots(lots), income=income, findings=findings, allocations=[])
    if text:
        rows = _datetime_rows(rows)  # the same order: iso_utc's text sorts as its instants
    booked = book([row_event(r) for r in rows], settings, opening_lots=opening)
    gains = [gain_row(g) for g in booked.gains]
    if text:  # the gains' times in the form of the rows given
        gains = [(*g[:3], iso_utc(g[3]), iso_utc(g[4]), *g[5:]) for g in gains]
    return BookingRows(gains=gains, open_lots=booked.open_lots, income=booked.income, findings=booked.findings, allocations=booked.allocations)


class RowBooking:
    """``book_rows`` fed in batches as they are read, booking what it can at once: the export books
    the ledger's first entries while later ones are still being read.

    ``feed(rows)`` takes a batch of event rows and gives back the gains booked so far that it had
    not given yet; ``finish()`` books the rest and gives the ``BookingRows`` of everything, its
    ``gains`` being only those not given by ``feed``. The gains given, in order, are ``book_rows``'
    on all the rows fed (``tests/ledger/booking/test_row_booking.py``).

    Rows are booked on arrival by the fast path (``rows.simple_booker``) while every batch keeps to
    its conditions (no transfer, no unknown cost, no US per-account boundary) and comes after what
    was booked; the rows at a batch's last instant wait for the
    next batch, which may hold more of that instant. Otherwise the rows are kept and ``finish``
    books them all with ``book_rows``: then, if ``feed`` had given gains, ``restarted`` is True and
    the gains ``finish`` gives replace them all."""

    def __init__(self, settings: Settings, *, opening_lots: Iterable[OpeningLot] = ()) -> None:
        if not isinstance(settings, Settings):
            raise TypeError("settings must be a ledger.booking.Settings")
        self.settings = settings
        self.restarted = False
        self._opening = tuple(opening_lots)
        self._rows: list[tuple] = []
        self._held: list[tuple] = []  # sorted rows at the last instant seen, not booked yet
        self._last: tuple | None = None  # the last row booked
        self._given = False
        self._boundary = _us_boundary(settings)
        self._booker = None
        if settings.method in FAST_METHODS and not settings.method_by_year and not self._opening:
            self._booker = simple_booker(settings)
            next(self._booker)

    def feed(self, rows: list[tuple]) -> list[tuple]:
        self._rows += rows
        if self._booker is None or not rows:
            return []
        batch = sorted(rows)
        if not self._fits(batch):
            self._booker = None  # finish books everything
            return []
        if self._held:
            batch = self._held + batch
            if batch[len(self._held)] < self._held[-1]:
                batch.sort()
        cut = bisect_left(batch, (batch[-1][0],))  # the rows before the last instant: nothing later can precede them
        self._held = batch[cut:]
        if not cut:
            return []
        self._last = batch[cut - 1]
        gains = self._booker.send(batch[:cut])
        self._given = self._given or bool(gains)
        return gains

    def _fits(self, batch: list[tuple]) -> bool:
        """Whether the fast path books ``batch`` (sorted) after what it booked."""
        if self._last is not None and batch[0] <= self._last:
            return False
        boundary = self._boundary
        if boundary is not None and batch[-1][0] >= (iso_utc(boundary) if text_times(batch) else boundary):
            return False
        return fast_path_applies(batch, self.settings, None, False)

    def finish(self, *, lots: bool = True) -> BookingRows:
        """The rest of the booking; ``lots=False``: the open lots are not needed (the export of gains),
        so the result's ``open_lots`` is empty unless the rows had to be booked again."""
        rows = self._rows
        _check_unique(rows)
        booker = self._booker
        if booker is None:
            self.restarted = self._given
            return book_rows(rows, self.settings, opening_lots=self._opening)
        gains = booker.send(self._held) if self._held else []
        try:
            booker.send(None)
        except StopIteration as stop:
            pools, income, findings = stop.value
        open_lots = _sort_lots(pool_lots(pools, self.settings.method)) if lots else []  # type: ignore[arg-type]
        return BookingRows(gains=gains, open_lots=open_lots, income=income, findings=findings, allocations=[])


def _check_unique(rows: list[tuple]) -> None:
    if len({r[2] for r in rows}) != len(rows):
        seen: set[str] = set()
        dup = next(r[2] for r in rows if r[2] in seen or seen.add(r[2]))  # type: ignore[func-returns-value]
        raise BookingInputError(f"duplicate event id {dup!r}: ids must be unique across acquisitions, disposals and transfers")


def _datetime_rows(rows: list[tuple]) -> list[tuple]:
    fromiso = datetime.fromisoformat
    return [(fromiso(r[0]), *r[1:]) for r in rows]


def open_lots_at(events: Iterable[Event], settings: Settings, at: datetime, *, opening_lots: Iterable[OpeningLot] = ()) -> list[Lot]:
    """The lots open at instant ``at`` (inclusive): the events up to ``at`` booked alone.

    For the uk method this is the pool as known at ``at``: a later buy-back that would
    bed-and-breakfast-match a disposal before ``at`` is not yet known."""
    if at.utcoffset() is None:
        raise BookingInputError(f"open_lots_at: at must be timezone-aware, got {at.isoformat()}")
    return book([e for e in events if e.time <= at], settings, opening_lots=opening_lots).open_lots


class _Booker:
    """One booking run: pools keyed by (account or '*', asset), and the outputs."""

    def __init__(self, settings: Settings, register: OpeningRegister) -> None:
        self.settings = settings
        self.zone: str = settings.tax_timezone  # type: ignore[assignment]
        self.by_year = dict(settings.method_by_year)
        self.method: str = settings.method  # type: ignore[assignment]
        self.scope: str = settings.scope  # type: ignore[assignment]
        self.register = register
        self.pools: dict[tuple[str, str], Pool] = {}
        self.balances: dict[tuple[str, str], Decimal] = {}
        self.gains: list[Gain] = []
        self.income: list[IncomeRow] = []
        self.findings: list[Finding] = []
        self.allocations: list[SafeHarborAllocation] = []
        self.boundary: datetime | None = _us_boundary(settings)

    # --- driver ---------------------------------------------------------------------------

    def run(self, evs: list[Event]) -> BookingResult:
        boundary = self.boundary
        for ev in evs:
            if boundary is not None and ev.time >= boundary:
                self._cross_us_boundary(boundary)
                boundary = None
            t = type(ev)
            if t is Disposal:
                self._dispose(ev)  # type: ignore[arg-type]
            elif t is Acquisition:
                self._acquire(ev)  # type: ignore[arg-type]
            else:
                self._transfer(ev)  # type: ignore[arg-type]
        self.findings.extend(self.register.unclaimed_findings())
        open_lots = _sort_lots([lot for pool in self.pools.values() for lot in pool.lots()])
        return BookingResult(gains=self.gains, open_lots=open_lots, income=self.income, findings=self.findings, allocations=self.allocations)

    # --- helpers ----------------------------------------------------------------------------

    def _method_at(self, time: datetime) -> str:
        if not self.by_year:
            return self.method
        return self.by_year.get(tax_date(time, self.zone).year, self.method)

    def _pool(self, account: str, asset: str, method: str) -> Pool:
        key = (UNIVERSAL if self.scope == "universal" else account, asset)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = make_pool(method)
        elif pool.method != method:
            pool = self.pools[key] = make_pool(method, pool.lots())
        return pool

    def _move_balance(self, account: str, asset: str, delta: Decimal) -> None:
        key = (account, asset)
        self.balances[key] = self.balances.get(key, ZERO) + delta

    def _finding(self, kind: str, message: str, key: str, account: str, asset: str, time: datetime) -> None:
        self.findings.append(Finding(kind=kind, message=message, key=key, account=account, asset=asset, time=time))

    def _realise(
        self,
        parts: list[Lot],
        shortfall: Decimal,
        *,
        quantity: Decimal,
        proceeds: Decimal,
        account: str,
        asset: str,
        time: datetime,
        disposal_id: str,
        source: str,
        method: str,
    ) -> None:
        """Gains for one disposal: proceeds apportioned by quantity, the last piece exact."""
        zone_name = self.zone
        sold_on = tax_date(time, zone_name)
        left_p, left_q = proceeds, quantity
        gains = self.gains
        for lot in parts:
            q = lot.quantity
            p = share(left_p, q, left_q)
            left_p -= p
            left_q -= q
            term = "long" if sold_on > anniversary(tax_date(lot.acquired, zone_name)) else "short"
            gains.append(
                Gain(
                    account=account,
                    asset=asset,
                    quantity=q,
                    acquired=lot.acquired,
                    disposed=time,
                    proceeds=p,
                    cost_basis=lot.cost,
                    gain=p - lot.cost,
                    term=term,
                    method=method,
                    lot_id=lot.id,
                    disposal_id=disposal_id,
                    source_ref=source,
                )
            )
        if shortfall:
            self._finding(
                "overspend",
                f"{disposal_id}: disposes {quantity} {asset} from {account} at {time.isoformat()} but only {quantity - shortfall} held; {shortfall} booked at zero basis",
                disposal_id,
                account,
                asset,
                time,
            )
            gains.append(
                Gain(
                    account=account,
                    asset=asset,
                    quantity=shortfall,
                    acquired=time,
                    disposed=time,
                    proceeds=left_p,
                    cost_basis=ZERO,
                    gain=left_p,
                    term="short",
                    method=method,
                    lot_id="",
                    disposal_id=disposal_id,
                    source_ref=source,
                )
            )

    # --- events -----------------------------------------------------------------------------

    def _acquire(self, a: Acquisition) -> None:
        method = self._method_at(a.time)
        pool = self._pool(a.account, a.asset, method)
        if a.cost is None:
            lots, uncovered = self.register.claim(a)
            for lot in lots:
                pool.add(lot)
            if uncovered:
                self._finding(
                    "missing-basis",
                    f"{a.kind} {a.id}: {uncovered} {a.asset} into {a.account} at {a.time.isoformat()} has no known basis; booked at zero basis",
                    a.id,
                    a.account,
                    a.asset,
                    a.time,
                )
                pool.add(Lot(id=a.id, account=a.account, asset=a.asset, quantity=uncovered, cost=ZERO, acquired=a.time, source=a.source))
        else:
            pool.add(Lot(id=a.id, account=a.account, asset=a.asset, quantity=a.quantity, cost=a.cost, acquired=a.time, source=a.source))
            if a.kind == "income":
                self.income.append(IncomeRow(id=a.id, account=a.account, asset=a.asset, quantity=a.quantity, value=a.cost, time=a.time, source=a.source))
        self._move_balance(a.account, a.asset, a.quantity)

    def _dispose(self, d: Disposal) -> None:
        method = self._method_at(d.time)
        pool = self._pool(d.account, d.asset, method)
        parts, shortfall = pool.take(d.quantity)
        self._realise(
            parts,
            shortfall,
            quantity=d.quantity,
            proceeds=d.proceeds,
            account=d.account,
            asset=d.asset,
            time=d.time,
            disposal_id=d.id,
            source=d.source,
            method=method,
        )
        self._move_balance(d.account, d.asset, -d.quantity)

    def _transfer(self, t: Transfer) -> None:
        method = self._method_at(t.time)
        source = self._pool(t.from_account, t.asset, method)
        fee_cost = ZERO
        if t.fee:
            fee_parts, fee_short = source.take(t.fee)
            if self.settings.transfer_fee_policy == "disposal":
                value = t.fee_value
                if value is None:
                    value = ZERO
                    self._finding(
                        "missing-fee-value",
                        f"transfer {t.id}: fee of {t.fee} {t.asset} has no market value; fee disposal booked with zero proceeds",
                        t.id,
                        t.from_account,
                        t.asset,
                        t.time,
                    )
                self._realise(
                    fee_parts,
                    fee_short,
                    quantity=t.fee,
                    proceeds=value,
                    account=t.from_account,
                    asset=t.asset,
                    time=t.time,
                    disposal_id=f"{t.id}:fee",
                    source=t.source,
                    method=method,
                )
            else:
                fee_cost = sum((lot.cost for lot in fee_parts), ZERO)
                if fee_short:
                    self._overspent_transfer(t, t.fee, fee_short, "fee")
        moved, short = source.take(t.quantity)
        if short:
            self._overspent_transfer(t, t.quantity, short, "quantity")
            moved.append(Lot(id=t.id, account=t.from_account, asset=t.asset, quantity=short, cost=ZERO, acquired=t.time, source=t.source))
        dest = self._pool(t.to_account, t.asset, method)
        left_c, left_q = fee_cost, t.quantity
        for lot in moved:
            extra = share(left_c, lot.quantity, left_q) if left_c else ZERO
            left_c -= extra
            left_q -= lot.quantity
            dest.add(Lot(id=lot.id, account=t.to_account, asset=lot.asset, quantity=lot.quantity, cost=lot.cost + extra, acquired=lot.acquired, source=lot.source))
        self._move_balance(t.from_account, t.asset, -(t.quantity + t.fee))
        self._move_balance(t.to_account, t.asset, t.quantity)

    def _overspent_transfer(self, t: Transfer, wanted: Decimal, short: Decimal, what: str) -> None:
        self._finding(
            "overspend",
            f"transfer {t.id}: moves {wanted} {t.asset} ({what}) from {t.from_account} at {t.time.isoformat()} but only {wanted - short} held; {short} moved at zero basis"
            if what == "quantity"
            else f"transfer {t.id}: fee of {wanted} {t.asset} from {t.from_account} at {t.time.isoformat()} exceeds holdings by {short}",
            t.id,
            t.from_account,
            t.asset,
            t.time,
        )

    # --- US: per-account basis from 2025-01-01 ------------------------------------------------

    def _cross_us_boundary(self, boundary: datetime) -> None:
        pools = self.pools
        self.pools = {}
        was_universal = self.scope == "universal"
        self.scope = "account"
        by_asset: dict[str, list[tuple[str, Pool]]] = {}
        for (account, asset), pool in sorted(pools.items()):
            by_asset.setdefault(asset, []).append((account, pool))
        for asset, entries in by_asset.items():
            method = entries[0][1].method
            lots = [lot for _, pool in entries for lot in pool.lots()]
            balances = {acct: q for (acct, a), q in self.balances.items() if a == asset}
            records = allocate(lots, balances, asset=asset, boundary=boundary, universal=was_universal)
            for rec in records:
                self.allocations.append(rec)
                pool = make_pool(method, rec.lots)
                self.pools[(rec.account, asset)] = pool
