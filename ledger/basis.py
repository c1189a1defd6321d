"""From the valued ledger to the cost-basis engine's events (docs/methods.md, "From the ledger").

Reads journal entries with their postings' reporting-currency unit prices (``ledger.valuation``)
and turns each into the engine's ``Acquisition``/``Disposal``/``Transfer`` records:

- a conversion (spot fill, RFQ fill, quote fill, dust) disposes of the asset given and acquires the
  asset received. Fees are absorbed once, by the non-cash side: on a purchase they add to the basis
  of what is bought (a fee in the bought asset reduces the quantity received); on a sale (cash
  received) they reduce the proceeds (a fee in the sold asset adds to the quantity disposed, RP2's
  presentation of TAX-RULES US-4). A fee in a third asset is itself a disposal of that asset at its
  market value (kind ``fee``);
- income (lend interest, positive unrealized-PnL interest, rewards) acquires lots at value;
- deposits and withdrawals are transfers to and from the user's own outside wallet (a withdrawal
  carries its lots out, a later deposit of the same asset brings them back); a deposit beyond what
  went out is an acquisition with unknown basis (a missing-basis finding unless opening lots cover
  it); transfers between sub-accounts are paired into one transfer;
- borrowing acquires the borrowed asset at market value; repaying disposes of it (documented
  simplification).

Cash is not lot-tracked: the reporting currency and, under ``stablecoin_policy = "par"``, USDC and
USDT. Perpetual positions are not spot lots (their P&L and funding are income categories).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Connection, text

from .booking import Acquisition, Disposal, Finding, Transfer
from .money import D, EXACT

__all__ = ["BridgeSettings", "booking_events", "TRADE_KINDS", "EXTERNAL_WALLET"]

TRADE_KINDS = ("spot-trade", "rfq-fill", "quote-fill", "dust")
INCOME_KINDS = ("interest-income",)
EXTERNAL_WALLET = "external"
#: An internal transfer-in is paired with a transfer-out of the same asset and quantity within this window.
TRANSFER_PAIRING_WINDOW = timedelta(days=1)

_HOLDING = (":Spot:", ":Lent:", ":Borrowed:")


@dataclass(frozen=True)
class BridgeSettings:
    currency: str = "USD"
    stablecoin_policy: str = "par"

    @property
    def cash(self) -> frozenset[str]:
        c = {self.currency}
        if self.stablecoin_policy == "par":
            c |= {"USDC", "USDT", "USD"}
        return frozenset(c)


@dataclass
class _Row:
    account: str
    asset: str
    quantity: Decimal
    unit_price: Decimal | None


def _time(v) -> datetime:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(v)).replace(tzinfo=timezone.utc)


def _entries(conn: Connection, venue_account: str | None) -> Iterator[tuple[str, datetime, str, str, list[_Row]]]:
    where = "WHERE e.kind NOT IN ('perp-fill')"
    params: dict = {}
    if venue_account:
        where += " AND e.venue_account = :acct"
        params["acct"] = venue_account
    sql = (
        "SELECT e.id, e.entry_key, e.timestamp, e.kind, e.venue_account, ac.name, a.symbol, p.quantity, p.unit_price"
        " FROM journal_entries e JOIN postings p ON p.entry_id = e.id JOIN accounts ac ON ac.id = p.account_id"
        " JOIN assets a ON a.id = p.asset_id " + where + " ORDER BY e.timestamp, e.entry_key, p.id"
    )
    current = None
    rows: list[_Row] = []
    head = None
    for eid, key, ts, kind, acct, account, asset, q, price in conn.execute(text(sql), params):
        if eid != current:
            if head is not None:
                yield (*head, rows)
            current, rows = eid, []
            head = (key, _time(ts), kind, acct)
        rows.append(_Row(account, asset, q if isinstance(q, Decimal) else D(q), None if price is None else (price if isinstance(price, Decimal) else D(price))))
    if head is not None:
        yield (*head, rows)


def _value(q: Decimal, price: Decimal | None) -> Decimal | None:
    return None if price is None else EXACT.multiply(q, price)


def booking_events(conn: Connection, settings: BridgeSettings, *, venue_account: str | None = None) -> tuple[list, list[Finding]]:
    """The engine's events for the ledger (in time order) and the findings met on the way."""
    cash = settings.cash
    events: list = []
    findings: list[Finding] = []
    outside: dict[str, Decimal] = defaultdict(Decimal)  # asset -> quantity carried to own outside wallet
    pending_out: list[tuple[datetime, str, str, Decimal, str]] = []  # internal transfers awaiting their other side

    def unpriced(key, t, acct, asset, what):
        findings.append(Finding(kind="unpriced", message=f"{what}: no {settings.currency} price for {asset}; valued at zero", key=key, account=acct, asset=asset, time=t))

    for key, t, kind, acct, rows in _entries(conn, venue_account):
        holding = [r for r in rows if any(h in r.account for h in _HOLDING)]
        if kind in TRADE_KINDS:
            traded: dict[str, Decimal] = defaultdict(Decimal)
            fee: dict[str, Decimal] = defaultdict(Decimal)
            price: dict[str, Decimal | None] = {}
            for r in rows:
                if r.account == "Equity:Trading":
                    traded[r.asset] -= r.quantity
                elif r.account.startswith("Expenses:Fees"):
                    fee[r.asset] += r.quantity
            for r in holding:
                if r.unit_price is not None or r.asset not in price:
                    price[r.asset] = r.unit_price if r.unit_price is not None else price.get(r.asset)
            recv = [a for a, q in traded.items() if q > 0]
            gave = [a for a, q in traded.items() if q < 0]
            if len(recv) != 1 or len(gave) != 1:
                findings.append(Finding(kind="unrecognised-trade", message=f"entry {key} is not a two-asset conversion", key=key, account=acct, asset="", time=t))
                continue
            R, G = recv[0], gave[0]
            qR, qG = traded[R] - fee.get(R, Decimal(0)), -traded[G] + fee.get(G, Decimal(0))
            pR, pG = price.get(R), price.get(G)
            third = [(a, q) for a, q in fee.items() if a not in (R, G) and q != 0]
            third_value = Decimal(0)
            for a, q in third:
                v = _value(q, price.get(a))
                if v is None:
                    unpriced(key, t, acct, a, "fee")
                    v = Decimal(0)
                third_value += v
                if a not in cash:
                    events.append(Disposal(id=f"{key}#fee:{a}", account=acct, asset=a, quantity=q, proceeds=v, time=t, source=key, kind="fee"))
            sale = R in cash  # cash received: a sale of G; otherwise a purchase of R
            if sale:
                cost_R = _value(qR, pR)
                proceeds_G = None if cost_R is None else cost_R - third_value
            else:
                proceeds_G = _value(qG, pG)
                if proceeds_G is None and pR is not None:
                    proceeds_G = _value(traded[R], pR)
                cost_R = None if proceeds_G is None else proceeds_G + third_value
            if G not in cash and qG != 0:
                if proceeds_G is None:
                    unpriced(key, t, acct, G, "disposal")
                events.append(Disposal(id=f"{key}#out", account=acct, asset=G, quantity=qG, proceeds=proceeds_G or Decimal(0), time=t, source=key, kind="dust" if kind == "dust" else "trade"))
            if R not in cash and qR > 0:
                if cost_R is None:
                    unpriced(key, t, acct, R, "acquisition")
                    cost_R = Decimal(0)
                events.append(Acquisition(id=f"{key}#in", account=acct, asset=R, quantity=qR, cost=cost_R, time=t, source=key, kind="trade"))
            continue

        for r in holding:
            if r.asset in cash or r.quantity == 0:
                continue
            q = r.quantity
            if kind in INCOME_KINDS or kind in ("realized-pnl", "funding", "liquidation"):
                v = _value(abs(q), r.unit_price)
                if v is None:
                    unpriced(key, t, acct, r.asset, kind)
                    v = Decimal(0)
                if q > 0:
                    events.append(Acquisition(id=f"{key}#in", account=acct, asset=r.asset, quantity=q, cost=v, time=t, source=key, kind="income"))
                else:
                    events.append(Disposal(id=f"{key}#out", account=acct, asset=r.asset, quantity=-q, proceeds=v, time=t, source=key, kind="spend"))
            elif kind in ("borrow", "repay", "perp-fee", "interest-expense"):
                if ":Borrowed:" in r.account:
                    continue  # the liability side; the asset side is the spot posting
                v = _value(abs(q), r.unit_price)
                if v is None:
                    unpriced(key, t, acct, r.asset, kind)
                    v = Decimal(0)
                if q > 0:
                    events.append(Acquisition(id=f"{key}#in", account=acct, asset=r.asset, quantity=q, cost=v, time=t, source=key, kind="trade"))
                else:
                    events.append(Disposal(id=f"{key}#out", account=acct, asset=r.asset, quantity=-q, proceeds=v, time=t, source=key, kind="spend"))
            elif kind == "withdrawal":
                fee_q = sum((x.quantity for x in rows if x.account.startswith("Expenses:Fees") and x.asset == r.asset), Decimal(0))
                moved = -q - fee_q
                fee_value = _value(fee_q, r.unit_price) if fee_q else None
                outside[r.asset] += moved
                events.append(Transfer(id=f"{key}#xfer", from_account=acct, to_account=EXTERNAL_WALLET, asset=r.asset, quantity=moved, fee=fee_q, fee_value=fee_value, time=t, source=key))
            elif kind == "deposit":
                back = min(outside[r.asset], q)
                if back > 0:
                    outside[r.asset] -= back
                    events.append(Transfer(id=f"{key}#back", from_account=EXTERNAL_WALLET, to_account=acct, asset=r.asset, quantity=back, fee=Decimal(0), fee_value=None, time=t, source=key))
                if q - back > 0:
                    events.append(Acquisition(id=f"{key}#in", account=acct, asset=r.asset, quantity=q - back, cost=None, time=t, source=key, kind="deposit"))
            elif kind == "transfer-out":
                fee_q = sum((x.quantity for x in rows if x.account.startswith("Expenses:Fees") and x.asset == r.asset), Decimal(0))
                pending_out.append((t, acct, r.asset, -q - fee_q, key))
                if fee_q:
                    v = _value(fee_q, r.unit_price) or Decimal(0)
                    events.append(Disposal(id=f"{key}#fee", account=acct, asset=r.asset, quantity=fee_q, proceeds=v, time=t, source=key, kind="fee"))
            elif kind == "transfer-in":
                match = next((p for p in pending_out if p[2] == r.asset and p[3] == q and p[1] != acct and timedelta(0) <= t - p[0] <= TRANSFER_PAIRING_WINDOW), None)
                if match is not None:
                    pending_out.remove(match)
                    events.append(Transfer(id=f"{match[4]}#xfer", from_account=match[1], to_account=acct, asset=r.asset, quantity=q, fee=Decimal(0), fee_value=None, time=t, source=match[4]))
                else:
                    events.append(Acquisition(id=f"{key}#in", account=acct, asset=r.asset, quantity=q, cost=None, time=t, source=key, kind="deposit"))
            # lend / redeem move between wallets of one venue account: no lot effect.
    for t, acct, asset, q, key in pending_out:
        # The other side was never synced: the lots leave this account for the outside wallet.
        outside[asset] += q
        events.append(Transfer(id=f"{key}#xfer", from_account=acct, to_account=EXTERNAL_WALLET, asset=asset, quantity=q, fee=Decimal(0), fee_value=None, time=t, source=key))
    return events, findings

