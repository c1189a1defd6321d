"""History endpoints: paging, headers, sort order, from/to and filters (REFERENCE.md §4-5, A-PAGE-1..4)."""

from __future__ import annotations

import pytest

from importers.backpack.simulator._time import parse_ts_ms

FILLS = ("/wapi/v1/history/fills", "fillHistoryQueryAll")
HISTORY = [
    ("/wapi/v1/history/fills", "fillHistoryQueryAll"),
    ("/wapi/v1/history/orders", "orderHistoryQueryAll"),
    ("/wapi/v1/history/funding", "fundingHistoryQueryAll"),
    ("/wapi/v1/history/settlement", "settlementHistoryQueryAll"),
    ("/wapi/v1/history/interest", "interestHistoryQueryAll"),
    ("/wapi/v1/history/borrowLend", "borrowHistoryQueryAll"),
    ("/wapi/v1/history/borrowLend/positions", "borrowPositionHistoryQueryAll"),
    ("/wapi/v1/history/dust", "dustHistoryQueryAll"),
    ("/wapi/v1/history/rfq", "rfqHistoryQueryAll"),
    ("/wapi/v1/history/rfq/fill", "rfqFillHistoryQueryAll"),
    ("/wapi/v1/history/quote", "quoteHistoryQueryAll"),
    ("/wapi/v1/history/quote/fill", "quoteFillHistoryQueryAll"),
    ("/wapi/v1/history/strategies", "strategyHistoryQueryAll"),
]


def _walk(signed_get, path, instruction, params=None, limit=1000):
    rows, offset = [], 0
    while True:
        page = signed_get(path, instruction, {**(params or {}), "limit": str(limit), "offset": str(offset)})
        assert page.status_code == 200, page.text
        batch = page.json()
        rows += batch
        if len(batch) < limit:
            return rows
        offset += limit


@pytest.mark.parametrize("path,instruction", HISTORY)
def test_paging__headers_on_every_history_endpoint(signed_get, sim, path, instruction):
    resp = signed_get(path, instruction, {"limit": "7", "offset": "14"})
    assert resp.status_code == 200
    total = int(resp.headers["X-TOTAL"])
    assert resp.headers["X-PAGE-SIZE"] == "7"
    assert resp.headers["X-CURRENT-PAGE"] == "3"
    assert int(resp.headers["X-PAGE-COUNT"]) == -(-total // 7)
    assert "X-TOTAL" in resp.headers["Access-Control-Expose-Headers"]
    assert len(resp.json()) == max(0, min(7, total - 14))


@pytest.mark.parametrize("path,instruction", [("/wapi/v1/capital/deposits", "depositQueryAll"),
                                              ("/wapi/v1/capital/withdrawals", "withdrawalQueryAll"),
                                              ("/wapi/v1/history/position", "positionHistoryQueryAll")])
def test_paging__no_headers_where_the_reference_says(signed_get, path, instruction):
    resp = signed_get(path, instruction, {"limit": "5"})
    assert resp.status_code == 200
    assert "X-TOTAL" not in resp.headers


def test_paging__default_limit_is_100(signed_get):
    assert len(signed_get(*FILLS).json()) == 100


def test_paging__limit_bounds(signed_get):
    assert len(signed_get(*FILLS, {"limit": "1000"}).json()) == 600
    for bad in ("1001", "0", "abc", "-1"):
        resp = signed_get(*FILLS, {"limit": bad})
        assert resp.status_code == 400 and resp.json()["code"] == "INVALID_CLIENT_REQUEST", bad


def test_paging__offset_past_end_is_empty(signed_get):
    resp = signed_get(*FILLS, {"offset": "100000"})
    assert resp.status_code == 200 and resp.json() == []


def test_paging__default_sort_is_desc(signed_get):
    default = signed_get(*FILLS, {"limit": "50"}).json()
    desc = signed_get(*FILLS, {"limit": "50", "sortDirection": "Desc"}).json()
    asc = signed_get(*FILLS, {"limit": "1000", "sortDirection": "Asc"}).json()
    assert default == desc
    assert desc == asc[::-1][:50]
    times = [parse_ts_ms(r["timestamp"]) for r in asc]
    assert times == sorted(times)


def test_paging__bad_sort_direction(signed_get):
    resp = signed_get(*FILLS, {"sortDirection": "Up"})
    assert resp.status_code == 400 and "sortDirection" in resp.json()["message"]


def test_paging__walk_is_complete_and_disjoint(signed_get):
    rows = _walk(signed_get, *FILLS, {"sortDirection": "Asc"}, limit=97)
    assert len(rows) == 600
    assert len({(r["tradeId"], r["orderId"]) for r in rows}) == 600


def test_paging__from_to_inclusive_ms(signed_get):
    rows = signed_get(*FILLS, {"limit": "1000", "sortDirection": "Asc"}).json()
    a, b = parse_ts_ms(rows[100]["timestamp"]), parse_ts_ms(rows[199]["timestamp"])
    window = signed_get(*FILLS, {"limit": "1000", "sortDirection": "Asc", "from": str(a), "to": str(b)})
    expected = [r for r in rows if a <= parse_ts_ms(r["timestamp"]) <= b]
    assert window.json() == expected
    assert int(window.headers["X-TOTAL"]) == len(expected)
    assert signed_get(*FILLS, {"from": str(b + 10**12)}).json() == []


def test_paging__filters(signed_get):
    rows = signed_get(*FILLS, {"limit": "1000"}).json()
    sol = signed_get(*FILLS, {"limit": "1000", "symbol": "SOL_USDC"}).json()
    assert sol == [r for r in rows if r["symbol"] == "SOL_USDC"] and sol
    perp = signed_get(*FILLS, {"limit": "1000", "marketType": "PERP"}).json()
    assert perp == [r for r in rows if r["symbol"].endswith("_PERP")] and perp
    user = signed_get(*FILLS, {"limit": "1000", "fillType": "User"}).json()
    assert user == [r for r in rows if r["systemOrderType"] is None]
    liq = signed_get(*FILLS, {"limit": "1000", "fillType": "AllLiquidation"}).json()
    assert sorted(r["systemOrderType"] for r in liq) == ["LiquidatePositionOnAdl", "LiquidatePositionOnBook"]
    bad = signed_get(*FILLS, {"fillType": "Nope"})
    assert bad.status_code == 400 and "fillType" in bad.json()["message"]
    funding = signed_get("/wapi/v1/history/settlement", "settlementHistoryQueryAll",
                         {"limit": "1000", "source": "FundingPayment"}).json()
    assert funding and {r["source"] for r in funding} == {"FundingPayment"}


def test_paging__deposits_newest_first_and_tolerate_unknown_params(signed_get):
    rows = signed_get("/wapi/v1/capital/deposits", "depositQueryAll", {"limit": "1000", "endTime": "1"}).json()
    times = [parse_ts_ms(r["createdAt"]) for r in rows]
    assert times == sorted(times, reverse=True) and rows


def test_paging__removed_pnl_endpoint_is_404(signed_get):
    assert signed_get("/wapi/v1/history/pnl", "pnlHistoryQueryAll").status_code == 404


def test_paging__walk_cost_is_o_limit(sim):
    """A page is sliced from a pre-rendered, pre-sorted table: the view for a filter is built once."""
    table = sim.world.main.tables["fills"]
    filt = ((0, frozenset({"SOL_USDC"})),)
    table.page(filt, None, None, 0, 10, False)
    cached = table._views[filt]
    table.page(filt, None, None, 10, 10, True)
    assert table._views[filt] is cached


def test_paging__instructions_match_the_client_catalogue():
    """The simulator's own instruction table agrees with the importer's endpoint catalogue."""
    endpoints = pytest.importorskip("importers.backpack.endpoints")
    from importers.backpack.simulator.app import STATE_INSTRUCTIONS
    from importers.backpack.simulator.store import BY_PATH

    for path, endpoint in endpoints.BY_PATH.items():
        if endpoint.instruction is None:
            continue
        ours = BY_PATH[path].instruction if path in BY_PATH else STATE_INSTRUCTIONS.get(path)
        assert ours == endpoint.instruction, path
