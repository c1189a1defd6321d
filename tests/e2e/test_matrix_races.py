"""First-run races and what runs beside a sync (issue 20; docs/reliability.md).

- Two syncs started together on a fresh database: the lock is taken before the migration, so one
  syncs and the other exits 1 with the documented line (never "database is locked" or an
  IntegrityError from the migration), on SQLite and PostgreSQL, several times over.
- `check` during a first sync says a sync is running (exit 1) instead of checking a half-synced
  ledger and recording a failed check (exit 3).
- `sync --quiet` on a faulty exchange prints nothing at all when it succeeds (no retry warnings).
"""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from importers.backpack.simulator.generate import generate_world

from .helpers import LARGE_MATRIX, cli, cli_process, db_counts, second_database, write_config

LOCKED = "reconcile: error: another sync is running on this database; try again when it has finished"


def test_two_first_syncs_racing__one_syncs_the_other_exits_with_the_lock_line(db_url, start_simulator, tmp_path, capsys):
    handle = start_simulator(world=generate_world(3, 60))
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url, rate_per_second=200)
    for round_ in range(6 if LARGE_MATRIX else 2):
        with second_database(db_url, tmp_path) as fresh:
            procs = [cli_process("sync", "--config", config, "--db", fresh, "--quiet", "--no-check") for _ in range(2)]
            results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
            codes = sorted(r[0] for r in results)
            errs = [r[2].strip() for r in results]
            assert codes == [0, 1], (round_, results)
            loser = errs[[r[0] for r in results].index(1)]
            assert loser == LOCKED, (round_, loser)
            assert "locked" not in errs[[r[0] for r in results].index(0)]
            assert db_counts(fresh)["raw_records"] > 0
            code, out, err = cli(capsys, "check", "--config", config, "--db", fresh)
            assert code == 0, err + out


def test_check_during_a_first_sync__says_a_sync_is_running_and_records_nothing(db_url, start_simulator, tmp_path, capsys):
    handle = start_simulator(world=generate_world(4, 2000))
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url, rate_per_second=15)
    proc = cli_process("sync", "--config", config, "--db", db_url, "--quiet", "--no-check")
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                seen = db_counts(db_url)["raw_records"]
            except Exception:  # noqa: BLE001 - the schema is not there yet
                seen = 0
            if seen:
                break
            time.sleep(0.05)
        assert seen and proc.poll() is None, "the sync ended before the check could run beside it"
        code, out, err = cli(capsys, "check", "--config", config, "--db", db_url)
        assert proc.poll() is None, "the sync ended while the check ran: the test proves nothing"
        assert code == 1, out + err
        assert err.strip() == LOCKED and out == ""
        eng = create_engine(db_url)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM check_results")).scalar_one() == 0
        eng.dispose()
    finally:
        proc.kill()
        proc.wait()


def test_quiet_sync_on_a_faulty_exchange_prints_nothing_when_it_succeeds(db_url, start_simulator, tmp_path):
    """In a process of its own, as cron runs it (the warnings go to stderr through logging)."""
    handle = start_simulator(world=generate_world(3, 60), faults="429=0.01,503=0.03,malformed=0.03,seed=11")
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url)
    with second_database(db_url, tmp_path) as loud:  # the same faults without --quiet: retry warnings
        proc = cli_process("sync", "--config", config, "--db", loud, "--no-check")
        _out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert "retry" in err
    proc = cli_process("sync", "--config", config, "--db", db_url, "--quiet")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert out == "" and err == "", err[:500]
