"""The fault row of the matrix (issue 20; docs/reliability.md): a sync against an exchange that
answers with 429 storms, 5xx bursts, timeouts, dropped connections, truncated, non-JSON and
wrong-shape 200 bodies, and pages that change between two reads, completes with the fault-free
journal hash, or stops with one line and completes with that hash when rerun.

- Timeouts: the simulator's ``slow`` answers after 3 s and the client's timeout is cut to 1 s for
  the test (it is 30 s), so every ``slow`` is a ReadTimeout the client retries.
- Pages that change: ``shift`` inserts a row ahead of the reader of a listing (its later pages start a
  row earlier: rows read twice, none skipped), with pages of 10 rows so every walk has many; ``insert``
  makes USDC deposits arrive on the exchange during the sync (the newest rows, the balance with
  them). Those arrive after the walk's fixed "now" (A-PAGE-5) and wait for the next sync: once the
  exchange is quiet, one more sync ends with the hash of a fresh sync of the exchange as it is then.

``RECONCILE_MATRIX=large`` runs every spec with three more fault seeds and harder rates.
"""

from __future__ import annotations

import pytest

from importers.backpack.client import BackpackClient
from importers.backpack.simulator.generate import generate_world

from .helpers import LARGE_MATRIX, cli, journal_digest, second_database, write_config

#: Each spec's rates; the large version storms harder (a 429 carries Retry-After: 1, so a CI-sized
#: storm is short).
SPECS = {
    "429_storm": "429=0.25" if LARGE_MATRIX else "429=0.05",
    "5xx_burst": "500=0.08,502=0.08,503=0.08" if LARGE_MATRIX else "500=0.03,502=0.03,503=0.03",
    "timeouts": "slow=0.08,slow_s=3" if LARGE_MATRIX else "slow=0.04,slow_s=3",
    "dropped_connections": "drop=0.12" if LARGE_MATRIX else "drop=0.06",
    "truncated_200_bodies": "malformed=0.12" if LARGE_MATRIX else "malformed=0.06",
    "non_json_and_wrong_shape_200_bodies": "nonjson=0.08,wrongshape=0.08" if LARGE_MATRIX else "nonjson=0.04,wrongshape=0.04",
    "page_shifted_between_reads": "shift=0.3" if LARGE_MATRIX else "shift=0.15",
    "records_arriving_while_paging": "insert=0.1,shift=0.1" if LARGE_MATRIX else "insert=0.05,shift=0.05",
    "everything": ("429=0.05,500=0.03,502=0.03,503=0.03,slow=0.02,drop=0.03,malformed=0.05,nonjson=0.02,wrongshape=0.02,shift=0.05"
                   if LARGE_MATRIX else "429=0.01,500=0.02,502=0.02,503=0.02,slow=0.01,drop=0.02,malformed=0.03,nonjson=0.01,wrongshape=0.01,shift=0.03"),
}
SEEDS = (1, 2, 3, 4) if LARGE_MATRIX else (1,)
#: The client's timeout in this test (seconds): below the ``slow`` answer's 3 s, above a loaded machine's slowest normal answer.
TIMEOUT_S = 1.0
#: History pages of 10 rows, so walks have many pages and ``shift`` has pages to shift.
PAGE_SIZE = 10


@pytest.fixture(scope="module")
def world():
    return generate_world(8, 80)


@pytest.fixture(autouse=True)
def short_timeout_and_pages(monkeypatch):
    import importers.sync as sync

    monkeypatch.setitem(BackpackClient.__init__.__kwdefaults__, "timeout", TIMEOUT_S)
    monkeypatch.setitem(sync.sync_account.__kwdefaults__, "page_size", PAGE_SIZE)


def _reference(capsys, handle, db_url, tmp_path, name: str) -> str:
    config = write_config(tmp_path / name, handle.accounts, handle.base_url, rate_per_second=1000)
    with second_database(db_url, tmp_path) as reference:
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", reference, "--quiet")
        assert code == 0, err
        return journal_digest(capsys, config, reference, tmp_path / f"{name}.csv")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("spec", sorted(SPECS))
def test_faults__sync_completes_with_the_fault_free_hash(db_url, world, start_simulator, tmp_path, capsys, spec, seed):
    arrivals = "insert=" in SPECS[spec]
    clean = start_simulator(world=world)
    expected = None if arrivals else _reference(capsys, clean, db_url, tmp_path, "clean")
    faulty = start_simulator(world=generate_world(8, 80) if arrivals else world, faults=f"{SPECS[spec]},seed={seed}")
    config = write_config(tmp_path / "faulty", faulty.accounts, faulty.base_url, rate_per_second=1000)
    # Arrivals during a sync can make its check see a balance newer than the history it read: the check
    # runs once the exchange is quiet (below).
    extra = ("--no-check",) if arrivals else ()
    for _run in range(4):
        code, out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet", *extra)
        if code == 0:
            break
        lines = [l for l in err.splitlines() if l.strip()]
        assert code == 1 and len(lines) == 1 and lines[0].startswith("reconcile: error: "), (code, err)
    assert code == 0, err
    # faults were served: answers retried, or listings shifted under the reader
    assert faulty.app.requests > clean.app.requests or sum(faulty.app.shifted.values()) > 0
    if arrivals:
        assert faulty.app.arrivals > 0
        faulty.app.faults = None  # the exchange is quiet: the next sync reads what arrived, its check holds
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        assert code == 0, err
        expected = _reference(capsys, faulty, db_url, tmp_path, "after")
    assert journal_digest(capsys, config, db_url, tmp_path / "faulty.csv") == expected
