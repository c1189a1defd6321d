"""Canada: adjusted cost base of identical properties (ITA s.47) and the superficial-loss rule (s.54).

Per asset, across all accounts (identical properties share one average cost), on the
America/Toronto calendar day (``settings.tax_timezone``):

- **ACB**: an acquisition adds its cost (fees included) to the pool's total ACB; a disposal
  removes ACB x (quantity sold / quantity held). Gain = proceeds (net of outlays) - ACB removed.
  The unit cost of what is left is unchanged by a disposal.
- **Superficial loss**: for a disposal at a loss, the substituted units are
  ``min(units sold, units acquired from 30 days before to 30 days after the disposal day,
  units held at the end of that 30th day)``; their share of the loss is denied
  (loss x substituted / sold) and added to the ACB of the substituted units. The disposal is
  booked as two rows: ``superficial-loss`` (the substituted units: their loss is denied) and
  ``acb`` (the rest, allowed). Each unit acquired in a window can substitute for one disposed
  unit only: earlier loss disposals have first claim, earliest acquisition first (our reading
  where TAX-RULES is silent: a unit cannot take two denied losses). The denied amount joins the
  pool when its substituted units are in it: at the disposal for units acquired before it, at
  the acquisition for units acquired after it.

"Acquired" means bought or received as income (kinds trade and income): a deposit, a transfer
between own accounts or an opening lot is the owner's own property arriving and acquires nothing.
Holdings at the window's end are those the events show; a window that ends after the last event
uses the holdings after it (``docs/methods.md``: a later import can change that disposal).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from ledger.booking.jurisdictions import tax_day, zone
from ledger.booking.methods import share
from ledger.booking.model import Acquisition, BookingResult, Disposal, Event, Finding, Gain, IncomeRow, Lot, Settings, Transfer
from ledger.booking.opening import OpeningRegister
from ledger.booking.pooled import ZERO, acquisition_cost, fee_value, income_row, overspend, pool_lot

__all__ = ["book_ca", "WINDOW_DAYS", "ACQUIRING_KINDS"]

WINDOW_DAYS = 30
ACQUIRING_KINDS = frozenset({"trade", "income"})
_UTC = timezone.utc
_new = tuple.__new__


class _Purchase:
    __slots__ = ("id", "time", "day", "left")

    def __init__(self, id: str, time: datetime, day: date, quantity: Decimal) -> None:
        self.id, self.time, self.day, self.left = id, time, day, quantity


class _Asset:
    __slots__ = ("purchases", "days", "times", "held", "q", "c", "since", "carry", "_tree", "_next")

    def __init__(self) -> None:
        self.purchases: list[_Purchase] = []
        self.days: list[date] = []
        #: holdings after each event of the asset: times and the running quantity
        self.times: list[datetime] = []
        self.held: list[Decimal] = []
        self.q = self.c = self.carry = ZERO
        self.since: datetime | None = None
        self._tree: list[Decimal] = []  # Fenwick tree of the purchases' unclaimed units
        self._next: list[int] = []  # union-find: the first purchase at or after i with units unclaimed

    def move(self, t: datetime, delta: Decimal) -> None:
        self.times.append(t)
        self.held.append((self.held[-1] if self.held else ZERO) + delta)

    def held_before(self, end: datetime) -> Decimal:
        i = bisect_left(self.times, end)
        return self.held[i - 1] if i else ZERO

    def index(self) -> None:
        """Build the window structures once pass 1 has listed the purchases."""
        n = len(self.purchases)
        tree = [ZERO] * (n + 1)
        for i, p in enumerate(self.purchases, 1):
            tree[i] += p.left
            j = i + (i & -i)
            if j <= n:
                tree[j] += tree[i]
        self._tree = tree
        self._next = list(range(n + 1))

    def _sum(self, i: int) -> Decimal:  # unclaimed units of purchases [0, i)
        s, tree = ZERO, self._tree
        while i > 0:
            s += tree[i]
            i -= i & -i
        return s

    def _claim(self, i: int, u: Decimal) -> None:
        p = self.purchases[i]
        p.left -= u
        j, tree, n = i + 1, self._tree, len(self.purchases)
        while j <= n:
            tree[j] -= u
            j += j & -j
        if p.left == 0:
            self._next[i] = i + 1

    def _find(self, i: int) -> int:
        nxt = self._next
        root = i
        while nxt[root] != root:
            root = nxt[root]
        while nxt[i] != root:
            nxt[i], i = root, nxt[i]
        return root

    def substitute(self, lo: int, hi: int, n: Decimal) -> list[tuple[_Purchase, Decimal]]:
        """Claim ``n`` units from purchases [lo, hi), earliest first (the caller bounds ``n`` by ``unclaimed``)."""
        out = []
        i = self._find(lo)
        while n > 0 and i < hi:
            p = self.purchases[i]
            u = p.left if p.left <= n else n
            self._claim(i, u)
            n -= u
            out.append((p, u))
            i = self._find(i)
        return out

    def unclaimed(self, lo: int, hi: int) -> Decimal:
        return self._sum(hi) - self._sum(lo)


def book_ca(evs: list[Event], settings: Settings, register: OpeningRegister) -> BookingResult:
    zone_name: str = settings.tax_timezone  # type: ignore[assignment]
    tz = zone(zone_name)
    assets: dict[str, _Asset] = {}
    findings: list[Finding] = []
    income: list[IncomeRow] = []
    gains: list[Gain] = []
    #: acquisition id -> denied loss to add when it is booked
    pending: dict[str, Decimal] = {}
    fee_disposal = settings.transfer_fee_policy == "disposal"

    def per(asset: str) -> _Asset:
        st = assets.get(asset)
        if st is None:
            st = assets[asset] = _Asset()
        return st

    # Pass 1: quantities only (what a superficial-loss test needs from the future).
    for e in evs:
        if type(e) is Acquisition:
            st = per(e.asset)
            st.move(e.time, e.quantity)
            if e.kind in ACQUIRING_KINDS:
                d = tax_day(e.time, zone_name)
                st.purchases.append(_Purchase(e.id, e.time, d, e.quantity))
                st.days.append(d)
        elif type(e) is Disposal:
            per(e.asset).move(e.time, -e.quantity)
        elif e.fee:  # a transfer moves units between own accounts: only its fee leaves the pool
            per(e.asset).move(e.time, -e.fee)

    for st in assets.values():
        st.index()

    def window_end(day: date) -> datetime:
        return datetime.combine(day + timedelta(days=WINDOW_DAYS + 1), time.min, tz).astimezone(_UTC)

    def substitutes(st: _Asset, day: date, sold: Decimal) -> list[tuple[_Purchase, Decimal]]:
        lo = bisect_left(st.days, day - timedelta(days=WINDOW_DAYS))
        hi = bisect_right(st.days, day + timedelta(days=WINDOW_DAYS))
        if lo == hi:
            return []
        avail = st.unclaimed(lo, hi)
        if avail <= 0:
            return []
        held = st.held_before(window_end(day))
        n = min(sold, avail, held if held > 0 else ZERO)
        return st.substitute(lo, hi, n) if n > 0 else []

    def dispose(asset: str, quantity: Decimal, proceeds: Decimal, t: datetime, did: str, account: str, source: str) -> None:
        st = per(asset)
        take = quantity if quantity <= st.q else st.q
        short = quantity - take
        p_take = proceeds if not short else share(proceeds, take, quantity)
        since = st.since or t
        if take:
            cost = share(st.c, take, st.q)
            st.q -= take
            st.c -= cost
            pieces = [("acb", take, p_take, cost)]
            if p_take < cost:
                sub = substitutes(st, tax_day(t, zone_name), take)
                n = sum((u for _, u in sub), ZERO)
                if n:
                    p_sup, c_sup = share(p_take, n, take), share(cost, n, take)
                    pieces = [("superficial-loss", n, p_sup, c_sup)]
                    if n < take:
                        pieces.append(("acb", take - n, p_take - p_sup, cost - c_sup))
                    left_d, left_n = c_sup - p_sup, n
                    for p, u in sub:
                        d = share(left_d, u, left_n)
                        left_d -= d
                        left_n -= u
                        if p.time > t:
                            pending[p.id] = pending.get(p.id, ZERO) + d
                        elif st.q > 0:
                            st.c += d
                        else:  # the substitute's units are not in the pool now: the next acquisition takes it
                            st.carry += d
            for term, q, p, c in pieces:
                gains.append(_new(Gain, (account, asset, q, since, t, p, c, p - c, term, "acb", f"acb:{asset}", did, source)))
            if st.q == 0:
                st.since = None
        if short:
            overspend(findings, did, account, asset, t, quantity, short)
            left = proceeds - p_take
            gains.append(_new(Gain, (account, asset, short, t, t, left, ZERO, left, "acb", "acb", "", did, source)))

    # Pass 2: the booking, in order.
    for e in evs:
        if type(e) is Acquisition:
            st = per(e.asset)
            cost = acquisition_cost(e, register, findings)
            extra = pending.pop(e.id, ZERO) + st.carry
            st.carry = ZERO
            if st.q == 0:
                st.since = e.time
            st.q += e.quantity
            st.c += cost + extra
            if e.kind == "income":
                income.append(income_row(e, cost))
        elif type(e) is Disposal:
            dispose(e.asset, e.quantity, e.proceeds, e.time, e.id, e.account, e.source)
        else:
            assert type(e) is Transfer
            if not e.fee:
                continue
            if fee_disposal:
                dispose(e.asset, e.fee, fee_value(e, findings), e.time, f"{e.id}:fee", e.from_account, e.source)
            else:  # add-to-basis: the fee's units leave, their cost stays in the pool
                st = per(e.asset)
                out = e.fee if e.fee <= st.q else st.q
                if e.fee > out:
                    findings.append(_new(Finding, (
                        "overspend", f"transfer {e.id}: fee of {e.fee} {e.asset} from {e.from_account} at {e.time.isoformat()} exceeds holdings by {e.fee - out}",
                        e.id, e.from_account, e.asset, e.time)))
                st.q -= out
                if st.q == 0:
                    st.since = None

    open_lots: list[Lot] = [pool_lot("acb", a, st.q, st.c + st.carry, st.since or evs[-1].time) for a, st in sorted(assets.items()) if st.q > 0]
    findings.extend(register.unclaimed_findings())
    return BookingResult(gains=gains, open_lots=open_lots, income=income, findings=findings, allocations=[])
