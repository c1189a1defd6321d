"""The ``reconcile`` command line: the composition root.

It alone wires importers, ledger and reports together. Logic lives in those packages; each command
here parses options, opens what it needs, calls one function and renders the outcome.

Exit codes: 0 ok; 1 error; 2 bad input or configuration; 3 reconciliation difference.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import __version__
from .config import Config, ConfigError, load_config, resolve_config_path, resolve_db_url

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

    def __init__(self, config_opt: str | None, db_opt: str | None):
        self.config: Config = load_config(resolve_config_path(config_opt))
        self.db_url: str = resolve_db_url(db_opt, self.config)

    def engine(self, *, migrate: bool = True):
        from ledger.db import current_revision, head_revision, make_engine

        engine = make_engine(self.db_url)
        if migrate:
            rev = current_revision(engine)
            if rev != head_revision():
                from ledger.db import upgrade

                upgrade(engine)
        return engine


def _version(value: bool) -> None:
    if value:
        console.print(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Backpack Exchange reconciliation and tax reporting."""


@app.command()
def init(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Create the database or upgrade it to the latest schema (harmless to run twice)."""
    from ledger.db import current_revision, make_engine, upgrade

    ctx = Context(config, db)
    engine = make_engine(ctx.db_url)
    before = current_revision(engine)
    upgrade(engine)
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
) -> None:
    """Run the whole chain offline against a generated account on a local simulator."""
    from .demo import run_demo

    raise typer.Exit(run_demo(console, fills=fills, seed=seed, workdir=Path(workdir) if workdir else None))


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
    from ledger.inputs import InputError

    types.append(InputError)
    return tuple(types)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: typed errors become one line on stderr and an exit code."""
    try:
        app(args=argv, prog_name="reconcile", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    except _bad_input_types() as exc:
        err_console.print(f"reconcile: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err_console.print("reconcile: interrupted", markup=False)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            err_console.print(f"reconcile: error: database: {exc.orig}", markup=False, highlight=False, soft_wrap=True)
            return EXIT_ERROR
        err_console.print(f"reconcile: error: {type(exc).__name__}: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
