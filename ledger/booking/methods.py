"""Booking methods: small ordering rules behind a dispatch table, and the pools that apply them.

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
lot's cost / quantity when it enters the pool, compared at 18 decimal places; "arrival" is the
order lots entered the pool. The HMRC method ('uk') needs look-ahead and lives in ``uk.py``.

All arithmetic here runs inside the engine's ``localcontext(EXACT)``.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Callable, Iterable
from decimal import Decimal
from itertools import count
from typing import Protocol

from ledger.booking.model import Lot

__all__ = ["QUANTUM", "share", "Pool", "make_pool", "ORDERINGS", "POOLS", "fifo_key", "hifo_key", "lofo_key"]

ZERO = Decimal(0)
#: Apportioned amounts (a part of a cost or of proceeds) that do not divide exactly are kept
#: to 18 decimal places; the remainder always goes to the last piece, so totals stay exact.
#: 18 places keep every amount below 10^10 within 28 significant digits, so a consumer's
#: sums in the default decimal context are exact too.
QUANTUM = Decimal("1e-18")
_UNIT_QUANTUM = Decimal("1e-18")

def share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``amount * part / whole``: exact where it divides, else to ``QUANTUM``."""
    if part == whole:
        return amount
    v = amount * part / whole
    q = v.quantize(QUANTUM)
    return v if v == q else q


def _unit(lot: Lot) -> Decimal:
    return (lot.cost / lot.quantity).quantize(_UNIT_QUANTUM)


# --- ordering keys: smallest first -------------------------------------------------------

def fifo_key(lot: Lot) -> tuple:
    return (lot.acquired, lot.id)


def hifo_key(lot: Lot) -> tuple:
    return (-_unit(lot), lot.acquired, lot.id)


def lofo_key(lot: Lot) -> tuple:
    return (_unit(lot), lot.acquired, lot.id)


#: method -> ordering key (LIFO is FIFO's key read from the other end).
ORDERINGS: dict[str, Callable[[Lot], tuple]] = {
    "fifo": fifo_key,
    "lifo": fifo_key,
    "hifo": hifo_key,
    "lofo": lofo_key,
}


def _part(lot: Lot, quantity: Decimal, cost: Decimal) -> Lot:
    return Lot(id=lot.id, account=lot.account, asset=lot.asset, quantity=quantity, cost=cost, acquired=lot.acquired, source=lot.source)


class Pool(Protocol):
    method: str
    quantity: Decimal

    def add(self, lot: Lot) -> None: ...

    def take(self, quantity: Decimal) -> tuple[list[Lot], Decimal]:
        """Relieve ``quantity`` units: the lot parts relieved, and the shortfall (0 if held)."""
        ...

    def lots(self) -> list[Lot]: ...


class SortedPool:
    """FIFO (moving head index) or LIFO (stack): lots sorted by (acquired, id, arrival).

    Lots normally arrive in time order and are appended in O(1); a transferred lot keeps its
    original date and is inserted in place (bisect)."""

    __slots__ = ("method", "quantity", "_items", "_head", "_lifo", "_seq")

    def __init__(self, method: str) -> None:
        self.method = method
        self.quantity = ZERO
        self._items: list[tuple] = []
        self._head = 0
        self._lifo = method == "lifo"
        self._seq = count()

    def add(self, lot: Lot) -> None:
        item = (lot.acquired, lot.id, next(self._seq), lot)
        items = self._items
        if len(items) == self._head or item > items[-1]:
            items.append(item)
        else:
            insort(items, item, lo=self._head)
        self.quantity += lot.quantity

    def take(self, quantity: Decimal) -> tuple[list[Lot], Decimal]:
        items = self._items
        parts: list[Lot] = []
        need = quantity
        if self._lifo:
            while need > 0 and len(items) > self._head:
                acquired, lot_id, seq, lot = items[-1]
                if lot.quantity <= need:
                    items.pop()
                    parts.append(lot)
                    need -= lot.quantity
                else:
                    cost = share(lot.cost, need, lot.quantity)
                    parts.append(_part(lot, need, cost))
                    items[-1] = (acquired, lot_id, seq, _part(lot, lot.quantity - need, lot.cost - cost))
                    need = ZERO
        else:
            head = self._head
            n = len(items)
            while need > 0 and head < n:
                acquired, lot_id, seq, lot = items[head]
                if lot.quantity <= need:
                    items[head] = None  # type: ignore[call-overload]
                    head += 1
                    parts.append(lot)
                    need -= lot.quantity
                else:
                    cost = share(lot.cost, need, lot.quantity)
                    parts.append(_part(lot, need, cost))
                    items[head] = (acquired, lot_id, seq, _part(lot, lot.quantity - need, lot.cost - cost))
                    need = ZERO
            if head > 4096 and head * 2 > n:
                del items[:head]
                head = 0
            self._head = head
        self.quantity -= quantity - need
        return parts, need

    def lots(self) -> list[Lot]:
        return [item[3] for item in self._items[self._head:]]


class HeapPool:
    """HIFO / LOFO: a binary heap on the method's ordering key. A partly relieved lot keeps
    its key, so it is replaced at the top in place."""

    __slots__ = ("method", "quantity", "_heap", "_key", "_seq")

    def __init__(self, method: str) -> None:
        self.method = method
        self.quantity = ZERO
        self._heap: list[tuple] = []
        self._key = ORDERINGS[method]
        self._seq = count()

    def add(self, lot: Lot) -> None:
        heapq.heappush(self._heap, (self._key(lot), next(self._seq), lot))
        self.quantity += lot.quantity

    def take(self, quantity: Decimal) -> tuple[list[Lot], Decimal]:
        heap = self._heap
        parts: list[Lot] = []
        need = quantity
        heappop = heapq.heappop
        while need > 0 and heap:
            key, seq, lot = heap[0]
            if lot.quantity <= need:
                heappop(heap)
                parts.append(lot)
                need -= lot.quantity
            else:
                cost = share(lot.cost, need, lot.quantity)
                parts.append(_part(lot, need, cost))
                heap[0] = (key, seq, _part(lot, lot.quantity - need, lot.cost - cost))
                need = ZERO
        self.quantity -= quantity - need
        return parts, need

    def lots(self) -> list[Lot]:
        return [item[2] for item in sorted(self._heap, key=lambda item: item[:2])]


class AveragePool:
    """Average cost (ACB): one running quantity and cost per pool; a removal relieves
    cost x quantity / held. Acquisition dates are kept (quantity only) and relieved FIFO, so
    each relieved piece still carries an acquisition date for the holding period."""

    __slots__ = ("method", "quantity", "cost", "_dates")

    def __init__(self, method: str = "average") -> None:
        self.method = method
        self.quantity = ZERO
        self.cost = ZERO
        self._dates = SortedPool("fifo")

    def add(self, lot: Lot) -> None:
        self.quantity += lot.quantity
        self.cost += lot.cost
        self._dates.add(_part(lot, lot.quantity, ZERO))

    def take(self, quantity: Decimal) -> tuple[list[Lot], Decimal]:
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
    def _spread(dated: list[Lot], cost: Decimal, quantity: Decimal) -> list[Lot]:
        parts = []
        left_cost, left_q = cost, quantity
        for lot in dated:
            c = share(left_cost, lot.quantity, left_q)
            parts.append(_part(lot, lot.quantity, c))
            left_cost -= c
            left_q -= lot.quantity
        return parts

    def lots(self) -> list[Lot]:
        return self._spread(self._dates.lots(), self.cost, self.quantity) if self.quantity else []


POOLS: dict[str, Callable[[str], Pool]] = {
    "fifo": SortedPool,
    "lifo": SortedPool,
    "hifo": HeapPool,
    "lofo": HeapPool,
    "average": AveragePool,
}


def make_pool(method: str, lots: Iterable[Lot] = ()) -> Pool:
    """A new pool ordered by ``method``, holding ``lots``."""
    pool = POOLS[method](method)
    for lot in lots:
        pool.add(lot)
    return pool
