"""US safe harbor (Rev. Proc. 2024-28): basis per account from 2025-01-01.

Before 2025 the engine may pool an asset across accounts ('universal' scope); lots then carry
the account they were last placed in, but a universal disposal from one account may have
relieved another account's lot. At the boundary each account must hold basis for exactly
the units it holds. ``allocate`` does that unit by unit (a specific-unit allocation):

1. each account keeps the lots labelled to it, oldest first (acquired, lot id), up to the
   units it holds;
2. lots left over are handed, oldest first, to the accounts that hold more units than lots,
   in account-name order;
3. lots nobody's balance calls for stay with their label (only after an overspend).

The result is one immutable, dated record per account and asset, naming the rule. When the
scope was already per account, the record is the lots as held (rule ``SAFE_HARBOR_AS_HELD``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from ledger.booking.methods import share
from ledger.booking.model import Lot, SafeHarborAllocation

__all__ = ["US_ACCOUNT_SCOPE_FROM", "SAFE_HARBOR_UNIT_BY_UNIT", "SAFE_HARBOR_AS_HELD", "SAFE_HARBOR_RULE", "allocate"]

US_ACCOUNT_SCOPE_FROM = date(2025, 1, 1)
SAFE_HARBOR_RULE = "Rev. Proc. 2024-28 safe harbor"
SAFE_HARBOR_UNIT_BY_UNIT = "specific-unit: own lots oldest first up to the balance, surplus lots oldest first to short accounts by name"
SAFE_HARBOR_AS_HELD = "specific-unit: lots as held per account (booked per account before 2025)"
ZERO = Decimal(0)


def _fifo(lot: Lot) -> tuple:
    return (lot.acquired, lot.id)


def _split(lot: Lot, quantity: Decimal) -> tuple[Lot, Lot]:
    cost = share(lot.cost, quantity, lot.quantity)
    head = Lot(id=lot.id, account=lot.account, asset=lot.asset, quantity=quantity, cost=cost, acquired=lot.acquired, source=lot.source)
    tail = Lot(id=lot.id, account=lot.account, asset=lot.asset, quantity=lot.quantity - quantity, cost=lot.cost - cost, acquired=lot.acquired, source=lot.source)
    return head, tail


def _to(lot: Lot, account: str) -> Lot:
    if lot.account == account:
        return lot
    return Lot(id=lot.id, account=account, asset=lot.asset, quantity=lot.quantity, cost=lot.cost, acquired=lot.acquired, source=lot.source)


def allocate(lots: list[Lot], balances: Mapping[str, Decimal], *, asset: str, boundary: datetime, universal: bool) -> list[SafeHarborAllocation]:
    """Allocate ``lots`` of ``asset`` to accounts holding ``balances`` units at ``boundary``."""
    held: dict[str, list[Lot]] = {}
    if not universal:
        for lot in lots:
            held.setdefault(lot.account, []).append(lot)
        method = SAFE_HARBOR_AS_HELD
    else:
        method = SAFE_HARBOR_UNIT_BY_UNIT
        labelled: dict[str, list[Lot]] = {}
        for lot in sorted(lots, key=_fifo):
            labelled.setdefault(lot.account, []).append(lot)
        surplus: list[Lot] = []
        want: dict[str, Decimal] = {}
        for account in sorted(set(labelled) | {a for a, q in balances.items() if q > 0}):
            need = max(balances.get(account, ZERO), ZERO)
            kept: list[Lot] = []
            for lot in labelled.get(account, ()):
                if need >= lot.quantity:
                    kept.append(lot)
                    need -= lot.quantity
                elif need > 0:
                    head, tail = _split(lot, need)
                    kept.append(head)
                    surplus.append(tail)
                    need = ZERO
                else:
                    surplus.append(lot)
            held[account] = kept
            want[account] = need
        surplus.sort(key=_fifo)
        queue = surplus[::-1]
        for account in sorted(want):
            need = want[account]
            while need > 0 and queue:
                lot = queue.pop()
                if lot.quantity <= need:
                    held[account].append(_to(lot, account))
                    need -= lot.quantity
                else:
                    head, tail = _split(lot, need)
                    held[account].append(_to(head, account))
                    queue.append(tail)
                    need = ZERO
        for lot in queue:
            held.setdefault(lot.account, []).append(lot)
    records = []
    for account in sorted(held):
        account_lots = tuple(sorted(held[account], key=_fifo))
        if not account_lots:
            continue
        records.append(
            SafeHarborAllocation(
                time=boundary.date(),
                effective=boundary,
                method=method,
                rule=SAFE_HARBOR_RULE,
                account=account,
                asset=asset,
                quantity=sum((lot.quantity for lot in account_lots), ZERO),
                basis=sum((lot.cost for lot in account_lots), ZERO),
                lots=account_lots,
            )
        )
    return records
