"""What the pooled stages (``ca.py``, ``jp.py``) share: one pool per asset across all accounts.

Both book every event of an asset against one running (quantity, cost) pool, as the engine's
``average`` pool does, but need the whole ordered history first. The helpers here turn the ordered
events into what a pool sees: the cost of an acquisition (an unknown-basis deposit claims opening
lots, else zero basis and a finding), the finding of a disposal that exceeds the pool, and the open
lot a pool leaves (``<prefix>:<asset>``, account ``*``, acquired when the pool last became non-empty).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ledger.booking.model import Acquisition, Finding, IncomeRow, Lot, Transfer
from ledger.booking.opening import OpeningRegister

__all__ = ["ZERO", "acquisition_cost", "overspend", "fee_value", "pool_lot", "income_row"]

ZERO = Decimal(0)
_new = tuple.__new__


def acquisition_cost(e: Acquisition, register: OpeningRegister, findings: list[Finding]) -> Decimal:
    """The cost the pool takes for ``e``: its own, or for a deposit of unknown basis the opening lots it claims."""
    if e.cost is not None:
        return e.cost
    lots, uncovered = register.claim(e)
    if uncovered:
        findings.append(_new(Finding, (
            "missing-basis",
            f"{e.kind} {e.id}: {uncovered} {e.asset} into {e.account} at {e.time.isoformat()} has no known basis; booked at zero basis",
            e.id, e.account, e.asset, e.time,
        )))
    return sum((lot.cost for lot in lots), ZERO)


def overspend(findings: list[Finding], did: str, account: str, asset: str, t: datetime, quantity: Decimal, short: Decimal) -> None:
    findings.append(_new(Finding, (
        "overspend",
        f"{did}: disposes {quantity} {asset} from {account} at {t.isoformat()} but only {quantity - short} held; {short} booked at zero basis",
        did, account, asset, t,
    )))


def fee_value(e: Transfer, findings: list[Finding]) -> Decimal:
    """A transfer fee's proceeds under the 'disposal' policy (no value: zero and a finding)."""
    if e.fee_value is not None:
        return e.fee_value
    findings.append(_new(Finding, (
        "missing-fee-value",
        f"transfer {e.id}: fee of {e.fee} {e.asset} has no market value; fee disposal booked with zero proceeds",
        e.id, e.from_account, e.asset, e.time,
    )))
    return ZERO


def pool_lot(prefix: str, asset: str, quantity: Decimal, cost: Decimal, since: datetime) -> Lot:
    return _new(Lot, (f"{prefix}:{asset}", "*", asset, quantity, cost, since, prefix))


def income_row(e: Acquisition, cost: Decimal) -> IncomeRow:
    return _new(IncomeRow, (e.id, e.account, e.asset, e.quantity, cost, e.time, e.source))
