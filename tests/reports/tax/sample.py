"""The reference's sample account (EXPORT-FORMATS.md, "Sample data used in the examples") as a ledger."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, cash, lent, perp_fill, trade


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
        def post(entries):
            post(engine, entries)

    L.engine = engine
    return L


def sample_entries(acct="main"):
    return [
        spot("7700", "2024-01-10T12:00:00", "buy", "BTC", "0.01", "450", acct),
        spot("8800", "2024-02-10T12:00:00", "buy", "BTC", "0.005", "525", acct),
        spot("9001", "2025-01-10T14:03:11", "buy", "SOL", "1.5", "150", acct),
        spot("9060", "2025-02-01T12:00:00", "sell", "BTC", "0.015", "1500", acct),
        priced(cash(Source(acct, "history/interest", "i-2025-02-01", at("2025-02-01T00:00:00")), kind="interest-income", asset="USDC", quantity=D("0.42"),
                    counter="Income:Interest", wallet=lent(acct, "USDC")), USDC="1"),
        perp_fill(Source(acct, "history/fills", "9099", at("2025-02-10T08:00:00")), symbol="SOL_USDC_PERP", side="buy", quantity=D("10"), price=D("150")),
        perp_fill(Source(acct, "history/fills", "9100", at("2025-02-15T08:00:00")), symbol="SOL_USDC_PERP", side="sell", quantity=D("10"), price=D("151.23")),
        priced(cash(Source(acct, "history/settlement", "pnl-9100", at("2025-02-15T08:00:01")), kind="realized-pnl", asset="USDC", quantity=D("12.30"),
                    counter="Income:Perp:RealizedPnl"), USDC="1"),
        priced(cash(Source(acct, "history/settlement", "funding-77", at("2025-02-16T08:00:00")), kind="funding", asset="USDC", quantity=D("-0.05"),
                    counter="Income:Funding"), USDC="1"),
        spot("9050", "2025-03-01T09:30:00", "sell", "SOL", "1.5", "210", acct),
    ]


def post(engine, entries):
    with engine.begin() as conn:
        Journal(conn).post(list(entries))
