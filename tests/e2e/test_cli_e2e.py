"""Bad input end to end: malformed keys stop before any request; a corrupt page writes nothing of itself."""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import create_engine, text

from importers.backpack.simulator.faults import FaultPlan
from importers.backpack.simulator.generate import generate_world

from .helpers import cli, db_counts, journal_digest, write_config


@pytest.fixture(scope="module")
def small_world():
    return generate_world(9, 120)


class CorruptFrom(FaultPlan):
    """Every response from the ``first``-th request on is cut in half (the simulator's ``malformed`` fault)."""

    def __init__(self, first: int) -> None:
        super().__init__(rates={})
        self.first = first
        self.seen = 0

    def draw(self) -> str | None:
        self.seen += 1
        return "malformed" if self.seen >= self.first else None


_OTHER_SECRET = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    "api_key, secret, why",
    [
        ("not*base64*at*all", None, "API key"),
        (None, base64.b64encode(b"too short").decode(), "API secret must decode to 32 bytes"),
        (None, _OTHER_SECRET, "API key does not match the API secret"),
    ],
    ids=["key-not-base64", "secret-wrong-length", "key-secret-mismatch"],
)
def test_sync__malformed_credentials_exit_2_before_any_request(api_key, secret, why, small_world, start_simulator,
                                                                 tmp_path, capsys):
    handle = start_simulator(world=small_world)
    good_key, good_secret = handle.accounts["main"]
    bad = {"main": (api_key or good_key, secret or good_secret)}
    config = write_config(tmp_path, bad, handle.base_url)
    db = tmp_path / "never.db"
    requests = handle.app.requests

    code, out, err = cli(capsys, "sync", "--config", config, "--db", f"sqlite:///{db}")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("reconcile: error: ") and "accounts[main]" in err and why in err
    assert (secret or good_secret) not in err
    assert good_secret not in err
    assert handle.app.requests == requests
    assert not db.exists()


def test_sync__corrupt_pages_leave_the_ledger_unchanged(db_url, small_world, start_simulator, tmp_path, capsys):
    clean = start_simulator(world=small_world)
    config = write_config(tmp_path, clean.accounts, clean.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    before = journal_digest(capsys, config, db_url, tmp_path / "before.csv")
    counts = db_counts(db_url)

    corrupt = start_simulator(world=small_world, faults="malformed=1.0")
    config = write_config(tmp_path, corrupt.accounts, corrupt.base_url)
    for extra in ((), ("--full",)):
        code, out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet", *extra)
        assert code not in (0, 3)
        # the first corrupt body read names its endpoint: /time (a halved body is an implausible time)
        assert err.count("\n") == 1 and re.match(r"reconcile: error: time: malformed response: server time is not a plausible", err), err
        assert journal_digest(capsys, config, db_url, tmp_path / "after.csv") == before
        assert db_counts(db_url) == counts


def test_sync__corrupt_page_mid_walk_keeps_only_whole_pages(db_url, small_world, start_simulator, tmp_path, capsys):
    reference = start_simulator(world=small_world)
    config = write_config(tmp_path / "ref", reference.accounts, reference.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", f"sqlite:///{tmp_path / 'ref.db'}", "--quiet")
    assert code == 0, err
    expected = journal_digest(capsys, config, f"sqlite:///{tmp_path / 'ref.db'}", tmp_path / "ref.csv")

    corrupt = start_simulator(world=small_world, faults=CorruptFrom(70))  # past the snapshot, into the time walks
    config = write_config(tmp_path, corrupt.accounts, corrupt.base_url)
    code, out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code not in (0, 3)
    assert err.count("\n") == 1, err
    endpoint = err.removeprefix("reconcile: error: ").split(":")[0]
    assert endpoint in ("deposits", "withdrawals", "fills"), err

    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            held = dict(conn.execute(text("SELECT endpoint, COUNT(*) FROM raw_records GROUP BY endpoint")).all())
            cursors = dict(conn.execute(text("SELECT endpoint, records FROM sync_state WHERE venue_account = 'main'")).all())
            unposted = conn.execute(text("SELECT COUNT(*) FROM raw_records r WHERE r.status = 'posted' AND NOT EXISTS"
                                         " (SELECT 1 FROM journal_entries e WHERE e.raw_record_id = r.id)")).scalar_one()
    finally:
        eng.dispose()
    assert held, "no page was stored before the corrupt one"
    assert endpoint not in cursors or cursors[endpoint] == held.get(endpoint, 0)
    assert {e: n for e, n in cursors.items() if n} == held  # every stored record came with its cursor, page by page
    assert unposted == 0
    code, out, err = cli(capsys, "status", "--config", config, "--db", db_url, "--json")
    assert code == 0 and '"balanced": true' in out

    config = write_config(tmp_path, reference.accounts, reference.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    assert journal_digest(capsys, config, db_url, tmp_path / "resumed.csv") == expected
