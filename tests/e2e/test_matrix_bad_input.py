"""The standing bad-input matrix (issue 20; docs/reliability.md): each case asserts the exit code,
the single line on stderr, and that nothing was written (no output file, no database, no lock file,
no schema). Both backends where a database is involved."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from importers.backpack.simulator.generate import generate_world
from ledger.db import make_engine, upgrade

from .helpers import cli, db_counts, write_config


def _one_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("reconcile: error: "), err
    return lines[0]


def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def _tables(url: str) -> set[str]:
    eng = create_engine(url)
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


@pytest.fixture(scope="module")
def world():
    return generate_world(3, 60)


@pytest.fixture
def synced(db_url, start_simulator, world, tmp_path, capsys):
    """A synced, valued ledger and its config (the cases below must leave it as it is)."""
    handle = start_simulator(world=world)
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    code, _o, err = cli(capsys, "prices", "--offline", "--config", config, "--db", db_url)  # no kline requests: fast
    assert code == 0, err
    return config


# -- options --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("year", ["0", "10000", "99999", "abc", "-5", "2025.0"])
@pytest.mark.parametrize("command", [("export", "gains", "--format", "csv"), ("statement", "--format", "html"), ("report",),
                                     ("export", "tax"), ("export", "income"), ("export", "perps")])
def test_bad_year__one_line_exit_2_nothing_written(tmp_path, capsys, year, command):
    db = tmp_path / "l.db"
    out = tmp_path / "out.file"
    code, stdout, err = cli(capsys, *command, "--year", year, "--out", out, "--db", f"sqlite:///{db}")
    assert code == 2
    line = _one_line(err)
    assert line.startswith("reconcile: error: --year: ") and (repr(year) in line or year in line), line
    assert "Usage" not in err and "Traceback" not in err and stdout == ""
    assert _files(tmp_path) == set()  # no database, no lock file, no output


@pytest.mark.parametrize("command", [("export", "gains", "--format", "csv"), ("statement", "--format", "html"), ("report",),
                                     ("export", "tax"), ("export", "income"), ("export", "perps")])
def test_a_tax_year_not_begun__one_line_exit_2_nothing_written(tmp_path, capsys, command):
    """A year after this one (a typo for 2025, say) has no figures: they could only be zeros that look complete."""
    from reconcile.options import latest_today

    today = latest_today()
    code, stdout, err = cli(capsys, *command, "--year", str(today.year + 1), "--out", tmp_path / "out.file", "--db", f"sqlite:///{tmp_path / 'l.db'}")
    assert code == 2 and stdout == ""
    assert _one_line(err) == f"reconcile: error: --year: tax year {today.year + 1} has not begun (today is {today.isoformat()})"
    assert _files(tmp_path) == set()


@pytest.mark.parametrize("command", [("export", "lots"), ("check",)])
def test_an_instant_in_the_future__one_line_exit_2_nothing_written(tmp_path, capsys, command):
    from datetime import timedelta

    from reconcile.options import latest_today

    later = (latest_today() + timedelta(days=1)).isoformat()
    out = ("--out", tmp_path / "lots.csv") if command[0] == "export" else ()
    code, stdout, err = cli(capsys, *command, *out, "--at", later, "--db", f"sqlite:///{tmp_path / 'l.db'}")
    assert code == 2 and stdout == ""
    assert _one_line(err) == f"reconcile: error: --at: {later} is in the future (today is {latest_today().isoformat()})"
    assert _files(tmp_path) == set()


@pytest.mark.parametrize("command", [
    ("export", "journal", "--format", "csv"), ("export", "gains", "--year", "2025", "--format", "xlsx"),
    ("export", "lots", "--at", "2025-12-31"), ("statement", "--year", "2025", "--format", "html"),
    ("export", "income", "--year", "2025"), ("export", "perps", "--year", "2025"), ("export", "koinly"), ("export", "cointracker"),
    ("export", "awaken"), ("export", "beancount"), ("export", "hledger"),
])
def test_out_in_a_missing_folder__one_line_naming_the_folder(tmp_path, capsys, command):
    missing = tmp_path / "no" / "such"
    code, _o, err = cli(capsys, *command, "--out", missing / "x.out", "--db", f"sqlite:///{tmp_path / 'l.db'}")
    assert code == 2
    assert _one_line(err) == f"reconcile: error: --out: folder {missing} does not exist (create it first)"
    assert _files(tmp_path) == set()


# -- files ----------------------------------------------------------------------------------------------
def test_non_utf8_secret_file__one_line_naming_the_file_never_its_bytes(tmp_path, capsys):
    secret = tmp_path / "main.secret"
    secret.write_bytes(b"\xff\xfeAQID\x80secret")
    secret.chmod(0o600)
    cfg = tmp_path / "reconcile.toml"
    cfg.write_text(f'[[accounts]]\nname = "main"\napi_key = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="\n'
                   f'api_secret_file = "{secret}"\nbase_url = "http://127.0.0.1:9"\n')
    db = tmp_path / "l.db"
    code, _o, err = cli(capsys, "sync", "--config", cfg, "--db", f"sqlite:///{db}")
    assert code == 2
    line = _one_line(err)
    assert str(secret) in line and "not UTF-8" in line and "AQID" not in line and "\\x" not in line
    assert _files(tmp_path) == {"main.secret", "reconcile.toml"}


def test_non_utf8_opening_lots__one_line_naming_the_file(db_url, synced, tmp_path, capsys):
    lots = tmp_path / "lots.csv"
    lots.write_bytes("account,asset,quantity,acquired,basis\nmain,SOL,1,2024-01-01,10 €\n".encode("latin-1", "replace").replace(b"?", b"\xa4"))
    with open(synced, "a") as fh:
        fh.write(f'\n[reporting]\nopening_lots = "{lots}"\n')
    out = tmp_path / "g.csv"
    code, _o, err = cli(capsys, "export", "gains", "--year", "2025", "--out", out, "--config", synced, "--db", db_url)
    assert code == 2
    line = _one_line(err)
    assert str(lots) in line and "not UTF-8" in line, line
    assert not out.exists() and not out.with_name("g.csv.partial").exists()


def test_sqlite_url_naming_a_text_file__one_line_file_unchanged(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    for args in (("status",), ("init",), ("export", "journal", "--out", tmp_path / "j.csv")):
        code, _o, err = cli(capsys, *args, "--db", f"sqlite:///{notes}")
        assert code == 2, err
        assert _one_line(err) == f"reconcile: error: database file {notes} is not a SQLite database"
        assert "sqlalche.me" not in err
    assert notes.read_text() == "my notes\n" and _files(tmp_path) == {"notes.txt"}


def test_schema_from_a_newer_version__one_line_nothing_changed(db_url, capsys):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    for args in (("status",), ("init",), ("check",)):
        code, _o, err = cli(capsys, *args, "--db", db_url)
        assert code == 2, err
        line = _one_line(err)
        assert "schema revision '9999_future'" in line and "upgrade reconcile" in line and "Can't locate" not in line
    eng = create_engine(db_url)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "9999_future"
    eng.dispose()


def test_refused_key_on_a_fresh_database__no_schema_no_lock_file(db_url, start_simulator, world, tmp_path, capsys):
    handle = start_simulator(world=world)
    from importers.backpack.signing import public_key_of

    _secret = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="  # a well-formed key the exchange does not know
    wrong = {"main": (public_key_of(_secret), _secret)}
    config = write_config(tmp_path / "cfg", wrong, handle.base_url)
    url = db_url
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'fresh' / 'l.db'}"
        (tmp_path / "fresh").mkdir()
    else:
        assert _tables(db_url) == set()
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", url)
    assert code == 1
    line = _one_line(err)
    assert "authentication failed (HTTP 401)" in line and _secret not in err
    if url.startswith("sqlite"):
        assert _files(tmp_path / "fresh") == set()  # no database file, no .lock file
    else:
        assert _tables(url) == set()  # no empty schema


# -- prices ---------------------------------------------------------------------------------------------
def _with_price_file(config: Path, body: str) -> Path:
    prices = config.parent / "prices.csv"
    prices.write_text(body)
    with open(config, "a") as fh:
        fh.write(f'\n[reporting]\nprice_file = "{prices}"\n')
    return prices


def test_corrupt_price_file__every_command_that_reads_values_refuses_it(db_url, synced, tmp_path, capsys):
    prices = _with_price_file(synced, "time,asset,price,currency,source\n2025-01-02,SOL,not-a-number,USD,me\n")
    before = db_counts(db_url)
    for command in (("export", "gains", "--year", "2025"), ("export", "gains", "--all-years", "--format", "xlsx"),
                    ("export", "lots", "--at", "2025-12-31"), ("export", "journal"), ("statement", "--year", "2025"),
                    ("prices", "--offline"), ("report", "--year", "2025"), ("export", "tax", "--year", "2025"),
                    ("export", "income", "--year", "2025"), ("export", "koinly"),
                    ("export", "cointracker"), ("export", "awaken"), ("export", "beancount"), ("export", "hledger")):
        out = tmp_path / "out.file"
        extra = () if command[0] == "prices" else ("--out", out)
        code, _o, err = cli(capsys, *command, *extra, "--config", synced, "--db", db_url)
        assert code == 2, command
        assert _one_line(err) == f"reconcile: error: {prices}:2: price 'not-a-number' is not a decimal number", command
        assert not out.exists() and not list(tmp_path.glob("*.partial"))
    assert db_counts(db_url) == before


def test_price_file_for_an_unknown_asset__refused_naming_line_and_asset(db_url, synced, tmp_path, capsys):
    prices = _with_price_file(synced, "time,asset,price,currency,source\n2025-01-02,NOSUCHCOIN,1,USD,me\n")
    before = db_counts(db_url)
    code, _o, err = cli(capsys, "prices", "--offline", "--config", synced, "--db", db_url)
    assert code == 2
    assert _one_line(err) == f"reconcile: error: {prices}:2: asset 'NOSUCHCOIN' is not in the ledger; check the symbol, or sync first"
    assert db_counts(db_url) == before


def test_price_file_changed_after_valuation__stale_values_refused_exit_4_until_prices_runs(db_url, synced, tmp_path, capsys):
    # One rule (docs/reports.md): a file that cannot be read is bad input (exit 2, above); values that are
    # not the configured ones (a file edited since `prices`) are a stale valuation: the completeness gate,
    # exit 4 naming the file on the first line, nothing written, or written marked so with --allow-incomplete.
    # (The world's deposits have no known basis, so its figures are incomplete anyway: --allow-incomplete
    # writes them; what is asserted is that the stale valuation is named, and only while it is stale.)
    prices = _with_price_file(synced, "time,asset,price,currency,source\n")
    assert cli(capsys, "prices", "--offline", "--config", synced, "--db", db_url)[0] == 0
    out = tmp_path / "g.csv"
    allow = ("--allow-incomplete",)
    code, _o, err = cli(capsys, "export", "gains", "--year", "2025", "--out", out, *allow, "--config", synced, "--db", db_url)
    assert code == 0 and "stale valuation" not in err, err
    before = out.read_text().splitlines()
    prices.write_text("time,asset,price,currency,source\n2025-01-02,SOL,1,USD,me\n")  # edited, not applied
    out.unlink()
    for command in (("export", "gains", "--year", "2025"), ("export", "lots", "--at", "2025-12-31"), ("export", "journal"),
                    ("statement", "--year", "2025"), ("report", "--year", "2025"), ("export", "tax", "--year", "2025"),
                    ("export", "income", "--year", "2025"), ("export", "koinly")):
        code, _o, err = cli(capsys, *command, "--out", out, "--config", synced, "--db", db_url)
        assert code == 4, (command, err)
        first = err.splitlines()[0]
        assert first.startswith("reconcile: incomplete: ") and "stale valuation" in first and str(prices) in first, (command, first)
        assert "nothing written" in err and not out.exists() and not list(tmp_path.glob("g.csv*")), command
    code, _o, err = cli(capsys, "export", "gains", "--year", "2025", "--out", out, *allow, "--config", synced, "--db", db_url)
    assert code == 0 and err.startswith("warning: export gains 2025: INCOMPLETE DATA: ") and "stale valuation" in err.splitlines()[0], err
    marked = out.read_text().splitlines()
    assert marked[0].startswith('"# INCOMPLETE DATA: ') and "stale valuation" in marked[0] and marked[1:] == before[1:]
    out.unlink()
    # The tax folder written anyway says so first, in its README; an import file for another tool has no such line: never written stale.
    tax = tmp_path / "tax"
    code, _o, err = cli(capsys, "export", "tax", "--year", "2025", "--out", tax, *allow, "--config", synced, "--db", db_url)
    assert code == 0, err
    readme = (tax / "README.txt").read_text()
    assert "WARNING: INCOMPLETE DATA - stale valuation: " in readme and str(prices) in readme
    code, _o, err = cli(capsys, "export", "koinly", "--out", out, "--config", synced, "--db", db_url)
    assert code == 4 and "reconcile prices" in err.splitlines()[-1] and not out.exists()
    assert cli(capsys, "prices", "--offline", "--config", synced, "--db", db_url)[0] == 0
    code, _o, err = cli(capsys, "export", "gains", "--year", "2025", "--out", out, *allow, "--config", synced, "--db", db_url)
    assert code == 0 and "stale valuation" not in err, err


# -- database errors ------------------------------------------------------------------------------------
def test_database_error__one_line_without_the_statement_or_its_parameters(monkeypatch, tmp_path, capsys):
    from sqlalchemy.exc import DataError

    import reconcile.cli as cli_module

    class DriverError(Exception):
        pass

    def broken(self, *, migrate=True):
        raise DataError("INSERT INTO snapshot_lines (asset, quantity) VALUES (%(asset)s, %(quantity)s)",
                        {"asset": "SOL", "quantity": "123456.789"},
                        DriverError("value too long for type character varying(64)\nDETAIL: quantity 123456.789"))

    monkeypatch.setattr(cli_module.Context, "engine", broken)
    code, _o, err = cli(capsys, "status", "--db", f"sqlite:///{tmp_path / 'l.db'}")
    assert code == 1
    assert _one_line(err) == "reconcile: error: database: value too long for type character varying(64)"
    assert "123456.789" not in err and "INSERT" not in err
