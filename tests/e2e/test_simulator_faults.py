"""Fault injection at rate 1.0 produces each failure; rate limits answer 429 with Retry-After."""

from __future__ import annotations

from decimal import Decimal

import httpx
import orjson
import pytest

from importers.backpack.simulator.faults import FaultPlan, FaultSpecError

from .conftest import signed_request


@pytest.fixture(scope="module")
def small_world():
    from importers.backpack.simulator.generate import generate_world

    return generate_world(3, 60)


def _get(handle, timeout=5.0):
    with httpx.Client(base_url=handle.base_url, timeout=timeout) as client:
        return signed_request(client, handle.accounts["main"], "/wapi/v1/history/fills", "fillHistoryQueryAll",
                              {"limit": "50"})


@pytest.mark.parametrize("kind,status,code", [("429", 429, "TOO_MANY_REQUESTS"), ("500", 500, "SERVER_ERROR"),
                                              ("503", 503, "MAINTENANCE")])
def test_faults__json_errors(start_simulator, small_world, kind, status, code):
    handle = start_simulator(world=small_world, faults=f"{kind}=1.0")
    resp = _get(handle)
    assert resp.status_code == status and resp.json()["code"] == code
    if kind == "429":
        assert int(resp.headers["Retry-After"]) >= 1


def test_faults__502_is_a_proxy_page(start_simulator, small_world):
    resp = _get(start_simulator(world=small_world, faults="502=1"))
    assert resp.status_code == 502 and resp.headers["content-type"].startswith("text/plain")


def test_faults__malformed_is_truncated_json_with_200(start_simulator, small_world):
    resp = _get(start_simulator(world=small_world, faults="malformed=1.0"))
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()


def test_faults__nonjson_is_an_html_page_with_200(start_simulator, small_world):
    resp = _get(start_simulator(world=small_world, faults="nonjson=1.0"))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        resp.json()


def test_faults__wrongshape_is_json_of_the_other_shape_with_200(start_simulator, small_world):
    handle = start_simulator(world=small_world, faults="wrongshape=1.0")
    resp = _get(handle)
    assert resp.status_code == 200 and isinstance(resp.json(), dict)  # an object where the page's array belongs
    with httpx.Client(base_url=handle.base_url, timeout=5) as client:
        capital = signed_request(client, handle.accounts["main"], "/api/v1/capital", "balanceQuery")
    assert capital.status_code == 200 and capital.json() == []  # an array where the balances object belongs


def test_faults__shift_starts_every_later_page_of_the_listing_a_row_earlier(start_simulator, small_world):
    def page(handle, offset):
        with httpx.Client(base_url=handle.base_url, timeout=5) as client:
            r = signed_request(client, handle.accounts["main"], "/wapi/v1/history/fills", "fillHistoryQueryAll",
                               {"limit": "5", "offset": str(offset), "sortDirection": "Asc"})
        return [f["tradeId"] for f in r.json()]

    clean = start_simulator(world=small_world)
    rows = page(clean, 0) + page(clean, 5) + page(clean, 10)
    shifted = start_simulator(world=small_world, faults="shift=1.0")
    assert page(shifted, 0) == rows[:5]  # nothing ahead of offset 0 to repeat (one row now ahead)
    assert page(shifted, 5) == rows[3:8]  # two rows inserted ahead so far: the page starts two earlier
    assert page(shifted, 10) == rows[7:12]  # three: rows are read again, never skipped
    assert sum(shifted.app.shifted.values()) == 3


def test_faults__insert_lands_a_deposit_now_and_raises_the_balance(start_simulator):
    from importers.backpack.simulator.generate import generate_world

    handle = start_simulator(world=generate_world(3, 60), faults="insert=1.0")
    with httpx.Client(base_url=handle.base_url, timeout=5) as client:
        before = signed_request(client, handle.accounts["main"], "/api/v1/capital", "balanceQuery").json()  # one arrival
        deposits = signed_request(client, handle.accounts["main"], "/wapi/v1/capital/deposits", "depositQueryAll", {"limit": "1000"}).json()
    assert handle.app.arrivals == 2
    arrived = [d for d in deposits if d["id"] >= 990_000_000]
    assert [d["quantity"] for d in arrived] == ["1.5", "1.5"] and deposits[0]["id"] == 990_000_002  # newest first
    usdc = orjson.loads(handle.app.world.main.state["capital"])["USDC"]["available"]
    assert Decimal(usdc) == Decimal(before["USDC"]["available"]) + Decimal("1.5")


def test_faults__drop_closes_without_response(start_simulator, small_world):
    handle = start_simulator(world=small_world, faults="drop=1.0")
    with pytest.raises(httpx.TransportError):
        _get(handle)


def test_faults__slow_exceeds_client_timeout(start_simulator, small_world):
    handle = start_simulator(world=small_world, faults="slow=1.0,slow_s=1.5")
    with pytest.raises(httpx.ReadTimeout):
        _get(handle, timeout=0.3)


def test_faults__deterministic_by_seed():
    a = FaultPlan.parse("429=0.2,500=0.2,drop=0.1,seed=7")
    b = FaultPlan.parse("429=0.2,500=0.2,drop=0.1,seed=7")
    draws = [a.draw() for _ in range(200)]
    assert draws == [b.draw() for _ in range(200)]
    assert {"429", "500", "drop", None} == set(draws)


@pytest.mark.parametrize("spec", ["429=2", "boom=0.1", "429", "500=x", "429=0.6,500=0.6"])
def test_faults__bad_spec(spec):
    with pytest.raises(FaultSpecError):
        FaultPlan.parse(spec)


def test_rate_limit__token_bucket_per_key(start_simulator, small_world):
    handle = start_simulator(world=small_world, rate_limits=(3, 2))
    statuses = [_get(handle).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    sub = handle.accounts["sub1"]
    with httpx.Client(base_url=handle.base_url) as client:
        assert signed_request(client, sub, "/api/v1/capital", "balanceQuery").status_code == 200
        klines = [client.get("/api/v1/klines", params={"symbol": "SOL_USDC", "interval": "1d",
                                                       "startTime": "1725148800"}) for _ in range(3)]
    assert [r.status_code for r in klines] == [200, 200, 429]
    assert int(klines[-1].headers["Retry-After"]) >= 1
