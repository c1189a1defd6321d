"""Scenario files: served as given, state derived unless given, malformed files name key and index."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from importers.backpack.simulator.scenario import ScenarioError, load_scenario, parse_scenario

from .conftest import signed_request

SCENARIO = {
    "deposits": [
        {"id": 1, "symbol": "USDC", "quantity": "1000", "status": "confirmed", "source": "solana",
         "createdAt": "2025-01-01T00:00:00", "toAddress": None, "fromAddress": None, "transactionHash": None,
         "fiatAmount": None, "fiatCurrency": None, "institutionBic": None, "platformMemo": None},
        {"id": 2, "symbol": "USDC", "quantity": "50", "status": "pending", "source": "solana",
         "createdAt": "2025-01-01T00:01:00.5"},
    ],
    "fills": [
        {"tradeId": 1, "orderId": "11", "clientId": None, "symbol": "SOL_USDC", "side": "Bid", "price": "100",
         "quantity": "2", "fee": "0.002", "feeSymbol": "SOL", "isMaker": False, "systemOrderType": None,
         "timestamp": "2025-01-02T00:00:00.123"},
        {"tradeId": 2, "orderId": "12", "clientId": None, "symbol": "SOL_USDC_PERP", "side": "Ask", "price": "101",
         "quantity": "3", "fee": "0.15", "feeSymbol": "USDC", "isMaker": False, "systemOrderType": None,
         "timestamp": "2025-01-02T00:05:00"},
    ],
    "settlements": [{"quantity": "-0.15", "source": "TradingFees", "timestamp": "2025-01-02T01:00:00",
                     "userId": 5, "subaccountId": None, "positionId": None, "engineSequence": 9}],
    "withdrawals": [{"id": 7, "symbol": "USDC", "quantity": "10", "fee": "1", "status": "confirmed",
                     "blockchain": "Solana", "toAddress": "x", "isInternal": False,
                     "createdAt": "2025-01-03T00:00:00.000001"}],
    "subaccounts": [{"name": "bot", "deposits": [
        {"id": 3, "symbol": "SOL", "quantity": "1.5", "status": "confirmed", "source": "internal",
         "createdAt": "2025-01-04T00:00:00"}]}],
}


def test_scenario__served_and_derived(tmp_path, start_simulator):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    handle = start_simulator(scenario=str(path))
    import httpx

    with httpx.Client(base_url=handle.base_url) as c:
        main = handle.accounts["main"]
        fills = signed_request(c, main, "/wapi/v1/history/fills", "fillHistoryQueryAll",
                               {"sortDirection": "Asc"}).json()
        assert fills == SCENARIO["fills"]
        capital = signed_request(c, main, "/api/v1/capital", "balanceQuery").json()
        # 1000 - 200 (buy) - 0.15 (fees settlement) - 11 (withdrawal + fee); SOL 2 - 0.002 fee
        assert {a: Decimal(b["available"]) for a, b in capital.items()} == {"USDC": Decimal("788.85"),
                                                                           "SOL": Decimal("1.998")}
        pos = signed_request(c, main, "/api/v1/position", "positionQuery").json()
        assert [(p["symbol"], p["netQuantity"], Decimal(p["entryPrice"])) for p in pos] == \
            [("SOL_USDC_PERP", "-3", Decimal(101))]
        sub = signed_request(c, handle.accounts["bot"], "/api/v1/capital", "balanceQuery").json()
        assert sub == {"SOL": {"available": "1.5", "locked": "0", "staked": "0"}}
        bars = c.get("/api/v1/klines", params={"symbol": "SOL_USDC", "interval": "1h", "startTime": "1735776000"})
        assert bars.json()[0]["open"] == "100"


def test_scenario__given_state_is_served_as_given(start_simulator):
    doc = {**SCENARIO, "balances": {"USDC": {"available": "1", "locked": "0", "staked": "0"}}, "positions": []}
    handle = start_simulator(world=parse_scenario(doc))
    import httpx

    with httpx.Client(base_url=handle.base_url) as c:
        main = handle.accounts["main"]
        assert signed_request(c, main, "/api/v1/capital", "balanceQuery").json() == doc["balances"]
        assert signed_request(c, main, "/api/v1/position", "positionQuery").json() == []


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d["fills"][1].__setitem__("price", 101.5), "fills[1]: field 'price' must be a decimal string"),
    (lambda d: d["fills"][0].pop("side"), "fills[0]: missing field 'side'"),
    (lambda d: d["deposits"][1].__setitem__("createdAt", "yesterday"), "deposits[1]: field 'createdAt'"),
    (lambda d: d["withdrawals"][0].__setitem__("id", "7"), "withdrawals[0]: field 'id' must be an integer"),
    (lambda d: d.__setitem__("fils", []), "unknown key 'fils'"),
    (lambda d: d.__setitem__("settlements", {}), "settlements: must be a JSON array"),
    (lambda d: d["subaccounts"][0]["deposits"][0].__setitem__("quantity", "1,5"),
     "subaccounts[0].deposits[0]: field 'quantity'"),
    (lambda d: d.__setitem__("balances", {"USDC": {"available": "x"}}), "balances['USDC']"),
])
def test_scenario__malformed_names_key_and_index(mutate, fragment):
    doc = json.loads(json.dumps(SCENARIO))
    mutate(doc)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_scenario__not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"fills": [')
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(path)


def test_scenario__dump_round_trips_the_state(tmp_path, sim_world):
    from importers.backpack.simulator.scenario import dump_world

    path = tmp_path / "dump.json"
    dump_world(sim_world, path)
    again = load_scenario(path, seed=sim_world.seed)
    for a, b in zip(sim_world.accounts, again.accounts):
        assert a.api_key == b.api_key
        assert a.state["capital"] == b.state["capital"]
        assert a.state["borrowLendPositions"] == b.state["borrowLendPositions"]
        assert [(p["symbol"], p["netQuantity"], p["entryPrice"]) for p in a.positions] == \
            [(p["symbol"], p["netQuantity"], p["entryPrice"]) for p in b.positions]
        assert a.tables["fills"].blob == b.tables["fills"].blob
