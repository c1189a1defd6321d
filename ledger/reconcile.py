"""Reconciliation: the ledger's balances against the exchange's own figures, to the last unit.

``compare`` is pure: ledger figures, exchange figures and evidence in; lines with differences and
their likely causes out. ``check`` reads a stored snapshot and the ledger at the snapshot's time,
gathers the evidence (endpoints never synced, records after the snapshot, records kept raw as
unknown or pending, fees charged in the asset), runs ``compare`` and keeps the result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from .db import balances
from .money import D, plain
from .schema import CheckResult, Snapshot, SnapshotLine
from .types import db_time, utc_from_db

__all__ = ["Line", "Evidence", "CheckOutcome", "RollForward", "basis_rollforward", "rollforward_of", "compare", "check", "check_accounts", "WALLET_PREFIX", "latest_snapshot", "snapshot_basis",
           "venue_accounts"]

#: Ledger account for each wallet the exchange reports (docs/posting-rules.md).
WALLET_PREFIX = {
    "Spot": "Assets:Backpack:{acct}:Spot:",
    "Lent": "Assets:Backpack:{acct}:Lent:",
    "Borrowed": "Liabilities:Backpack:{acct}:Borrowed:",
    "Perp": "Assets:Backpack:{acct}:Perp:",
}


@dataclass(frozen=True)
class Line:
    wallet: str
    asset: str
    ledger: Decimal
    exchange: Decimal
    causes: tuple[str, ...] = ()

    @property
    def difference(self) -> Decimal:
        return self.ledger - self.exchange

    @property
    def ok(self) -> bool:
        return self.ledger == self.exchange


@dataclass(frozen=True)
class RawHint:
    """A raw record that may explain a difference: unknown, pending, or after the snapshot."""

    endpoint: str
    key: str
    status: str
    note: str
    assets: tuple[str, ...]
    quantities: tuple[Decimal, ...]


@dataclass
class Evidence:
    never_synced: list[str] = field(default_factory=list)
    unknown: list[RawHint] = field(default_factory=list)
    pending: list[RawHint] = field(default_factory=list)
    after_snapshot: dict[str, int] = field(default_factory=dict)  # asset -> entries after the snapshot
    fees_by_asset: dict[str, Decimal] = field(default_factory=dict)
    dust_assets: set[str] = field(default_factory=set)


def _explain(line: Line, ev: Evidence) -> tuple[str, ...]:
    diff = line.difference
    mag = abs(diff)
    causes: list[str] = []
    for h in ev.unknown:
        if line.asset in h.assets:
            match = " (its quantity matches the difference)" if mag in h.quantities else ""
            causes.append(f"unknown event type kept raw: {h.endpoint} {h.key}: {h.note}{match}")
    for h in ev.pending:
        if line.asset in h.assets:
            match = " (its quantity matches the difference)" if mag in h.quantities else ""
            causes.append(f"{h.endpoint} {h.key} not final ({h.note}){match}")
    if ev.after_snapshot.get(line.asset):
        causes.append(f"{ev.after_snapshot[line.asset]} entries in {line.asset} after the snapshot time are not counted")
    if ev.never_synced:
        causes.append("endpoints never synced: " + ", ".join(ev.never_synced))
    if diff < 0:
        causes.append(f"the exchange holds {plain(mag)} {line.asset} more than the ledger: an inflow missing from history (a deposit, transfer or credit)")
    else:
        causes.append(f"the ledger holds {plain(mag)} {line.asset} more than the exchange: an outflow missing from history (a fee charged in {line.asset}, a withdrawal, dust)")
        if line.asset in ev.fees_by_asset:
            causes.append(f"fees charged in {line.asset} so far: {plain(ev.fees_by_asset[line.asset])} {line.asset}")
    if line.asset in ev.dust_assets:
        causes.append(f"{line.asset} was dust-converted")
    return tuple(causes)


def compare(ledger: Mapping[tuple[str, str], Decimal], exchange: Mapping[tuple[str, str], Decimal], evidence: Evidence | None = None) -> list[Line]:
    """One line per (wallet, asset) in either side; a differing line carries its likely causes."""
    ev = evidence or Evidence()
    lines = []
    for wallet, asset in sorted(set(ledger) | set(exchange)):
        l = Line(wallet, asset, ledger.get((wallet, asset), Decimal(0)), exchange.get((wallet, asset), Decimal(0)))
        if not l.ok:
            l = Line(l.wallet, l.asset, l.ledger, l.exchange, _explain(l, ev))
        lines.append(l)
    return lines


@dataclass(frozen=True)
class RollForward:
    """Opening basis + acquisitions - basis relieved = closing basis, over one period."""

    start: datetime
    end: datetime
    opening: Decimal
    acquisitions: Decimal
    relieved: Decimal
    closing: Decimal

    @property
    def difference(self) -> Decimal:
        return self.opening + self.acquisitions - self.relieved - self.closing

    @property
    def ok(self) -> bool:
        return self.difference == 0

    def to_json(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "opening": plain(self.opening), "acquisitions": plain(self.acquisitions),
                "relieved": plain(self.relieved), "closing": plain(self.closing), "difference": plain(self.difference), "ok": self.ok}


def basis_rollforward(start: datetime, end: datetime, lots_at_start: Iterable, lots_at_end: Iterable, gains: Iterable) -> RollForward:
    """The basis roll-forward from two bookings of the same events (up to ``start``, up to ``end``).

    Acquisitions are the basis of every lot piece at the end or relieved in the period whose lot was
    not open at the start; a lot keeps its id when it is split, moved or partly relieved. Basis created
    or lost anywhere (a booking error) shows as a difference.
    """
    lots_at_start = list(lots_at_start)
    opening_ids = {lot.id for lot in lots_at_start}
    relieved = relieved_new = Decimal(0)
    for g in gains:
        if start < g.disposed <= end:
            relieved += g.cost_basis
            if g.lot_id not in opening_ids:
                relieved_new += g.cost_basis
    return rollforward_of(start, end, lots_at_start, lots_at_end, relieved, relieved_new)


def rollforward_of(start: datetime, end: datetime, lots_at_start: Iterable, lots_at_end: Iterable, relieved: Decimal, relieved_new: Decimal) -> RollForward:
    """``basis_rollforward`` from the period's gains already summed: ``relieved``, the basis they
    relieved, and ``relieved_new``, the part of it from lots not open at the start (as
    ``ledger.report_books.book_period`` sums them while it books)."""
    opening_ids = set()
    opening = Decimal(0)
    for lot in lots_at_start:
        opening_ids.add(lot.id)
        opening += lot.cost
    closing = acquisitions = Decimal(0)
    for lot in lots_at_end:
        closing += lot.cost
        if lot.id not in opening_ids:
            acquisitions += lot.cost
    return RollForward(start, end, opening, acquisitions + relieved_new, relieved, closing)


@dataclass
class CheckOutcome:
    venue_account: str
    snapshot_id: int | None
    as_of: datetime | None
    lines: list[Line]
    trial_balance_zero: bool
    notes: list[str] = field(default_factory=list)
    rollforward: RollForward | None = None
    #: The perpetuals' proof (``ledger.perps.perp_proof``): settlements, cycles, USDC, positions.
    perps: Any = None
    #: How the exchange's figures at ``as_of`` were obtained: "latest snapshot", "taken then",
    #: "rolled back" or "rolled forward" (``snapshot_basis``); empty without a snapshot.
    basis: str = ""
    snapshot_at: datetime | None = None

    @property
    def problems(self) -> list[str]:
        """Why the check does not agree, one phrase each (empty when it does)."""
        out = []
        if self.snapshot_id is None:
            out.append("no snapshot")
        if self.differences:
            out.append(f"{len(self.differences)} difference(s)")
        if not self.trial_balance_zero:
            out.append("trial balance not zero")
        if self.rollforward is not None and not self.rollforward.ok:
            out.append(f"basis roll-forward difference {plain(self.rollforward.difference)}")
        return out

    @property
    def differences(self) -> list[Line]:
        return [l for l in self.lines if not l.ok]

    @property
    def ok(self) -> bool:
        rf_ok = self.rollforward is None or self.rollforward.ok
        perps_ok = self.perps is None or self.perps.ok
        return self.snapshot_id is not None and not self.differences and self.trial_balance_zero and rf_ok and perps_ok

    def to_json(self) -> dict:
        return {
            "venue_account": self.venue_account,
            "snapshot_id": self.snapshot_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "snapshot_at": self.snapshot_at.isoformat() if self.snapshot_at else None,
            "basis": self.basis,
            "ok": self.ok,
            "problems": self.problems,
            "trial_balance_zero": self.trial_balance_zero,
            "notes": self.notes,
            "basis_rollforward": self.rollforward.to_json() if self.rollforward else None,
            "perps": self.perps.to_json() if self.perps is not None else None,
            "lines": [
                {"wallet": l.wallet, "asset": l.asset, "ledger": plain(l.ledger), "exchange": plain(l.exchange),
                 "difference": plain(l.difference), "causes": list(l.causes)}
                for l in self.lines
            ],
        }


#: A ledger account of a venue account's wallet (``WALLET_PREFIX``): group 1 is the venue account.
_WALLET_ACCOUNT = re.compile(r"(?:Assets|Liabilities):Backpack:(.+):(?:%s):[^:]*" % "|".join(WALLET_PREFIX))


def venue_accounts(conn: Connection) -> list[str]:
    """Every venue account there is something to reconcile for: those with a snapshot, and those the
    ledger holds a wallet of (``WALLET_PREFIX``), synced or not: an account never checked is not
    reconciled, so it must not be left out of a check of "every account"."""
    names = {n for (n,) in conn.execute(text("SELECT DISTINCT venue_account FROM snapshots"))}
    for (name,) in conn.execute(text("SELECT name FROM accounts")):
        m = _WALLET_ACCOUNT.fullmatch(name)
        if m:
            names.add(m.group(1))
    return sorted(names)


def latest_snapshot(conn: Connection, venue_account: str, at: datetime | None = None):
    """(id, taken_at) of the newest snapshot of the account at or before ``at``, or None."""
    q = select(Snapshot.c.id, Snapshot.c.taken_at).where(Snapshot.c.venue_account == venue_account)
    if at is not None:
        q = q.where(Snapshot.c.taken_at <= at)
    return conn.execute(q.order_by(Snapshot.c.taken_at.desc(), Snapshot.c.id.desc()).limit(1)).first()


def _ledger_figures(conn: Connection, acct: str, until: datetime, whole: dict[tuple[str, str], Decimal] | None = None) -> dict[tuple[str, str], Decimal]:
    """The ledger's (wallet, asset) figures of the venue account at ``until``. ``whole``: every account's
    balance over the whole ledger (``balances(conn)``), used as it is when no entry is dated after
    ``until`` (the usual check: the snapshot is taken after the sync's last entry), saving a scan."""
    if whole is None or _entries_after(conn, until):
        whole = balances(conn, until=until, starts=tuple(p.format(acct=acct) for p in WALLET_PREFIX.values()))
    out: dict[tuple[str, str], Decimal] = {}
    for wallet, pattern in WALLET_PREFIX.items():
        prefix = pattern.format(acct=acct)
        for (name, asset), q in whole.items():
            if q != 0 and name.startswith(prefix):
                out[(wallet, asset)] = out.get((wallet, asset), Decimal(0)) + q
    return out


def _entries_after(conn: Connection, t: datetime) -> bool:
    """Whether any journal entry is dated after ``t`` (the timestamp index answers at once)."""
    return conn.execute(text("SELECT 1 FROM journal_entries WHERE timestamp > :t LIMIT 1"), {"t": db_time(conn, t)}).first() is not None


def _evidence(conn: Connection, venue_account: str, taken: datetime, expected_endpoints: Iterable[str]) -> Evidence:
    """What can explain a difference: records kept raw or not final, entries after the snapshot, fees, dust.
    Gathered only when a line differs (it explains differences; a clean check needs none of it)."""
    ev = Evidence()
    synced = {e for (e,) in conn.execute(text("SELECT endpoint FROM sync_state WHERE venue_account = :a"), {"a": venue_account})}
    ev.never_synced = sorted(set(expected_endpoints) - synced)
    ev.unknown = _hints(conn, venue_account, "unknown")
    ev.pending = _hints(conn, venue_account, "pending")
    after = conn.execute(
        text(
            "SELECT a.symbol, COUNT(DISTINCT e.id) FROM journal_entries e JOIN postings p ON p.entry_id = e.id"
            " JOIN assets a ON a.id = p.asset_id WHERE e.venue_account = :acct AND e.timestamp > :t GROUP BY a.symbol"
        ),
        {"acct": venue_account, "t": db_time(conn, taken)},
    )
    ev.after_snapshot = {a: n for a, n in after}
    fees = balances(conn, prefix="Expenses:Fees", until=taken)
    for (_acc, asset), q in fees.items():
        ev.fees_by_asset[asset] = ev.fees_by_asset.get(asset, Decimal(0)) + q
    ev.dust_assets = {
        a for (a,) in conn.execute(
            text("SELECT DISTINCT a.symbol FROM journal_entries e JOIN postings p ON p.entry_id = e.id JOIN assets a ON a.id = p.asset_id"
                 " WHERE e.venue_account = :acct AND e.kind = 'dust'"),
            {"acct": venue_account},
        )
    }
    return ev


def _hints(conn: Connection, acct: str, status: str) -> list[RawHint]:
    rows = conn.execute(
        text("SELECT endpoint, natural_key, note, payload FROM raw_records WHERE venue_account = :a AND status = :s ORDER BY id LIMIT 200"),
        {"a": acct, "s": status},
    )
    out = []
    for endpoint, key, note, payload in rows:
        try:
            rec = json.loads(payload)
        except ValueError:
            rec = {}
        assets = tuple(str(rec[k]) for k in ("symbol", "asset", "feeSymbol") if isinstance(rec.get(k), str))
        if "source" in rec and endpoint == "settlement":
            assets += ("USDC",)
        qs = []
        for k in ("quantity", "fee", "usdcReceived"):
            try:
                if rec.get(k) is not None:
                    qs.append(abs(D(str(rec[k]))))
            except ValueError:
                pass
        out.append(RawHint(endpoint, key, status, note or "", assets, tuple(qs)))
    return out


def _entries_between(conn: Connection, acct: str, after: datetime, until: datetime) -> int:
    """Entries of the account dated in (after, until]."""
    return conn.execute(
        text("SELECT COUNT(*) FROM journal_entries WHERE venue_account = :a AND timestamp > :t0 AND timestamp <= :t1"),
        {"a": acct, "t0": db_time(conn, after), "t1": db_time(conn, until)},
    ).scalar_one()


def snapshot_basis(conn: Connection, venue_account: str, at: datetime):
    """The snapshot a reconciliation at ``at`` rests on: ``(id, taken_at, basis, entries)``, or None.

    ``basis`` is ``"taken then"`` for the latest snapshot at or before ``at`` with no ledger entry of
    the account between it and ``at`` (its figures are the exchange's at ``at``); otherwise
    ``"rolled back"`` for the latest snapshot, taken after ``at``, whose figures are rolled back
    through the ledger's own flows after ``at`` (``entries`` of them); otherwise (only older snapshots)
    ``"rolled forward"`` through the flows between it and ``at``."""
    before = latest_snapshot(conn, venue_account, at)
    if before is not None:
        taken = utc_from_db(before[1])
        n = _entries_between(conn, venue_account, taken, at)
        if n == 0:
            return before[0], taken, "taken then", 0
    latest = latest_snapshot(conn, venue_account)
    if latest is None:
        return None
    taken = utc_from_db(latest[1])
    if taken > at:
        return latest[0], taken, "rolled back", _entries_between(conn, venue_account, at, taken)
    return latest[0], taken, "rolled forward", _entries_between(conn, venue_account, taken, at)


def check(conn: Connection, venue_account: str, *, at: datetime | None = None, expected_endpoints: Iterable[str] = (), keep: bool = True,
          now: datetime | None = None, rollforward: RollForward | None = None, perps: bool = True, proving=None,
          whole: dict[tuple[str, str], Decimal] | None = None) -> CheckOutcome:
    """Compare the ledger with the exchange and keep the result.

    Without ``at``: the ledger at the latest snapshot's time against that snapshot. With ``at``: the
    ledger at ``at`` against the exchange's figures at ``at``: a snapshot taken then if one exists,
    else the latest snapshot rolled back (or forward) through the ledger's own flows in between
    (``snapshot_basis``), stated in the outcome's ``basis``.
    With ``perps`` also prove the perpetuals (``ledger.perps.perp_proof``, docs/perps.md); ``proving``: that
    proof already started by the caller (``ledger.perps.start_perp_proof(conn, venue_account, at=at)``),
    so that it runs while the caller does other work first. ``whole``: ``ledger.db.balances(conn)`` (every
    account's balances in the caller's view of the ledger) if the caller has them already (a check of
    several venue accounts needs one scan, and a report takes it from a forked process)."""
    if not perps:
        proving = None
    elif proving is None:  # started first: on a large ledger it runs in another process while the balances are compared
        from .perps import start_perp_proof

        proving = start_perp_proof(conn, venue_account, at=at)
    # One scan of the postings gives the trial balance and, usually, the account's figures too.
    if whole is None:
        whole = balances(conn)
    tb: dict[str, Decimal] = {}
    for (_name, asset), q in whole.items():
        tb[asset] = tb.get(asset, Decimal(0)) + q
    tb_zero = all(v == 0 for v in tb.values())
    if at is None:
        snap = latest_snapshot(conn, venue_account)
        basis = "latest snapshot" if snap is not None else None
        moved = 0
    else:
        found = snapshot_basis(conn, venue_account, at)
        snap = found[:2] if found else None
        basis, moved = (found[2], found[3]) if found else (None, 0)
    if snap is None:
        out = CheckOutcome(venue_account, None, at, [], tb_zero, [f"no snapshot of {venue_account}; run `reconcile sync`"])
    else:
        snap_id, taken = snap[0], utc_from_db(snap[1])
        exchange: dict[tuple[str, str], Decimal] = {}
        for wallet, asset, q in conn.execute(select(SnapshotLine.c.wallet, SnapshotLine.c.asset, SnapshotLine.c.quantity).where(SnapshotLine.c.snapshot_id == snap_id)):
            if q != 0:
                exchange[(wallet, asset)] = exchange.get((wallet, asset), Decimal(0)) + q
        if at is None or basis == "taken then":
            ledger = _ledger_figures(conn, venue_account, taken if at is None else at, whole)
        else:
            # The exchange at ``at`` = the snapshot less (or plus) the ledger's flows between the two times.
            ledger = _ledger_figures(conn, venue_account, at, whole)
            at_snap = _ledger_figures(conn, venue_account, taken, whole)
            for k in set(at_snap) | set(ledger):
                flow = at_snap.get(k, Decimal(0)) - ledger.get(k, Decimal(0))
                v = exchange.get(k, Decimal(0)) - flow
                if v != 0:
                    exchange[k] = v
                else:
                    exchange.pop(k, None)
        lines = compare(ledger, exchange)
        if not all(line.ok for line in lines):
            lines = compare(ledger, exchange, _evidence(conn, venue_account, taken, expected_endpoints))
        out = CheckOutcome(venue_account, snap_id, taken if at is None else at, lines, tb_zero,
                           basis=basis or "", snapshot_at=taken)
        if at is not None:
            if basis == "taken then":
                out.notes.append(f"against the exchange's snapshot of {taken.isoformat(timespec='seconds')} (no entry between it and {at.isoformat(timespec='seconds')})")
            else:
                out.notes.append(f"against the exchange's snapshot of {taken.isoformat(timespec='seconds')}, {basis} to {at.isoformat(timespec='seconds')} "
                                 f"through the ledger's own {moved} entries in between (no snapshot was taken then)")
        if not tb_zero:
            out.notes.append("trial balance is not zero")
    out.rollforward = rollforward
    if proving is not None and out.snapshot_id is None:
        proving.discard()
    elif proving is not None:
        out.perps = proving.result(conn)
        if not out.perps.ok:
            out.notes.append(f"perpetuals: {len(out.perps.differences)} difference(s)")
    if rollforward is not None and not rollforward.ok:
        out.notes.append(f"basis roll-forward does not close: difference {plain(rollforward.difference)}")
    if keep:
        conn.execute(
            CheckResult.insert().values(
                venue_account=venue_account,
                snapshot_id=out.snapshot_id,
                checked_at=now or datetime.now(timezone.utc),
                as_of=out.as_of or at or now or datetime.now(timezone.utc),
                ok=out.ok,
                differences=len(out.differences),
                detail=json.dumps(out.to_json(), sort_keys=True),
            )
        )
    return out


def check_accounts(engine: Engine, names: Sequence[str], *, at: datetime | None = None, settings: Any = None,
                   expected_endpoints: Iterable[str] = ()) -> list[CheckOutcome]:
    """``check`` of each venue account in ``names`` (kept, in one transaction), as ``reconcile check``
    runs it. With ``at``: the basis roll-forward to ``at`` under ``settings`` (``ledger.books.BookSettings``)
    is booked first (``ledger.books.basis_rollforward``, all accounts); on a large ledger the one balance
    scan every check needs (``ledger.db.balances``) runs meanwhile in a forked process (``ledger.forked``;
    in process if it fails). Both read through connections of their own: the caller holds the database's
    shared lock (``ledger.lock``), so no sync writes in between."""
    from . import forked
    from .books import basis_rollforward as book_rollforward
    from .perps import start_perp_proof
    from .report_books import large_ledger

    if at is not None and settings is None:
        raise ValueError("check_accounts: a check at a date books the roll-forward: give settings (ledger.books.resolve_settings)")
    expected = tuple(expected_endpoints)
    rollforward: RollForward | None = None
    whole: dict[tuple[str, str], Decimal] | None = None  # every account's balances: one scan for all the accounts checked
    if at is not None:
        with engine.connect() as conn:
            scan = forked.call(conn, balances) if large_ledger(conn) else None
            try:
                rollforward = book_rollforward(conn, settings, at)
            except BaseException:  # the scan is not wanted after all
                if scan is not None:
                    forked.stop(scan)
                raise
        got = forked.join(scan) if scan is not None else None
        whole = got["result"] if got is not None else None
    outcomes = []
    with engine.begin() as conn:
        for name in names:
            proving = start_perp_proof(conn, name, at=at)  # first: on a large account it runs in another process meanwhile
            if whole is None:
                whole = balances(conn)
            outcomes.append(check(conn, name, at=at, expected_endpoints=expected, rollforward=rollforward, proving=proving, whole=whole))
    return outcomes
