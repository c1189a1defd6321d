"""A command that reads the ledger refuses a database that holds none, and creates nothing.

A mistyped ``[database] url`` used to become a new, empty ledger: every export then wrote a file of
zero rows and exited 0, figures that look complete (the no-silent-zeros rule), and the typo left a
database behind. Now such a database is refused in one line with exit 2 before anything is created,
and the figure commands also refuse a ledger nothing was ever imported into (``reconcile init``
alone). ``sync`` and ``init`` still create the ledger; a synced ledger with no trades still exports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from ledger.db import make_engine
from reconcile.cli import main

#: Every command that reads the ledger, with the arguments it needs besides --config/--db.
READERS = [
    ["status"],
    ["check"],
    ["prices"],
    ["statement", "--year", "2025", "--out", "{out}/s.html"],
    ["report", "--year", "2025", "--out", "{out}/r"],
    ["export", "gains", "--year", "2025", "--out", "{out}/g.csv"],
    ["export", "lots", "--at", "2025-12-31", "--out", "{out}/l.csv"],
    ["export", "journal", "--out", "{out}/j.csv"],
    ["export", "income", "--year", "2025", "--out", "{out}/i.csv"],
    ["export", "perps", "--year", "2025", "--out", "{out}/p.csv"],
    ["export", "tax", "--year", "2025", "--out", "{out}/tax"],
    ["export", "koinly", "--out", "{out}/k.csv"],
    ["export", "beancount", "--out", "{out}/b.beancount"],
]
#: Those whose figures come from what was imported (a ledger made by `init` alone is refused too).
FIGURES = [c for c in READERS if c[0] not in ("status", "check", "prices")]


def _config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "reconcile.toml"
    path.write_text(f'[database]\nurl = "{url}"\n\n[reporting]\ncurrency = "USD"\njurisdiction = "us"\nmethod = "fifo"\n')
    return str(path)


def _args(cmd: list[str], out: Path) -> list[str]:
    return [a.replace("{out}", str(out)) for a in cmd]


def _tables(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("cmd", READERS, ids=lambda c: " ".join(c[:2]))
def test_a_reader_on_a_mistyped_sqlite_path_creates_nothing(cmd, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    db = tmp_path / "typo.db"
    config = _config(tmp_path, f"sqlite:///{db}")
    assert main([*_args(cmd, out), "--config", config]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reconcile: error: no ledger at sqlite:///") and "reconcile sync" in err[0]
    assert not db.exists() and not Path(f"{db}.lock").exists()
    assert list(out.iterdir()) == []


def test_a_reader_on_a_database_without_a_ledger_creates_no_tables(db_url, tmp_path, capsys):
    """On PostgreSQL too: a database with no ledger in it stays without tables."""
    out = tmp_path / "out"
    out.mkdir()
    config = _config(tmp_path, db_url)
    for cmd in (READERS[0], READERS[5]):
        assert main([*_args(cmd, out), "--config", config]) == 2
        assert "no ledger at" in capsys.readouterr().err
    assert _tables(db_url) == []
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("cmd", FIGURES, ids=lambda c: " ".join(c[:2]))
def test_a_figure_command_refuses_a_ledger_nothing_was_imported_into(cmd, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert main(["init", "--config", config]) == 0
    capsys.readouterr()
    assert main([*_args(cmd, out), "--config", config]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is empty (nothing was ever imported into it)" in err[0], err
    assert list(out.iterdir()) == []


def test_status_shows_an_initialized_ledger(tmp_path, capsys):
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert main(["init", "--config", config]) == 0
    assert main(["status", "--config", config]) == 0
    assert "entries 0, postings 0" in capsys.readouterr().out


def test_a_synced_ledger_with_no_trades_still_exports(tmp_path, capsys):
    """What the ledger holds decides, not its size: a sync state is enough (an account with no history)."""
    from sqlalchemy import text

    from ledger.db import upgrade

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sync_state (venue_account, endpoint, records) VALUES ('main', 'fills', 0)"))
    engine.dispose()
    config = _config(tmp_path, url)
    assert main(["export", "gains", "--year", "2025", "--out", str(tmp_path / "g.csv"), "--config", config]) == 0
    assert (tmp_path / "g.csv").read_text().startswith("account,asset,quantity")


def test_a_figure_command_refuses_records_a_first_sync_did_not_post(tmp_path, capsys):
    """A first sync on PostgreSQL keeps raw records only and posts them at its end; killed before,
    it leaves records and cursors and an empty journal, which the figure commands refuse."""
    from datetime import datetime, timezone

    from sqlalchemy import insert

    from ledger.db import upgrade
    from ledger.schema import RawRecord, SyncState

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime(2025, 3, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(SyncState).values(venue_account="main", endpoint="fills", records=1))
        conn.execute(insert(RawRecord).values(venue_account="main", endpoint="fills", natural_key="fills:1", payload="{}", fetched_at=now, status="posted"))
    engine.dispose()
    config = _config(tmp_path, url)
    assert main(["export", "gains", "--year", "2025", "--out", str(tmp_path / "g.csv"), "--config", config]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds records not posted yet (a first sync did not finish)" in err[0], err
    assert not (tmp_path / "g.csv").exists()
