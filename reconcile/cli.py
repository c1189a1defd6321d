"""The ``reconcile`` command line: the composition root.

It alone wires importers, ledger and reports together. Logic lives in those packages; each command
here parses options, opens what it needs, calls one function and renders the outcome.

Exit codes: 0 ok; 1 error; 2 bad input or configuration; 3 reconciliation difference; 4 incomplete data
(docs/reports.md).
"""

from __future__ import annotations

import contextlib
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import EXIT_BAD_INPUT, EXIT_DIFFERENCE, EXIT_ERROR, EXIT_OK, __version__
from .config import Config, ConfigError, load_config, resolve_config_path, resolve_db_url
from .options import parse_out, parse_year

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

    #: Commands whose output carries the ledger's values: a price or FX file that cannot be read (or names
    #: an asset the ledger lacks) is bad input for them, exit 2 (``ledger.prices.check_valuation_current``);
    #: a stale valuation is the completeness gate's, exit 4 (``ledger.completeness``; docs/reports.md).
    VALUE_READERS = frozenset({"gains", "lots", "statement", "journal", "report", "tax", "income", "koinly", "cointracker", "awaken",
                               "beancount", "hledger"})

    def __init__(self, config_opt: str | None, db_opt: str | None):
        self.config: Config = load_config(resolve_config_path(config_opt))
        self.db_url: str = resolve_db_url(db_opt, self.config)
        self.command: str | None = _INVOKED[-1] if _INVOKED else None

    #: Commands that may start from a database with no ledger (``sync`` and ``init`` create it themselves).
    MAY_START_EMPTY = frozenset({"watch"})
    #: Commands whose figures come from what was imported: a ledger nothing was imported into is bad input.
    FIGURES = VALUE_READERS | {"perps"}

    def engine(self, *, migrate: bool = True):
        """The ledger's engine; with ``migrate`` the schema is brought to head first (under the
        writer lock, so two commands on a fresh database never race in the migration). A database
        with no ledger is refused before anything is created (a mistyped URL would otherwise become
        an empty ledger and its exports zeros), and by the figure commands a ledger nothing was
        imported into (``ledger.db.require_ledger``, ``require_imported``)."""
        from ledger.db import ensure_schema, make_engine, require_imported, require_ledger

        engine = make_engine(self.db_url)
        try:
            if migrate:
                if self.command not in self.MAY_START_EMPTY:
                    require_ledger(engine)
                ensure_schema(engine)
                if self.command in self.FIGURES:
                    require_imported(engine)
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
    live_fills: Annotated[Optional[int], typer.Option("--live-fills", help="Replay the account's last N fills on the WebSocket streams (-1: all).")] = None,
    live_rate: Annotated[Optional[float], typer.Option("--live-rate", help="Live fills per second (0: as fast as clients read).")] = None,
    ws_faults: Annotated[Optional[str], typer.Option("--ws-faults", help="WebSocket faults, e.g. 'drop=0.001,delay=0.01,missing=0.01,duplicate=0.01,seed=3'.")] = None,
) -> None:
    """Run the wire-faithful Backpack Exchange simulator on loopback."""
    from importers.backpack.simulator.server import run_cli

    raise typer.Exit(run_cli(host, port, seed, fills, scenario, faults, dump_scenario, live_fills, live_rate, ws_faults))


@app.command()
def demo(
    out: Annotated[Optional[str], typer.Option("--out", help="Folder for the demo's ledger, config and outputs (default: a new temporary folder).")] = None,
    fills: Annotated[int, typer.Option(help="Fills in the generated demo account.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the generated demo account.")] = 7,
    jurisdiction: Annotated[Optional[str], typer.Option("--jurisdiction", help="Tax jurisdiction of the demo's config (default us).")] = None,
    method: MethodOpt = None,
    workdir: Annotated[Optional[str], typer.Option("--workdir", hidden=True, help="Same as --out.")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Database for the demo ledger (default: demo.db in the output folder).")] = None,
    config: Annotated[Optional[str], typer.Option("--config", help="Take the cost-basis method and jurisdiction from this config's [reporting].")] = None,
) -> None:
    """Run the whole chain offline against a generated account on a local simulator."""
    from .demo import run_demo

    rep = load_config(Path(config)).reporting if config else None
    jurisdiction = jurisdiction or (rep.jurisdiction if rep else "us")
    method = method or (rep.method if rep else None)
    _check_choices(method, None, jurisdiction)
    folder = out or workdir
    raise typer.Exit(run_demo(console, main, fills=fills, seed=seed, workdir=Path(folder) if folder else None, db_url=db,
                              method=method, jurisdiction=jurisdiction))


# -- sync -------------------------------------------------------------------------------------------
def _clients(ctx: Context, account: str | None):
    """Build a client per configured account; keys are checked before any request (exit 2)."""
    from importers.backpack.client import BackpackClient

    return [(acc, lambda acc=acc, creds=creds: BackpackClient(acc.base_url, creds, window_ms=acc.window_ms, rate_per_second=acc.rate_per_second))
            for acc, creds in _credentials(ctx, [account] if account else [], "sync")]


def _credentials(ctx: Context, names: list[str], what: str) -> list:
    """``(account config, credentials)`` for the named accounts (all configured ones if none are
    named), each secret read and its key checked before any request (exit 2)."""
    from importers.backpack.signing import Credentials

    chosen = [ctx.config.account(n) for n in names] if names else list(ctx.config.accounts)
    if not chosen:
        raise ConfigError(f"{ctx.config.path or 'no config file'}: no [[accounts]] configured; nothing to {what}")
    out = []
    for acc in chosen:
        secret = acc.read_secret(str(ctx.config.path))
        try:
            out.append((acc, Credentials.from_base64(acc.api_key, secret)))
        except ValueError as exc:
            raise ConfigError(f"{ctx.config.path}: accounts[{acc.name}]: {exc}") from None
    return out


@app.command()
def sync(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account: Annotated[Optional[str], typer.Option(help="Sync only this configured account.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Read every endpoint from the beginning again.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only errors (for cron).")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="End with the reconciliation check.")] = True,
    value: Annotated[bool, typer.Option("--prices/--no-prices", help="Value what was imported (fetching the klines it needs) before the check.")] = True,
) -> None:
    """Import the accounts' whole history into the ledger, value it and check it: incremental, idempotent, resumable."""
    with _quiet_logs(quiet):
        _sync(config, db, account, full, quiet, check, value)


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


def _sync(config, db, account, full: bool, quiet: bool, check: bool, value: bool = True) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from rich.text import Text

    from reports.safety import terminal_line

    from importers.sync import sync_accounts, verify_credentials
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
    # The lock comes first, then the migration: two first syncs never race in it (docs/reliability.md).
    with database_lock(engine):
        ensure_schema(engine, locked=True)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, disable=quiet, transient=True) as progress:
            tasks: list = []

            def on_account(name: str):
                while tasks:
                    progress.remove_task(tasks.pop())
                task = progress.add_task(f"{name}: snapshot", total=None)
                tasks.append(task)

                def on_page(endpoint, er, _acc=name, _task=task):
                    progress.update(_task, description=f"{_acc}: {endpoint}: {er.received} records, {er.pages} pages, {er.rate:,.0f}/s")

                return on_page

            def on_rebuild() -> None:
                while tasks:
                    progress.remove_task(tasks.pop())
                tasks.append(progress.add_task("posting the first sync's records (one journal rebuild)", total=None))

            run = sync_accounts(engine, ((acc.name, make_client) for acc, make_client in clients), full=full, on_account=on_account,
                                on_rebuild=on_rebuild)
            reports = run.reports
        if run.rebuilt_from and not quiet:
            with engine.connect() as conn:
                n = conn.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()
            console.print(f"first sync: {n} entries posted from {run.rebuilt_from} raw records in one journal rebuild")
        if not quiet:
            table = Table(title="sync")
            for col in ("account", "endpoint", "pages", "records", "new", "entries", "memo", "pending", "unknown", "records/s"):
                table.add_column(col, justify="left" if col in ("account", "endpoint") else "right")
            for rep in reports:
                for er in rep.endpoints:
                    b = er.by_status
                    table.add_row(Text(terminal_line(rep.venue_account)), er.endpoint, str(er.pages), str(er.received), str(er.new), str(er.entries),
                                  str(b.get("memo", 0)), str(b.get("pending", 0)), str(b.get("unknown", 0)), f"{er.rate:,.0f}")
            console.print(table)
            unknown = sum(r.unknown for r in reports)
            if unknown:
                console.print(f"{unknown} record(s) of unknown type kept raw; see `reconcile status`")
        if value:  # the nightly job is one command: what was imported is valued before the check
            _value(ctx, engine, quiet=quiet, only_new=True)
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

    from reports.safety import terminal_line
    from reports.status import status as get_status
    from reports.status import status_json

    ctx = Context(config, db)
    engine = ctx.engine()
    with engine.connect() as conn:
        st = get_status(conn)
        _add_pricing_status(conn, st)
        _add_live_status(conn, st)
    if as_json:
        engine.dispose()
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
    if st.extra.get("unknown_fills_by_symbol"):  # dated futures, IPERP, prediction markets, ... (docs/perps.md)
        console.print("fills kept raw as unknown, by market: " + ", ".join(f"{terminal_line(k)} {v}" for k, v in st.extra["unknown_fills_by_symbol"].items()),
                      markup=False, highlight=False)
    console.print(trial_balance_line(st), markup=False, highlight=False)
    _print_live_view(engine)
    engine.dispose()


def _add_live_status(conn, st) -> None:
    """The live view (``reconcile watch``) under ``live`` in ``status --json``."""
    from datetime import datetime, timezone

    from reports.status import live_view, live_view_json

    view = live_view(conn, datetime.now(timezone.utc))
    if view:
        st.extra["live"] = live_view_json(view)


def _add_pricing_status(conn, st) -> None:
    """Events without a reporting-currency value (never counted as zero; docs/pricing.md)."""
    from ledger.prices import unpriced_count

    st.unpriced = unpriced_count(conn)
    from ledger.perps import unknown_derivatives

    unknown_fills = unknown_derivatives(conn)
    if unknown_fills:
        st.extra["unknown_fills_by_symbol"] = unknown_fills


def _run_check(ctx: Context, engine, *, account: str | None, at, as_json: bool, quiet: bool) -> int:
    """Compare each account's ledger with its snapshot; print the table; exit 0 or 3."""
    import json as _json

    from rich.table import Table

    from importers.sync import HISTORY_ENDPOINTS
    from ledger.money import plain
    from ledger.reconcile import check_accounts, venue_accounts

    names = [account] if account else [a.name for a in ctx.config.accounts]
    if not names:
        with engine.connect() as conn:
            names = venue_accounts(conn)
    if not names:
        raise ConfigError("no accounts configured and none in the database; run `reconcile sync` first")
    settings = _settings(ctx, method=None, scope=None, jurisdiction=None) if at is not None else None
    outcomes = check_accounts(engine, names, at=at, settings=settings, expected_endpoints=HISTORY_ENDPOINTS)
    ok = all(o.ok for o in outcomes)
    if as_json:
        console.print_json(_json.dumps({"ok": ok, "accounts": [o.to_json() for o in outcomes]}))
        return EXIT_OK if ok else EXIT_DIFFERENCE
    from rich.text import Text

    from reports.safety import terminal_line

    def t(v) -> Text:  # exchange-supplied text: control sequences and bidi overrides escaped, no markup
        return Text(terminal_line(v))

    for o in outcomes:
        if quiet and o.ok:
            continue
        out = console if o.ok else err_console
        if at is not None:
            title = f"check {terminal_line(o.venue_account)} at {at.isoformat(timespec='seconds')}" + (f" ({o.basis} snapshot)" if o.basis else "")
        else:
            title = f"check {terminal_line(o.venue_account)}" + (f" at snapshot {o.as_of.isoformat(timespec='seconds')}" if o.as_of else "")
        table = Table(title=Text(title))
        for col in ("wallet", "asset", "ledger", "exchange", "difference", "likely causes"):
            table.add_column(col, justify="right" if col in ("ledger", "exchange", "difference") else "left")
        for l in o.lines:
            if quiet and l.ok:
                continue
            table.add_row(t(l.wallet), t(l.asset), plain(l.ledger), plain(l.exchange), plain(l.difference) if not l.ok else "0",
                          Text("\n".join(terminal_line(c) for c in l.causes)))  # one cause a line, each escaped
        out.print(table)
        for n in o.notes:
            out.print(terminal_line(n), markup=False, highlight=False)
        _print_perps(out, o.perps)
        if o.rollforward is not None:
            rf = o.rollforward
            out.print(f"basis roll-forward {rf.start.date()} .. {rf.end.isoformat(timespec='seconds')}: opening {plain(rf.opening)} + acquisitions "
                      f"{plain(rf.acquisitions)} - relieved {plain(rf.relieved)} = closing {plain(rf.closing)}: " + ("closes" if rf.ok else f"DIFFERENCE {plain(rf.difference)}"))
        # The last line names every reason the check fails (not only line differences).
        out.print(f"{terminal_line(o.venue_account)}: " + ("ledger equals the exchange to the last unit" if o.ok else "not reconciled: " + ", ".join(o.problems)),
                  markup=False, highlight=False)
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
        if not as_json and when is None:
            _print_live_view(engine)
    finally:
        engine.dispose()
    raise typer.Exit(code)


# -- prices -----------------------------------------------------------------------------------------
def _value(ctx: Context, engine, *, start=None, end=None, offline: bool = False, full: bool = False, quiet: bool = False,
           only_new: bool = False) -> None:
    """``reconcile prices`` and the end of ``reconcile sync`` (``importers.prices.fetch_and_value``),
    with a progress bar on a terminal unless ``quiet``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from importers.prices import fetch_and_value

    acc = ctx.config.accounts[0] if ctx.config.accounts else None
    with Progress(TextColumn("prices"), BarColumn(), MofNCompleteColumn(), TextColumn("symbols"), TimeElapsedColumn(),
                  console=console, disable=quiet or offline or not console.is_terminal, transient=True) as bar:
        task = bar.add_task("prices", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        v = fetch_and_value(engine, ctx.config.reporting, base_url=acc.base_url if acc else "https://api.backpack.exchange",
                            kline_rate_per_minute=acc.kline_rate_per_minute if acc else 30.0, start=start, end=end, offline=offline,
                            full=full, only_new=only_new, progress=on_progress)
    if not quiet:
        if v.fetch is not None:
            fr = v.fetch
            console.print(f"prices: {fr.requests} requests, {fr.bars_stored} bars cached"
                          + (f"; no market for {', '.join(fr.no_market)}" if fr.no_market else ""))
        console.print(f"valued {v.priced} (entry, asset) pairs in {v.currency}; unpriced events: {v.unpriced}")
    # --quiet (cron) prints errors only: unpriced events are not one; `status` counts them and every
    # report over their period refuses to look complete (exit 4).
    from reports.safety import terminal_line

    for u in v.sample if not quiet else ():
        err_console.print(f"  unpriced: {terminal_line(u.entry_key)} {terminal_line(u.asset)}: {terminal_line(u.reason)}", markup=False, highlight=False)


@app.command()
def prices(
    config: ConfigOpt = None,
    db: DbOpt = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="First day of events to price (UTC).")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Day after the last (UTC).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Use only prices already cached; ask the exchange nothing.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Revalue every posting, not only new or unpriced ones.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar; print only the unpriced count, if any (for cron).")] = False,
) -> None:
    """Fetch and cache the exchange's klines the ledger needs, then value every event in the reporting currency."""
    ctx = Context(config, db)
    start, end = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    engine = ctx.engine()
    try:
        _value(ctx, engine, start=start, end=end, offline=offline, full=full, quiet=quiet)
    finally:
        engine.dispose()


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
    """``--at``: a date/time in UTC, not in the future; a bare date (YYYY-MM-DD) means the end of that day."""
    from datetime import timedelta

    from .options import latest_today

    when = _parse_date(value, "--at")
    if when is not None and when.date() > latest_today():
        raise ConfigError(f"--at: {value} is in the future (today is {latest_today().isoformat()})")
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
def refuse_stale(ctx: Context, conn, *, allow: bool, what: str, can_allow: bool = True) -> list[str]:
    """A stale valuation (``ledger.completeness.stale_valuation``: the price or FX file, the currency or
    the stablecoin policy changed since ``reconcile prices``) is incomplete data for every command that
    writes the ledger's values and has no period gate of its own: without ``allow`` its first line says
    so and it exits ``EXIT_INCOMPLETE`` before writing anything; with ``allow`` the reasons are returned
    for the output to carry (and printed as a warning)."""
    from ledger.completeness import EXIT_INCOMPLETE, stale_valuation
    from reports.safety import terminal_line

    stale = stale_valuation(conn, ctx.config.reporting)
    if not stale:
        return []
    headline = "INCOMPLETE DATA: stale valuation: " + "; ".join(stale)
    if not allow:
        err_console.print(f"reconcile: incomplete: {what}: {terminal_line(headline)}", markup=False, highlight=False, soft_wrap=True)
        err_console.print("nothing written; run `reconcile prices`" + (", or write the figures marked incomplete with --allow-incomplete" if can_allow else
                          " first (an import file for another tool carries no warning line, so it is never written stale)"), markup=False, highlight=False)
        raise typer.Exit(EXIT_INCOMPLETE)
    err_console.print(f"warning: {what}: {terminal_line(headline)}", markup=False, highlight=False, soft_wrap=True)
    return stale


AllowIncompleteOpt = Annotated[bool, typer.Option("--allow-incomplete", envvar="RECONCILE_ALLOW_INCOMPLETE",
                                                  help="Write the figures even if the period's data is incomplete (marked so in every output) instead of exiting 4 (also $RECONCILE_ALLOW_INCOMPLETE=1).")]


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
    allow_incomplete: AllowIncompleteOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The journal, one row per posting, in a stable order (identical ledgers give identical files). Exit 4 on a stale valuation."""
    from reports.gate import gated_journal

    _check_format(fmt)
    start, end = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    ctx = Context(config, db)
    engine = ctx.engine()
    try:
        with engine.connect() as conn:
            n, _c = gated_journal(conn, ctx.config.reporting, Path(out), fmt, start=start, end=end,
                                  gate=lambda c: gate_complete(c, allow=allow_incomplete, what="export journal"))
    finally:
        engine.dispose()
    console.print(f"wrote {n} postings to {out}")



def _settings(ctx: Context, *, method: str | None, scope: str | None, jurisdiction: str | None):
    """The booking settings from the config's [reporting] and the command's options."""
    from ledger.books import resolve_settings

    _check_choices(method, scope, jurisdiction)
    return resolve_settings(ctx.config.reporting, method=method, scope=scope, jurisdiction=jurisdiction)


def _print_findings(findings, limit: int = 10) -> None:
    """The warnings' count per kind, then the first ``limit`` of them (``limit=0``: the count only)."""
    if not findings:
        return
    by_kind: dict[str, int] = {}
    for f in findings:
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
    from reports.safety import terminal_line

    err_console.print("warnings: " + ", ".join(f"{n} {terminal_line(k)}" for k, n in sorted(by_kind.items())), markup=False, highlight=False)
    if not limit:
        return
    for f in findings[:limit]:
        err_console.print(f"  {terminal_line(f.kind)}: {terminal_line(f.message)}", markup=False, highlight=False)
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
    allow_incomplete: AllowIncompleteOpt = False,
) -> None:
    """Realized gains: one row per (disposal, lot) fraction, for one tax year. Exit 4 on incomplete data."""
    from ledger.money import plain
    from reports.gate import gated_gains

    _check_format(fmt)
    if (year is None) == (not all_years):
        raise ConfigError("export gains: give exactly one of --year YYYY or --all-years")
    ctx = Context(config, db)
    settings = _settings(ctx, method=method, scope=scope, jurisdiction=jurisdiction)
    engine = ctx.engine()
    what = f"export gains {year if year is not None else '--all-years'}"
    try:
        with engine.connect() as conn:
            done, _c = gated_gains(conn, ctx.config.reporting, settings, Path(out), fmt, year=year, allow=allow_incomplete,
                                   gate=lambda c: gate_complete(c, allow=allow_incomplete, what=what))
    finally:
        engine.dispose()
    _print_findings(done.findings, limit=0 if quiet else 10)
    b = settings.booking
    console.print(f"wrote {done.rows} gain rows for {'all years' if all_years else year} ({b.method}, {b.scope}, {b.jurisdiction}) to {out}; net {plain(done.net)} {settings.currency}")


@export_app.command("lots")
def export_lots(
    at: Annotated[str, typer.Option("--at", help="Open lots at this date/time (UTC; a date means its end).")],
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")],
    fmt: FormatOpt = "csv",
    method: MethodOpt = None,
    scope: ScopeOpt = None,
    jurisdiction: JurisdictionOpt = None,
    allow_incomplete: AllowIncompleteOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Open lots with their basis at a date. Exit 4 on incomplete data."""
    from reports.gate import gated_lots

    _check_format(fmt)
    when = _parse_at(at)
    ctx = Context(config, db)
    settings = _settings(ctx, method=method, scope=scope, jurisdiction=jurisdiction)
    engine = ctx.engine()
    try:
        with engine.connect() as conn:
            n, _findings, _c = gated_lots(conn, ctx.config.reporting, settings, Path(out), fmt, at=when,
                                          gate=lambda c: gate_complete(c, allow=allow_incomplete, what=f"export lots at {at}"))
    finally:
        engine.dispose()
    console.print(f"wrote {n} open lots at {when.isoformat()} to {out}")


def check_complete(ctx: Context, conn, *, findings, start, end, allow: bool, what: str, account: str | None = None):
    """The completeness gate every report and export over a period passes (``ledger.completeness``).

    Complete: returns quietly. Incomplete without ``allow``: the verdict is the command's first line
    (stderr) and it exits ``EXIT_INCOMPLETE`` before writing anything. With ``allow``: the first line
    is the warning, and the caller writes the verdict where the figures are. ``findings``: the
    booking's ``Books.findings_until(end)``. Returns the ``Completeness``."""
    from ledger.completeness import assess

    c = assess(conn, ctx.config.reporting, start=start, end=end, findings=findings, venue_account=account)
    return gate_complete(c, allow=allow, what=what)


def gate_complete(c, *, allow: bool, what: str):
    """``check_complete`` for a ``Completeness`` already assessed."""
    from ledger.completeness import EXIT_INCOMPLETE
    from reports.safety import terminal_line

    if c.complete:
        return c
    if not allow:
        err_console.print(f"reconcile: incomplete: {what}: {terminal_line(c.headline())}", markup=False, highlight=False)
        for f in c.findings[:5]:
            err_console.print(f"  {f.kind}: {terminal_line(f.message)}", markup=False, highlight=False)
        for u in c.unpriced_sample[:5]:
            err_console.print(f"  unpriced: {terminal_line(u.entry_key)} {terminal_line(u.asset)}: {terminal_line(u.reason)}", markup=False, highlight=False)
        err_console.print("nothing written; fix the data, or write the figures marked incomplete with --allow-incomplete", markup=False, highlight=False)
        raise typer.Exit(EXIT_INCOMPLETE)
    err_console.print(f"warning: {what}: {terminal_line(c.headline())}", markup=False, highlight=False)
    return c


def _build_report(ctx: Context, conn, *, year, date_from, date_to, account, method, scope, jurisdiction, allow: bool, what: str, compare: bool = True,
                  workbook: bool = True):
    """Book, gate on completeness and gather the period's report (``reports.report.build_report``)."""
    from ledger.books import resolve_settings
    from reports.report import build_report, period_of

    _check_choices(method, scope, jurisdiction)
    settings = resolve_settings(ctx.config.reporting, method=method, scope=scope, jurisdiction=jurisdiction)
    try:
        start, end, label = period_of(settings, year, _parse_date(date_from, "--from"), _parse_date(date_to, "--to"))
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if account is not None:
        known = {n for (n,) in conn.exec_driver_sql("SELECT DISTINCT venue_account FROM journal_entries")}
        configured = {a.name for a in ctx.config.accounts}
        if account not in known | configured:
            raise ConfigError(f"--account: {account!r} is not a configured account and has no entries in the ledger")
    accounts = [a.name for a in ctx.config.accounts] or None
    # The gate runs right after the period's booking: an incomplete period writes nothing (exit 4) unless allowed.
    # ``conn`` stays open while the report is written: the journal and the drill-down are read from it then.
    return build_report(conn, ctx.config.reporting, settings, start=start, end=end, label=label, account=account, accounts=accounts,
                        compare=compare, allow_incomplete=allow, gate=lambda c: gate_complete(c, allow=allow, what=what), detail_rows=workbook)


from datetime import timedelta as _timedelta  # noqa: E402

_MICRO = _timedelta(microseconds=1)


@app.command()
def statement(
    year: Annotated[int, typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")],
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="html or xlsx.")] = "html",
    account: Annotated[Optional[str], typer.Option(help="Only this venue account.")] = None,
    method: MethodOpt = None,
    scope: ScopeOpt = None,
    jurisdiction: JurisdictionOpt = None,
    jurisdictions: Annotated[Optional[str], typer.Option("--jurisdictions", help="Comma-separated us,uk,de,ca,au,jp,generic (or all): "
                                                         "each jurisdiction's tax-relevant totals side by side in the statement.")] = None,
    allow_incomplete: AllowIncompleteOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The year's statement as one file (the single-file form of `reconcile report`). Exit 4 on incomplete data."""
    if fmt not in ("html", "xlsx"):
        raise ConfigError(f"--format: {fmt!r} is not one of html, xlsx")
    names = _jurisdiction_names(jurisdictions, year)
    ctx = Context(config, db)
    engine = ctx.engine()
    reading = _reading(engine)
    conn = engine.connect()
    try:
        rep = _build_report(ctx, conn, year=year, date_from=None, date_to=None, account=account, method=method, scope=scope,
                            jurisdiction=jurisdiction, allow=allow_incomplete, what=f"statement {year}", workbook=fmt == "xlsx")
        if names:
            rep.jurisdictions = _side_by_side(ctx, conn, names, year, account, allow_incomplete)
        if fmt == "html":  # each writer imported where it is used: openpyxl alone costs 0.2 s of start-up
            from reports.statement import write_statement

            write_statement(rep, Path(out))
        else:
            from reports.workbook import write_workbook

            write_workbook(rep, Path(out))
        console.print(f"wrote the {rep.label} statement ({fmt}) to {out}: {len(rep.gains)} gain rows, "
                      f"{sum(1 for c in rep.checks if c.ok)}/{len(rep.checks)} account(s) reconciled at the period end, "
                      f"{rep.completeness.unpriced} unpriced events, {len(rep.findings)} warnings")
    finally:
        conn.close()
        reading.close()
        engine.dispose()


# -- tax exports and interop (docs/tax-exports.md) ----------------------------------------------------
EXIT_INCOMPLETE = 4


@export_app.command("tax")
def export_tax_cmd(
    year: Annotated[int, typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")],
    out: Annotated[str, typer.Option("--out", help="Output folder (one per run; replaced if it exists).")],
    jurisdiction: JurisdictionOpt = None,
    method: MethodOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="Comma-separated: csv (always), xlsx, pdf, txf.")] = "csv",
    rounding: Annotated[str, typer.Option("--rounding", help="cents (default), dollars (whole units) or exact.")] = "cents",
    account: Annotated[Optional[str], typer.Option("--account", help="Only this venue account.")] = None,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Write the files even when findings change the year's figures (each file then says so).")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Year-end tax files in one folder: Form 8949 / Schedule D / TurboTax (us), SA108 (uk), Anlage SO (de), gains tables (generic).

    Exit 4 when findings (missing basis, overspend, unpriced, unrecognised trades) change the year's figures, unless --allow-incomplete."""
    from ledger.books import resolve_settings
    from reports.tax.common import ROUNDINGS
    from reports.tax.run import FORMATS, IncompleteData, export_tax, prepare

    formats = tuple(dict.fromkeys(["csv", *[f.strip() for f in fmt.split(",") if f.strip()]]))
    for f in formats:
        if f not in FORMATS:
            raise ConfigError(f"--format: {f!r} is not one of {', '.join(FORMATS)}")
    if rounding not in ROUNDINGS:
        raise ConfigError(f"--rounding: {rounding!r} is not one of {', '.join(ROUNDINGS)}")
    _check_choices(method, None, jurisdiction)
    ctx = Context(config, db)
    settings = resolve_settings(ctx.config.reporting, method=method, jurisdiction=jurisdiction)
    if settings.currency != settings.jurisdiction.currency and settings.jurisdiction.name != "generic" and ctx.config.reporting.fx_file:
        from reports.jurisdictions import settings_for  # the jurisdiction's own currency, through the FX file

        settings = settings_for(ctx.config.reporting, settings.jurisdiction.name, method=method)
    engine = ctx.engine()
    # The booking and the files build millions of acyclic tuples, decimals and strings: the cycle collector's
    # full passes over them find nothing and cost a third of the command (as in export gains), so it is paused.
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        reading = _reading(engine)  # the year-end check may read through a forked process's own connection
        with reading, engine.connect() as conn:
            stale = refuse_stale(ctx, conn, allow=allow_incomplete, what=f"export tax {year}")
            run = prepare(conn, settings, year, formats=formats, rounding=rounding, form_1099da=ctx.config.tax.form_1099da, venue_account=account,
                          reporting=ctx.config.reporting, reconcile=True)
            run.stale = stale
            try:
                result = export_tax(run, Path(out), allow_incomplete=allow_incomplete)
            except IncompleteData as exc:
                err_console.print(f"reconcile: incomplete data: {exc}", markup=False, highlight=False, soft_wrap=True)
                _print_findings(run.incomplete)
                raise typer.Exit(EXIT_INCOMPLETE) from None
    finally:
        engine.dispose()
        if collecting:
            gc.enable()
    for w in result.warnings:
        err_console.print(w, markup=False, highlight=False)
    console.print(f"wrote {len(result.files)} files for {settings.jurisdiction.name} tax year {run.label} ({settings.booking.method_for(year)}, "
                  f"{settings.booking.scope}, {settings.currency}) to {out}/", markup=False, highlight=False)


def _interop_period(date_from, date_to):
    start, end = _parse_date(date_from, "--from"), _parse_date(date_to, "--to")
    if start and end and end <= start:
        raise ConfigError("--to must be after --from")
    return start, end


def _interop(target: str, out: str, date_from, date_to, config, db) -> None:
    from ledger.books import resolve_settings
    from reports.journal import journal_rows
    from reports.tax.interop import WRITERS, events, perp_closes

    start, end = _interop_period(date_from, date_to)
    ctx = Context(config, db)
    engine = ctx.engine()
    skipped: dict = {}
    with engine.connect() as conn:
        refuse_stale(ctx, conn, allow=False, what=f"export {target}", can_allow=False)
        perps = perp_closes(conn, resolve_settings(ctx.config.reporting), start=start, end=end, method=ctx.config.reporting.perp_method)  # perp P&L: the position engine's
        n = WRITERS[target](events(journal_rows(conn, start=start, end=end), skipped=skipped, perps=perps), Path(out))
    engine.dispose()
    rows = f"{n[0]} rows to {out} and {n[1]} perpetual rows beside it" if isinstance(n, tuple) else f"{n} rows to {out}"
    note = ("; not exported (moves inside the account): " + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items()))) if skipped else ""
    console.print(f"wrote {rows}{note}", markup=False, highlight=False)


FromOpt = Annotated[Optional[str], typer.Option("--from", help="First day (inclusive, UTC).")]
ToOpt = Annotated[Optional[str], typer.Option("--to", help="Last day (exclusive, UTC).")]
OutFileOpt = Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")]


@export_app.command("koinly")
def export_koinly(out: OutFileOpt, date_from: FromOpt = None, date_to: ToOpt = None, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Koinly universal CSV of the account's raw events (trades, deposits, withdrawals, fees, interest, funding, perp P&L)."""
    _interop("koinly", out, date_from, date_to, config, db)


@export_app.command("cointracker")
def export_cointracker(out: OutFileOpt, date_from: FromOpt = None, date_to: ToOpt = None, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """CoinTracker CSV of the account's raw events."""
    _interop("cointracker", out, date_from, date_to, config, db)


@export_app.command("awaken")
def export_awaken(out: OutFileOpt, date_from: FromOpt = None, date_to: ToOpt = None, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Awaken standard CSV (at --out) and perpetuals CSV (<out stem>-perps.csv) of the account's raw events."""
    _interop("awaken", out, date_from, date_to, config, db)


def _plaintext(target: str, out: str, date_from, date_to, method, config, db) -> None:
    from ledger.books import book_ledger, resolve_settings
    from reports.tax.beancount import UnsupportedMethod, write_beancount, write_hledger

    _check_choices(method, None, None)
    start, end = _interop_period(date_from, date_to)
    ctx = Context(config, db)
    rep = ctx.config.reporting
    # beancount books per account: the export's lots come from a per-account booking (uk pools are not lots).
    juris = "generic" if rep.jurisdiction == "uk" else rep.jurisdiction
    settings = resolve_settings(rep, method=method or ("fifo" if rep.method in ("uk", "average") else rep.method), scope="account", jurisdiction=juris)
    engine = ctx.engine()
    try:
        with engine.connect() as conn:
            refuse_stale(ctx, conn, allow=False, what=f"export {target}", can_allow=False)
            books = book_ledger(conn, settings)
            writer = write_beancount if target == "beancount" else write_hledger
            counts = writer(conn, books, Path(out), start=start, end=end)
    except UnsupportedMethod as exc:
        raise ConfigError(str(exc)) from None
    finally:
        engine.dispose()
    console.print(f"wrote {target} journal to {out} ({settings.booking.method}, per account): " + ", ".join(f"{v} {k}" for k, v in counts.items()),
                  markup=False, highlight=False)


@export_app.command("beancount")
def export_beancount(out: OutFileOpt, date_from: FromOpt = None, date_to: ToOpt = None, method: MethodOpt = None, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """The whole journal as beancount v3, with lots ({cost, date} on acquisitions, @ price on disposals) and balance assertions."""
    _plaintext("beancount", out, date_from, date_to, method, config, db)


@export_app.command("hledger")
def export_hledger(out: OutFileOpt, date_from: FromOpt = None, date_to: ToOpt = None, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """The whole journal as an hledger journal (per-commodity balanced legs, tags with the record key and the engine's basis)."""
    _plaintext("hledger", out, date_from, date_to, None, config, db)
# -- watch ------------------------------------------------------------------------------------------
@app.command()
def watch(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account: Annotated[Optional[list[str]], typer.Option("--account", help="Watch only this configured account (repeatable).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="One line per event.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only errors.")] = False,
) -> None:
    """Tail the accounts' WebSocket streams into the live view until SIGINT/SIGTERM (docs/watch.md)."""
    import asyncio
    import signal

    from importers.watch import WatchAccount, WatchOptions, ws_url_for
    from importers.watch import watch as run_watch
    from reports.safety import terminal_line

    ctx = Context(config, db)
    accounts = [WatchAccount(acc.name, creds, acc.ws_url or ws_url_for(acc.base_url), acc.window_ms)
                for acc, creds in _credentials(ctx, list(account or []), "watch")]
    engine = ctx.engine()
    opts = WatchOptions(verbose=verbose and not quiet, quiet=quiet)

    def out(line: str) -> None:
        console.print(terminal_line(line), markup=False, highlight=False)

    def err(line: str) -> None:
        err_console.print(terminal_line(line), markup=False, highlight=False)

    async def main_() -> object:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run_watch(engine, accounts, opts, out=out, err=err, stop=stop)

    try:
        report = asyncio.run(main_())
    finally:
        engine.dispose()
    if not quiet:
        for name, st in report.accounts.items():
            console.print(f"{name}: {st.events} events, {st.fills} fills ({st.new_fills} new provisional, {st.duplicates} duplicates), "
                          f"{st.gaps} gap(s), {st.connects} connection(s); stopped", markup=False, highlight=False)


def _print_live_view(engine, quiet: bool = False) -> None:
    """The live view (``reconcile watch``): positions at the live mark, provisional fills, gaps."""
    from datetime import datetime, timezone

    from ledger.money import plain
    from reports.safety import terminal_line
    from reports.status import live_view

    with engine.connect() as conn:
        view = live_view(conn, datetime.now(timezone.utc))
    for la in view:
        if quiet and not la.warnings():
            continue
        seen = la.last_message_at.isoformat(timespec="seconds") if la.last_message_at else "never"
        console.print(f"live view {la.venue_account}: stream {la.state or '-'}, last message {seen}; "
                      f"{la.provisional_count} provisional fill(s) since the last sync", markup=False, highlight=False)
        for p in la.positions:
            upnl = plain(p.unrealized_pnl) if p.unrealized_pnl is not None else "unknown (no entry or mark)"
            age = f"{p.mark_age_s:.0f} s old" if p.mark_age_s is not None else "age unknown"
            console.print(terminal_line(f"  position {p.symbol} {plain(p.quantity)} entry {plain(p.entry_price) if p.entry_price is not None else '-'} "
                                   f"mark {plain(p.mark_price) if p.mark_price is not None else '-'} ({p.mark_source}, {age}) unrealized P&L {upnl}"),
                          markup=False, highlight=False)
        for f in la.provisional[:10]:
            qty = plain(f.quantity) if f.quantity is not None else "(quantity REST only)"
            console.print(terminal_line(f"  provisional fill {f.engine_time.isoformat()} {f.symbol} {f.side or '-'} {qty} @ {plain(f.price)} "
                                   f"trade {f.trade_id} order {f.order_id}"), markup=False, highlight=False)
        for w in la.warnings():
            err_console.print(terminal_line(f"  warning: {la.venue_account}: {w}"), markup=False, highlight=False)


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
    from reports.safety import terminal_line

    text = " ".join(terminal_line(line) for line in str(message).splitlines()) or "unknown error"
    err_console.print(f"reconcile: error: {text}", markup=False, highlight=False, soft_wrap=True)


def _database_message(exc: BaseException) -> str:
    """A database error without its statement or parameters (they can carry an account's balances):
    the driver's own first line, else the error's type."""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        first = str(orig).strip().splitlines()
        return first[0] if first else type(orig).__name__
    return type(exc).__name__


# -- perpetuals (docs/perps.md) ------------------------------------------------------------------------
def _print_perps(out, proof) -> None:
    """The perpetuals' proof under an account's check: what held, then each difference named."""
    if proof is None:
        return
    from reports.safety import terminal_line

    held = ", ".join(f"{k} {v}" for k, v in proof.held.items())
    out.print(f"perpetuals: {'every equation holds' if proof.ok else f'{len(proof.differences)} difference(s)'} ({held})", markup=False, highlight=False)
    for d in proof.differences[:50]:
        out.print("  " + terminal_line(d.line()), markup=False, highlight=False)
    if len(proof.differences) > 50:
        out.print(f"  ... and {len(proof.differences) - 50} more (--json lists them all)")


@export_app.command("perps")
def export_perps(
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file (csv: the realized rows; the other tables beside it).")],
    year: Annotated[int, typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")],
    fmt: FormatOpt = "csv",
    method: Annotated[Optional[str], typer.Option(help="average or fifo (default: reporting.perp_method, else the jurisdiction's).")] = None,
    jurisdiction: JurisdictionOpt = None,
    account: Annotated[Optional[str], typer.Option(help="Only this venue account.")] = None,
    allow_incomplete: AllowIncompleteOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Perpetual futures for one tax year: realized lot fractions, funding, per-market totals, open positions."""
    from ledger.books import resolve_settings
    from ledger.booking.perps import PERP_METHODS
    from reports.perps import export_perps

    _check_format(fmt)
    _check_choices(None, None, jurisdiction)
    if method is not None and method not in PERP_METHODS:
        raise ConfigError(f"--method: {method!r} is not one of {', '.join(PERP_METHODS)}")
    ctx = Context(config, db)
    rep = ctx.config.reporting
    settings = resolve_settings(rep, jurisdiction=jurisdiction)
    engine = ctx.engine()
    with engine.connect() as conn:
        books, counts = export_perps(conn, settings, Path(out), fmt, year=year, venue_account=account, method=method or rep.perp_method, reporting=rep)
    engine.dispose()
    for n in books.notes:
        err_console.print(f"warning: {n}", markup=False, highlight=False)
    from ledger.money import plain

    net_rep = books.net_reporting
    in_rep = "" if books.currency == "USD" else f" ({plain(net_rep)} {books.currency})" if net_rep is not None else f" ({books.currency}: incomplete, see the warning)"
    console.print(f"wrote {counts['Realized']} realized rows, {counts['Funding']} funding lines, {counts['Totals']} markets, "
                  f"{counts['Positions']} open positions for {year} ({books.method}) to {out}; net {plain(books.net)} USDC{in_rep}", markup=False, highlight=False)
    if books.unattributed:
        raise typer.Exit(EXIT_DIFFERENCE)
    if books.unvalued and not allow_incomplete:  # the reporting-currency cells are empty, never zero (docs/perps.md)
        from ledger.completeness import EXIT_INCOMPLETE

        raise typer.Exit(EXIT_INCOMPLETE)


# -- report (issue 15) ------------------------------------------------------------------------------
@app.command()
def report(
    out: Annotated[str, typer.Option("--out", help="Output directory (created if missing).")],
    year: Annotated[Optional[int], typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")] = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="First day (inclusive, UTC); narrows --year.")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Last day (exclusive, UTC); narrows --year.")] = None,
    account: Annotated[Optional[str], typer.Option(help="Only this venue account.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Comma-separated: xlsx, html.")] = "xlsx,html",
    method: MethodOpt = None,
    scope: ScopeOpt = None,
    jurisdiction: JurisdictionOpt = None,
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="Book the period under every method for the comparison.")] = True,
    jurisdictions: Annotated[Optional[str], typer.Option("--jurisdictions", help="Comma-separated us,uk,de,ca,au,jp,generic (or all): the year's "
                                                         "tax-relevant totals of each, side by side, each in its own currency, tax year and method (needs --year).")] = None,
    allow_incomplete: AllowIncompleteOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The accountant's report for a period: the workbook and the HTML statement. Exit 4 on incomplete data."""
    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("xlsx", "html")]
    if bad or not formats:
        raise ConfigError(f"--format: {fmt!r}: give xlsx, html or both (comma-separated)")
    if year is None and (date_from is None or date_to is None):
        raise ConfigError("report: give --year YYYY, or both --from and --to")
    names = _jurisdiction_names(jurisdictions, year)
    outdir = Path(out)
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a directory")
    ctx = Context(config, db)
    engine = ctx.engine()
    reading = _reading(engine)
    conn = engine.connect()
    try:
        rep = _build_report(ctx, conn, year=year, date_from=date_from, date_to=date_to, account=account, method=method, scope=scope,
                            jurisdiction=jurisdiction, allow=allow_incomplete, what="report", compare=compare, workbook="xlsx" in formats)
        if names:
            rep.jurisdictions = _side_by_side(ctx, conn, names, year, account, allow_incomplete)
        outdir.mkdir(parents=True, exist_ok=True)
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in (str(year) if year and not (date_from or date_to) else
                                                                         f"{rep.start.date()}_{(rep.end - _MICRO).date()}"))
        if account:
            stem += "-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in account)
        written = []
        if "xlsx" in formats:
            from reports.workbook import write_workbook

            p = outdir / f"report-{stem}.xlsx"
            write_workbook(rep, p)
            written.append(p.name)
        if "html" in formats:
            from reports.statement import write_statement

            p = outdir / f"statement-{stem}.html"
            write_statement(rep, p)
            written.append(p.name)
        state = "reconciled" if rep.reconciled else "NOT reconciled"
        console.print(f"wrote {', '.join(written)} to {outdir} for {rep.label}: {len(rep.gains)} gain rows, net "
                      f"{rep.gain_total('gain').quantize(Decimal('0.01'))} {rep.currency}; {state} at the period end")
        if names:
            from reports.jurisdictions import text_lines
            from reports.safety import terminal_line

            for line in text_lines(rep.jurisdictions):
                console.print(terminal_line(line), markup=False, highlight=False, soft_wrap=True)
    finally:
        conn.close()
        reading.close()
        engine.dispose()


def _reading(engine):
    """The readers' lock (``ledger.lock.database_lock(shared=True)``), held until ``close()``: a report's
    forked helpers read the ledger through connections of their own, so no sync may write while it
    runs (one started meanwhile, or running already, is told the database is busy; nothing is written)."""
    from contextlib import ExitStack

    from ledger.lock import database_lock

    stack = ExitStack()
    try:
        stack.enter_context(database_lock(engine, shared=True))
    except BaseException:
        engine.dispose()
        raise
    return stack


def _jurisdiction_names(text: str | None, year: int | None) -> list[str]:
    """``--jurisdictions``: the names, checked (ConfigError, exit 2, on a bad list or without --year)."""
    if text is None:
        return []
    from reports.jurisdictions import parse_names

    if year is None:
        raise ConfigError("--jurisdictions needs --year (each jurisdiction's own tax year YYYY)")
    try:
        return parse_names(text)
    except ValueError as exc:
        raise ConfigError(f"--jurisdictions: {exc}") from None


def _side_by_side(ctx: Context, conn, names: list[str], year: int, account: str | None, allow: bool) -> list:
    """Each jurisdiction's year side by side (``reports.jurisdictions``); exit 4 before anything is written when a
    jurisdiction's figures rest on incomplete data and --allow-incomplete is not given."""
    from reports.jurisdictions import side_by_side
    from reports.safety import terminal_line

    cols = side_by_side(conn, ctx.config.reporting, names, year, venue_account=account)
    bad = [c for c in cols if c.warnings]
    if bad and not allow:
        for c in bad:
            err_console.print(f"reconcile: incomplete: --jurisdictions {c.name} {c.label}: {terminal_line(c.warnings[0])}", markup=False, highlight=False)
        err_console.print("nothing written; fix the data, or write the figures marked incomplete with --allow-incomplete", markup=False, highlight=False)
        raise typer.Exit(EXIT_INCOMPLETE)
    return cols


@export_app.command("income")
def export_income(
    year: Annotated[int, typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")],
    out: Annotated[str, typer.Option("--out", parser=parse_out, help="Output file.")],
    fmt: FormatOpt = "csv",
    account: Annotated[Optional[str], typer.Option(help="Only this venue account.")] = None,
    schedule: Annotated[bool, typer.Option("--safe-harbor", help="Export the US 2025 safe-harbor allocation schedule instead of income.")] = False,
    allow_incomplete: AllowIncompleteOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Income alone (interest, rewards, funding, perp P&L and fees as posted, with the jurisdiction's
    treatment), or with --safe-harbor the US 2025 allocation record as a dated schedule. Exit 4 on incomplete data."""
    from ledger.books import book_ledger, resolve_settings
    from reports.income_export import write_allocations, write_income

    _check_format(fmt)
    ctx = Context(config, db)
    engine = ctx.engine()
    settings = resolve_settings(ctx.config.reporting)
    start, end = settings.year_bounds(year)
    try:
        with engine.connect() as conn:
            books = book_ledger(conn, settings, until=end - _MICRO, venue_account=account, gains=False)  # income and allocations
            c = check_complete(ctx, conn, findings=books.findings_until(end), start=start, end=end, allow=allow_incomplete,
                               what=f"export income {year}", account=account)
            if schedule:
                dated = [a for a in books.allocations if start <= a.effective < end]
                n = write_allocations(Path(out), fmt, dated, currency=settings.currency, completeness=c)
                console.print(f"wrote {n} safe-harbor allocation rows to {out}" + ("" if n else " (no allocation in the year: the US transition of 1 January 2025 applies to us only)"))
                return
            n = write_income(conn, Path(out), fmt, settings=settings, start=start, end=end, account=account,
                             engine_income=[i for i in books.income if start <= i.time < end], completeness=c)
    finally:
        engine.dispose()
    console.print(f"wrote {n} income rows for {year} to {out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
