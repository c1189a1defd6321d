"""What is incomplete about a period's figures: the one answer every report and export asks for.

``assess(conn, reporting, start=..., end=..., findings=books.findings_until(end))`` returns a
:class:`Completeness` naming

* **unpriced events** in [start, end): entries with a holding posting that has no value in the
  reporting currency (``ledger.prices.unpriced_count``: the same figure ``reconcile status`` shows);
* a **stale valuation**: the currency, stablecoin policy, price resolution or the user's price/FX
  files changed since ``reconcile prices`` last ran (``valuation_state``), or postings of the period
  carry values in another currency than the reporting one;
* **missing FX rates**: reporting in EUR or GBP, days of the period with valued events and no
  usable rate in the FX file (``FxRates.rate``: the day's own rate or one at most
  ``FX_LOOKBACK_DAYS`` earlier);
* **findings that change the figures**: missing basis, overspend, unrecognised trades, unpriced
  legs valued at zero, fee disposals without a value, including those from earlier years that feed
  this period (the caller passes ``Books.findings_until(end)``);
* **venue accounts not reconciled at the period end** (a statement or workbook: an account's
  period-end check differs or it has no snapshot, or there is no account to check at all), added by
  the report once its checks ran (:meth:`Completeness.with_reconciliation`).

A report covering an incomplete period exits with ``EXIT_INCOMPLETE`` and says so on its first line
unless the user allows it (``--allow-incomplete``); then every output carries :meth:`Completeness.headline`
where the figures are. ``ledger`` computes the answer; the CLI decides what to do with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select, text

from .types import db_time

__all__ = ["EXIT_INCOMPLETE", "FIGURE_FINDINGS", "Completeness", "assess", "stale_valuation"]

#: The documented exit code of a report or export over incomplete data (README, exit codes).
EXIT_INCOMPLETE = 4

#: Finding kinds that change a period's figures (the others are informational).
FIGURE_FINDINGS = frozenset({"missing-basis", "overspend", "unrecognised-trade", "unpriced", "missing-fee-value"})


@dataclass
class Completeness:
    """The answer for one period (``start`` inclusive, ``end`` exclusive)."""

    start: datetime | None
    end: datetime | None
    currency: str
    unpriced: int = 0
    unpriced_sample: list = field(default_factory=list)  # ledger.prices.UnpricedEvent, oldest first
    stale: list[str] = field(default_factory=list)  # one sentence per reason
    missing_fx: list[date] = field(default_factory=list)
    findings: list = field(default_factory=list)  # the findings that change the figures, oldest first
    #: One line per venue account not reconciled at the period end (a report's checks; empty elsewhere).
    unreconciled: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.unpriced or self.stale or self.missing_fx or self.findings or self.unreconciled)

    @property
    def findings_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
        return dict(sorted(out.items()))

    @property
    def earlier_findings(self) -> int:
        """Findings dated before the period that feed it (e.g. a zero-basis deposit of an earlier year)."""
        return sum(1 for f in self.findings if self.start is not None and f.time < self.start)

    def reasons(self) -> list[str]:
        """One line per kind of gap, each with its count."""
        out = []
        if self.unpriced:
            out.append(f"{self.unpriced} unpriced event(s) in the period (no {self.currency} value): run `reconcile prices`")
        out += [f"stale valuation: {s}" for s in self.stale]
        if self.missing_fx:
            more = f" and {len(self.missing_fx) - 1} other day(s)" if len(self.missing_fx) > 1 else ""
            out.append(f"no {self.currency} FX rate for {self.missing_fx[0].isoformat()}{more}: add them to reporting.fx_file")
        if self.findings:
            kinds = ", ".join(f"{n} {k}" for k, n in self.findings_by_kind.items())
            early = self.earlier_findings
            tail = f" ({early} dated before the period, feeding it)" if early else ""
            out.append(f"{len(self.findings)} finding(s) that change the figures: {kinds}{tail}")
        if self.unreconciled:
            out.append("not reconciled with the exchange at the period end: " + "; ".join(self.unreconciled))
        return out

    def headline(self) -> str:
        """The first line of any output over this period."""
        if self.complete:
            return "complete: every event is valued, the valuation is current and no finding changes the figures"
        return "INCOMPLETE DATA: " + "; ".join(self.reasons())

    def with_findings(self, findings: Iterable) -> Completeness:
        """This answer with the booking's findings added (those of a kind in ``FIGURE_FINDINGS`` dated
        before the period end): for an export that books while it writes, assessed first without them."""
        from dataclasses import replace

        return replace(self, findings=_figure_findings(findings, self.end))

    def with_reconciliation(self, checks: Iterable) -> Completeness:
        """This answer with the period-end checks' verdict (``ledger.reconcile.check`` results): each
        account whose check differs is a line naming its problems; no check at all (no snapshot of
        any account) is a line too: figures never proven against the exchange are not complete."""
        from dataclasses import replace

        from .money import plain

        checks = list(checks)
        lines = []
        for c in checks:
            if c.ok:
                continue
            why = list(c.problems)
            if c.perps is not None and not c.perps.ok:
                why.append("perpetuals proof differs")
            line = f"{c.venue_account}: {', '.join(why) or 'differs'}"
            diffs = c.differences
            if diffs:  # the first few lines that differ, by wallet and asset: what to look at first
                line += " (" + ", ".join(f"{d.wallet} {d.asset} ledger {plain(d.ledger)} exchange {plain(d.exchange)}" for d in diffs[:3]) \
                    + (f" and {len(diffs) - 3} more" if len(diffs) > 3 else "") + ")"
            lines.append(line)
        if not checks:
            lines = ["no snapshot of any venue account to check against: run `reconcile sync`"]
        return replace(self, unreconciled=lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "unpriced_events": self.unpriced,
            "stale_valuation": list(self.stale),
            "missing_fx_days": [d.isoformat() for d in self.missing_fx],
            "findings": self.findings_by_kind,
            "earlier_findings": self.earlier_findings,
            "unreconciled": list(self.unreconciled),
            "headline": self.headline(),
        }


def _figure_findings(findings: Iterable, end: datetime | None) -> list:
    return sorted((f for f in findings if f.kind in FIGURE_FINDINGS and (end is None or f.time < end)), key=lambda f: (f.time, f.key))


def stale_valuation(conn: Connection, reporting: Any, start: datetime | None = None, end: datetime | None = None) -> list[str]:
    """Why the ledger's values are not the ones the configuration asks for (one sentence each; empty:
    current). The one test of a stale valuation (exit 4 through the gate; docs/reports.md): the
    currency, stablecoin policy, price resolution or the price/FX files changed since ``reconcile
    prices`` ran, a configured price or FX file was never applied, or postings of [start, end) carry
    values in another currency. A file that cannot be read is bad input instead
    (``ledger.prices.check_valuation_current``, exit 2)."""
    return _stale(conn, reporting, start, end)


def _stale(conn: Connection, reporting: Any, start: datetime | None, end: datetime | None) -> list[str]:
    from .prices import _holding_account_ids, valuation_fingerprint
    from .schema import JournalEntry, Posting, ValuationState

    currency = getattr(reporting, "currency", "USD")
    policy = getattr(reporting, "stablecoin_policy", "par")
    out: list[str] = []
    files = [f for f in (getattr(reporting, "price_file", None), getattr(reporting, "fx_file", None)) if f]
    row = conn.execute(select(ValuationState.c.fingerprint, ValuationState.c.currency, ValuationState.c.stablecoin_policy, ValuationState.c.valued_at)
                       .where(ValuationState.c.id == 1)).first()
    if row is not None:
        fp, used_currency, used_policy, valued_at = row
        when = valued_at.date().isoformat() if isinstance(valued_at, datetime) else str(valued_at)[:10]
        if used_currency is not None and used_currency != currency:
            out.append(f"values are in {used_currency} (valued {when}) but the reporting currency is {currency}: run `reconcile prices`")
        if used_policy is not None and used_policy != policy:
            out.append(f"valued under stablecoin policy {used_policy!r} but the policy is {policy!r}: run `reconcile prices`")
        if not out:
            try:
                current = valuation_fingerprint(reporting)
            except OSError:
                current = None
            if current != fp:
                named = f" ({', '.join(str(f) for f in files)})" if files else ""
                out.append(f"the currency, stablecoin policy, price resolution, price file or FX file{named} changed since the valuation of {when}: "
                           "run `reconcile prices`")
    elif files:
        out.append(f"{' and '.join(str(f) for f in files)}: not applied to the ledger yet: run `reconcile prices` (or `reconcile prices --offline`)")
    holding = _holding_account_ids(conn)
    if holding:
        q = select(Posting.c.price_currency).where(Posting.c.account_id.in_(holding), Posting.c.unit_price.is_not(None),
                                                 Posting.c.price_currency != currency)
        if start is not None or end is not None:
            q = q.join(JournalEntry, JournalEntry.c.id == Posting.c.entry_id)
            if start is not None:
                q = q.where(JournalEntry.c.timestamp >= start)
            if end is not None:
                q = q.where(JournalEntry.c.timestamp < end)
        others = sorted(c for (c,) in conn.execute(q.distinct()) if c)
        if others and not any("reporting currency is" in s for s in out):
            out.append(f"postings of the period are valued in {', '.join(others)}, not {currency}: run `reconcile prices`")
    return out


def _missing_fx(conn: Connection, reporting: Any, start: datetime | None, end: datetime | None) -> list[date]:
    currency = getattr(reporting, "currency", "USD")
    if currency == "USD":
        return []
    from .prices import _holding_account_ids, load_fx_file

    holding = _holding_account_ids(conn)
    if not holding:
        return []
    fx_file = getattr(reporting, "fx_file", None)
    fx = load_fx_file(fx_file) if fx_file else None
    day_sql = "substr(e.timestamp, 1, 10)" if conn.dialect.name == "sqlite" else "to_char(e.timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    where = ["p.account_id IN (" + ", ".join(str(int(i)) for i in holding) + ")"]
    params: dict[str, Any] = {}
    for name, value, op in (("start", start, ">="), ("end", end, "<")):
        if value is not None:
            where.append(f"e.timestamp {op} :{name}")
            params[name] = db_time(conn, value)
    days = sorted(
        date.fromisoformat(d)
        for (d,) in conn.execute(text(f"SELECT DISTINCT {day_sql} FROM journal_entries e JOIN postings p ON p.entry_id = e.id WHERE " + " AND ".join(where)), params)
        if d
    )
    return [d for d in days if fx is None or fx.rate(currency, d) is None]


def assess(conn: Connection, reporting: Any, *, start: datetime | None = None, end: datetime | None = None,
           findings: Iterable = (), venue_account: str | None = None, sample: int = 20) -> Completeness:
    """What is incomplete about the figures of [start, end) (``None``: unbounded).

    ``reporting``: the config's ``[reporting]`` (``currency``, ``stablecoin_policy``, ``price_file``,
    ``fx_file``, ``price_resolution``). ``findings``: the booking's findings that can feed the period,
    ``Books.findings_until(end)``; those of a kind in ``FIGURE_FINDINGS`` count. Raises
    ``InputError`` when the FX file cannot be read.
    """
    from .prices import unpriced_count, unpriced_events

    c = Completeness(start=start, end=end, currency=getattr(reporting, "currency", "USD"))
    c.unpriced = unpriced_count(conn, start=start, end=end, venue_account=venue_account)
    if c.unpriced:
        c.unpriced_sample = unpriced_events(conn, limit=sample, start=start, end=end, venue_account=venue_account)
    c.stale = _stale(conn, reporting, start, end)
    c.missing_fx = _missing_fx(conn, reporting, start, end)
    c.findings = _figure_findings(findings, end)
    return c
