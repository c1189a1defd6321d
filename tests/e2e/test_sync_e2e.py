"""`reconcile sync` against the simulator: a generated account reconciles, and sync is idempotent.

Each test runs on SQLite and PostgreSQL (``db_url``). The shared simulator (``sim``: seed 7, 600 fills,
main and sub1) serves the first tests; the incremental test serves two worlds whose histories share
a prefix (the exchange gains records between two syncs).
"""

from __future__ import annotations

import json
import time

import orjson
from sqlalchemy import create_engine, text

from importers.backpack.simulator.generate import generate_world
from importers.backpack.simulator.scenario import parse_scenario, scenario_of

from .helpers import cli, db_counts, journal_digest, prefix_scenario, second_database, write_config


def _sql(db_url: str, query: str) -> list[tuple]:
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        eng.dispose()


def test_sync__generated_account_reconciles_exactly(db_url, sim, tmp_path, capsys):
    config = write_config(tmp_path, sim.accounts, sim.base_url)
    assert set(sim.accounts) == {"main", "sub1"}

    code, _out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    code, out, err = cli(capsys, "check", "--config", config, "--db", db_url)
    assert code == 0, err
    assert "main: ledger equals the exchange to the last unit" in out
    assert "sub1: ledger equals the exchange to the last unit" in out

    code, out, err = cli(capsys, "check", "--config", config, "--db", db_url, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] is True
    assert {a["venue_account"] for a in report["accounts"]} == {"main", "sub1"}
    for acct in report["accounts"]:
        assert acct["lines"], acct["venue_account"]
        assert all(line["difference"] == "0" for line in acct["lines"])

    code, out, err = cli(capsys, "status", "--config", config, "--db", db_url, "--json")
    assert code == 0, err
    st = json.loads(out)
    assert st["balanced"] is True
    assert st["trial_balance"] and all(q == "0" for q in st["trial_balance"].values())
    assert st["unknown_records"] == 0
    assert st["entries"] > 600

    # every entry links to the raw record it came from (same account, endpoint and key)
    orphans = _sql(db_url, "SELECT COUNT(*) FROM journal_entries e LEFT JOIN raw_records r ON r.id = e.raw_record_id"
                           " WHERE r.id IS NULL OR r.venue_account <> e.venue_account OR r.endpoint <> e.endpoint")
    assert orphans == [(0,)]
    # overlapping streams post each movement once: funding rows and borrowLend source=Interest rows are memo
    assert _sql(db_url, "SELECT COUNT(*) FROM journal_entries WHERE endpoint = 'funding'") == [(0,)]
    funding = _sql(db_url, "SELECT status, COUNT(*) FROM raw_records WHERE endpoint = 'funding' GROUP BY status")
    assert funding and dict(funding).keys() == {"memo"}
    bl = _sql(db_url, "SELECT r.payload, r.status, COUNT(e.id) FROM raw_records r LEFT JOIN journal_entries e"
                      " ON e.raw_record_id = r.id WHERE r.endpoint = 'borrowLend' GROUP BY r.id, r.payload, r.status")
    interest_rows = [(s, n) for payload, s, n in bl if json.loads(payload).get("source") == "Interest"]
    assert interest_rows and all(s == "memo" and n == 0 for s, n in interest_rows)
    assert any(s == "posted" and n == 1 for payload, s, n in bl if json.loads(payload).get("source") != "Interest")
    posted_funding = _sql(db_url, "SELECT COUNT(*) FROM raw_records WHERE endpoint = 'settlement' AND status = 'posted'"
                                  " AND payload LIKE '%FundingPayment%'")
    assert posted_funding[0][0] > 0
    # one entry per posted raw record, never two
    assert _sql(db_url, "SELECT COUNT(*) FROM (SELECT raw_record_id FROM journal_entries GROUP BY raw_record_id"
                        " HAVING COUNT(*) > 1) d") == [(0,)]


def test_sync__second_sync_and_full_sync_change_nothing(db_url, sim, tmp_path, capsys):
    config = write_config(tmp_path, sim.accounts, sim.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    first = journal_digest(capsys, config, db_url, tmp_path / "j1.csv")
    counts = db_counts(db_url)

    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    again = db_counts(db_url)
    assert {k: again[k] - counts[k] for k in again} == {"raw_records": 0, "journal_entries": 0, "postings": 0, "snapshots": 2}
    assert journal_digest(capsys, config, db_url, tmp_path / "j2.csv") == first

    code, out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--full", "--no-check")
    assert code == 0, err
    assert journal_digest(capsys, config, db_url, tmp_path / "j3.csv") == first
    assert db_counts(db_url)["raw_records"] == counts["raw_records"]


def test_sync__incremental_after_new_records_equals_full_sync(db_url, start_simulator, tmp_path, capsys):
    """The exchange gains records between two syncs: the incremental ledger is the full sync's, byte for byte.

    The first server serves the history before a cut with its clock at the cut; the second serves the whole
    history with the real clock (the same keys: the same account, later).
    """
    world = generate_world(11, 300)
    doc = orjson.loads(orjson.dumps(scenario_of(world)))
    times = sorted(world.accounts[0].tables["fills"].ts)
    cut = times[len(times) // 2]
    early = prefix_scenario(doc, cut)
    early["now"] = doc["now"]
    assert len(early["fills"]) < len(doc["fills"])

    # the exchange's clock stands at the cut during the first sync: later records have not happened yet
    started = time.time()
    before = start_simulator(world=parse_scenario(early, seed=11), clock=lambda: cut / 1000 + time.time() - started)
    config = write_config(tmp_path / "cfg", before.accounts, before.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    held = db_counts(db_url)["raw_records"]
    before.stop()
    after = start_simulator(world=parse_scenario(doc, seed=11))
    if True:
        assert after.accounts == before.accounts  # same keys: the same account, later
        config = write_config(tmp_path / "cfg", after.accounts, after.base_url)
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        assert code == 0, err
        assert db_counts(db_url)["raw_records"] > held
        incremental = journal_digest(capsys, config, db_url, tmp_path / "inc.csv")

        with second_database(db_url, tmp_path) as fresh:
            code, _o, err = cli(capsys, "sync", "--config", config, "--db", fresh, "--quiet")
            assert code == 0, err
            full = journal_digest(capsys, config, fresh, tmp_path / "full.csv")
            assert db_counts(fresh)["raw_records"] == db_counts(db_url)["raw_records"]
        assert incremental == full

        # and a --full re-read of the same database finds nothing the incremental walk missed
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--full", "--quiet")
        assert code == 0, err
        assert journal_digest(capsys, config, db_url, tmp_path / "inc-full.csv") == full
