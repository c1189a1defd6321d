"""Third-party compatibility: ccxt.pro's ``backpack`` WebSocket client, unchanged, against the simulator's streams."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

pytest.importorskip("ccxt.pro")
import ccxt.pro  # noqa: E402

from importers.backpack.simulator.server import serve_in_thread  # noqa: E402


def test_ccxt_pro_watches_orders_and_positions():
    with serve_in_thread(seed=3, fills=300, live={"fills": 60, "rate": 40, "mark_interval_s": 0}) as h:
        api_key, secret = h.accounts["main"]
        rest_orders = {o["id"]: o for o in h.world.main.tables["orders"].records()}
        rfq_ids = {r["rfqId"] for t in ("rfqFills", "quoteFills") for r in h.world.main.tables[t].records()}
        rest_pos = {p["symbol"]: Decimal(p["netQuantity"]) for p in h.world.main.positions}

        async def run():
            ex = ccxt.pro.backpack({"apiKey": api_key, "secret": secret, "enableRateLimit": False})
            ex.urls["api"] = {"public": h.base_url, "private": h.base_url,
                              "ws": {"public": h.ws_url, "private": h.ws_url}}
            orders, positions = {}, {}
            try:
                await ex.load_markets()

                async def watch_orders():
                    while True:
                        for o in await ex.watch_orders():
                            orders[o["id"]] = o

                async def watch_positions():
                    while True:
                        for p in await ex.watch_positions():
                            positions[p["info"]["s"]] = p

                tasks = [asyncio.create_task(watch_orders()), asyncio.create_task(watch_positions())]
                await asyncio.sleep(3.5)  # 60 fills at 40/s
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                await ex.close()
            return orders, positions

        orders, positions = asyncio.run(run())
    assert len(orders) >= 10
    rfq = {oid: o for oid, o in orders.items() if oid not in rest_orders}
    assert set(rfq) <= rfq_ids  # ccxt also reads the account's rfqFilled events as orders
    orders = {oid: o for oid, o in orders.items() if oid in rest_orders}
    for oid, o in orders.items():
        rest = rest_orders[oid]
        assert o["side"] == ("buy" if rest["side"] == "Bid" else "sell")
        assert o["symbol"] and o["type"] in ("limit", "market")
    filled = [o for o in orders.values() if o["status"] == "closed"]
    bad = [(o["filled"], o["info"], rest_orders[o["id"]]) for o in filled if Decimal(o["info"]["z"]) != Decimal(rest_orders[o["id"]]["executedQuantity"])]
    assert filled and not bad, bad[:2]
    assert positions  # ccxt parsed positionOpened/Adjusted/Closed
    for sym, p in positions.items():  # the replay has ended: the last position state is the REST one
        assert Decimal(p["info"]["q"]) == rest_pos.get(sym, Decimal(0)), (sym, p["info"])
