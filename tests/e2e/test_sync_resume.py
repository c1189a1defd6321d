"""Resumable sync: `reconcile sync` SIGKILLed at random moments, rerun, ends with the uninterrupted ledger.

The simulator serves a generated account (a few thousand fills, main and sub1) from a thread of the
test process; each sync runs in a subprocess (``python -m reconcile.cli``) that is killed after a
random delay (seeded, so the run is repeatable up to scheduling): every other run anywhere from its
start (so in the first migration too), the others a random moment after they stored a page (so that
kills land mid-sync however slow the machine is). After every kill the next run
resumes; a final run completes, and the journal export must equal that of an uninterrupted run on a
second database of the same backend, and `reconcile check` must pass.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from importers.backpack.simulator.generate import generate_world

from .helpers import cli, cli_process, db_counts, journal_digest, second_database, write_config

FILLS = 3000
#: requests per second the synced client may send: paces the walk so that kills land between pages
RATE = 80
KILLS = 12


@pytest.fixture(scope="module")
def big_world():
    return generate_world(5, FILLS)


def _sync(config, db_url, timeout: float = 120):
    proc = cli_process("sync", "--config", config, "--db", db_url, "--quiet", "--no-check")
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _raw_records(db_url: str) -> int:
    """Raw records held, 0 while the schema does not exist yet (a kill during the first migration)."""
    from sqlalchemy.exc import DatabaseError

    try:
        return db_counts(db_url)["raw_records"]
    except DatabaseError:
        return 0


def _wait_for_progress(db_url: str, held: int, proc, timeout: float = 60) -> None:
    """Until the sync in ``proc`` has stored records beyond ``held`` (or has ended)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and _raw_records(db_url) <= held:
        time.sleep(0.05)


def test_sync__killed_at_random_moments_resumes_to_the_same_ledger(db_url, big_world, start_simulator, tmp_path, capsys):
    handle = start_simulator(world=big_world)
    config = write_config(tmp_path, handle.accounts, handle.base_url, rate_per_second=RATE)

    with second_database(db_url, tmp_path) as reference:
        started = time.monotonic()
        code, _o, err = _sync(config, reference)
        assert code == 0, err
        uninterrupted = time.monotonic() - started
        expected = journal_digest(capsys, config, reference, tmp_path / "reference.csv")
        expected_counts = db_counts(reference)

    rng = random.Random(20240607)
    killed = 0
    partial = 0  # kills that left some but not all of the records: they landed mid-sync
    for i in range(KILLS):
        held_before = _raw_records(db_url)
        proc = cli_process("sync", "--config", config, "--db", db_url, "--quiet", "--no-check")
        if i % 2 == 0:  # anywhere: start-up (imports, the first migration) takes 0.5 s or more
            time.sleep(rng.uniform(0.3, 1.3))
        else:  # once this run has stored a page, wherever that falls on a slow or busy machine
            _wait_for_progress(db_url, held_before, proc)
            time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        _o, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), err
        held = _raw_records(db_url) if proc.returncode == -signal.SIGKILL else 0
        partial += 0 < held < expected_counts["raw_records"]
    assert killed >= KILLS // 2 and partial >= 3, f"{killed} kills, {partial} mid-sync (uninterrupted run {uninterrupted:.2f}s)"

    code, _o, err = _sync(config, db_url)
    assert code == 0, err
    assert journal_digest(capsys, config, db_url, tmp_path / "resumed.csv") == expected
    counts = db_counts(db_url)
    assert {k: counts[k] for k in ("raw_records", "journal_entries", "postings")} == \
        {k: expected_counts[k] for k in ("raw_records", "journal_entries", "postings")}
    code, out, err = cli(capsys, "check", "--config", config, "--db", db_url)
    assert code == 0, err + out
