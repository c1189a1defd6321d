"""Shared helpers of the sync, check and CLI end-to-end tests.

- :func:`write_config`: a ``reconcile.toml`` for a served simulator (secrets in files, mode 600).
- :func:`cli`: run ``reconcile`` in-process, returning ``(exit code, stdout, stderr)``.
- :func:`cli_process`: the same in a subprocess (``python -m reconcile.cli``), for kills.
- :func:`journal_digest`: sha256 of ``reconcile export journal --format csv``.
- :func:`second_database`: another empty database on the same backend as ``db_url``.
- :func:`prefix_scenario`: a scenario document holding only the records before a time.
- :func:`db_counts`: raw records, entries, postings, snapshots in a database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from importers.backpack.simulator._time import parse_ts_ms
from importers.backpack.simulator.store import STREAMS

REPO = Path(__file__).resolve().parents[2]
#: ``RECONCILE_MATRIX=large``: the reliability matrix's large version (docs/reliability.md): more
#: rounds, more kills (100 per backend), more fault seeds. The default is sized for CI.
LARGE_MATRIX = os.environ.get("RECONCILE_MATRIX", "").lower() == "large"


def write_config(directory: Path, accounts: Mapping[str, tuple[str, str]], base_url: str, *,
                 names: tuple[str, ...] | None = None, rate_per_second: int = 1000) -> Path:
    """Write ``reconcile.toml`` with one ``[[accounts]]`` per served account; returns its path.

    ``accounts`` is ``SimulatorHandle.accounts`` (name -> (api_key, api_secret)). Rewriting the file
    for another server (a new ``base_url``) keeps the same account names.
    """
    directory.mkdir(parents=True, exist_ok=True)
    blocks = []
    for name, (api_key, secret) in accounts.items():
        if names is not None and name not in names:
            continue
        secret_file = directory / f"{name}.secret"
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
        blocks.append(
            f'[[accounts]]\nname = "{name}"\napi_key = "{api_key}"\napi_secret_file = "{secret_file}"\n'
            f'base_url = "{base_url}"\nrate_per_second = {rate_per_second}\n'
            # The local simulator serves klines without the exchange's 30 a minute: a sync's valuation
            # (reconcile sync ends by valuing) must not wait on the client's throttle for them.
            'kline_rate_per_minute = 60000\n'
        )
    path = directory / "reconcile.toml"
    path.write_text("\n".join(blocks))
    return path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``reconcile <args>`` in this process; returns (exit code, stdout, stderr)."""
    from reconcile.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RECONCILE_CONFIG", None)
    env.pop("RECONCILE_DB", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    return env


def cli_process(*args: str, **kw) -> subprocess.Popen:
    """Start ``python -m reconcile.cli <args>`` (stdout/stderr piped, text)."""
    return subprocess.Popen([sys.executable, "-m", "reconcile.cli", *map(str, args)], cwd=REPO, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def journal_digest(capsys, config: Path, db_url: str, out: Path) -> str:
    """sha256 of the journal CSV export (the export is byte-identical for identical ledgers)."""
    code, _o, err = cli(capsys, "export", "journal", "--format", "csv", "--out", out, "--config", config, "--db", db_url)
    assert code == 0, err
    return hashlib.sha256(out.read_bytes()).hexdigest()


def db_counts(db_url: str) -> dict[str, int]:
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                    for t in ("raw_records", "journal_entries", "postings", "snapshots")}
    finally:
        eng.dispose()


@contextlib.contextmanager
def second_database(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database on the backend of ``db_url`` (a file, or a PostgreSQL database dropped after)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / f'second-{uuid.uuid4().hex[:6]}.db'}"
        return
    import psycopg

    name = f"{url.database}_2_{uuid.uuid4().hex[:6]}"
    admin = f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prefix_scenario(doc: dict, until_ms: int) -> dict:
    """The scenario ``doc`` with only the records whose time is below ``until_ms`` (main and subs)."""

    def cut(part: dict) -> dict:
        out = {}
        for key, value in part.items():
            if key in STREAMS:
                field = STREAMS[key].ts_field
                value = [r for r in value if parse_ts_ms(r[field]) < until_ms]
            out[key] = value
        return out

    short = cut(doc)
    short["subaccounts"] = [cut(s) for s in doc.get("subaccounts", [])]
    return short
