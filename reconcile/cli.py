"""The ``reconcile`` command line: the composition root.

It alone wires importers, ledger and reports together. Logic lives in those packages; each command
here parses options, opens what it needs, calls one function and renders the outcome.

Exit codes: 0 ok; 1 error; 2 bad input or configuration; 3 reconciliation difference.
"""

from __future__ import annotations

import contextlib
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import __version__
from .config import Config, ConfigError, load_config, resolve_config_path, resolve_db_url
from .options import parse_out, parse_year

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_DIFFERENCE = 0, 1, 2, 3

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="reconcile",
    help="Reconcile a Backpack Exchange account: import its history into a double-entry ledger, "
    "prove it against the exchange's balances, and produce statements and tax exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
export_app = typer.Typer(help="Export the journal, realized gains or open lots.", no_args_is_help=True)
app.add_typer(export_app, name="export")

ConfigOpt = Annotated[
    Optional[str], typer.Option("--config", help="Config file (default: $RECONCILE_CONFIG, then ./reconcile.toml if present).")
]
DbOpt = Annotated[
    Optional[str], typer.Option("--db", help="Database URL (over $RECONCILE_DB, the config file and sqlite:///reconcile.db).")
]


class Context:
    """What a command needs: the checked config and the database URL."""

    #: Commands whose output carries the ledger's values: they refuse a stale valuation (a price or FX
    #: file changed, or corrupt, since `reconcile prices`), see ``ledger.prices.check_valuation_current``.
    VALUE_READERS = frozenset({"gains", "lots", "statement", "journal"})

    def __init__(self, config_opt: str | None, db_opt: str | None):
        self.config: Config = load_config(resolve_config_path(config_opt))
        self.db_url: str = resolve_db_url(db_opt, self.config)
        self.command: str | None = _INVOKED[-1] if _INVOKED else None

    def engine(self, *, migrate: bool = True):
        """The ledger's engine; with ``migrate`` the schema is brought to head first (under the
        writer lock, so two commands on a fresh database never race in the migration)."""
        from ledger.db import ensure_schema, make_engine

        engine = make_engine(self.db_url)
        try:
            if migrate:
                ensure_schema(engine)
            if self.command in self.VALUE_READERS:
                from ledger.prices import check_valuation_current

                with engine.connect() as conn:
                    check_valuation_current(conn, self.config.reporting)
        except BaseException:
            engine.dispose()
            raise
        return engine


def _version(value: bool) -> None:
    if value:
        console.print(f"reconcile {__version__}")
        raise typer.Exit()


#: The command this process runs (``["export", "gains"]``), recorded by the group callbacks.
_INVOKED: list[str] = []


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Backpack Exchange reconciliation and tax reporting."""
    _INVOKED[:] = [ctx.invoked_subcommand] if ctx.invoked_subcommand else []


@export_app.callback()
def _export(ctx: typer.Context) -> None:
    """Export the journal, realized gains or open lots."""
    if ctx.invoked_subcommand:
        _INVOKED.append(ctx.invoked_subcommand)


@app.command()
def init(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Create the database or upgrade it to the latest schema (harmless to run twice)."""
    from ledger.db import current_revision, ensure_schema, make_engine

    ctx = Context(config, db)
    engine = make_engine(ctx.db_url)
    before = current_revision(engine)
    ensure_schema(engine)  # the writer lock only when there is something to migrate
    after = current_revision(engine)
    engine.dispose()
    shown = _safe_url(ctx.db_url)
    if before == after:
        console.print(f"database {shown} is up to date (revision {after})")
    else:
        console.print(f"database {shown} upgraded from {before or 'empty'} to {after}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "<database>"


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the generated account.")] = 1,
    fills: Annotated[int, typer.Option(help="Number of fills in the generated account.")] = 2000,
    scenario: Annotated[Optional[str], typer.Option(help="Serve an account from this scenario JSON file.")] = None,
    faults: Annotated[Optional[str], typer.Option(help="Fault injection, e.g. '429=0.05,500=0.02,drop=0.01,seed=7'.")] = None,
    dump_scenario: Annotated[Optional[str], typer.Option("--dump-scenario", help="Write the generated account as a scenario file and exit.")] = None,
) -> None:
    """Run the wire-faithful Backpack Exchange simulator on loopback."""
    from importers.backpack.simulator.server import run_cli

    raise typer.Exit(run_cli(host, port, seed, fills, scenario, faults, dump_scenario))


@app.command()
def demo(
    fills: Annotated[int, typer.Option(help="Fills in the generated demo account.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the generated demo account.")] = 7,
    workdir: Annotated[Optional[str], typer.Option(help="Where to write the demo database, config and exports.")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Database for the demo ledger (default: demo.db in the work directory).")] = None,
    config: Annotated[Optional[str], typer.Option("--config", help="Take the cost-basis method and jurisdiction from this config's [reporting].")] = None,
) -> None:
    """Run the whole chain offline against a generated account on a local simulator."""
    from .demo import run_demo

    rep = load_config(Path(config)).reporting if config else None
    raise typer.Exit(run_demo(console, fills=fills, seed=seed, workdir=Path(workdir) if workdir else None, db_url=db,
                              method=rep.method if rep else "fifo", jurisdiction=rep.jurisdiction if rep else "us"))


# -- sync -------------------------------------------------------------------------------------------
def _clients(ctx: Context, account: str | None):
    """Build a client per configured account; keys are checked before any request (exit 2)."""
    from importers.backpack.client import BackpackClient
    from importers.backpack.signing import Credentials

    accounts = [ctx.config.account(account)] if account else list(ctx.config.accounts)
    if not accounts:
        raise ConfigError(f"{ctx.config.path or 'no config file'}: no [[accounts]] configured; nothing to sync")
    built = []
    for acc in accounts:
        secret = acc.read_secret(str(ctx.config.path))
        try:
            creds = Credentials.from_base64(acc.api_key, secret)
        except ValueError as exc:
            raise ConfigError(f"{ctx.config.path}: accounts[{acc.name}]: {exc}") from None
        built.append((acc, lambda acc=acc, creds=creds: BackpackClient(acc.base_url, creds, window_ms=acc.window_ms, rate_per_second=acc.rate_per_second)))
    return built


@app.command()
def sync(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account: Annotated[Optional[str], typer.Option(help="Sync only this configured account.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Read every endpoint from the beginning again.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only errors (for cron).")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="End with the reconciliation check.")] = True,
) -> None:
    """Import the accounts' whole history into the ledger: incremental, idempotent, resumable."""
    with _quiet_logs(quiet):
        _sync(config, db, account, full, quiet, check)


@contextlib.contextmanager
def _quiet_logs(quiet: bool):
    """``--quiet``: the importers' warnings (retries, clock re-syncs) are not printed; errors are."""
    import logging

    if not quiet:
        yield
        return
    logger = logging.getLogger("importers")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _sync(config, db, account, full: bool, quiet: bool, check: bool) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from rich.text import Text

    from reports.safety import terminal

    from importers.sync import finish_deferred, journal_is_empty, sync_account, verify_credentials
    from ledger.lock import database_lock

    from ledger.db import database_is_new, ensure_schema

    ctx = Context(config, db)
    clients = _clients(ctx, account)
    engine = ctx.engine(migrate=False)
    if database_is_new(engine):
        # A first sync tries each key with one signed request before it creates anything: a refused
        # key leaves no schema and no lock file behind. (On a ledger that exists, a second sync
        # still exits at the lock without a request.)
        for acc, make_client in clients:
            with make_client() as client:
                verify_credentials(client)
    reports = []
    # The lock comes first, then the migration: two first syncs never race in it (docs/reliability.md).
    with database_lock(engine):
        ensure_schema(engine, locked=True)
        # On PostgreSQL a first sync into an empty journal keeps raw records only and posts them in one
        # rebuild at the end: its per-row foreign-key checks are most of a bulk load (1M fills: 231 s
        # page by page, 154 s deferred). SQLite posts page by page faster than a rebuild (112 s vs 133 s).
        defer = engine.dialect.name == "postgresql" and journal_is_empty(engine)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, disable=quiet, transient=True) as progress:
            try:
                for acc, make_client in clients:
                    task = progress.add_task(f"{acc.name}: snapshot", total=None)

                    def on_page(endpoint, er, _acc=acc.name, _task=task):
                        progress.update(_task, description=f"{_acc}: {endpoint}: {er.received} records, {er.pages} pages, {er.rate:,.0f}/s")

                    with make_client() as client:
                        reports.append(sync_account(engine, client, acc.name, full=full, on_page=on_page, defer_posting=defer))
                    progress.remove_task(task)
            except BaseException:
                # A failed first sync still posts the whole pages it stored, so the ledger it leaves is
                # consistent; if even that fails (or the process is killed), the next sync does it.
                if defer:
                    with contextlib.suppress(Exception):
                        finish_deferred(engine)
                raise
            if defer:
                task = progress.add_task("posting the first sync's records (one journal rebuild)", total=None)
                examined = finish_deferred(engine)
                progress.remove_task(task)
                if examined and not quiet:
                    with engine.connect() as conn:
                        n = conn.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()
                    console.print(f"first sync: {n} entries posted from {examined} raw records in one journal rebuild")
        if not quiet:
            table = Table(title="sync")
            for col in ("account", "endpoint", "pages", "records", "new", "entries", "memo", "pending", "unknown", "records/s"):
                table.add_column(col, justify="left" if col in ("account", "endpoint") else "right")
            for rep in reports:
                for er in rep.endpoints:
                    b = er.by_status
                    table.add_row(Text(terminal(rep.venue_account)), er.endpoint, str(er.pages), str(er.received), str(er.new), str(er.entries),
                                  str(b.get("memo", 0)), str(b.get("pending", 0)), str(b.get("unknown", 0)), f"{er.rate:,.0f}")
            console.print(table)
            unknown = sum(r.unknown for r in reports)
            if unknown:
                console.print(f"{unknown} record(s) of unknown type kept raw; see `reconcile status`")
        if check:
            code = _run_check(ctx, engine, account=None if not account else account, at=None, as_json=False, quiet=quiet)
            engine.dispose()
            raise typer.Exit(code)
    engine.dispose()


# -- status -----------------------------------------------------------------------------------------
@app.command()
def status(
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Raw records, high-water marks and last sync per account and endpoint; entry counts; trial balance."""
    import json as _json

    from rich.table import Table

    from reports.status import status as get_status
    from reports.status import status_json

    ctx = Context(config, db)
    engine = ctx.engine()
    with engine.connect() as conn:
        st = get_status(conn)
        _add_pricing_status(conn, st)
    engine.dispose()
    if as_json:
        console.print_json(_json.dumps(status_json(st)))
        return
    from rich.text import Text

    from reports.status import status_rows, trial_balance_line

    table = Table(title="raw records")
    for col in ("account", "endpoint", "records", "by status", "high-water mark", "last sync"):
        table.add_column(col)
    for row in status_rows(st):
        table.add_row(*(Text(c) for c in row))  # Text: no markup in exchange-supplied names
    console.print(table)
    console.print(f"entries {st.entries}, postings {st.postings}; unknown records {st.unknown}; pending {st.pending}; unpriced events {st.unpriced}")
    console.print(trial_balance_line(st), markup=False, highlight=False)


def _add_pricing_status(conn, st) -> None:
    """Events without a reporting-currency value (never counted as zero; docs/pricing.md)."""
    from ledger.prices import unpriced_count

    st.unpriced = unpriced_count(conn)


def _rollforward(ctx: Context, engine, at):
    """The basis roll-forward from the start of ``at``'s calendar year (UTC) to ``at``, all accounts."""
    from datetime import datetime, timezone

    from ledger.booking import open_lots_at
    from ledger.booking import book as run_book
    from ledger.reconcile import basis_rollforward

    events, _findings, settings, opening = _booking(ctx, engine, method=None, scope=None, jurisdiction=None)
    start = datetime(at.year, 1, 1, tzinfo=timezone.utc)
    before = open_lots_at(events, settings, start, opening_lots=opening)
    upto = [e for e in events if e.time <= at]
    result = run_book(upto, settings, opening_lots=opening)
    return basis_rollforward(start, at, before, result.open_lots, result.gains)


def _run_check(ctx: Context, engine, *, account: str | None, at, as_json: bool, quiet: bool) -> int:
    """Compare each account's ledger with its snapshot; print the table; exit 0 or 3."""
    import json as _json

    from rich.table import Table

    from importers.sync import HISTORY_ENDPOINTS
    from ledger.money import plain
    from ledger.reconcile import check as run_check

    names = [account] if account else [a.name for a in ctx.config.accounts]
    if not names:
        with engine.connect() as conn:
            names = [n for (n,) in conn.exec_driver_sql("SELECT DISTINCT venue_account FROM snapshots ORDER BY 1")]
    if not names:
        raise ConfigError("no accounts configured and no snapshots in the database; run `reconcile sync` first")
    rollforward = _rollforward(ctx, engine, at) if at is not None else None
    outcomes = []
    with engine.begin() as conn:
        for name in names:
            outcomes.append(run_check(conn, name, at=at, expected_endpoints=HISTORY_ENDPOINTS, rollforward=rollforward))
    ok = all(o.ok for o in outcomes)
    if as_json:
        console.print_json(_json.dumps({"ok": ok, "accounts": [o.to_json() for o in outcomes]}))
        return EXIT_OK if ok else EXIT_DIFFERENCE
    from rich.text import Text

    from reports.safety import terminal

    def t(v) -> Text:  # exchange-supplied text: control sequences and bidi overrides escaped, no markup
        return Text(terminal(v))

    for o in outcomes:
        if quiet and o.ok:
            continue
        out = console if o.ok else err_console
        title = f"check {terminal(o.venue_account)}" + (f" at snapshot {o.as_of.isoformat(timespec='seconds')}" if o.as_of else "")
        table = Table(title=Text(title))
        for col in ("wallet", "asset", "ledger", "exchange", "difference", "likely causes"):
            table.add_column(col, justify="right" if col in ("ledger", "exchange", "difference") else "left")
        for l in o.lines:
            if quiet and l.ok:
                continue
            table.add_row(t(l.wallet), t(l.asset), plain(l.ledger), plain(l.exchange), plain(l.difference) if not l.ok else "0", t("\n".join(l.causes)))
        out.print(table)
        for n in o.notes:
            out.print(terminal(n), markup=False, highlight=False)
        if o.rollforward is not None:
            rf = o.rollforward
            out.print(f"basis roll-forward {rf.start.date()} .. {rf.end.isoformat(timespec='seconds')}: opening {plain(rf.opening)} + acquisitions "
                      f"{plain(rf.acquisitions)} - relieved {plain(rf.relieved)} = closing {plain(rf.closing)}: " + ("closes" if rf.ok else f"DIFFERENCE {plain(rf.difference)}"))
        out.print(f"{terminal(o.venue_account)}: " + ("ledger equals the exchange to the last unit" if o.ok else f"{len(o.differences)} difference(s)"))
    return EXIT_OK if ok else EXIT_DIFFERENCE


@app.command()
def check(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account: Annotated[Optional[str], typer.Option(help="Check only this venue account.")] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Check against the latest snapshot at or before this date/time (UTC).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Ledger-derived balances and positions against the exchange's own figures. Exit 3 on any difference."""
    from ledger.lock import database_lock

    ctx = Context(config, db)
    when = _parse_at(at)
    engine = ctx.engine()
    try:
        # A reader's lock: a sync in progress (a first sync above all) is reported as running, not
        # checked half-way and recorded as a failed check.
        with database_lock(engine, shared=True):
            code = _run_check(ctx, engine, account=account, at=when, as_json=as_json, quiet=False)
    finally:
        engine.dispose()
    raise typer.Exit(code)


# -- prices -----------------------------------------------------------------------------------------
@app.command()
def prices(
    config: ConfigOpt = None,
    db: DbOpt = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="First day of events to price (UTC).")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Day after the last (UTC).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Use only prices already cached; ask the exchange nothing.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Revalue every posting, not only new or unpriced ones.")] = False,
) -> None:
    """Fetch and cache the exchange's klines the ledger needs, then value every event in the reporting currency."""
    from importers.backpack.client import BackpackClient
    from importers.prices import fetch_prices
    from ledger.prices import unpriced_count, unpriced_events, value_ledger

    ctx = Context(config, db)
    rep = ctx.config.reporting
    start, end = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    engine = ctx.engine()
    if not offline:
        acc = ctx.config.accounts[0] if ctx.config.accounts else None
        base_url = acc.base_url if acc else "https://api.backpack.exchange"
        kline_rate = acc.kline_rate_per_minute if acc else 30.0
        with BackpackClient(base_url, None, historical_rate_per_minute=kline_rate) as client:  # public endpoints only
            fr = fetch_prices(engine, client, start=start, end=end, settings=rep)
        console.print(f"prices: {fr.requests} requests, {fr.bars_stored} bars cached"
                      + (f"; no market for {', '.join(fr.no_market)}" if fr.no_market else ""))
    vr = value_ledger(engine, rep, full=full)
    with engine.connect() as conn:
        missing = unpriced_count(conn)
        sample = unpriced_events(conn, limit=5) if missing else []
    engine.dispose()
    console.print(f"valued {vr.priced} (entry, asset) pairs in {vr.currency}; unpriced events: {missing}")
    from reports.safety import terminal

    for u in sample:
        err_console.print(terminal(f"  unpriced: {u.entry_key} {u.asset}: {u.reason}"), markup=False, highlight=False)


# -- export -----------------------------------------------------------------------------------------
def _parse_date(value: str | None, what: str):
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)


def _parse_at(value: str | None):
    """``--at``: a date/time in UTC; a bare date (YYYY-MM-DD) means the end of that day."""
    from datetime import timedelta

    when = _parse_date(value, "--at")
    if when is not None and len(value or "") == 10:
        when = when + timedelta(days=1) - timedelta(microseconds=1)
    return when


def _check_choices(method: str | None, scope: str | None, jurisdiction: str | None) -> None:
    from .config import JURISDICTIONS, METHODS, SCOPES

    for name, value, allowed in (("--method", method, METHODS), ("--scope", scope, SCOPES), ("--jurisdiction", jurisdiction, JURISDICTIONS)):
        if value is not None and value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(allowed)}")


FormatOpt = Annotated[str, typer.Option("--format", help="csv or xlsx.")]
MethodOpt = Annotated[Optional[str], typer.Option(help="fifo, lifo, hifo, lofo, average or uk (default: the config's).")]
ScopeOpt = Annotated[Optional[str], typer.Option(help="universal or account (default: the jurisdiction's).")]
JurisdictionOpt = Annotated[Optional[str], typer.Option(help="us, uk, de or generic (default: the config's).")]


def _check_format(fmt: str) -> str:
    if fmt not in ("csv", "xlsx"):
        raise ConfigError(f"--format: {fmt!r} is not one of csv, xlsx")
    return fmt


@export_app.command("journal")
def export_journal(
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")],
    fmt: FormatOpt = "csv",
    date_from: Annotated[Optional[str], typer.Option("--from", help="First day (inclusive, UTC).")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Last day (exclusive, UTC).")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The journal, one row per posting, in a stable order (identical ledgers give identical files)."""
    from reports.journal import journal_rows, write_journal

    _check_format(fmt)
    start, end = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    ctx = Context(config, db)
    engine = ctx.engine()
    with engine.connect() as conn:
        n = write_journal(journal_rows(conn, start=start, end=end), Path(out), fmt)
    engine.dispose()
    console.print(f"wrote {n} postings to {out}")



def _booking(ctx: Context, engine, *, method: str | None, scope: str | None, jurisdiction: str | None, account: str | None = None, rows: bool = False):
    """Events from the valued ledger (as event rows for ``book_rows`` with ``rows=True``) and the engine's
    settings, from the config and the options."""
    from ledger.basis import booking_events, booking_rows

    settings, bridge, opening = _booking_setup(ctx, engine, method=method, scope=scope, jurisdiction=jurisdiction)
    with engine.connect() as conn:
        if rows:
            events, findings = booking_rows(conn, bridge, venue_account=account)
        else:
            events, findings = booking_events(conn, bridge, venue_account=account)
    return events, findings, settings, opening


def _booking_setup(ctx: Context, engine, *, method: str | None, scope: str | None, jurisdiction: str | None):
    """The engine's settings, the bridge's settings and the opening lots, from the config and the
    options, once the ledger's schema is at head (migrated if it is not)."""
    from ledger.basis import BridgeSettings
    from ledger.booking import Settings, load_opening_lots

    rep = ctx.config.reporting
    # A jurisdiction named on the command line brings its own default method and scope: the config's
    # were chosen for the config's jurisdiction (--jurisdiction uk must not inherit fifo).
    own = jurisdiction is None or jurisdiction == rep.jurisdiction
    settings = Settings(
        method=method or (rep.method if own else None),
        scope=scope or (rep.scope if own else None),
        jurisdiction=jurisdiction or rep.jurisdiction,
        method_by_year=dict(rep.method_by_year) if own and not method else {},
        transfer_fee_policy=rep.transfer_fee_policy,
        currency=rep.currency,
    )
    with engine.connect() as conn:
        from ledger.db import head_revision

        # A read-only export needs the schema at head; alembic's own check costs ~0.1 s, this one query does not.
        try:
            rev = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except Exception:  # noqa: BLE001 - no version table: an empty or foreign database, migrated below
            rev = None
            conn.rollback()
    if rev != head_revision():
        from ledger.db import upgrade

        upgrade(engine)
    bridge = BridgeSettings(currency=rep.currency, stablecoin_policy=rep.stablecoin_policy)
    opening = load_opening_lots(rep.opening_lots) if rep.opening_lots else []
    return settings, bridge, opening


def _print_findings(findings, limit: int = 10) -> None:
    """The warnings' count per kind, then the first ``limit`` of them (``limit=0``: the count only)."""
    if not findings:
        return
    by_kind: dict[str, int] = {}
    for f in findings:
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
    from reports.safety import terminal

    err_console.print("warnings: " + ", ".join(f"{n} {terminal(k)}" for k, n in sorted(by_kind.items())), markup=False, highlight=False)
    if not limit:
        return
    for f in findings[:limit]:
        err_console.print(f"  {terminal(f.kind)}: {terminal(f.message)}", markup=False, highlight=False)
    if len(findings) > limit:
        err_console.print(f"  ... and {len(findings) - limit} more")


@export_app.command("gains")
def export_gains(
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")],
    year: Annotated[Optional[int], typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")] = None,
    all_years: Annotated[bool, typer.Option("--all-years", help="Every tax year in one file (instead of --year).")] = False,
    fmt: FormatOpt = "csv",
    method: MethodOpt = None,
    scope: ScopeOpt = None,
    jurisdiction: JurisdictionOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print the warnings' count only, not each warning.")] = False,
) -> None:
    """Realized gains: one row per (disposal, lot) fraction, for one tax year."""
    from decimal import localcontext

    from ledger.basis import ChildReadFailed, booking_row_chunks
    from ledger.booking import RowBooking
    from ledger.booking.rows import G_DISPOSED, G_GAIN
    from ledger.money import EXACT
    from reports.gains import GainsWriter, tax_year_of

    _check_format(fmt)
    if (year is None) == (not all_years):
        raise ConfigError("export gains: give exactly one of --year YYYY or --all-years")
    _check_choices(method, scope, jurisdiction)
    ctx = Context(config, db)
    engine = ctx.engine(migrate=False)  # _booking_setup checks the schema revision
    settings, bridge, opening = _booking_setup(ctx, engine, method=method, scope=scope, jurisdiction=jurisdiction)
    zone = settings.tax_timezone
    total = Decimal(0)

    def put(gains: list[tuple]) -> None:  # a batch of gains, in order: the year's to the file, and their net
        nonlocal total
        if not all_years:
            gains = [g for g in gains if tax_year_of(g[G_DISPOSED], settings.jurisdiction, zone) == year]
        writer.write(gains)
        with localcontext(EXACT):  # exact: the default context keeps 28 digits
            total = sum((g[G_GAIN] for g in gains), total)

    # Read, book and write build about a million acyclic tuples and decimals: the cycle collector's full
    # passes over them found nothing and cost a tenth of the command, so it is paused for this part.
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        # The ledger is read, bridged, booked and written a chunk at a time: a large SQLite ledger is read by
        # a child process, and each chunk is booked and written while the next is read (ledger.basis).
        # Times stay their cell text, rearranged from the stored text (cheaper than parsing and formatting).
        with GainsWriter(Path(out), fmt, sheet="Gains" if all_years else f"Gains {year}") as writer:
            for child in (True, False):
                findings: list = []
                booking = RowBooking(settings, opening_lots=opening)
                try:
                    with engine.connect() as conn:
                        for rows in booking_row_chunks(conn, bridge, findings, text_times=True, child=child):
                            put(booking.feed(rows))
                except ChildReadFailed:
                    if not child:
                        raise
                    writer.restart()  # read again in process: what the child's chunks gave is dropped
                    total = Decimal(0)
                    continue
                break
            engine.dispose()
            result = booking.finish(lots=False)  # the open lots are not exported here
            if booking.restarted:  # the history left the fast path after some gains were written: all again
                writer.restart()
                total = Decimal(0)
            put(result.gains)
            writer.commit()
        n = writer.count
        findings += result.findings
        del booking, result  # freed now by reference counting, so the collector has no million objects to scan when it resumes
    finally:
        if collecting:
            gc.enable()
    _print_findings(findings, limit=0 if quiet else 10)
    from ledger.money import plain

    console.print(f"wrote {n} gain rows for {'all years' if all_years else year} ({settings.method}, {settings.scope}, {settings.jurisdiction}) to {out}; net {plain(total)} {settings.currency}")


@export_app.command("lots")
def export_lots(
    at: Annotated[str, typer.Option("--at", help="Open lots at this date/time (UTC; a date means its end).")],
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")],
    fmt: FormatOpt = "csv",
    method: MethodOpt = None,
    scope: ScopeOpt = None,
    jurisdiction: JurisdictionOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Open lots with their basis at a date."""
    from ledger.booking import book_rows
    from reports.gains import LOTS_COLUMNS, lot_cells, write_table

    _check_format(fmt)
    _check_choices(method, scope, jurisdiction)
    when = _parse_at(at)
    ctx = Context(config, db)
    engine = ctx.engine(migrate=False)  # _booking checks the schema revision
    events, findings, settings, opening = _booking(ctx, engine, method=method, scope=scope, jurisdiction=jurisdiction, rows=True)
    engine.dispose()
    # The lots open at ``when``: the events up to it booked alone (``open_lots_at`` on event rows).
    lots = book_rows([r for r in events if r[0] <= when], settings, opening_lots=opening).open_lots
    n = write_table(Path(out), fmt, LOTS_COLUMNS, (lot_cells(l) for l in lots), sheet="Lots")
    console.print(f"wrote {n} open lots at {when.isoformat()} to {out}")


@app.command()
def statement(
    year: Annotated[int, typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")],
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="html or xlsx.")] = "html",
    method: MethodOpt = None,
    scope: ScopeOpt = None,
    jurisdiction: JurisdictionOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The year's statement for an accountant: reconciliation, gains, income, balances, unpriced events, warnings."""
    from ledger.booking import book
    from ledger.prices import unpriced_events
    from reports.gains import tax_year_of
    from reports.statement import GENERATORS, build_statement, tax_year_bounds

    if fmt not in GENERATORS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(GENERATORS)}")
    _check_choices(method, scope, jurisdiction)
    ctx = Context(config, db)
    engine = ctx.engine()
    events, findings, settings, opening = _booking(ctx, engine, method=method, scope=scope, jurisdiction=jurisdiction)
    result = book(events, settings, opening_lots=opening)
    zone = settings.tax_timezone
    with engine.connect() as conn:
        st = build_statement(
            conn,
            year=year,
            period=tax_year_bounds(year, settings.jurisdiction, zone),
            year_of=lambda t: tax_year_of(t, settings.jurisdiction, zone),
            gains=result.gains,
            findings=list(findings) + list(result.findings),
            currency=settings.currency,
            method=settings.method,
            scope=settings.scope,
            jurisdiction=settings.jurisdiction,
            unpriced=unpriced_events(conn),
        )
    engine.dispose()
    GENERATORS[fmt](st, Path(out))
    console.print(f"wrote the {year} statement ({fmt}) to {out}: {len(st.gains)} gain rows, {len(st.checks)} reconciliation check(s), "
                  f"{len(st.unpriced)} unpriced events, {len(st.findings)} warnings")


def _bad_input_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConfigError]
    from ledger.db import DatabaseError

    types.append(DatabaseError)
    try:
        from importers.backpack.signing import KeyError_

        types.append(KeyError_)
    except ImportError:  # pragma: no cover
        pass
    try:
        from importers.backpack.simulator.scenario import ScenarioError

        types.append(ScenarioError)
    except ImportError:
        pass
    from importers.backpack.errors import ConfigError as ClientConfigError

    types.append(ClientConfigError)
    from ledger.inputs import InputError

    types.append(InputError)
    from ledger.booking import OpeningLotsError, SettingsError

    types += [OpeningLotsError, SettingsError]
    return tuple(types)


def _failure_types() -> tuple[type[BaseException], ...]:
    from importers.backpack.errors import BackpackError
    from ledger.journal import LedgerError
    from ledger.lock import DatabaseLocked

    return (BackpackError, DatabaseLocked, LedgerError)


_click_command = None


def _command():
    """The click command of ``app``, built once per process: typer builds it from the command
    functions' signatures on each call of ``app()`` (about 25 ms), which callers in one process
    (tests, the benchmarks, a scheduler) would pay on every command."""
    global _click_command
    if _click_command is None:
        _click_command = typer.main.get_command(app)
    return _click_command


def main(argv: list[str] | None = None) -> int:
    """Console entry point: typed errors become one line on stderr and an exit code."""
    try:
        _command()(args=argv, prog_name="reconcile", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    except _bad_input_types() as exc:
        _error_line(exc)
        return EXIT_BAD_INPUT
    except _failure_types() as exc:
        _error_line(exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err_console.print("reconcile: interrupted", markup=False)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            _error_line(f"database: {_database_message(exc)}")
            return EXIT_ERROR
        _error_line(f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    return EXIT_OK


def _error_line(message: object) -> None:
    """``reconcile: error: ...`` as one line on stderr, control characters and bidi overrides escaped."""
    from reports.safety import terminal

    text = " ".join(terminal(message).splitlines()) or "unknown error"
    err_console.print(f"reconcile: error: {text}", markup=False, highlight=False, soft_wrap=True)


def _database_message(exc: BaseException) -> str:
    """A database error without its statement or parameters (they can carry an account's balances):
    the driver's own first line, else the error's type."""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        first = str(orig).strip().splitlines()
        return first[0] if first else type(orig).__name__
    return type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
