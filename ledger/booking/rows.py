"""The engine's tuple forms, and its fast path for the common history (``docs/methods.md``).

A million records cost about a microsecond each to build and validate; a 100,000-trade export
builds several hundred thousand (events, lots, lot parts, gains). The records stay the public
interface of ``book``; these plain tuples are the bulk form ``book_rows`` takes and returns, for
callers that build many events themselves (``ledger.basis``) and consume many gains
(``reports.gains``):

Event rows, sorted by their first three fields (time, rank, id), the engine's processing order::

    (time, ACQUISITION, id, account, asset, quantity, cost, source, kind)
    (time, TRANSFER, id, from_account, asset, quantity, fee, source, to_account, fee_value)
    (time, DISPOSAL, id, account, asset, quantity, proceeds, source, kind)

A gain row holds ``Gain``'s fields in their order (``GAIN_FIELDS``, also the export's columns).

Times are aware datetimes, or, in every row of a list, their ISO-8601 UTC text
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``iso_utc``; fixed width, so it sorts as the instants do): the
bridge reads SQLite's stored text and the CSV prints it, so text skips a parse, a format and a
hash per time. ``book_rows`` gives gain rows the times' form of its event rows; findings, income
and open lots always carry datetimes.

The fast path books histories without transfers, opening lots, method changes by year or a US
per-account boundary crossing, with a lot-based method (fifo, lifo, hifo, lofo): the same rules
as ``engine._Booker`` with lots as tuples ``(key, acquired, id, arrival, quantity, cost, account,
source, anniversary)``; ``key`` is the negated (hifo) or plain (lofo) unit cost in exact integer units
of 1e-18 (``methods._unit``), the heap's first field. Every other history takes the general engine.
Both give identical results (tested with hypothesis in ``tests/ledger/booking/test_booking_rows.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import fields
from datetime import date, datetime, timezone
from decimal import Decimal, localcontext
from heapq import heappop, heappush

from ledger.booking.methods import QUANTUM
from ledger.booking.model import Acquisition, Disposal, Finding, Gain, IncomeRow, Lot, Settings, Transfer
from ledger.booking.taxdate import anniversary, tax_date
from ledger.money import EXACT

__all__ = ["ACQUISITION", "TRANSFER", "DISPOSAL", "GAIN_FIELDS", "iso_utc", "instant", "text_times", "acquisition_row", "disposal_row", "transfer_row", "event_row", "row_event", "gain_record", "fast_path_applies", "book_simple", "simple_booker", "pool_lots"]

ACQUISITION, TRANSFER, DISPOSAL = 0, 1, 2
GAIN_FIELDS = tuple(f.name for f in fields(Gain))
#: Positions in a gain row used outside the engine.
G_DISPOSED, G_GAIN = GAIN_FIELDS.index("disposed"), GAIN_FIELDS.index("gain")
FAST_METHODS = frozenset({"fifo", "lifo", "hifo", "lofo"})
ZERO = Decimal(0)
_UTC = timezone.utc


def iso_utc(t: datetime, _days: dict = {}) -> str:  # noqa: B006 - memo of the date part (a few thousand days)
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``: an instant as the ISO-8601 UTC text of event rows with text
    times and of the exports' cells. Date and time of day are formatted apart, as the naive
    ``time`` formats in a third of the aware datetime's time."""
    if t.tzinfo is not _UTC:
        t = t.astimezone(_UTC)
    d = t.date()
    day = _days.get(d)
    if day is None:
        if len(_days) > 100_000:
            _days.clear()
        day = _days[d] = d.isoformat() + "T"
    s = t.time().isoformat()  # without timespec: cheaper; it leaves out a zero microsecond
    return f"{day}{s}Z" if len(s) == 15 else f"{day}{s}.000000Z"


def instant(t: datetime | str) -> datetime:
    """A row's time as an aware datetime (text times are ``iso_utc``'s form)."""
    return _fromiso(t) if type(t) is str else t  # type: ignore[arg-type]


_fromiso = datetime.fromisoformat
_fromisodate = date.fromisoformat


def text_times(rows: list[tuple]) -> bool:
    """Whether event rows carry text times (``iso_utc``'s form; all of them or none do)."""
    return bool(rows) and type(rows[0][0]) is str


def acquisition_row(*, id: str, account: str, asset: str, quantity: Decimal, cost: Decimal | None, time: datetime, source: str, kind: str) -> tuple:
    return (time, ACQUISITION, id, account, asset, quantity, cost, source, kind)


def disposal_row(*, id: str, account: str, asset: str, quantity: Decimal, proceeds: Decimal, time: datetime, source: str, kind: str) -> tuple:
    return (time, DISPOSAL, id, account, asset, quantity, proceeds, source, kind)


def transfer_row(
    *, id: str, from_account: str, to_account: str, asset: str, quantity: Decimal, fee: Decimal, fee_value: Decimal | None, time: datetime, source: str
) -> tuple:
    return (time, TRANSFER, id, from_account, asset, quantity, fee, source, to_account, fee_value)


def event_row(e: Acquisition | Disposal | Transfer) -> tuple:
    """The row of an event record."""
    if type(e) is Acquisition:
        return (e.time, ACQUISITION, e.id, e.account, e.asset, e.quantity, e.cost, e.source, e.kind)
    if type(e) is Disposal:
        return (e.time, DISPOSAL, e.id, e.account, e.asset, e.quantity, e.proceeds, e.source, e.kind)
    return (e.time, TRANSFER, e.id, e.from_account, e.asset, e.quantity, e.fee, e.source, e.to_account, e.fee_value)


def row_event(r: tuple) -> Acquisition | Disposal | Transfer:
    """The record of an event row (validated by the record's constructor)."""
    t, rank, id_, account, asset, quantity, amount, source = r[:8]
    if rank == ACQUISITION:
        return Acquisition(id=id_, account=account, asset=asset, quantity=quantity, cost=amount, time=t, source=source, kind=r[8])
    if rank == DISPOSAL:
        return Disposal(id=id_, account=account, asset=asset, quantity=quantity, proceeds=amount, time=t, source=source, kind=r[8])
    return Transfer(id=id_, from_account=account, to_account=r[8], asset=asset, quantity=quantity, fee=amount, fee_value=r[9], time=t, source=source)


def gain_record(r: tuple) -> Gain:
    return Gain(account=r[0], asset=r[1], quantity=r[2], acquired=r[3], disposed=r[4], proceeds=r[5], cost_basis=r[6], gain=r[7],
                term=r[8], method=r[9], lot_id=r[10], disposal_id=r[11], source_ref=r[12])


def gain_row(g: Gain) -> tuple:
    return (g.account, g.asset, g.quantity, g.acquired, g.disposed, g.proceeds, g.cost_basis, g.gain, g.term, g.method, g.lot_id, g.disposal_id, g.source_ref)


def fast_path_applies(rows: list[tuple], settings: Settings, boundary: datetime | None, has_opening_lots: bool) -> bool:
    """Whether ``book_simple`` books ``rows`` (sorted) exactly as the general engine would."""
    if settings.method not in FAST_METHODS or settings.method_by_year or has_opening_lots:
        return False
    if rows and boundary is not None and rows[-1][0] >= boundary:
        return False  # the US per-account boundary is crossed: safe-harbor allocation
    for r in rows:
        if r[1] == TRANSFER or r[6] is None:
            return False
    return True


def book_simple(rows: list[tuple], settings: Settings) -> tuple[list[tuple], list[Lot], list[IncomeRow], list[Finding]]:
    """Gains (rows), open lots, income and findings of ``rows`` (sorted; ``fast_path_applies``)."""
    booker = simple_booker(settings)
    next(booker)
    gains = booker.send(rows)
    try:
        booker.send(None)
    except StopIteration as stop:
        pools, income, findings = stop.value
    return gains, pool_lots(pools, settings.method), income, findings  # type: ignore[arg-type]


def simple_booker(settings: Settings) -> Generator[list[tuple], list[tuple] | None, tuple[dict, list[IncomeRow], list[Finding]]]:
    """``book_simple`` a batch of rows at a time: a generator that, once started (``next``), takes
    each batch by ``send`` (sorted, every row after the previous batch's last; the batches together
    meet ``fast_path_applies``) and gives back that batch's gains; ``send(None)`` ends it, with the
    pools (``pool_lots`` makes them open lots), income and findings as ``StopIteration.value``. The batches book exactly as their
    concatenation would in one."""
    method: str = settings.method  # type: ignore[assignment]
    zone_name: str = settings.tax_timezone  # type: ignore[assignment]
    per_account = settings.scope == "account"
    if method in ("hifo", "lofo"):
        new, push, pop, top = list, heappush, heappop, 0
    elif method == "fifo":
        new, push, pop, top = deque, deque.append, deque.popleft, 0
    else:  # lifo
        new, push, pop, top = list, list.append, list.pop, -1
    negate = method == "hifo"
    keyed = method in ("hifo", "lofo")
    utc = zone_name == "UTC"
    pools: dict[tuple[str, str], list | deque] = {}
    income: list[IncomeRow] = []
    findings: list[Finding] = []
    seq = 0
    pool_asset = pool_account = None
    pool: list | deque = []
    anniversaries: dict = {}
    gains: list[tuple] = []
    rows = yield gains
    while rows is not None:
        text = text_times(rows)
        text_day = text and utc  # the tax day as text: iso_utc's first ten characters
        gains = []
        gain = gains.append
        with localcontext(EXACT):  # entered per batch: a context must not stay set while the generator waits
            for t, rank, id_, account, asset, q, amount, source, kind in rows:
                if asset != pool_asset or (per_account and account != pool_account):  # the same pool as the last event's?
                    pool_asset, pool_account = asset, account
                    pkey = (account if per_account else "*", asset)
                    pool = pools.get(pkey)  # type: ignore[assignment]
                    if pool is None:
                        pool = pools[pkey] = new()
                if text_day:  # ISO dates compare as text
                    day = t[:10]
                elif text:
                    day = tax_date(_fromiso(t), zone_name)
                else:
                    day = t.date() if utc and t.tzinfo is _UTC else tax_date(t, zone_name)
                if rank == ACQUISITION:
                    seq += 1
                    if keyed:  # the unit cost at 18 places as an exact integer of 1e-18 units: compared faster than a Decimal
                        k = round((amount / q).scaleb(18))  # = int(quantize(1e-18).scaleb(18)): round() is half-even
                        if negate:
                            k = -k
                    else:
                        k = 0
                    ann = anniversaries.get(day)
                    if ann is None:
                        ann = anniversaries[day] = anniversary(_fromisodate(day)).isoformat() if text_day else anniversary(day)
                    push(pool, (k, t, id_, seq, q, amount, account, source, ann))
                    if kind == "income":
                        income.append(IncomeRow(id=id_, account=account, asset=asset, quantity=q, value=amount, time=instant(t), source=source))
                    continue
                # Pieces: every whole lot the disposal empties, then the last piece, which takes the rest of the
                # proceeds. ``need`` is the quantity still to relieve and ``left_p`` its proceeds.
                need = q
                left_p = amount
                while pool:
                    lot = pool[top]
                    lq = lot[4]
                    if lq < need:  # the whole lot, and more to come: its share of the proceeds (methods.share, inlined)
                        pop(pool)
                        v = left_p * lq / need
                        p = v.quantize(QUANTUM)
                        if p == v:
                            p = v
                        left_p -= p
                        need -= lq
                        c = lot[5]
                        gain((account, asset, lq, lot[1], t, p, c, p - c, "long" if day > lot[8] else "short", method, lot[2], id_, source))  # long: sold after the anniversary
                        continue
                    if lq == need:  # the last piece empties the lot
                        pop(pool)
                        c = lot[5]
                    else:  # the last piece, part of the lot: its share of the basis (methods.share, inlined)
                        whole = lot[5]
                        v = whole * need / lq
                        c = v.quantize(QUANTUM)
                        if c == v:
                            c = v
                        pool[top] = (lot[0], lot[1], lot[2], lot[3], lq - need, whole - c, lot[6], lot[7], lot[8])
                    gain((account, asset, need, lot[1], t, left_p, c, left_p - c, "long" if day > lot[8] else "short", method, lot[2], id_, source))
                    need = ZERO
                    break
                if need:
                    at = instant(t)
                    findings.append(Finding(
                        kind="overspend",
                        message=f"{id_}: disposes {q} {asset} from {account} at {at.isoformat()} but only {q - need} held; {need} booked at zero basis",
                        key=id_, account=account, asset=asset, time=at,
                    ))
                    gain((account, asset, need, t, t, left_p, ZERO, left_p, "short", method, "", id_, source))
        rows = yield gains
    return pools, income, findings


def pool_lots(pools: dict, method: str) -> list[Lot]:
    """The open lots of ``simple_booker``'s pools (its ``StopIteration.value[0]``), as ``Lot`` records."""
    keyed = method in ("hifo", "lofo")
    open_lots = []
    for (_, asset), pool in pools.items():
        for lot in sorted(pool) if keyed else pool:
            open_lots.append(Lot(id=lot[2], account=lot[6], asset=asset, quantity=lot[4], cost=lot[5], acquired=instant(lot[1]), source=lot[7]))
    return open_lots
