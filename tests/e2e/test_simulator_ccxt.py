"""Third-party compatibility: ccxt's ``backpack`` class works unchanged against the simulator.

ccxt signs percent-encoded values, adds ``fillType=User`` to trades and sends ``endTime`` on deposits; the
simulator accepts all of it. Skipped when ccxt is not installed (``pip install ccxt``).
"""

from __future__ import annotations

import pytest

ccxt = pytest.importorskip("ccxt")


@pytest.fixture
def exchange(sim):
    api_key, secret = sim.accounts["main"]
    ex = ccxt.backpack({"apiKey": api_key, "secret": secret, "enableRateLimit": False})
    ex.urls["api"] = {"public": sim.base_url, "private": sim.base_url}
    return ex


def test_ccxt__fetches_account(exchange, signed_get):
    exchange.load_markets()
    trades = exchange.fetch_my_trades("SOL/USDC", limit=1000)
    assert trades and all(t["symbol"] == "SOL/USDC" for t in trades)
    deposits = exchange.fetch_deposits(limit=1000)
    assert any(d["status"] == "ok" for d in deposits)
    withdrawals = exchange.fetch_withdrawals(limit=1000)
    assert withdrawals
    balance = exchange.fetch_balance()
    served = signed_get("/api/v1/capital", "balanceQuery").json()
    assert balance["total"]["USDC"] == pytest.approx(float(served["USDC"]["available"]))
    funding = exchange.fetch_funding_history("SOL/USDC:USDC", limit=1000)
    assert funding
