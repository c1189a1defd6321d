"""sync_account without a network: a paging client over a generated account's records (both databases).

The stand-in implements the sync's PagingClient protocol over in-memory pages of real simulator
records, with offset cursors, and can fail after a given number of pages (a connection lost mid-walk).
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

from importers.backpack.client import Page
from importers.backpack.simulator.generate import generate_world
from importers.sync import sync_account

#: sync endpoint -> simulator stream
STREAM = {"deposits": "deposits", "withdrawals": "withdrawals", "fills": "fills", "settlement": "settlements",
          "interest": "interest", "borrowLend": "borrowLendHistory"}


class Lost(Exception):
    """The connection dropped mid-walk."""


class FakeClient:
    def __init__(self, records: dict[str, list[dict]], *, page: int = 7, fail_after: int | None = None):
        self.records = records
        self.page = page
        self.fail_after = fail_after
        self.pages_served = 0

    def iter_pages(self, endpoint, cursor=None, **kw):
        rows = self.records.get(endpoint, [])
        start = cursor["offset"] if cursor else 0
        for i in range(start, max(len(rows), 1), self.page):
            if self.fail_after is not None and self.pages_served >= self.fail_after:
                raise Lost(endpoint)
            self.pages_served += 1
            chunk = rows[i:i + self.page]
            yield Page(endpoint=endpoint, records=chunk, cursor={"v": 1, "endpoint": endpoint, "mode": "offset", "offset": i + len(chunk)})

    def balances(self):
        return {}

    def borrow_lend_positions(self):
        return []

    def open_positions(self):
        return []

    def collateral(self):
        return {}

    def server_time_ms(self):
        return 1_800_000_000_000


@pytest.fixture(scope="module")
def records():
    main = generate_world(4, 60).accounts[0]
    return {ep: orjson.loads(orjson.dumps(main.tables[stream].records())) for ep, stream in STREAM.items()}


def _ledger(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT e.entry_key, p.account_id, p.asset_id, p.quantity FROM journal_entries e JOIN postings p ON p.entry_id = e.id"
            " ORDER BY e.entry_key, p.account_id, p.asset_id, p.quantity"))]


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_sync_account__replay_and_full_change_nothing(engine, records):
    rep = sync_account(engine, FakeClient(records), "main", endpoints=STREAM)
    assert sum(e.new for e in rep.endpoints) == sum(len(v) for v in records.values())
    ledger = _ledger(engine)
    assert ledger
    again = sync_account(engine, FakeClient(records), "main", endpoints=STREAM)
    assert sum(e.new for e in again.endpoints) == 0
    full = sync_account(engine, FakeClient(records), "main", endpoints=STREAM, full=True)
    assert sum(e.new for e in full.endpoints) == 0 and sum(e.entries for e in full.endpoints) == 0
    assert _ledger(engine) == ledger


@pytest.mark.parametrize("fail_after", [0, 1, 5, 13])
def test_sync_account__lost_mid_walk_resumes_to_the_same_ledger(engine, records, fail_after):
    with pytest.raises(Lost):
        sync_account(engine, FakeClient(records, fail_after=fail_after), "main", endpoints=STREAM)
    assert _count(engine, "raw_records") <= fail_after * 7  # only whole pages were kept
    sync_account(engine, FakeClient(records), "main", endpoints=STREAM)
    resumed = _ledger(engine)
    assert _count(engine, "raw_records") == sum(len(v) for v in records.values())
    # a clean full replay finds nothing to add
    rep = sync_account(engine, FakeClient(records), "main", endpoints=STREAM, full=True)
    assert sum(e.new for e in rep.endpoints) == 0
    assert _ledger(engine) == resumed


def test_sync_account__snapshot_time_is_the_server_time(engine, records):
    rep = sync_account(engine, FakeClient({}), "main", endpoints=STREAM)
    assert rep.snapshot_time is not None and int(rep.snapshot_time.timestamp() * 1000) == 1_800_000_000_000
    assert _count(engine, "snapshots") == 1
