"""One sync at a time: a second `reconcile sync` on a locked database exits at once; a killed holder frees it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from importers.backpack.simulator.generate import generate_world
from ledger.db import make_engine, upgrade
from ledger.lock import database_lock

from .helpers import REPO, cli, cli_env, db_counts, write_config

HOLDER = """
import sys, time
from ledger.db import make_engine
from ledger.lock import database_lock
with database_lock(make_engine(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_sync__second_sync_exits_at_once_while_the_lock_is_held(db_url, start_simulator, tmp_path, capsys):
    handle = start_simulator(world=generate_world(3, 60))
    config = write_config(tmp_path, handle.accounts, handle.base_url)
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        with database_lock(engine):
            before = handle.app.requests
            started = time.monotonic()
            code, out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
            assert time.monotonic() - started < 5
            assert code != 0
            assert err.strip() == "reconcile: error: another sync is running on this database; try again when it has finished"
            assert handle.app.requests == before  # not one request sent
            assert db_counts(db_url)["snapshots"] == 0
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        assert code == 0, err
    finally:
        engine.dispose()


def test_sync__lock_of_a_killed_holder_is_free(db_url, start_simulator, tmp_path, capsys):
    handle = start_simulator(world=generate_world(3, 60))
    config = write_config(tmp_path, handle.accounts, handle.base_url)
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url], cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        assert code != 0 and "another sync is running" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    # the server (PostgreSQL) or the kernel (SQLite flock) released the lock with the dead process
    deadline = time.monotonic() + 10
    while True:
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        if code == 0 or time.monotonic() > deadline or "another sync is running" not in err:
            break
        time.sleep(0.2)
    assert code == 0, err
