"""Booking methods: one ordering key per method, and the pools that apply them.

A method decides which units of a pool a removal (disposal or transfer) relieves first. Each
lot-based method is an ordering key: the lot with the smallest key goes first.

=========  =================================================  =========================
method     order relieved (tie-breaks in order)                structure
=========  =================================================  =========================
fifo       acquired asc, lot id asc, arrival asc               sorted list, moving head
lifo       acquired desc, lot id desc, arrival desc            sorted list, pop the tail
hifo       unit cost desc, acquired asc, lot id asc, arrival   binary heap
lofo       unit cost asc, acquired asc, lot id asc, arrival    binary heap
average    one average cost per pool; dates relieved FIFO      running totals + FIFO
=========  =================================================  =========================

"Acquired" is the original acquisition instant (kept through transfers); "unit cost" is the
lot's cost / quantity when it enters the pool, compared at 18 decimal places (as an exact integer
of 1e-18 units: ``unit_key``); "arrival" is the order lots entered the pool. The HMRC method
('uk') needs look-ahead and lives in ``uk.py``.

A pool holds ``(lot, anniversary)`` pairs: the anniversary of the lot's acquisition tax day is
computed once, when the units are acquired, and travels with them, so the holding term of a
relieved piece is one date comparison. All arithmetic runs inside the engine's
``localcontext(EXACT)``.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from itertools import count

from ledger.booking.model import Lot

__all__ = ["QUANTUM", "share", "unit_key", "Pool", "SortedPool", "HeapPool", "AveragePool", "POOLS", "make_pool", "LOT_METHODS"]

ZERO = Decimal(0)
#: Apportioned amounts (a part of a cost or of proceeds) that do not divide exactly are kept
#: to 18 decimal places; the remainder always goes to the last piece, so totals stay exact.
#: 18 places keep every amount below 10^10 within 28 significant digits, so a consumer's
#: sums in the default decimal context are exact too.
QUANTUM = Decimal("1e-18")
LOT_METHODS = ("fifo", "lifo", "hifo", "lofo", "average")
_new = tuple.__new__


def share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``amount * part / whole``: exact where it divides, else to ``QUANTUM``."""
    if part == whole:
        return amount
    v = amount * part / whole
    q = v.quantize(QUANTUM)
    return v if v == q else q


def unit_key(lot: Lot) -> int:
    """The lot's unit cost at 18 places as an exact integer of 1e-18 units (half-even)."""
    return round((lot.cost / lot.quantity).scaleb(18))


def _part(lot: Lot, quantity: Decimal, cost: Decimal) -> Lot:
    return _new(Lot, (lot[0], lot[1], lot[2], quantity, cost, lot[5], lot[6]))


class Pool:
    """The interface: ``add`` units, ``take`` a quantity (the pieces relieved and the shortfall),
    ``items`` the held ``(lot, anniversary)`` pairs in the method's order."""

    method: str

    def add(self, lot: Lot, ann: date) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def take(self, quantity: Decimal) -> tuple[list[tuple[Lot, date]], Decimal]:  # pragma: no cover - interface
        raise NotImplementedError

    def items(self) -> list[tuple[Lot, date]]:  # pragma: no cover - interface
        raise NotImplementedError

    def lots(self) -> list[Lot]:
        return [lot for lot, _ in self.items()]


class SortedPool(Pool):
    """FIFO (moving head index) or LIFO (stack): lots sorted by (acquired, id, arrival).

    Lots normally arrive in time order and are appended in O(1); a transferred lot keeps its
    original date and is inserted in place (bisect)."""

    __slots__ = ("method", "_items", "_head", "_lifo", "_seq")

    def __init__(self, method: str) -> None:
        self.method = method
        self._items: list[tuple] = []
        self._head = 0
        self._lifo = method == "lifo"
        self._seq = count()

    def add(self, lot: Lot, ann: date) -> None:
        item = (lot[5], lot[0], next(self._seq), lot, ann)
        items = self._items
        if len(items) == self._head or item > items[-1]:
            items.append(item)
        else:
            insort(items, item, lo=self._head)

    def take(self, quantity: Decimal) -> tuple[list[tuple[Lot, date]], Decimal]:
        items = self._items
        parts: list[tuple[Lot, date]] = []
        need = quantity
        if self._lifo:
            while need > 0 and len(items) > self._head:
                item = items[-1]
                lot = item[3]
                lq = lot[3]
                if lq <= need:
                    items.pop()
                    parts.append((lot, item[4]))
                    need -= lq
                else:
                    cost = share(lot[4], need, lq)
                    parts.append((_part(lot, need, cost), item[4]))
                    items[-1] = (item[0], item[1], item[2], _part(lot, lq - need, lot[4] - cost), item[4])
                    need = ZERO
        else:
            head = self._head
            n = len(items)
            while need > 0 and head < n:
                item = items[head]
                lot = item[3]
                lq = lot[3]
                if lq <= need:
                    items[head] = None  # type: ignore[call-overload]
                    head += 1
                    parts.append((lot, item[4]))
                    need -= lq
                else:
                    cost = share(lot[4], need, lq)
                    parts.append((_part(lot, need, cost), item[4]))
                    items[head] = (item[0], item[1], item[2], _part(lot, lq - need, lot[4] - cost), item[4])
                    need = ZERO
            if head > 4096 and head * 2 > n:
                del items[:head]
                head = 0
            self._head = head
        return parts, need

    def items(self) -> list[tuple[Lot, date]]:
        return [(item[3], item[4]) for item in self._items[self._head:]]


class HeapPool(Pool):
    """HIFO / LOFO: a binary heap on (unit cost key, acquired, lot id, arrival). A partly relieved
    lot keeps its key, so it is replaced at the top in place."""

    __slots__ = ("method", "_heap", "_sign", "_seq")

    def __init__(self, method: str) -> None:
        self.method = method
        self._heap: list[tuple] = []
        self._sign = -1 if method == "hifo" else 1
        self._seq = count()

    def add(self, lot: Lot, ann: date) -> None:
        key = round((lot[4] / lot[3]).scaleb(18))  # unit_key(lot), inlined: once per lot of a large history
        heapq.heappush(self._heap, (self._sign * key, lot[5], lot[0], next(self._seq), lot, ann))

    def take(self, quantity: Decimal) -> tuple[list[tuple[Lot, date]], Decimal]:
        heap = self._heap
        parts: list[tuple[Lot, date]] = []
        need = quantity
        heappop = heapq.heappop
        while need > 0 and heap:
            item = heap[0]
            lot = item[4]
            lq = lot[3]
            if lq <= need:
                heappop(heap)
                parts.append((lot, item[5]))
                need -= lq
            else:
                cost = share(lot[4], need, lq)
                parts.append((_part(lot, need, cost), item[5]))
                heap[0] = (item[0], item[1], item[2], item[3], _part(lot, lq - need, lot[4] - cost), item[5])
                need = ZERO
        return parts, need

    def items(self) -> list[tuple[Lot, date]]:
        return [(item[4], item[5]) for item in sorted(self._heap, key=lambda item: item[:4])]


class AveragePool(Pool):
    """Average cost (ACB): one running quantity and cost per pool; a removal relieves
    cost x quantity / held. Acquisition dates are kept (quantity only) and relieved FIFO, so
    each relieved piece still carries an acquisition date for the holding period."""

    __slots__ = ("method", "quantity", "cost", "_dates")

    def __init__(self, method: str = "average") -> None:
        self.method = method
        self.quantity = ZERO
        self.cost = ZERO
        self._dates = SortedPool("fifo")

    def add(self, lot: Lot, ann: date) -> None:
        self.quantity += lot[3]
        self.cost += lot[4]
        self._dates.add(_part(lot, lot[3], ZERO), ann)

    def take(self, quantity: Decimal) -> tuple[list[tuple[Lot, date]], Decimal]:
        held = self.quantity
        taken = quantity if quantity <= held else held
        if taken == 0:
            return [], quantity
        relieved = share(self.cost, taken, held)
        dated, _ = self._dates.take(taken)
        parts = self._spread(dated, relieved, taken)
        self.quantity = held - taken
        self.cost -= relieved
        return parts, quantity - taken

    @staticmethod
    def _spread(dated: list[tuple[Lot, date]], cost: Decimal, quantity: Decimal) -> list[tuple[Lot, date]]:
        parts = []
        left_cost, left_q = cost, quantity
        for lot, ann in dated:
            c = share(left_cost, lot[3], left_q)
            parts.append((_part(lot, lot[3], c), ann))
            left_cost -= c
            left_q -= lot[3]
        return parts

    def items(self) -> list[tuple[Lot, date]]:
        return self._spread(self._dates.items(), self.cost, self.quantity) if self.quantity else []


POOLS: dict[str, Callable[[str], Pool]] = {
    "fifo": SortedPool,
    "lifo": SortedPool,
    "hifo": HeapPool,
    "lofo": HeapPool,
    "average": AveragePool,
}


def make_pool(method: str, items: Iterable[tuple[Lot, date]] = ()) -> Pool:
    """A new pool ordered by ``method``, holding ``items`` (``(lot, anniversary)`` pairs)."""
    pool = POOLS[method](method)
    for lot, ann in items:
        pool.add(lot, ann)
    return pool
