"""The whole double-entry journal as beancount v3 (with lots) and as an hledger journal.

**beancount** (EXPORT-FORMATS.md §8.1). Each journal entry is one transaction with its raw record key
in metadata (``source``: the entry key ``<account>:<natural key>``, ``endpoint``, ``kind``). Names are
mapped by ``Names`` (reversibly: every ``open`` and ``commodity`` directive carries the original name
in metadata, and collisions get a ``-2``, ``-3`` suffix):

- commodities: upper-cased; characters outside ``[A-Z0-9'._-]`` become ``-``; a leading non-letter
  gets an ``X`` prefix and a trailing non-alphanumeric an ``X`` suffix (``wif`` -> ``WIF``,
  ``1INCH`` -> ``X1INCH``); ``exchange-symbol`` keeps the original;
- account components: characters outside ``[A-Za-z0-9-]`` become ``-`` and the first letter is
  capitalised (``main`` -> ``Main``, ``SOL_USDC_PERP`` -> ``SOL-USDC-PERP``); ``ledger-account`` keeps
  the original.

Lots: an asset that is not cash (``BookSettings.cash``) is held in one account per venue account,
``Assets:Backpack:<Acct>:Holdings:<ASSET>`` (booking method ``FIFO``/``LIFO``/``HIFO`` as the export's
method), because beancount's lots live in one inventory per account: the ledger's Spot and Lent
wallets of that asset are one beancount account (a lend or redeem of it is a ``note``; the wallet is
posting metadata). An acquisition is ``+q A {{C CUR, date, "lot-id"}}`` with the engine's basis of that
lot (its total over every gain piece and open lot of that id: the cost is never re-computed); a
disposal ``-q A {} @ price CUR`` is booked by beancount itself (``lofo``: one reduction per engine
piece, selected by label), and the gain goes to ``Income:Backpack:<Acct>:Gains`` (an empty posting
beancount fills). Trade legs against ``Equity:Trading`` and fee legs are folded into the holding legs
(the fee is in the basis or the proceeds, as the engine has it). Cash assets and perp contracts keep the
ledger's own legs. Balance assertions: the day after each exchange snapshot (beancount checks at the
start of the day), for each snapshot line, when nothing else moved that account later that day.

**hledger**: the ledger's legs as they are (the trading-account method balances per commodity, so
no price is needed), every symbol quoted, tags ``source:``, ``kind:`` and, on disposals, the engine's
``cost-basis:`` and ``lots:``; balance assertions (``= AMT``) on a zero posting at each snapshot.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, text

from ledger.money import EXACT, plain
from ledger.types import utc_from_db

__all__ = ["Names", "write_beancount", "write_hledger", "BOOKING", "UnsupportedMethod"]

BOOKING = {"fifo": "FIFO", "lifo": "LIFO", "hifo": "HIFO", "lofo": "NONE"}
CONVERSIONS = frozenset({"spot-trade", "rfq-fill", "quote-fill", "dust"})
_COMMODITY_BAD = re.compile(r"[^A-Z0-9'._-]")
_COMPONENT_BAD = re.compile(r"[^A-Za-z0-9-]")


class UnsupportedMethod(ValueError):
    """beancount cannot book this method (AVERAGE is not supported; the uk pools are not lots)."""


def _s(v: str) -> str:
    """A beancount/hledger string literal: quotes and backslashes escaped, controls shown as escapes."""
    from reports.safety import terminal

    return '"' + terminal(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


@dataclass
class Names:
    """The reversible name mapping (collision-checked)."""

    commodities: dict[str, str] = field(default_factory=dict)
    components: dict[str, str] = field(default_factory=dict)
    _taken_c: set[str] = field(default_factory=set)
    _taken_a: dict[str, str] = field(default_factory=dict)

    def commodity(self, sym: str) -> str:
        got = self.commodities.get(sym)
        if got:
            return got
        c = _COMMODITY_BAD.sub("-", sym.upper()) or "X"
        if not c[0].isalpha() or not c[0].isascii():
            c = "X" + c
        if not c[-1].isalnum():
            c = c + "X"
        base, n = c, 1
        while c in self._taken_c:
            n += 1
            c = f"{base}-{n}"
        self._taken_c.add(c)
        self.commodities[sym] = c
        return c

    def component(self, comp: str) -> str:
        got = self.components.get(comp)
        if got:
            return got
        c = _COMPONENT_BAD.sub("-", comp) or "X"
        c = c[0].upper() + c[1:]
        if not (c[0].isupper() or c[0].isdigit()):
            c = "X" + c
        base, n = c, 1
        while c in self._taken_a and self._taken_a[c] != comp:
            n += 1
            c = f"{base}-{n}"
        self._taken_a[c] = comp
        self.components[comp] = c
        return c

    def account(self, ledger_account: str) -> str:
        return ":".join([ledger_account.split(":")[0]] + [self.component(p) for p in ledger_account.split(":")[1:]])


def _group(rows):
    cur: list = []
    for r in rows:
        if cur and r.entry_id != cur[0].entry_id:
            yield cur
            cur = []
        cur.append(r)
    if cur:
        yield cur


def _snapshots(conn: Connection, end: datetime | None):
    rows = conn.execute(text("SELECT s.venue_account, s.taken_at, l.wallet, l.asset, l.quantity FROM snapshots s JOIN snapshot_lines l ON l.snapshot_id = s.id"
                             " ORDER BY s.taken_at, s.venue_account, l.wallet, l.asset")).all()
    out = []
    for acct, t, wallet, asset, q in rows:
        t = utc_from_db(t)
        if end is None or t < end:
            out.append((acct, t, wallet, asset, q if isinstance(q, Decimal) else Decimal(str(q))))
    return out


def _ledger_account(acct: str, wallet: str, asset: str) -> str:
    return f"Liabilities:Backpack:{acct}:{wallet}:{asset}" if wallet == "Borrowed" else f"Assets:Backpack:{acct}:{wallet}:{asset}"


class _Lots:
    """The engine's lots by id: total quantity, cost and acquisition instant (gain pieces plus open lots)."""

    def __init__(self, books):
        self.by_id: dict[str, list] = {}
        for g in books.gains:
            t = self.by_id.setdefault(g.lot_id, [Decimal(0), Decimal(0), g.acquired])
            t[0] = EXACT.add(t[0], g.quantity)
            t[1] = EXACT.add(t[1], g.cost_basis)
        for l in books.open_lots:
            t = self.by_id.setdefault(l.id, [Decimal(0), Decimal(0), l.acquired])
            t[0] = EXACT.add(t[0], l.quantity)
            t[1] = EXACT.add(t[1], l.cost)
        self.pieces: dict[str, list] = defaultdict(list)
        for g in books.gains:
            self.pieces[g.disposal_id].append(g)


def write_beancount(conn: Connection, books, out: Path, *, start: datetime | None = None, end: datetime | None = None) -> dict:
    """Write the journal (entries in [start, end)) as beancount. Returns counts for the CLI."""
    from reports.journal import journal_rows

    settings = books.settings
    method = settings.booking.method
    if method not in BOOKING:
        raise UnsupportedMethod(f"beancount cannot book method {method!r} (AVERAGE is not supported and uk pools are not lots); use fifo, lifo, hifo or lofo")
    cur = settings.currency
    cash = settings.cash
    names = Names()
    lots = _Lots(books)
    body: list[str] = []
    opened: dict[str, tuple[str, str | None, str]] = {}  # beancount account -> (ledger account, booking, first date)
    first_day: list = []
    counts = defaultdict(int)
    last_move: dict[tuple[str, str], datetime] = {}  # (beancount account) -> last entry time touching it

    def acct_of(ledger_account: str, asset: str) -> str:
        parts = ledger_account.split(":")
        if asset not in cash and len(parts) == 5 and parts[0] == "Assets" and parts[3] in ("Spot", "Lent"):
            bean = f"Assets:{names.component(parts[1])}:{names.component(parts[2])}:Holdings:{names.component(names.commodity(asset))}"
            opened.setdefault(bean, (f"Assets:{parts[1]}:{parts[2]}:{{Spot,Lent}}:{asset}", BOOKING[method], asset))
            return bean
        bean = names.account(ledger_account) if not parts[-1] == asset else ":".join([names.account(":".join(parts[:-1])), names.component(names.commodity(asset))])
        opened.setdefault(bean, (ledger_account, None, asset))
        return bean

    def lot_cost(lot_id: str, q: Decimal, leg, t: datetime) -> tuple[Decimal, datetime, str | None]:
        got = lots.by_id.get(lot_id)
        if got and got[0] == q:
            return got[1], got[2], lot_id
        if got and got[0] != 0:  # a deposit that also brings back earlier lots: the new lot's unit basis for the whole quantity
            counts["acquisitions at the engine lot's unit basis for a different quantity (a deposit bringing back earlier lots)"] += 1
            return EXACT.divide(EXACT.multiply(got[1], q), got[0]), got[2], lot_id
        price = leg.unit_price if leg is not None else None
        counts["acquisitions at market value (no engine lot)"] += 1
        return (EXACT.multiply(q, price) if price is not None else Decimal(0)), t, None

    def amount(q: Decimal, asset: str) -> str:
        return f"{plain(q)} {names.commodity(asset)}"

    def price_of(leg) -> str:
        return f" @ {plain(leg.unit_price)} {cur}" if leg is not None and leg.unit_price is not None and (leg.currency or cur) == cur else ""

    if start is not None:
        opening = _opening(conn, books, start, acct_of, amount, names, cash, cur, opened, counts)
        if opening:
            body += opening
            first_day.append((start - timedelta(days=1)).date())
    rows = journal_rows(conn, start=start, end=end)
    for legs in _group(rows):
        e = legs[0]
        if not first_day:
            first_day.append(e.time.date())
        kind = e.kind
        head = [f"{e.time.date().isoformat()} * \"Backpack\" {_s(e.description or kind)}", f"  source: {_s(e.entry_id)}", f"  endpoint: {_s(e.endpoint)}",
                f"  kind: {_s(kind)}", f"  time: {_s(e.time.isoformat())}"]
        holding = [l for l in legs if l.account.startswith(("Assets:", "Liabilities:"))]
        lot_assets = {l.asset for l in holding if l.asset not in cash and ":Perp:" not in l.account and l.account.split(":")[3:4] != ["Borrowed"]}
        posts: list[str] = []
        if kind in ("lend", "redeem") and lot_assets:
            for l in holding:
                if l.quantity > 0:
                    body.append(f"{e.time.date().isoformat()} note {acct_of(l.account, l.asset)} {_s(f'{kind} {plain(l.quantity)} {l.asset} (wallets inside this account)')}")
                    body.append(f"  source: {_s(e.entry_id)}")
                    body.append("")
            counts["notes"] += 1
            continue
        if not lot_assets:
            for l in legs:
                a = acct_of(l.account, l.asset)
                posts.append(f"  {a}  {amount(l.quantity, l.asset)}")
                last_move[a] = e.time
        else:
            net: dict[tuple[str, str], Decimal] = {}
            leg_of: dict[tuple[str, str], object] = {}
            wallets: dict[tuple[str, str], set] = defaultdict(set)
            for l in holding:
                a = acct_of(l.account, l.asset)
                k = (a, l.asset)
                net[k] = EXACT.add(net.get(k, Decimal(0)), l.quantity)
                if l.unit_price is not None or k not in leg_of:
                    leg_of[k] = l
                wallets[k].add(l.account.split(":")[3] if len(l.account.split(":")) > 3 else "")
                last_move[a] = e.time
            counter = [l for l in legs if not l.account.startswith(("Assets:", "Liabilities:", "Expenses:Fees:")) and l.account != "Equity:Trading"]
            for (a, asset), q in net.items():
                leg = leg_of[(a, asset)]
                if q == 0:
                    continue
                if asset in lot_assets and a.split(":")[3:4] == ["Holdings"]:
                    if q > 0:
                        c, acquired, lid = lot_cost(f"{e.entry_id}#in", q, leg, e.time)
                        label = f', {_s(lid)}' if lid else ""
                        posts.append(f"  {a}  {amount(q, asset)} {{{{{plain(c)} {cur}, {acquired.date().isoformat()}{label}}}}}")
                    else:
                        pieces = lots.pieces.get(f"{e.entry_id}#out") if method == "lofo" else None
                        if pieces:
                            for g in pieces:
                                posts.append(f"  {a}  {amount(-g.quantity, asset)} {{{_s(g.lot_id)}}}{price_of(leg)}")
                        else:
                            posts.append(f"  {a}  {amount(q, asset)} {{}}{price_of(leg)}")
                    if len(wallets[(a, asset)]) == 1:
                        posts.append(f"    wallet: {_s(next(iter(wallets[(a, asset)])))}")
                else:
                    posts.append(f"  {a}  {amount(q, asset)}{price_of(leg) if kind in CONVERSIONS or kind in ('borrow', 'repay') else ''}")
            if kind in CONVERSIONS or kind in ("borrow", "repay"):
                # The gain (or, for an acquisition alone, the residual of the fees folded into its basis: zero).
                g = f"Income:{names.component('Backpack')}:{names.component(e.venue_account)}:Gains"
                opened.setdefault(g, ("(engine gains)", None, cur))
                posts.append(f"  {g}")
            else:
                # deposits, withdrawals, transfers, income in a lot-tracked asset: the counter account takes the cost weight
                cacc = counter[0].account if counter else "Equity:External"
                a = names.account(cacc)
                opened.setdefault(a, (cacc, None, cur))
                posts.append(f"  {a}")
        body += head + posts + [""]
        counts["transactions"] += 1
    # Balance assertions.
    asserted = 0
    sums: dict[tuple[str, str, datetime], Decimal] = {}
    for acct, t, wallet, asset, q in _snapshots(conn, end):
        la = _ledger_account(acct, wallet, asset)
        a = acct_of(la, asset)
        k = (a, asset, t)
        sums[k] = EXACT.add(sums.get(k, Decimal(0)), q)
    for (a, asset, t), q in sorted(sums.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        day = (t + timedelta(days=1)).date()
        nxt = datetime.combine(day, datetime.min.time(), timezone.utc)
        lm = last_move.get(a)
        if lm is not None and t < lm < nxt:
            counts["snapshot lines not asserted (the account moved later that day)"] += 1
            continue
        if start is not None and t < start:
            continue
        body.append(f"{day.isoformat()} balance {a}  {amount(q, asset)}")
        asserted += 1
    counts["balance assertions"] = asserted
    day0 = (first_day[0] if first_day else (start or datetime.now(timezone.utc)).date()).isoformat()
    head = [f"; backpack-reconcile beancount export: method {method}, scope {settings.booking.scope}, currency {cur}",
            "; names are mapped reversibly: see each directive's exchange-symbol / ledger-account metadata (docs/tax-exports.md)",
            f'option "operating_currency" {_s(cur)}', ""]
    for sym, c in sorted(names.commodities.items(), key=lambda kv: kv[1]):
        head += [f"{day0} commodity {c}", f"  exchange-symbol: {_s(sym)}"]
    if cur not in names.commodities:
        head += [f"{day0} commodity {names.commodity(cur)}", f"  exchange-symbol: {_s(cur)}"]
    head.append("")
    for a, (la, booking, asset) in sorted(opened.items()):
        head += [f"{day0} open {a}" + (f' {names.commodity(asset)} "{booking}"' if booking else ""), f"  ledger-account: {_s(la)}"]
    head.append("")
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    tmp.replace(out)
    return dict(counts)


def _opening(conn, books, start, acct_of, amount, names, cash, cur, opened, counts) -> list[str]:
    """An export from ``start`` opens with the holdings before it: the engine's open lots then (the lots a
    later disposal reduces) and the ledger's balances of cash, perp and liability accounts, against
    ``Equity:Opening-Balances``."""
    from ledger.books import book_ledger
    from reports.journal import journal_rows

    before = start - timedelta(microseconds=1)
    lots = [l for l in book_ledger(conn, books.settings, until=before, gains=False).open_lots if l.account != "external"]
    balances: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in journal_rows(conn, end=start):
        if r.account.startswith(("Assets:", "Liabilities:")):
            balances[(r.account, r.asset)] = EXACT.add(balances[(r.account, r.asset)], r.quantity)
    day = (start - timedelta(days=1)).date().isoformat()
    posts = []
    for l in sorted(lots, key=lambda l: (l.account, l.asset, l.acquired, l.id)):
        a = acct_of(f"Assets:Backpack:{l.account}:Spot:{l.asset}", l.asset)
        posts.append(f"  {a}  {amount(l.quantity, l.asset)} {{{{{plain(l.cost)} {cur}, {l.acquired.date().isoformat()}, {_s(l.id)}}}}}")
    for (account, asset), q in sorted(balances.items()):
        if q == 0:
            continue
        a = acct_of(account, asset)
        if a.split(":")[3:4] == ["Holdings"]:
            continue  # the lots above
        posts.append(f"  {a}  {amount(q, asset)}")
    if not posts:
        return []
    eq = "Equity:Opening-Balances"
    opened.setdefault(eq, ("(the holdings before --from)", None, cur))
    counts["opening lots"] = len(lots)
    return [f'{day} * "Backpack" "Holdings before {start.date().isoformat()}"', f"  source: {_s('opening:' + start.isoformat())}", *posts, f"  {eq}", ""]


def _hname(v: str) -> str:
    """Exchange text in an hledger name: controls and bidi shown as escapes (reports.safety), no TAB,
    newline or double space (each ends a name)."""
    from reports.safety import terminal

    v = terminal(v).replace("\t", "\\t").replace("\n", "\\n")
    while "  " in v:
        v = v.replace("  ", " ")
    return v


def _h(sym: str) -> str:
    """An hledger commodity: quoted unless it is letters only."""
    return sym if sym.isalpha() and sym.isascii() else '"' + _hname(sym).replace('"', "") + '"'


def _htag(v: str) -> str:
    """A tag value: no commas or newlines (they end the value)."""
    from reports.safety import terminal

    return terminal(v).replace(",", ";").replace("\n", " ")


def write_hledger(conn: Connection, books, out: Path, *, start: datetime | None = None, end: datetime | None = None) -> dict:
    from reports.journal import journal_rows

    pieces: dict[str, list] = defaultdict(list)
    for g in books.gains:
        pieces[g.source_ref].append(g)
    accounts: set[str] = set()
    commodities: set[str] = set()
    body: list[str] = []
    n = 0
    last_move: dict[str, datetime] = {}
    for legs in _group(journal_rows(conn, start=start, end=end)):
        e = legs[0]
        for l in legs:
            last_move[l.account] = e.time
        tags = [f"source:{_htag(e.entry_id)}", f"kind:{_htag(e.kind)}"]
        gs = pieces.get(e.entry_id)
        if gs:
            tags.append("cost-basis:" + plain(sum((g.cost_basis for g in gs), Decimal(0))))
            tags.append("lots:" + _htag(";".join(f"{g.lot_id}={plain(g.quantity)}" for g in gs)))
        desc = _htag(e.description or e.kind).replace(";", ",") or e.kind
        body.append(f"{e.time.date().isoformat()} * Backpack | {desc}  ; " + ", ".join(tags))
        for l in legs:
            acc = _hname(l.account).replace(";", "-")
            accounts.add(acc)
            commodities.add(l.asset)
            body.append(f"    {acc}  {plain(l.quantity)} {_h(l.asset)}")
        body.append("")
        n += 1
    for acct, t, wallet, asset, q in _snapshots(conn, end):
        if start is not None and t < start:
            continue
        la = _ledger_account(acct, wallet, asset)
        lm = last_move.get(la)
        if lm is not None and t < lm and lm.date() == t.date():
            continue  # the account moved later that day: hledger orders by date only
        la = _hname(la).replace(";", "-")
        accounts.add(la)
        commodities.add(asset)
        body += [f"{t.date().isoformat()} * snapshot {_hname(acct)} {t.isoformat()}  ; kind:balance-assertion", f"    {la}  0 {_h(asset)} = {plain(q)} {_h(asset)}", ""]
    head = ["; backpack-reconcile hledger export (trading-account method: every commodity balances on its own)"]
    head += [f"commodity {_h(c)}" for c in sorted(commodities)]
    head += [f"account {a}" for a in sorted(accounts)]
    head.append("")
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    tmp.replace(out)
    return {"transactions": n}
