"""The crash row of the matrix (issue 20; docs/reliability.md): `reconcile sync` SIGKILLed at random
points (paging, posting, a page's commit, the migration, PostgreSQL's first-sync rebuild), rerun, on
SQLite and PostgreSQL: every completed ledger has the uninterrupted run's journal hash.

CI: at least ``MID_SYNC`` (10) kills per backend that land mid-sync (the ledger held some of the
records, or all of them without their entries); ``RECONCILE_MATRIX=large``: 100. When a run completes
the ledger is compared and the database replaced by an empty one, so kills keep landing mid-sync.
The figures (kills, mid-sync kills, kills in the rebuild, completions) are printed for docs/reliability.md.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from importers.backpack.simulator.generate import generate_world

from .helpers import LARGE_MATRIX, cli_process, db_counts, journal_digest, second_database, write_config

MID_SYNC = 100 if LARGE_MATRIX else 10
RATE = 40  # requests per second of the killed syncs: pages land often enough for kills between them


def _counts(url: str) -> dict[str, int]:
    from sqlalchemy.exc import DatabaseError

    try:
        return db_counts(url)
    except DatabaseError:  # no schema yet (killed in the first migration)
        return {"raw_records": 0, "journal_entries": 0, "postings": 0, "snapshots": 0}


def _finish(config, url: str) -> None:
    proc = cli_process("sync", "--config", config, "--db", url, "--quiet", "--no-check")
    _o, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def test_crash__sigkill_mid_sync_then_rerun_gives_the_same_journal_every_time(db_url, start_simulator, tmp_path, capsys):
    handle = start_simulator(world=generate_world(5, 1500))
    fast = write_config(tmp_path / "fast", handle.accounts, handle.base_url, rate_per_second=1000)
    slow = write_config(tmp_path / "slow", handle.accounts, handle.base_url, rate_per_second=RATE)
    with second_database(db_url, tmp_path) as reference:
        _finish(fast, reference)
        expected = journal_digest(capsys, fast, reference, tmp_path / "reference.csv")
        total = db_counts(reference)
    postgres = db_url.startswith("postgresql")
    rng = random.Random(20261201)
    kills = mid_sync = in_rebuild = completed = attempts = 0
    deadline = time.monotonic() + (3600 if LARGE_MATRIX else 420)
    while mid_sync < MID_SYNC:
        assert time.monotonic() < deadline, f"{kills} kills, {mid_sync} mid-sync in the time allowed"
        with second_database(db_url, tmp_path) as url:
            while mid_sync < MID_SYNC:
                attempts += 1
                before = _counts(url)
                proc = cli_process("sync", "--config", slow, "--db", url, "--quiet", "--no-check")
                aim_rebuild = postgres and before["raw_records"] == total["raw_records"] and before["journal_entries"] == 0
                wait_until = time.monotonic() + 90
                if attempts % 4 == 0:  # anywhere, start-up and the first migration included
                    time.sleep(rng.uniform(0.2, 1.5))
                else:  # once this run has stored something beyond what it found
                    while proc.poll() is None and time.monotonic() < wait_until:
                        now = _counts(url)
                        if now["raw_records"] > before["raw_records"] or now["snapshots"] > before["snapshots"]:
                            break
                        time.sleep(0.03)
                    if not aim_rebuild:
                        time.sleep(rng.uniform(0.0, 0.5))
                alive = proc.poll() is None
                if alive:
                    proc.send_signal(signal.SIGKILL)
                _o, err = proc.communicate(timeout=60)
                assert proc.returncode in (0, -signal.SIGKILL), err
                after = _counts(url)
                complete = proc.returncode == 0 or (after["raw_records"] == total["raw_records"]
                                                    and after["journal_entries"] == total["journal_entries"])
                if alive and proc.returncode == -signal.SIGKILL:
                    kills += 1
                    if not complete and (after["raw_records"] > 0 or after["snapshots"] > 0):
                        mid_sync += 1
                        in_rebuild += after["raw_records"] == total["raw_records"] and after["journal_entries"] == 0
                if complete:
                    if proc.returncode != 0:
                        _finish(slow, url)
                    assert journal_digest(capsys, fast, url, tmp_path / "run.csv") == expected
                    completed += 1
                    break  # a fresh database: kills land mid-sync again
            else:
                _finish(fast, url)  # the last one: rerun to the end and compare
                assert journal_digest(capsys, fast, url, tmp_path / "run.csv") == expected
                counts = db_counts(url)
                assert {k: counts[k] for k in ("raw_records", "journal_entries", "postings")} == \
                    {k: total[k] for k in ("raw_records", "journal_entries", "postings")}
                completed += 1
    print(f"\ncrash matrix ({db_url.split(':')[0]}): {attempts} runs, {kills} kills, {mid_sync} mid-sync, "
          f"{in_rebuild} in the first-sync rebuild, {completed} ledgers completed, all with the reference hash")
    assert completed >= 1 and mid_sync >= MID_SYNC


def test_crash__sigkill_inside_the_first_sync_rebuild_on_postgresql(db_url, start_simulator, tmp_path, capsys):
    """PostgreSQL's first sync keeps the raw records and posts them in one rebuild at the end
    (importers.sync.finish_deferred). The rebuild of a CI-sized ledger ends within a poll, so random
    kills never land in it: here the test holds an exclusive lock on ``journal_entries`` once every
    raw record is stored, waits until the sync's rebuild is blocked on it (pg_stat_activity), kills
    the sync there, and reruns: nothing of the rebuild is kept, the raw records are, and the rerun
    ends with the uninterrupted run's journal hash."""
    import psycopg
    from sqlalchemy.engine import make_url

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite posts page by page: there is no first-sync rebuild to kill")
    handle = start_simulator(world=generate_world(5, 600))
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url, rate_per_second=1000)
    with second_database(db_url, tmp_path) as reference:
        _finish(config, reference)
        expected = journal_digest(capsys, config, reference, tmp_path / "reference.csv")
        total = db_counts(reference)
    url = make_url(db_url)
    dsn = f"host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}"
    killed_in = []
    for _round in range(2 if not LARGE_MATRIX else 5):
        with second_database(db_url, tmp_path) as fresh:
            fresh_dsn = dsn.replace(f"dbname={url.database}", f"dbname={make_url(fresh).database}")
            proc = cli_process("sync", "--config", config, "--db", fresh, "--quiet", "--no-check")
            deadline = time.monotonic() + 120
            while _counts(fresh)["raw_records"] == 0:  # paging has begun: the journal is not read again until the rebuild
                assert proc.poll() is None and time.monotonic() < deadline, "the sync ended before it stored a page"
                time.sleep(0.01)
            with psycopg.connect(fresh_dsn, autocommit=True) as watcher, psycopg.connect(fresh_dsn) as holder:
                holder.execute("LOCK TABLE journal_entries IN ACCESS EXCLUSIVE MODE")
                waiting = None
                while waiting is None:  # pg_locks is live (pg_stat_activity is read once the sync waits)
                    assert proc.poll() is None and time.monotonic() < deadline, "the sync never reached its rebuild"
                    waiting = watcher.execute("SELECT pid FROM pg_locks WHERE relation = 'journal_entries'::regclass AND NOT granted").fetchone()
                    time.sleep(0.01)
                query = watcher.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (waiting[0],)).fetchone()[0] or "?"
                stored = watcher.execute("SELECT COUNT(*) FROM raw_records").fetchone()[0]
                proc.send_signal(signal.SIGKILL)
                proc.communicate(timeout=60)
                assert proc.returncode == -signal.SIGKILL
                watcher.execute("SELECT pg_terminate_backend(%s)", (waiting[0],))  # its connection dies with it
                holder.rollback()
            assert stored == total["raw_records"], (stored, query)  # every page stored: the sync was at its rebuild
            killed_in.append(" ".join(query.split()[:4]))
            after = _counts(fresh)
            assert after["raw_records"] == total["raw_records"] and after["journal_entries"] == 0  # the rebuild kept nothing
            _finish(config, fresh)
            assert journal_digest(capsys, config, fresh, tmp_path / "run.csv") == expected
            counts = db_counts(fresh)
            assert {k: counts[k] for k in ("raw_records", "journal_entries", "postings")} == \
                {k: total[k] for k in ("raw_records", "journal_entries", "postings")}
    print(f"\ncrash matrix (postgresql, rebuild): {len(killed_in)} kills inside the first-sync rebuild (blocked at: {', '.join(killed_in)}), "
          f"{len(killed_in)} reruns with the reference hash")
