"""HMRC share identification for cryptoassets (TCGA 1992 ss.104-106A; CRYPTO22200+).

Per token, across all wallets, on the Europe/London calendar day (``jurisdictions.tax_day``):

1. **Same day** (s.105): all acquisitions of a day are one acquisition and all disposals of a
   day one disposal; the day's disposal is matched with the day's acquisition first.
2. **Bed and breakfast** (s.106A): what is left is matched with acquisitions in the 30 days
   after the disposal day, earliest acquisition first; disposal days are served in date
   order, so the earlier disposal has first claim on a buy-back.
3. **Section 104 pool**: the rest comes from the pool at pool cost x quantity / pool quantity.

Acquisitions that are not purchases of new tokens (kinds 'deposit', 'transfer-in',
'opening': own tokens arriving) join the pool directly and are never matched by rules 1-2.
Within a day the pool takes, in order: those arrivals (in time order), the day's unmatched
acquisitions, the transfer-fee outflows (add-to-basis: units leave, cost stays, so their place
among the day's additions changes nothing but whether the pool covers them; a fee paid from
units bought that day is covered), then the day's unmatched disposal.

Each output row is one rule applied to one disposal day (and, for bed and breakfast, one
acquisition day). The day's proceeds are apportioned over its rows by quantity, in the order
same-day, bed-and-breakfast (by acquisition day), s104, unmatched; the last row takes the
remainder so the rows add up exactly. A row names the day's first disposal id and, as lot id,
the first acquisition id of the matched day (``s104:<asset>`` for the pool).
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, timedelta
from decimal import Decimal

from ledger.booking.methods import share
from ledger.booking.model import (
    Acquisition,
    BookingResult,
    Disposal,
    Event,
    Finding,
    Gain,
    IncomeRow,
    Lot,
    Settings,
    Transfer,
)
from ledger.booking.opening import OpeningRegister
from ledger.booking.jurisdictions import tax_day as tax_date

__all__ = ["book_uk", "BED_AND_BREAKFAST_DAYS"]

ZERO = Decimal(0)
BED_AND_BREAKFAST_DAYS = 30
_POOL_ONLY_KINDS = frozenset({"deposit", "transfer-in", "opening"})


class _Side:
    """All acquisitions (or all disposals) of one token on one tax day, with what is unmatched."""

    __slots__ = ("day", "time", "id", "account", "source", "quantity", "amount", "left_q", "left_a")

    def __init__(self, day: date, time: datetime, id: str, account: str, source: str) -> None:
        self.day, self.time, self.id, self.account, self.source = day, time, id, account, source
        self.quantity = self.amount = self.left_q = self.left_a = ZERO

    def add(self, quantity: Decimal, amount: Decimal) -> None:
        self.quantity += quantity
        self.amount += amount
        self.left_q += quantity
        self.left_a += amount

    def take(self, quantity: Decimal) -> Decimal:
        """Remove ``quantity`` unmatched units; return their share of the amount."""
        a = share(self.left_a, quantity, self.left_q)
        self.left_q -= quantity
        self.left_a -= a
        return a


class _Asset:
    def __init__(self, asset: str) -> None:
        self.asset = asset
        self.buys: dict[date, _Side] = {}
        self.sells: dict[date, _Side] = {}
        #: day -> [(time, quantity, cost or None for an outflow that keeps its cost, label)]
        self.pool_moves: dict[date, list[tuple[datetime, Decimal, Decimal | None, str, str]]] = {}
        #: disposal day -> [(term, quantity, cost, matched side or None)]
        self.matches: dict[date, list[tuple[str, Decimal, Decimal, _Side | None]]] = {}
        #: disposal day -> first acquisition instant of the pool it drew on
        self.since: dict[date, datetime] = {}


def _side(book: dict[date, _Side], day: date, e_time: datetime, e_id: str, account: str, source: str) -> _Side:
    side = book.get(day)
    if side is None:
        side = book[day] = _Side(day, e_time, e_id, account, source)
    return side


def book_uk(evs: list[Event], settings: Settings, register: OpeningRegister) -> BookingResult:
    zone_name: str = settings.tax_timezone  # type: ignore[assignment]
    assets: dict[str, _Asset] = {}
    findings: list[Finding] = []
    income: list[IncomeRow] = []

    def per(asset: str) -> _Asset:
        st = assets.get(asset)
        if st is None:
            st = assets[asset] = _Asset(asset)
        return st

    for e in evs:
        day = tax_date(e.time, zone_name)
        if type(e) is Acquisition:
            st = per(e.asset)
            if e.cost is None:
                lots, uncovered = register.claim(e)
                cost = sum((lot.cost for lot in lots), ZERO)
                if uncovered:
                    findings.append(
                        Finding(
                            kind="missing-basis",
                            message=f"{e.kind} {e.id}: {uncovered} {e.asset} into {e.account} at {e.time.isoformat()} has no known basis; booked at zero basis",
                            key=e.id,
                            account=e.account,
                            asset=e.asset,
                            time=e.time,
                        )
                    )
            else:
                cost = e.cost
            if e.kind in _POOL_ONLY_KINDS:
                st.pool_moves.setdefault(day, []).append((e.time, e.quantity, cost, e.id, e.account))
            else:
                _side(st.buys, day, e.time, e.id, e.account, e.source).add(e.quantity, cost)
            if e.kind == "income":
                income.append(IncomeRow(id=e.id, account=e.account, asset=e.asset, quantity=e.quantity, value=cost, time=e.time, source=e.source))
        elif type(e) is Disposal:
            _side(per(e.asset).sells, day, e.time, e.id, e.account, e.source).add(e.quantity, e.proceeds)
        else:
            assert type(e) is Transfer
            if not e.fee:
                continue  # between own wallets in one pool: nothing moves in the pool
            st = per(e.asset)
            if settings.transfer_fee_policy == "disposal":
                value = e.fee_value
                if value is None:
                    value = ZERO
                    findings.append(
                        Finding(
                            kind="missing-fee-value",
                            message=f"transfer {e.id}: fee of {e.fee} {e.asset} has no market value; fee disposal booked with zero proceeds",
                            key=e.id,
                            account=e.from_account,
                            asset=e.asset,
                            time=e.time,
                        )
                    )
                _side(st.sells, day, e.time, f"{e.id}:fee", e.from_account, e.source).add(e.fee, value)
            else:
                st.pool_moves.setdefault(day, []).append((e.time, -e.fee, None, e.id, e.from_account))

    gains: list[Gain] = []
    open_lots: list[Lot] = []
    for asset in sorted(assets):
        st = assets[asset]
        _same_day(st)
        _bed_and_breakfast(st)
        _section_104(st, findings, open_lots)
        _rows(st, gains)
    gains.sort(key=lambda g: (g.disposed, g.asset))
    findings.extend(register.unclaimed_findings())
    return BookingResult(gains=gains, open_lots=open_lots, income=income, findings=findings, allocations=[])


def _same_day(st: _Asset) -> None:
    for day, sell in st.sells.items():
        buy = st.buys.get(day)
        if buy is None:
            continue
        m = min(buy.left_q, sell.left_q)
        cost = buy.take(m)
        st.matches.setdefault(day, []).append(("same-day", m, cost, buy))
        sell.left_q -= m  # proceeds are apportioned when the rows are written


def _bed_and_breakfast(st: _Asset) -> None:
    buy_days = sorted(st.buys)
    if not buy_days:
        return
    for day in sorted(st.sells):
        sell = st.sells[day]
        if sell.left_q == 0:
            continue
        last = day + timedelta(days=BED_AND_BREAKFAST_DAYS)
        i = bisect_right(buy_days, day)
        while sell.left_q > 0 and i < len(buy_days) and buy_days[i] <= last:
            buy = st.buys[buy_days[i]]
            i += 1
            if buy.left_q == 0:
                continue
            m = min(buy.left_q, sell.left_q)
            cost = buy.take(m)
            st.matches.setdefault(day, []).append(("bed-and-breakfast", m, cost, buy))
            sell.left_q -= m


def _section_104(st: _Asset, findings: list[Finding], open_lots: list[Lot]) -> None:
    pool_q = pool_c = ZERO
    since: datetime | None = None
    for day in sorted(set(st.buys) | set(st.sells) | set(st.pool_moves)):
        moves = sorted(st.pool_moves.get(day, ()), key=lambda m: (m[0], m[3]))
        for time, q, cost, ref, account in moves:
            if q > 0:
                if pool_q == 0:
                    since = time
                pool_q += q
                pool_c += cost  # type: ignore[operator]
        buy = st.buys.get(day)
        if buy is not None and buy.left_q > 0:
            if pool_q == 0:
                since = buy.time
            pool_q += buy.left_q
            pool_c += buy.take(buy.left_q)
        for time, q, cost, ref, account in moves:
            if q < 0:
                out = -q
                if out > pool_q:
                    findings.append(
                        Finding(
                            kind="overspend",
                            message=f"transfer {ref}: fee of {out} {st.asset} from {account} at {time.isoformat()} exceeds the pool of {pool_q}",
                            key=ref,
                            account=account,
                            asset=st.asset,
                            time=time,
                        )
                    )
                    out = pool_q
                pool_q -= out  # add-to-basis: the fee's units leave, their cost stays in the pool
        sell = st.sells.get(day)
        if sell is not None and sell.left_q > 0:
            need = sell.left_q
            take = need if need <= pool_q else pool_q
            if take:
                cost = share(pool_c, take, pool_q)
                pool_q -= take
                pool_c -= cost
                st.matches.setdefault(day, []).append(("s104", take, cost, None))
            if need > take:
                findings.append(
                    Finding(
                        kind="overspend",
                        message=f"{sell.id}: disposes {sell.quantity} {st.asset} on {day} but the pool held only {take} after matching; {need - take} booked at zero basis",
                        key=sell.id,
                        account=sell.account,
                        asset=st.asset,
                        time=sell.time,
                    )
                )
                st.matches.setdefault(day, []).append(("unmatched", need - take, ZERO, None))
            sell.left_q = ZERO
            if since is not None:
                st.since[day] = since
    if pool_q > 0:
        open_lots.append(Lot(id=f"s104:{st.asset}", account="*", asset=st.asset, quantity=pool_q, cost=pool_c, acquired=since, source="s104"))  # type: ignore[arg-type]


def _rows(st: _Asset, gains: list[Gain]) -> None:
    since_by_day = st.since
    for day in sorted(st.matches):
        sell = st.sells[day]
        left_p, left_q = sell.amount, sell.quantity
        for term, m, cost, buy in st.matches[day]:
            p = share(left_p, m, left_q)
            left_p -= p
            left_q -= m
            if buy is not None:
                acquired, lot_id = buy.time, buy.id
            elif term == "s104":
                acquired, lot_id = since_by_day.get(day) or sell.time, f"s104:{st.asset}"
            else:
                acquired, lot_id = sell.time, ""
            gains.append(
                Gain(
                    account=sell.account,
                    asset=st.asset,
                    quantity=m,
                    acquired=acquired,
                    disposed=sell.time,
                    proceeds=p,
                    cost_basis=cost,
                    gain=p - cost,
                    term="s104" if term == "unmatched" else term,
                    method="uk",
                    lot_id=lot_id,
                    disposal_id=sell.id,
                    source_ref=sell.source,
                )
            )
