"""Booking the same valued ledger in another currency: each event's amounts through the FX file.

The ledger's postings are valued in one currency (``[reporting] currency``; ``ledger.valuation``).
A jurisdiction that reports in another (CAD, AUD, JPY, EUR, GBP) books the same events with their
amounts converted at the rate of the event's UTC date, as valuation itself converts: an amount
``v`` in the ledger currency ``S`` becomes ``v / rate(S) x rate(T)`` (rates are units per 1 USD; a
date without a rate uses the latest one at most ``FX_LOOKBACK_DAYS`` earlier). Valuing the ledger in
``T`` directly gives the same figures, since valuation applies the same rate to the same USD value.

A missing rate is an ``FxGap`` (one line naming the file, the currency and the date): no figure is
ever converted at a made-up rate.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from ledger.booking.model import Acquisition, Disposal, OpeningLot, Transfer
from ledger.money import EXACT
from ledger.valuation import FX_LOOKBACK_DAYS, FxGap, FxRates

__all__ = ["EventConverter"]

_UTC = timezone.utc
_new = tuple.__new__


class EventConverter:
    """``converter(batch)``: the batch's events with their amounts in ``target``; ``value(t, v)`` one amount."""

    def __init__(self, fx: FxRates, source: str, target: str) -> None:
        self.fx, self.source, self.target = fx, source, target
        self._factor: dict[date, Decimal] = {}

    def factor(self, day: date) -> Decimal:
        f = self._factor.get(day)
        if f is None:
            f = Decimal(1)
            for cur, op in ((self.source, "from"), (self.target, "to")):
                if cur == "USD":
                    continue
                found = self.fx.rate(cur, day)
                if found is None:
                    raise FxGap(f"{self.fx.name or 'reporting.fx_file'}: no {cur} rate for {day} (a date uses its own rate or one at most "
                                f"{FX_LOOKBACK_DAYS} days earlier), needed to book the ledger's {self.source} values in {self.target}; add the missing rows")
                f = EXACT.divide(f, found[0]) if op == "from" else EXACT.multiply(f, found[0])
            self._factor[day] = f
        return f

    def value(self, t: datetime, v: Decimal) -> Decimal:
        return EXACT.multiply(v, self.factor(t.astimezone(_UTC).date()))

    def __call__(self, batch: list) -> list:
        out = []
        mul = EXACT.multiply
        for e in batch:
            t = type(e)
            f = self.factor(e[0].date() if e[0].tzinfo is _UTC else e[0].astimezone(_UTC).date())
            if t is Acquisition:
                if e.cost is not None:
                    e = _new(Acquisition, (*e[:6], mul(e.cost, f), *e[7:]))
            elif t is Disposal:
                e = _new(Disposal, (*e[:6], mul(e.proceeds, f), *e[7:]))
            elif t is Transfer and e.fee_value is not None:
                e = _new(Transfer, (*e[:8], mul(e.fee_value, f), *e[9:]))
            out.append(e)
        return out

    def opening(self, lots: tuple[OpeningLot, ...]) -> tuple[OpeningLot, ...]:
        """Opening lots with their basis converted at their acquisition date."""
        return tuple(OpeningLot(account=l.account, asset=l.asset, quantity=l.quantity, acquired=l.acquired, basis=self.value(l.acquired, l.basis)) for l in lots)
