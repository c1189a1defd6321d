"""Japan: total average (総平均法, the default) and moving average (移動平均法, an election), per asset
per calendar year in Asia/Tokyo (``settings.tax_timezone``), across all accounts.

- **Total average** (``total-average``): the unit cost of year Y is
  ``(cost carried in + cost acquired in Y) / (units carried in + units acquired in Y)`` and applies to
  every disposal of Y, whenever in the year it falls; the year-end holding carries forward at it.
  Exact (the default), a disposal's cost is ``C x q / Q`` (to 18 places) and the carry-forward is
  what is left of ``C``, so the year's costs add up exactly.
- **Moving average** (``moving-average``): the unit cost is recomputed at each acquisition; a
  disposal relieves cost x quantity / held (as the engine's ``average`` pool does).
- The method is per year (``Settings.method_for``): an election applies from the year it names.
- ``Settings.unit_cost_rounding``: ``exact`` (default); ``up`` or ``half-up`` round the unit cost
  to whole yen (whole units of the reporting currency) before it is applied, and the carry-forward
  is then the units held x the rounded unit cost (NTA's direction to be verified: a switch).

"Acquired" here is every acquisition with a cost: purchases, income received in kind (at its value)
and deposits (at their opening-lot basis). Units sold that were never held are booked at zero basis
with an ``overspend`` finding, as the engine does.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from ledger.booking.jurisdictions import tax_day
from ledger.booking.methods import share
from ledger.booking.model import Acquisition, BookingResult, Disposal, Event, Finding, Gain, IncomeRow, Lot, Settings, Transfer
from ledger.booking.opening import OpeningRegister
from ledger.booking.pooled import ZERO, acquisition_cost, fee_value, income_row, overspend, pool_lot

__all__ = ["book_jp", "unit_cost_of"]

_new = tuple.__new__
_ONE = Decimal(1)


def unit_cost_of(cost: Decimal, quantity: Decimal, rounding: str) -> Decimal | None:
    """The rounded unit cost, or None when exact (the caller apportions ``cost`` itself)."""
    if rounding == "exact" or quantity == 0:
        return None
    return (cost / quantity).quantize(_ONE, rounding=ROUND_CEILING if rounding == "up" else ROUND_HALF_UP)


class _Year:
    """One asset's figures for one year: carried in, acquired in the year."""

    __slots__ = ("q", "c")

    def __init__(self) -> None:
        self.q = self.c = ZERO


def book_jp(evs: list[Event], settings: Settings, register: OpeningRegister) -> BookingResult:
    zone_name: str = settings.tax_timezone  # type: ignore[assignment]
    rounding = settings.unit_cost_rounding
    findings: list[Finding] = []
    income: list[IncomeRow] = []
    gains: list[Gain] = []
    fee_disposal = settings.transfer_fee_policy == "disposal"

    # Costs of acquisitions, resolved once in order (a deposit's claim on the opening lots is stateful).
    costs: dict[str, Decimal] = {}
    acquired: dict[tuple[str, int], _Year] = {}
    years: dict[int, int] = {}  # event index -> tax year
    for i, e in enumerate(evs):
        y = years[i] = tax_day(e.time, zone_name).year
        if type(e) is Acquisition:
            c = costs[e.id] = acquisition_cost(e, register, findings)
            a = acquired.get((e.asset, y))
            if a is None:
                a = acquired[(e.asset, y)] = _Year()
            a.q += e.quantity
            a.c += c
            if e.kind == "income":
                income.append(income_row(e, c))

    # Per asset: the pool (quantity, cost), and for a total-average year its totals and unit cost.
    q: dict[str, Decimal] = {}
    c: dict[str, Decimal] = {}
    since: dict[str, datetime | None] = {}
    year_of: dict[str, int] = {}
    #: asset -> (Q, C, unit or None, disposed quantity and cost so far) of its current total-average year
    total: dict[str, list] = {}

    def open_year(asset: str, y: int) -> None:
        """Start ``asset``'s year ``y``: the total average's denominator is known from pass 1."""
        year_of[asset] = y
        total.pop(asset, None)
        if settings.method_for(y) == "total-average":
            a = acquired.get((asset, y)) or _Year()
            Q, C = q.get(asset, ZERO) + a.q, c.get(asset, ZERO) + a.c
            total[asset] = [Q, C, unit_cost_of(C, Q, rounding)]

    def close_year(asset: str) -> None:
        """A total-average year's end: the holding carries forward at the year's unit cost."""
        t = total.get(asset)
        if t is not None and t[2] is not None:
            c[asset] = q[asset] * t[2] if q[asset] > 0 else ZERO

    def dispose(asset: str, quantity: Decimal, proceeds: Decimal, t: datetime, y: int, did: str, account: str, source: str) -> None:
        held = q.get(asset, ZERO)
        take = quantity if quantity <= held else held
        short = quantity - take
        p_take = proceeds if not short else share(proceeds, take, quantity)
        method = settings.method_for(y)
        if take:
            tot = total.get(asset)
            if tot is not None:  # total average: the year's one unit cost
                Q, C, unit = tot
                cost = take * unit if unit is not None else share(C, take, Q)
            else:
                unit = unit_cost_of(c[asset], held, rounding)
                cost = c[asset] if take == held else (take * unit if unit is not None else share(c[asset], take, held))
            q[asset] = held - take
            c[asset] -= cost
            gains.append(_new(Gain, (account, asset, take, since.get(asset) or t, t, p_take, cost, p_take - cost, method, method, f"{method}:{asset}:{y}", did, source)))
            if q[asset] == 0:
                since[asset] = None
        if short:
            overspend(findings, did, account, asset, t, quantity, short)
            left = proceeds - p_take
            gains.append(_new(Gain, (account, asset, short, t, t, left, ZERO, left, method, method, "", did, source)))

    for i, e in enumerate(evs):
        y = years[i]
        asset = e.asset
        if year_of.get(asset) != y:
            if asset in year_of:
                close_year(asset)
            open_year(asset, y)
        if type(e) is Acquisition:
            if not q.get(asset):
                since[asset] = e.time
            q[asset] = q.get(asset, ZERO) + e.quantity
            c[asset] = c.get(asset, ZERO) + costs[e.id]
        elif type(e) is Disposal:
            dispose(asset, e.quantity, e.proceeds, e.time, y, e.id, e.account, e.source)
        else:
            assert type(e) is Transfer
            if not e.fee:
                continue
            if fee_disposal:
                dispose(asset, e.fee, fee_value(e, findings), e.time, y, f"{e.id}:fee", e.from_account, e.source)
            else:  # add-to-basis: the fee's units leave, their cost stays
                held = q.get(asset, ZERO)
                out = e.fee if e.fee <= held else held
                if e.fee > out:
                    findings.append(_new(Finding, (
                        "overspend", f"transfer {e.id}: fee of {e.fee} {asset} from {e.from_account} at {e.time.isoformat()} exceeds holdings by {e.fee - out}",
                        e.id, e.from_account, asset, e.time)))
                q[asset] = held - out
    # The last open year of each asset ends too: its holding at the year's unit cost.
    for asset in list(year_of):
        close_year(asset)
    open_lots: list[Lot] = [pool_lot("average", a, q[a], c[a], since.get(a) or evs[-1].time) for a in sorted(q) if q[a] > 0]
    findings.extend(register.unclaimed_findings())
    return BookingResult(gains=gains, open_lots=open_lots, income=income, findings=findings, allocations=[])
