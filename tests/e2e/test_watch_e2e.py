"""`reconcile watch` against the simulator's streams, then `reconcile sync` (docs/watch.md).

Each database test runs on SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from importers.backpack.signing import Credentials, public_key_of
from importers.backpack.simulator.generate import generate_world
from importers.backpack.simulator.server import serve_in_thread
from importers.watch import WatchAccount, WatchOptions, watch
from ledger.db import make_engine, upgrade

from .helpers import cli, cli_process, journal_digest, second_database, write_config

LIVE = {"fills": 120, "rate": 400, "mark_interval_s": 0.2}
FAULTS = "drop=0.01,missing=0.06,duplicate=0.05,delay=0.02,seed=4,delay_s=0.01"


@pytest.fixture(scope="module")
def world():
    return generate_world(5, 500)


def _sql(db_url: str, query: str) -> list[tuple]:
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        eng.dispose()


def watch_until_replayed(h, db_url: str, names=("main",), rfq: bool | None = None, **opts) -> dict:
    """Run the watch client in this process until the simulator has emitted every live event."""
    eng = make_engine(db_url)
    upgrade(eng)
    accounts = [WatchAccount(n, Credentials.from_base64(*h.accounts[n]), h.ws_url, rfq=rfq) for n in names]

    async def main():
        stop = asyncio.Event()

        async def stopper():
            deadline = time.monotonic() + 60
            while not all(h.app.ws.replay_finished(n) for n in names) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.6)
            stop.set()

        task = asyncio.ensure_future(stopper())
        rep = await watch(eng, accounts, WatchOptions(backoff_initial_s=0.05, **opts), out=lambda s: None,
                          err=lambda s: None, stop=stop)
        task.cancel()
        return rep

    try:
        return asyncio.run(main()).accounts
    finally:
        eng.dispose()


def replayed_fills(h, name="main") -> list[dict]:
    r = h.app.ws.replay(h.world.accounts[[a.name for a in h.world.accounts].index(name)])
    return [json.loads(e.body) for e in r.events if b'"orderFill"' in e.body]


def test_watch_then_sync_confirms_every_live_fill(world, db_url, tmp_path, capsys):
    with serve_in_thread(world=world, live=LIVE) as h:
        stats = watch_until_replayed(h, db_url)
        live = replayed_fills(h)
        assert stats["main"].fills == len(live) >= 120 and stats["main"].gaps == 0
        rows = _sql(db_url, "SELECT status, COUNT(*) FROM live_fills GROUP BY status")
        assert rows == [("provisional", len(live))]
        assert _sql(db_url, "SELECT COUNT(*) FROM journal_entries") == [(0,)]  # never journalled

        config = write_config(tmp_path, h.accounts, h.base_url, names=("main",))
        code, out, err = cli(capsys, "status", "--config", config, "--db", db_url)
        assert code == 0, err
        assert f"{len(live)} provisional fill(s) since the last sync" in out

        code, _, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        assert code == 0, err
    assert _sql(db_url, "SELECT status, COUNT(*) FROM live_fills GROUP BY status") == [("confirmed", len(live))]
    # none doubled: the ledger equals a sync of the same account without watch
    rest_fills = len(world.main.tables["fills"])
    assert _sql(db_url, "SELECT COUNT(*) FROM raw_records WHERE venue_account = 'main' AND endpoint = 'fills'") == [(rest_fills,)]
    with second_database(db_url, tmp_path) as other, serve_in_thread(world=world) as h2:
        config2 = write_config(tmp_path / "b", h2.accounts, h2.base_url, names=("main",))
        code, _, err = cli(capsys, "sync", "--config", config2, "--db", other, "--quiet")
        assert code == 0, err
        assert journal_digest(capsys, config2, other, tmp_path / "b.csv") == journal_digest(capsys, config, db_url, tmp_path / "a.csv")
    # the live position equals the REST position
    live_pos = {s: Decimal(q) for s, q in _sql(db_url, "SELECT symbol, quantity FROM live_positions") if Decimal(q) != 0}
    assert live_pos == {p["symbol"]: Decimal(p["netQuantity"]) for p in world.main.positions}
    snap = _sql(db_url, "SELECT l.asset, l.quantity FROM snapshot_lines l JOIN snapshots s ON s.id = l.snapshot_id "
                        "WHERE l.wallet = 'Perp' AND s.venue_account = 'main'")
    assert live_pos == {a: Decimal(q) for a, q in snap if Decimal(q) != 0}
    code, out, err = cli(capsys, "status", "--config", config, "--db", db_url, "--json")
    view = json.loads(out)["live"][0]
    assert view["provisional_count"] == 0 and view["gaps"] == [] and view["warnings"] == []
    assert {p["symbol"] for p in view["positions"]} == set(live_pos)
    assert all(p["unrealized_pnl"] is not None and p["mark_source"] == "stream" for p in view["positions"])


def test_under_stream_faults_the_ledger_after_sync_is_the_fault_free_one(world, db_url, tmp_path, capsys):
    with serve_in_thread(world=world, live=LIVE, ws_faults=FAULTS) as h:
        stats = watch_until_replayed(h, db_url)["main"]
        config = write_config(tmp_path, h.accounts, h.base_url, names=("main",))
        assert stats.connects >= 2 and stats.duplicates >= 1
        # every reconnect re-subscribed with a fresh signature
        stamps = [ts for name, ts in h.app.ws.accepted if name == "main"]
        assert len(stamps) == stats.connects and len(set(stamps)) == len(stamps)
        reasons = {r for (r,) in _sql(db_url, "SELECT reason FROM live_gaps WHERE filled_at IS NULL")}
        assert reasons == {"disconnected", "fills skipped"}
        code, out, err = cli(capsys, "status", "--config", config, "--db", db_url)
        assert "live view incomplete between" in err and "the next sync fills it" in err
        received = _sql(db_url, "SELECT COUNT(*) FROM live_fills")[0][0]
        assert received < len(replayed_fills(h))  # some were lost to the faults
        # no fill stored twice despite the duplicates
        assert _sql(db_url, "SELECT COUNT(*), COUNT(DISTINCT fill_key) FROM live_fills")[0] == (received, received)
        code, _, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        assert code == 0, err
    assert _sql(db_url, "SELECT status, COUNT(*) FROM live_fills GROUP BY status") == [("confirmed", received)]
    assert _sql(db_url, "SELECT COUNT(*) FROM live_gaps WHERE filled_at IS NULL") == [(0,)]
    with second_database(db_url, tmp_path) as other, serve_in_thread(world=world) as h2:
        config2 = write_config(tmp_path / "b", h2.accounts, h2.base_url, names=("main",))
        assert cli(capsys, "sync", "--config", config2, "--db", other, "--quiet")[0] == 0
        assert journal_digest(capsys, config2, other, tmp_path / "b.csv") == journal_digest(capsys, config, db_url, tmp_path / "a.csv")
    code, out, err = cli(capsys, "status", "--config", config, "--db", db_url)
    assert "live view incomplete" not in err


def test_a_provisional_fill_no_sync_confirms_is_reported(world, db_url, tmp_path, capsys):
    with serve_in_thread(world=world, live={"fills": 10, "rate": 0, "mark_interval_s": 0}) as h:
        watch_until_replayed(h, db_url)
        # a fill the REST history will never carry (as if the stream had invented it)
        _exec(db_url, "UPDATE live_fills SET fill_key = 'fills:999999999:1:Bid:SOL_USDC', trade_id = '999999999' "
                      "WHERE id = (SELECT MIN(id) FROM live_fills)")
        config = write_config(tmp_path, h.accounts, h.base_url, names=("main",))
        assert cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")[0] == 0
        assert _sql(db_url, "SELECT status, missed_syncs FROM live_fills WHERE trade_id = '999999999'") == [("provisional", 1)]
        assert cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")[0] == 0
    assert _sql(db_url, "SELECT status, missed_syncs FROM live_fills WHERE trade_id = '999999999'") == [("unconfirmed", 2)]
    code, out, err = cli(capsys, "check", "--config", config, "--db", db_url)
    assert "trade 999999999" in err and "not confirmed" in err
    total = _sql(db_url, "SELECT COUNT(*) FROM live_fills")[0][0]
    assert total >= 10
    assert _sql(db_url, "SELECT status, COUNT(*) FROM live_fills GROUP BY status ORDER BY 1") == [
        ("confirmed", total - 1), ("unconfirmed", 1)]


def _exec(db_url: str, sql: str) -> None:
    eng = create_engine(db_url)
    try:
        with eng.begin() as conn:
            conn.execute(text(sql))
    finally:
        eng.dispose()


def test_watch_with_a_wrong_secret_exits_with_one_line(world, tmp_path, capsys):
    with serve_in_thread(world=world) as h:
        key, _ = h.accounts["main"]
        other = base64.b64encode(bytes(range(32))).decode()
        config = write_config(tmp_path, {"main": (key, other)}, h.base_url)
        code, out, err = cli(capsys, "watch", "--config", config, "--db", f"sqlite:///{tmp_path}/w.db")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "does not match the API secret" in err and other not in err + out


def test_watch_with_a_key_the_exchange_refuses_exits_2(world, tmp_path, capsys):
    with serve_in_thread(world=world) as h:
        secret = base64.b64encode(bytes(range(1, 33))).decode()  # a valid pair the exchange does not know
        config = write_config(tmp_path, {"main": (public_key_of(secret), secret)}, h.base_url)
        code, out, err = cli(capsys, "watch", "--config", config, "--db", f"sqlite:///{tmp_path}/w.db", "--quiet")
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "refused the signed subscription" in lines[0] and secret not in err
        assert h.app.ws.refused == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_watch_stops_cleanly_on_a_signal_keeping_what_it_received(world, tmp_path, sig):
    db = f"sqlite:///{tmp_path}/w.db"
    with serve_in_thread(world=world, live={"fills": 400, "rate": 100, "mark_interval_s": 0}) as h:
        config = write_config(tmp_path, h.accounts, h.base_url, names=("main",))
        proc = cli_process("watch", "--config", config, "--db", db, "--verbose")
        try:
            deadline = time.monotonic() + 30
            while h.app.ws.sent_fills < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill() if proc.poll() is None else None
        sent = h.app.ws.sent_fills
    assert proc.returncode == 0, err
    assert 50 <= sent < 400
    assert "stopped" in out and out.count("(provisional)") == sent
    assert _sql(db, "SELECT COUNT(*) FROM live_fills") == [(sent,)]
    assert _sql(db, "SELECT state FROM live_streams") == [("stopped",)]


def test_two_accounts_on_their_own_connections(world, db_url, tmp_path, capsys):
    with serve_in_thread(world=world, live={"fills": 15, "rate": 0, "mark_interval_s": 0}) as h:
        stats = watch_until_replayed(h, db_url, names=("main", "sub1"))
        assert stats["main"].connects == 1 and stats["sub1"].connects == 1
        counts = dict(_sql(db_url, "SELECT venue_account, COUNT(*) FROM live_fills GROUP BY venue_account"))
        assert counts == {"main": len(replayed_fills(h, "main")), "sub1": len(replayed_fills(h, "sub1"))}
        # sub1's fills are sub1's REST fills, not main's
        sub_keys = {k for (k,) in _sql(db_url, "SELECT fill_key FROM live_fills WHERE venue_account = 'sub1'")}
        rest = {f"fills:{f['tradeId']}:{f['orderId']}:{f['side']}:{f['symbol']}" for f in world.accounts[1].tables["fills"].records()}
        assert sub_keys <= rest
        config = write_config(tmp_path, h.accounts, h.base_url)
        assert cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")[0] == 0
    assert _sql(db_url, "SELECT DISTINCT status FROM live_fills") == [("confirmed",)]


def test_rfq_fills_are_provisional_until_the_sync_brings_them(world, db_url, tmp_path, capsys):
    with serve_in_thread(world=world, live={"fills": -1, "rate": 0, "mark_interval_s": 0}) as h:
        stats = watch_until_replayed(h, db_url, rfq=True)["main"]
        assert h.app.ws.accepted and stats.connects == 1
        rfq = _sql(db_url, "SELECT fill_key, side, quantity, status FROM live_fills "
                           "WHERE fill_key LIKE 'rfqFill:%' OR fill_key LIKE 'quoteFill:%' ORDER BY fill_key")
        requester = {f"rfqFill:{r['rfqId']}:{r['quoteId']}" for r in world.main.tables["rfqFills"].records()}
        quoter = {f"quoteFill:{r['quoteId']}:{r['rfqId']}" for r in world.main.tables["quoteFills"].records()}
        assert {k for k, *_ in rfq} == requester | quoter and requester and quoter
        assert all(status == "provisional" for *_, status in rfq)
        assert all(side == "" and qty is None for k, side, qty, _ in rfq if k.startswith("quoteFill:"))  # REST only
        config = write_config(tmp_path, h.accounts, h.base_url, names=("main",))
        assert cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")[0] == 0
    assert _sql(db_url, "SELECT DISTINCT status FROM live_fills") == [("confirmed",)]
