"""From the valued ledger to the cost-basis engine's events (docs/gains-export.md).

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

import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Connection

from .booking import Finding
from .booking.rows import ACQUISITION, DISPOSAL, acquisition_row, disposal_row, instant, iso_utc, row_event, transfer_row
from .money import EXACT
from .sqlite_reader import BORROWED, FEE, ID_RANGE_SQL, SPOT, classify, entries_sql  # the classes of the postings read, and the rule

__all__ = ["BridgeSettings", "booking_events", "booking_rows", "TRADE_KINDS", "EXTERNAL_WALLET"]

TRADE_KINDS = ("spot-trade", "rfq-fill", "quote-fill", "dust")
_TRADE = frozenset(TRADE_KINDS)
INCOME_KINDS = ("interest-income",)
EXTERNAL_WALLET = "external"
#: An internal transfer-in is paired with a transfer-out of the same asset and quantity within this window.
TRANSFER_PAIRING_WINDOW = timedelta(days=1)

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


_ZERO = Decimal(0)
#: From this many entries (by id range) on, SQLite's part of the read runs in a child process
#: (``ledger.sqlite_reader``) while this one bridges what is already read; below it the child's
#: start (about 50 ms) costs more than the overlap saves.
CHILD_READ_ENTRIES = 50_000


_UTC = timezone.utc
_fromiso = datetime.fromisoformat


def _time(v) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite: naive UTC text; PostgreSQL: datetime)."""
    if type(v) is str:
        try:
            return datetime.fromisoformat(v + "+00:00")  # tzinfo is timezone.utc; 6x cheaper than replace()
        except ValueError:
            v = datetime.fromisoformat(v)
    if v.tzinfo is None:
        return v.replace(tzinfo=_UTC)
    return v if v.tzinfo is _UTC else v.astimezone(_UTC)


def _fetch(conn: Connection, venue_account: str | None) -> tuple[dict[str, int], dict[str, str], list[tuple]]:
    """The classes of the accounts read and the asset symbols (by id, as text), and the entries (in
    no particular order) as ``(timestamp, key, kind, venue account, postings text)``: the postings
    text is four fields a posting (account id, asset id, quantity, unit price or ``-``); an entry
    without a posting read is left out (``_postings`` parses the text).

    One query on the driver's cursor (no per-row SQLAlchemy processing): a row per entry, its
    postings of the accounts read aggregated into one text of four fields each (account id, asset
    id, quantity, unit price or ``-``), in posting-id order (SQLite visits them through the
    ``entry_id`` index; PostgreSQL's ``string_agg`` is ordered). The exchange leg
    (``Equity:Trading``) and the counter accounts are not fetched: a conversion's traded quantity
    of an asset is its holding legs plus its fee legs. Quantities and prices are exact decimals:
    their text (SQLite's exact type stores it, ``ledger/types.py``; NUMERIC's text is plain)."""
    classes: dict[str, int] = {}
    for aid, name in conn.exec_driver_sql("SELECT id, name FROM accounts"):
        c = classify(name)
        if c is not None:
            classes[str(aid)] = c
    if not classes:
        return classes, {}, []
    symbols = {str(i): sym for i, sym in conn.exec_driver_sql("SELECT id, symbol FROM assets")}
    pg = conn.dialect.name == "postgresql"
    ids = ", ".join(sorted(classes, key=int))
    if pg:
        sql = (
            "SELECT e.timestamp, e.entry_key, e.kind, e.venue_account, p.g FROM journal_entries e JOIN ("
            "SELECT entry_id, string_agg(account_id::text || ' ' || asset_id::text || ' ' || quantity::text || ' ' || coalesce(unit_price::text, '-'), ' ' ORDER BY id) g"
            f" FROM postings WHERE account_id IN ({ids}) GROUP BY entry_id) p ON p.entry_id = e.id WHERE e.kind <> 'perp-fill'"
        )
    else:
        sql = entries_sql(ids, venue=bool(venue_account))
    params: tuple = ()
    if venue_account:
        if pg:
            sql += " AND e.venue_account = %s"
        params = (venue_account,)
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, params)
        entries = cur.fetchall()
    finally:
        cur.close()
    return classes, symbols, entries


class ChildReadFailed(Exception):
    """The child reader did not deliver the whole read, or not in order: read again in process
    (``booking_row_chunks`` with ``child=False``)."""


def _read(conn: Connection, venue_account: str | None, *, child: bool = True) -> tuple[dict[str, int], dict[str, str], Iterable[list], bool]:
    """``_fetch``'s classes, symbols and entries, the entries in chunks, and whether the chunks
    come in (timestamp, key) order: read by a child process (``ledger.sqlite_reader``), in that
    order, for a large SQLite ledger in a file, so that the caller bridges one chunk while the next
    is read; else (or with ``child=False``) in one chunk read here, in no order."""
    read = _child_read(conn, venue_account) if child else None
    if read is not None:
        return read
    classes, symbols, entries = _fetch(conn, venue_account)
    return classes, symbols, (entries,), False


def _child_read(conn: Connection, venue_account: str | None):
    if conn.dialect.name != "sqlite" or not sys.executable:
        return None
    path = conn.engine.url.database
    if not path or path == ":memory:" or path.startswith("file:") or not os.path.isfile(path):
        return None
    lo, hi = conn.exec_driver_sql(ID_RANGE_SQL).one()
    if lo is None or hi - lo + 1 < CHILD_READ_ENTRIES:
        return None
    from . import sqlite_reader

    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", sqlite_reader.__file__, os.path.abspath(path), venue_account or "",
             str(sqlite_reader.FIRST_CHUNK_ENTRIES), str(sqlite_reader.CHUNK_ENTRIES)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    frames = sqlite_reader.read_frames(proc.stdout)
    try:
        classes, symbols = next(frames)
    except Exception:  # noqa: BLE001 - whatever went wrong there, the read is done here instead
        _stop(proc)
        return None
    return classes, symbols, _child_chunks(proc, frames), True


def _child_chunks(proc: subprocess.Popen, frames) -> Iterator[list]:
    try:
        try:
            yield from frames
        except Exception as exc:  # noqa: BLE001 - a malformed or truncated stream
            raise ChildReadFailed(str(exc)) from exc
        if proc.wait() != 0:
            raise ChildReadFailed(f"reader exited {proc.returncode}")
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _ordered(chunks: Iterable[list]) -> Iterator:
    """The entries of ``chunks``: conversions as they come, then every other entry in (time, key)
    order. A conversion's events depend on its entry alone, so it is bridged while later chunks are
    still being read; deposits, withdrawals and transfers pair up with earlier ones and need the
    order. Sorted here, not in SQL: PostgreSQL's collation may not order text by code point as
    Python does."""
    deferred = []
    keep = deferred.append
    trade = _TRADE
    for chunk in chunks:
        for entry in chunk:
            if entry[2] in trade:
                yield entry
            else:
                keep(tuple(entry))
    deferred.sort()  # by (timestamp, key): keys are unique, so no further field is compared
    yield from deferred


def _postings(parts: list[str], classes: dict[str, int], symbols: dict[str, str]) -> list[tuple]:
    """An entry's aggregated postings text, split, as ``(class, asset, quantity, unit price)``."""
    dec = Decimal
    return [
        (classes[parts[i]], symbols[parts[i + 1]], dec(parts[i + 2]), None if parts[i + 3] == "-" else dec(parts[i + 3]))
        for i in range(0, len(parts), 4)
    ]


def _value(q: Decimal, price: Decimal | None) -> Decimal | None:
    return None if price is None else EXACT.multiply(q, price)


def booking_events(conn: Connection, settings: BridgeSettings, *, venue_account: str | None = None) -> tuple[list, list[Finding]]:
    """The engine's events for the ledger (in time order) and the findings met on the way."""
    rows, findings = booking_rows(conn, settings, venue_account=venue_account)
    return [row_event(r) for r in rows], findings


def booking_rows(
    conn: Connection, settings: BridgeSettings, *, venue_account: str | None = None, text_times: bool = False
) -> tuple[list[tuple], list[Finding]]:
    """``booking_events`` as the engine's event rows (``ledger.booking.rows``; for ``book_rows``).

    Every row satisfies what the records' constructors check (positive quantities, known kinds,
    UTC times, a cost only None for a deposit), so the engine takes them without re-validating.

    ``text_times``: the rows' times are ISO-8601 UTC text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``,
    ``ledger.booking.rows.iso_utc``), rearranged from SQLite's stored text, instead of datetimes:
    the gains CSV prints every lot's and disposal's time, and rearranging text costs less than
    parsing it and formatting the datetime again. Findings carry datetimes either way."""
    for child in (True, False):
        rows: list[tuple] = []
        findings: list[Finding] = []
        try:
            for chunk in booking_row_chunks(conn, settings, findings, venue_account=venue_account, text_times=text_times, child=child):
                rows += chunk
        except ChildReadFailed:
            if child:
                continue
            raise
        break
    return rows, findings


def booking_row_chunks(
    conn: Connection, settings: BridgeSettings, findings: list[Finding], *, venue_account: str | None = None, text_times: bool = False, child: bool = True
) -> Iterator[list[tuple]]:
    """``booking_rows``' rows, a chunk at a time as the ledger is read; its findings are appended
    to ``findings``, complete and in order once the chunks are exhausted.

    A large SQLite ledger is read by a child process (``ledger.sqlite_reader``) in (timestamp,
    key) order, a chunk of entries at a time, and each chunk's rows come as soon as it is read: the
    chunks are then in time order, each after the one before (``ledger.booking.RowBooking`` books
    them on arrival). Otherwise (or with ``child=False``) the whole ledger is one chunk. If the
    child fails, or delivers entries out of order, ``ChildReadFailed`` is raised, possibly after
    some chunks: the caller discards what it made of them and reads again with ``child=False``."""
    return _bridge(conn, _read(conn, venue_account, child=child), settings, text_times, findings)


def _bridge(conn: Connection, read: tuple, settings: BridgeSettings, text_times: bool, findings: list[Finding]) -> Iterator[list[tuple]]:
    cash = settings.cash
    outside: dict[str, Decimal] = defaultdict(Decimal)  # asset -> quantity carried to own outside wallet
    pending_out: list[tuple[datetime | str, str, str, Decimal, str]] = []  # internal transfers awaiting their other side

    def unpriced(key, t, acct, asset, what):
        findings.append(Finding(kind="unpriced", message=f"{key}: {what} of {asset} has no {settings.currency} price; valued at zero", key=key, account=acct, asset=asset, time=instant(t)))

    classes, symbols, chunks, in_order = read
    if not in_order:  # conversions first, then the entries whose order matters, in (time, key) order
        chunks = (list(_ordered(chunks)),)
    dec, mul, text_time = Decimal, EXACT.multiply, conn.dialect.name != "postgresql"
    last_other: tuple = ()  # (timestamp, key) of the last entry other than a conversion bridged
    for chunk in chunks:
        events: list = []
        add = events.append
        for ts, key, kind, acct, text in chunk:
            if text is None:
                continue
            if in_order and len(ts) == 27:  # the child's read gives iso_utc's text where it can (entries_sql)
                t = ts if text_times else _fromiso(ts)
            elif text_time and len(ts) == 26:  # _time's common case inline: SQLite's text 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
                t = f"{ts[:10]}T{ts[11:]}Z"  # iso_utc's text
                if not text_times:
                    t = _fromiso(t)  # tzinfo is timezone.utc
            else:
                t = _time(ts)
                if text_times:
                    t = iso_utc(t)
            parts = text.split(" ")
            if kind in _TRADE:
                if len(parts) == 8:  # the common case: two postings, one asset for another (same outcome as below, less work)
                    c1, a1, q1, p1, c2, a2, q2, p2 = parts
                    out1 = q1[0] == "-"
                    if classes[c1] == SPOT and classes[c2] == SPOT and out1 != (q2[0] == "-"):
                        if out1:  # R received, G given; prices stay text ("-": none) until needed
                            R, G, qR, qG, pR, pG = symbols[a2], symbols[a1], dec(q2), -dec(q1), p2, p1
                        else:
                            R, G, qR, qG, pR, pG = symbols[a1], symbols[a2], dec(q1), -dec(q2), p1, p2
                        if R != G and qR and qG:
                            if R in cash:
                                proceeds_G = None if pR == "-" else mul(qR, dec(pR))
                            else:
                                proceeds_G = None if pG == "-" else mul(qG, dec(pG))
                                if proceeds_G is None and pR != "-":
                                    proceeds_G = mul(qR, dec(pR))
                            if G not in cash:
                                if proceeds_G is None:
                                    unpriced(key, t, acct, G, "disposal")
                                add((t, DISPOSAL, key + "#out", acct, G, qG, proceeds_G or _ZERO, key, "dust" if kind == "dust" else "trade"))  # disposal_row's layout
                            if R not in cash:
                                if proceeds_G is None:
                                    unpriced(key, t, acct, R, "acquisition")
                                add((t, ACQUISITION, key + "#in", acct, R, qR, proceeds_G if proceeds_G is not None and proceeds_G > _ZERO else _ZERO, key, "trade"))
                            continue
                rows = _postings(parts, classes, symbols)
                traded: dict[str, Decimal] = {}
                fee: dict[str, Decimal] = {}
                price: dict[str, Decimal | None] = {}
                for cls, asset, q, p in rows:
                    traded[asset] = traded.get(asset, _ZERO) + q
                    if cls == FEE:
                        fee[asset] = fee.get(asset, _ZERO) + q
                    elif p is not None or asset not in price:
                        price[asset] = p
                recv = [a for a, q in traded.items() if q > 0]
                gave = [a for a, q in traded.items() if q < 0]
                if len(recv) != 1 or len(gave) != 1:
                    findings.append(Finding(kind="unrecognised-trade", message=f"entry {key} is not a two-asset conversion", key=key, account=acct, asset="", time=instant(t)))
                    continue
                R, G = recv[0], gave[0]
                fR, fG = fee.get(R, _ZERO), fee.get(G, _ZERO)
                qR, qG = traded[R] - fR, -traded[G] + fG
                pR, pG = price.get(R), price.get(G)
                third_value = _ZERO
                for a, q in fee.items():
                    if a == R or a == G or not q:
                        continue
                    v = _value(q, price.get(a))
                    if v is None:
                        unpriced(key, t, acct, a, "trading fee")
                        v = _ZERO
                    third_value += v
                    if a in cash:
                        continue
                    if q > 0:  # a fee paid in a third asset is a disposal of it at market value
                        add(disposal_row(id=f"{key}#fee:{a}", account=acct, asset=a, quantity=q, proceeds=v, time=t, source=key, kind="fee"))
                    else:  # a rebate received in a third asset arrives at market value
                        add(acquisition_row(id=f"{key}#rebate:{a}", account=acct, asset=a, quantity=-q, cost=-v, time=t, source=key, kind="trade"))
                if R in cash:  # cash received: a sale of G; fees reduce the proceeds
                    cost_R = _value(qR, pR)
                    proceeds_G = None if cost_R is None else cost_R - third_value
                else:  # a purchase of R (for cash or another asset): fees add to its basis
                    proceeds_G = _value(qG, pG)
                    if proceeds_G is None and pR is not None:
                        proceeds_G = _value(traded[R], pR)
                    cost_R = None if proceeds_G is None else proceeds_G + third_value
                if G not in cash and qG > 0:
                    if proceeds_G is None:
                        unpriced(key, t, acct, G, "disposal")
                    add(disposal_row(id=f"{key}#out", account=acct, asset=G, quantity=qG, proceeds=proceeds_G or _ZERO, time=t, source=key, kind="dust" if kind == "dust" else "trade"))
                if R not in cash and qR > 0:
                    if cost_R is None:
                        unpriced(key, t, acct, R, "acquisition")
                        cost_R = _ZERO
                    add(acquisition_row(id=f"{key}#in", account=acct, asset=R, quantity=qR, cost=max(cost_R, _ZERO), time=t, source=key, kind="trade"))
                continue

            if in_order:  # the pairing below needs (time, key) order, which the child's read gives: checked
                if (ts, key) < last_other:
                    raise ChildReadFailed(f"entry {key} read out of order")
                last_other = (ts, key)
            rows = _postings(parts, classes, symbols)
            for cls, asset, q, p in rows:
                if cls == FEE or asset in cash or not q:
                    continue
                income = kind in INCOME_KINDS or kind in ("realized-pnl", "funding", "liquidation")
                if income or kind in ("borrow", "repay", "perp-fee", "interest-expense"):
                    if not income and cls == BORROWED:
                        continue  # the liability side; the asset side is the spot posting
                    v = _value(abs(q), p)
                    if v is None:
                        unpriced(key, t, acct, asset, kind)
                        v = _ZERO
                    if q > 0:
                        add(acquisition_row(id=f"{key}#in", account=acct, asset=asset, quantity=q, cost=v, time=t, source=key,
                                            kind="income" if income else "trade"))
                    else:
                        add(disposal_row(id=f"{key}#out", account=acct, asset=asset, quantity=-q, proceeds=v, time=t, source=key, kind="spend"))
                elif kind == "withdrawal":
                    fee_q = sum((x[2] for x in rows if x[0] == FEE and x[1] == asset), _ZERO)
                    moved = -q - fee_q
                    fee_value = None
                    if fee_q:
                        fee_value = _value(fee_q, p)
                        if fee_value is None:
                            unpriced(key, t, acct, asset, "withdrawal fee")
                    outside[asset] += moved
                    add(transfer_row(id=f"{key}#xfer", from_account=acct, to_account=EXTERNAL_WALLET, asset=asset, quantity=moved, fee=fee_q, fee_value=fee_value, time=t, source=key))
                elif kind == "deposit":
                    back = min(outside[asset], q)
                    if back > 0:
                        outside[asset] -= back
                        add(transfer_row(id=f"{key}#back", from_account=EXTERNAL_WALLET, to_account=acct, asset=asset, quantity=back, fee=_ZERO, fee_value=None, time=t, source=key))
                    if q - back > 0:
                        add(acquisition_row(id=f"{key}#in", account=acct, asset=asset, quantity=q - back, cost=None, time=t, source=key, kind="deposit"))
                elif kind == "transfer-out":
                    fee_q = sum((x[2] for x in rows if x[0] == FEE and x[1] == asset), _ZERO)
                    pending_out.append((t, acct, asset, -q - fee_q, key))
                    if fee_q:
                        v = _value(fee_q, p)
                        if v is None:
                            unpriced(key, t, acct, asset, "transfer fee")
                            v = _ZERO
                        add(disposal_row(id=f"{key}#fee", account=acct, asset=asset, quantity=fee_q, proceeds=v, time=t, source=key, kind="fee"))
                elif kind == "transfer-in":
                    now = instant(t)
                    match = next((x for x in pending_out if x[2] == asset and x[3] == q and x[1] != acct and timedelta(0) <= now - instant(x[0]) <= TRANSFER_PAIRING_WINDOW), None)
                    if match is not None:
                        pending_out.remove(match)
                        add(transfer_row(id=f"{match[4]}#xfer", from_account=match[1], to_account=acct, asset=asset, quantity=q, fee=_ZERO, fee_value=None, time=t, source=match[4]))
                    else:
                        add(acquisition_row(id=f"{key}#in", account=acct, asset=asset, quantity=q, cost=None, time=t, source=key, kind="deposit"))
                # lend / redeem move between wallets of one venue account: no lot effect.
        yield events
    events = []
    add = events.append
    for t, acct, asset, q, key in pending_out:
        # The other side was never synced: the lots leave this account for the outside wallet.
        outside[asset] += q
        add(transfer_row(id=f"{key}#xfer", from_account=acct, to_account=EXTERNAL_WALLET, asset=asset, quantity=q, fee=_ZERO, fee_value=None, time=t, source=key))
    findings.sort(key=lambda f: (f.time, f.key))  # the entries' order (conversions were bridged first); stable within an entry
    if events:
        yield events
