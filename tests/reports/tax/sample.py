"""The reference's sample account (EXPORT-FORMATS.md, "Sample data used in the examples") as a ledger."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash, lent, trade


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def priced(entry, currency="USD", **prices):
    legs = tuple(l._replace(unit_price=D(prices[l.asset]), price_currency=currency) if l.account.startswith(("Assets:", "Liabilities:")) and l.asset in prices else l
                 for l in entry.legs)
    return entry._replace(legs=legs)


def spot(key, when, side, base, qty, usdc, acct="main", fee="0", fee_asset=None, description="", quote="USDC", currency="USD", prices=None):
    e = trade(Source(acct, "history/fills", key, at(when)), kind="spot-trade", base=base, quote=quote, side=side, quantity=D(qty), quote_quantity=D(usdc),
              fee=D(fee), fee_asset=fee_asset, description=description)
    return priced(e, currency, **(prices or {base: str(D(usdc) / D(qty)), quote: "1"}))


def run_cli(*args) -> int:
    from reconcile.cli import main

    return main([str(a) for a in args])


def read_csv(path, *, skip_preamble=True):
    """A file's rows as dicts by its header (the preamble lines of human-facing files skipped)."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    if skip_preamble:
        while rows and len(rows[0]) == 1 and (rows[0][0].startswith(("WARNING", "NOTE", "Form 8949", "Freigrenze"))):
            rows.pop(0)
    header = rows[0]
    return [dict(zip(header, r)) for r in rows[1:]]


@pytest.fixture
def ledger(engine, db_url, tmp_path, monkeypatch):
    """An empty migrated ledger; ``ledger.post(entries)`` fills it; ``ledger.url`` for the CLI."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)

    class L:
        url = db_url

        @staticmethod
        def post(entries, *, snapshot=True):
            """Post ``entries``; ``snapshot``: then a snapshot of every venue account equal to the ledger, a second
            after its last entry (the exchange agrees, as after a sync: the tax export checks the year end)."""
            post(engine, entries)
            if snapshot:
                snapshot_now(engine)

    L.engine = engine
    return L


def snapshot_now(engine) -> None:
    """``snapshot_as_ledger`` for every venue account of the ledger, a second after its last entry."""
    from datetime import timedelta

    from sqlalchemy import text

    from ledger.reconcile import venue_accounts
    from ledger.types import utc_from_db
    from tests.reports.report_ledger import snapshot_as_ledger

    with engine.connect() as conn:
        names = venue_accounts(conn)
        last = conn.execute(text("SELECT MAX(timestamp) FROM journal_entries")).scalar()
    if names and last is not None:
        snapshot_as_ledger(engine, *names, taken_at=utc_from_db(last) + timedelta(seconds=1))


#: raw record id -> the raw_records rows to store with it (the record itself, and records kept with it):
#: the perpetual entries are derived from exchange records by the posting rules, as a sync does, because
#: the position engine (ledger/perps.py) books the stored records, not hand-made entries.
_RAW: dict[int, list[tuple]] = {}
_RAW_IDS = iter(range(900_000_001, 10**12, 10))


def raw_entries(acct, endpoint, record, *, kept=(), usdc_price=None):
    """The entries the posting rules derive from one exchange ``record`` (``importers.backpack.extract``),
    tied to its raw record (stored by ``post``), with ``kept`` (endpoint, record) pairs stored beside it
    (a ``history/position`` row: the position id -> market map). ``usdc_price``: the USDC legs' unit price."""
    import json

    from importers.backpack.endpoints import ENDPOINTS
    from importers.backpack.extract import extract

    rid = next(_RAW_IDS)
    rows = []
    out = []
    for i, (ep_name, r) in enumerate(((endpoint, record), *kept)):
        ep = ENDPOINTS[ep_name]
        key, t = ep.natural_key(r), ep.record_time(r)
        x = extract(ep_name, r, Source(acct, ep_name, key, t, rid + i))
        rows.append((rid + i, acct, ep_name, key, json.dumps(r, separators=(",", ":")), t, x.status, x.note))
        if i == 0:
            out = list(x.entries)
    _RAW[rid] = rows
    if usdc_price is not None:
        out = [priced(e, USDC=usdc_price) for e in out]
    return out


def perp_fill_record(trade_id, when, side, qty, price, symbol="SOL_USDC_PERP", fee="0", system=None):
    return {"clientId": None, "fee": fee, "feeSymbol": "USDC", "isMaker": False, "orderId": str(10**10 + trade_id), "price": price, "quantity": qty,
            "side": {"buy": "Bid", "sell": "Ask"}[side], "symbol": symbol, "systemOrderType": system, "timestamp": when, "tradeId": trade_id}


def settlement_record(seq, when, source, qty, position_id="p-sol-1"):
    return {"quantity": qty, "source": source, "subaccountId": None, "timestamp": when, "userId": 1, "positionId": position_id, "engineSequence": seq}


def position_record(position_id="p-sol-1", symbol="SOL_USDC_PERP", opened="2025-02-10T08:00:00.000"):
    return {"id": position_id, "symbol": symbol, "state": "Closed", **{k: "0" for k in (
        "netQuantity", "netExposureQuantity", "netExposureNotional", "netCost", "markPrice", "entryPrice", "cumulativePnlRealized", "unrealizedPnl",
        "fundingQuantity", "interest", "liquidated", "imf", "fees", "closedVolume", "liquidationFees")}, "closingPrice": None, "accountLeverage": None,
        "openedAt": opened, "closedAt": None}


def sample_perps(acct="main"):
    """The sample's SOL_USDC_PERP round trip (+12.30 USDC realized on 2025-02-15, 0.05 USDC funding paid on 2025-02-16) as the
    exchange's records: two fills, a RealizePnl and a FundingPayment settlement, and the position row naming the market."""
    return [
        *raw_entries(acct, "fills", perp_fill_record(9099, "2025-02-10T08:00:00.000", "buy", "10", "150"), kept=[("positionHistory", position_record())]),
        *raw_entries(acct, "fills", perp_fill_record(9100, "2025-02-15T08:00:00.000", "sell", "10", "151.23")),
        *raw_entries(acct, "settlement", settlement_record(9100, "2025-02-15T08:00:01.000000", "RealizePnl", "12.30"), usdc_price="1"),
        *raw_entries(acct, "settlement", settlement_record(77, "2025-02-16T08:00:00.000000", "FundingPayment", "-0.05"), usdc_price="1"),
    ]


def sample_entries(acct="main"):
    return [
        spot("7700", "2024-01-10T12:00:00", "buy", "BTC", "0.01", "450", acct),
        spot("8800", "2024-02-10T12:00:00", "buy", "BTC", "0.005", "525", acct),
        spot("9001", "2025-01-10T14:03:11", "buy", "SOL", "1.5", "150", acct),
        spot("9060", "2025-02-01T12:00:00", "sell", "BTC", "0.015", "1500", acct),
        priced(cash(Source(acct, "history/interest", "i-2025-02-01", at("2025-02-01T00:00:00")), kind="interest-income", asset="USDC", quantity=D("0.42"),
                    counter="Income:Interest", wallet=lent(acct, "USDC")), USDC="1"),
        *sample_perps(acct),
        spot("9050", "2025-03-01T09:30:00", "sell", "SOL", "1.5", "210", acct),
    ]


def post(engine, entries):
    entries = list(entries)
    with engine.begin() as conn:
        raw = [row for rid in dict.fromkeys(e.raw_record_id for e in entries if e.raw_record_id is not None) for row in _RAW.get(rid, ())]
        if raw:
            from datetime import datetime as _dt

            from ledger.bulk import bulk_insert
            from ledger.types import db_time

            now = db_time(conn, _dt.now(timezone.utc))
            bulk_insert(conn, "raw_records", ("id", "venue_account", "endpoint", "natural_key", "payload", "record_time", "fetched_at", "status", "note"),
                        [(i, a, ep, k, pl, db_time(conn, t), now, st, note) for i, a, ep, k, pl, t, st, note in raw])
        Journal(conn).post(entries)
