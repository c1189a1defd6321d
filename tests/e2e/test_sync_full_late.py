"""`sync --full` recovers a record the incremental walk cannot see: one that appears later with a time
older than the resume overlap (A-PAGE-7). The incremental sync misses it (proved: nothing new), the
full sync reads it, and the ledger then equals a fresh sync of the whole history, byte for byte."""

from __future__ import annotations

import copy
from datetime import timedelta

import orjson

from importers.backpack.client import RESUME_OVERLAP_MS
from importers.backpack.endpoints import parse_ts
from importers.backpack.simulator.generate import generate_world
from importers.backpack.simulator.scenario import parse_scenario, scenario_of

from .helpers import cli, db_counts, journal_digest, second_database, write_config


def test_sync_full__recovers_a_late_record_older_than_the_overlap(db_url, start_simulator, tmp_path, capsys):
    world = generate_world(11, 120)
    doc = orjson.loads(orjson.dumps(scenario_of(world)))
    spot = [f for f in doc["fills"] if not f["symbol"].endswith(("_PERP", "_RFQ")) and f["side"] == "Ask"]
    last = max(parse_ts(f["timestamp"]) for f in doc["fills"])
    late = copy.deepcopy(spot[-1])
    late_time = last - timedelta(milliseconds=RESUME_OVERLAP_MS["fills"]) - timedelta(hours=1)
    late.update(tradeId=987654321, orderId="987654321", quantity="0.0001", fee="0",
                timestamp=late_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3])
    later = copy.deepcopy(doc)
    later["fills"].append(late)

    first = start_simulator(world=parse_scenario(doc, seed=11))
    config = write_config(tmp_path / "cfg", first.accounts, first.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet", "--no-check")
    assert code == 0, err
    held = db_counts(db_url)["raw_records"]
    first.stop()

    second = start_simulator(world=parse_scenario(later, seed=11))
    assert second.accounts == first.accounts
    config = write_config(tmp_path / "cfg", second.accounts, second.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet", "--no-check")
    assert code == 0, err
    assert db_counts(db_url)["raw_records"] == held  # the incremental walk cannot see it: older than the overlap

    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--full", "--quiet")
    assert code == 0, err  # and the check passes: the late fill is in the ledger
    assert db_counts(db_url)["raw_records"] == held + 1
    with second_database(db_url, tmp_path) as fresh:
        code, _o, err = cli(capsys, "sync", "--config", config, "--db", fresh, "--quiet", "--no-check")
        assert code == 0, err
        expected = journal_digest(capsys, config, fresh, tmp_path / "fresh.csv")
    assert journal_digest(capsys, config, db_url, tmp_path / "full.csv") == expected
