"""The fault row of the matrix (issue 20; docs/reliability.md): a sync against an exchange that
answers with 429 storms, 5xx bursts, dropped connections and truncated 200 bodies completes with the
fault-free journal hash, or stops with one line and completes with that hash when rerun.

Timeouts are proved at the client (``tests/importers/test_client.py``: ReadTimeout retried), because
the client waits 30 s before it calls a request timed out. ``RECONCILE_MATRIX=large`` runs every spec
with three more fault seeds.
"""

from __future__ import annotations

import pytest

from importers.backpack.simulator.generate import generate_world

from .helpers import LARGE_MATRIX, cli, journal_digest, second_database, write_config

#: Each spec's rates; the large version storms harder (a 429 carries Retry-After: 1, so a CI-sized
#: storm is short).
SPECS = {
    "429_storm": "429=0.25" if LARGE_MATRIX else "429=0.05",
    "5xx_burst": "500=0.08,502=0.08,503=0.08" if LARGE_MATRIX else "500=0.03,502=0.03,503=0.03",
    "dropped_connections": "drop=0.12" if LARGE_MATRIX else "drop=0.06",
    "truncated_200_bodies": "malformed=0.12" if LARGE_MATRIX else "malformed=0.06",
    "everything": "429=0.05,500=0.03,502=0.03,503=0.03,drop=0.03,malformed=0.05" if LARGE_MATRIX else
                  "429=0.01,500=0.02,502=0.02,503=0.02,drop=0.02,malformed=0.04",
}
SEEDS = (1, 2, 3, 4) if LARGE_MATRIX else (1,)


@pytest.fixture(scope="module")
def world():
    return generate_world(8, 80)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("spec", sorted(SPECS))
def test_faults__sync_completes_with_the_fault_free_hash(db_url, world, start_simulator, tmp_path, capsys, spec, seed):
    clean = start_simulator(world=world)
    config = write_config(tmp_path / "clean", clean.accounts, clean.base_url, rate_per_second=1000)
    with second_database(db_url, tmp_path) as reference:
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", reference, "--quiet")
        assert code == 0, err
        expected = journal_digest(capsys, config, reference, tmp_path / "reference.csv")
    faulty = start_simulator(world=world, faults=f"{SPECS[spec]},seed={seed}")
    config = write_config(tmp_path / "faulty", faulty.accounts, faulty.base_url, rate_per_second=1000)
    stops = 0
    for _run in range(4):
        code, out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        if code == 0:
            break
        lines = [l for l in err.splitlines() if l.strip()]
        assert code == 1 and len(lines) == 1 and lines[0].startswith("reconcile: error: "), (code, err)
        stops += 1
    assert code == 0, err
    assert faulty.app.requests > clean.app.requests  # faults were served (and retried)
    assert journal_digest(capsys, config, db_url, tmp_path / "faulty.csv") == expected
