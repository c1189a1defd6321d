"""Pre-rendered, pre-sorted history tables: a page costs O(limit) after the first request of a filter.

Each stream keeps its rows as orjson-rendered bytes sorted ascending by (time, insertion order), a
parallel list of millisecond times (``from``/``to`` are two bisects) and a small attribute tuple per row
for the endpoint's filters. A filtered view (the row indices matching one filter combination) is
computed once and cached, so walking its pages stays O(limit) per page.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from ._time import parse_ts_ms

__all__ = ["StreamSpec", "Table", "TableBuilder", "STREAMS", "BY_PATH", "market_type_of", "ParamError"]


class ParamError(ValueError):
    """A query parameter the exchange would reject (400 INVALID_CLIENT_REQUEST)."""


def market_type_of(symbol: str) -> str:
    if symbol.endswith("_PERP"):
        return "PERP"
    if symbol.endswith("_RFQ"):
        return "RFQ"
    return "SPOT"


def _enum(name: str, allowed: set[str]) -> Callable[[list[str]], frozenset]:
    def parse(values: list[str]) -> frozenset:
        for v in values:
            if v not in allowed:
                raise ParamError(f"failed to parse parameter `{name}`: unknown variant `{v}`")
        return frozenset(values)
    return parse


def _text(values: list[str]) -> frozenset:
    return frozenset(values)


def _int(name: str) -> Callable[[list[str]], frozenset]:
    def parse(values: list[str]) -> frozenset:
        try:
            return frozenset(int(v) for v in values)
        except ValueError:
            raise ParamError(f"failed to parse parameter `{name}`: invalid digit found in string") from None
    return parse


def _bool(name: str) -> Callable[[list[str]], frozenset]:
    def parse(values: list[str]) -> frozenset:
        out = set()
        for v in values:
            if v not in ("true", "false"):
                raise ParamError(f"failed to parse parameter `{name}`: provided string was not `true` or `false`")
            out.add(v == "true")
        return frozenset(out)
    return parse


MARKET_TYPES = {"SPOT", "PERP", "IPERP", "DATED", "PREDICTION", "RFQ"}
SIDES = {"Bid", "Ask"}
ORDER_STATUS = {"Cancelled", "Expired", "Filled", "New", "PartiallyFilled", "TriggerPending", "TriggerFailed"}
_LIQ = {"LiquidatePositionOnBook", "LiquidatePositionOnAdl", "LiquidatePositionOnBackstop"}
FILL_TYPES: dict[str, frozenset] = {
    "User": frozenset({None}),
    "BookLiquidation": frozenset({"LiquidatePositionOnBook"}),
    "Liquidation": frozenset({"LiquidatePositionOnBook"}),
    "Adl": frozenset({"LiquidatePositionOnAdl"}),
    "Backstop": frozenset({"LiquidatePositionOnBackstop"}),
    "AllLiquidation": frozenset(_LIQ),
    "CollateralConversion": frozenset({"CollateralConversion"}),
    "CollateralConversionAndSpotLiquidation": frozenset({"CollateralConversion", "LiquidatePositionOnBook"}),
}
SETTLEMENT_FILTER: dict[str, frozenset] = {
    "BackstopLiquidation": frozenset({"BackstopProviderLiquidation", "BackstopAdlLiquidation",
                                      "BackstopLiquidityFundProceeds"}),
    "CulledBorrowInterest": frozenset({"CulledBorrowInterest"}),
    "CulledRealizePnl": frozenset({"CulledRealizePnlAuto", "CulledRealizePnlBookUtilisation",
                                   "CulledRealizePnlAccountThreshold", "CulledRealizePnlSystemThreshold"}),
    "CulledRealizePnlBookUtilization": frozenset({"CulledRealizePnlBookUtilisation"}),
    "FundingPayment": frozenset({"FundingPayment"}),
    "RealizePnl": frozenset({"RealizePnl"}),
    "TradingFees": frozenset({"TradingFees"}),
    "TradingFeesSystem": frozenset({"TradingFeesSystem"}),
}
BL_SOURCES = {"AdlProvider", "AutoBorrowRepay", "AutoLend", "BackstopProvider", "DustConversion", "Interest",
              "Liquidation", "LiquidationAdl", "LiquidationBackstop", "Manual", "Reconciliation", "Rfq",
              "SpotMargin", "Withdrawal"}


def _mapped(name: str, table: dict[str, frozenset]) -> Callable[[list[str]], frozenset]:
    def parse(values: list[str]) -> frozenset:
        out: set = set()
        for v in values:
            if v not in table:
                raise ParamError(f"failed to parse parameter `{name}`: unknown variant `{v}`")
            out |= table[v]
        return frozenset(out)
    return parse


def _csv_enum(name: str, allowed: set[str]) -> Callable[[list[str]], frozenset]:
    inner = _enum(name, allowed)
    return lambda values: inner([p for v in values for p in v.split(",") if p])


@dataclass(frozen=True)
class StreamSpec:
    name: str  # the scenario key
    path: str
    instruction: str
    ts_field: str
    style: str  # timestamp style of generated rows (see _time)
    extract: Callable[[dict], tuple]
    filters: dict[str, tuple[int, Callable[[list[str]], frozenset]]] = field(default_factory=dict)
    sort: bool = True
    headers: bool = True
    from_to: bool = False


def _interest_source(r: dict) -> str:
    return "UnrealizedPnl" if str(r.get("paymentType", "")).startswith("Unrealized") else "BorrowLend"


_SPECS = [
    StreamSpec("fills", "/wapi/v1/history/fills", "fillHistoryQueryAll", "timestamp", "auto",
               lambda r: (r["symbol"], market_type_of(r["symbol"]), r.get("systemOrderType"), r["orderId"],
                          r.get("strategyId")),
               {"symbol": (0, _text), "marketType": (1, _enum("marketType", MARKET_TYPES)),
                "fillType": (2, _mapped("fillType", FILL_TYPES)), "orderId": (3, _text), "strategyId": (4, _text)},
               from_to=True),
    StreamSpec("orders", "/wapi/v1/history/orders", "orderHistoryQueryAll", "createdAt", "auto",
               lambda r: (r["symbol"], market_type_of(r["symbol"]), r["id"], r.get("strategyId")),
               {"symbol": (0, _text), "marketType": (1, _enum("marketType", MARKET_TYPES)), "orderId": (2, _text),
                "strategyId": (3, _text)}),
    StreamSpec("funding", "/wapi/v1/history/funding", "fundingHistoryQueryAll", "intervalEndTimestamp", "sec",
               lambda r: (r["symbol"], r.get("subaccountId")),
               {"symbol": (0, _text), "subaccountId": (1, _int("subaccountId"))}),
    StreamSpec("settlements", "/wapi/v1/history/settlement", "settlementHistoryQueryAll", "timestamp", "us",
               lambda r: (r["source"],), {"source": (0, _mapped("source", SETTLEMENT_FILTER))}),
    StreamSpec("interest", "/wapi/v1/history/interest", "interestHistoryQueryAll", "timestamp", "sec",
               lambda r: (r["symbol"], r.get("marketSymbol"), r.get("positionId"), _interest_source(r)),
               {"asset": (0, _text), "symbol": (1, _text), "positionId": (2, _text),
                "source": (3, _enum("source", {"UnrealizedPnl", "BorrowLend"}))}),
    StreamSpec("borrowLendHistory", "/wapi/v1/history/borrowLend", "borrowHistoryQueryAll", "timestamp", "us",
               lambda r: (r["eventType"], r.get("source"), r.get("positionId"), r["symbol"]),
               {"type": (0, _enum("type", {"Borrow", "BorrowRepay", "Lend", "LendRedeem"})),
                "sources": (1, _csv_enum("sources", BL_SOURCES)), "positionId": (2, _text), "symbol": (3, _text)}),
    StreamSpec("borrowLendPositionHistory", "/wapi/v1/history/borrowLend/positions", "borrowPositionHistoryQueryAll",
               "createdAt", "us",
               lambda r: (r["symbol"], r.get("side"), "Closed" if r.get("quantity") in ("0", 0) else "Open"),
               {"symbol": (0, _text), "side": (1, _enum("side", {"Borrow", "Lend"})),
                "state": (2, _enum("state", {"Open", "Closed"}))}),
    StreamSpec("dust", "/wapi/v1/history/dust", "dustHistoryQueryAll", "timestamp", "auto",
               lambda r: (r["id"], r["symbol"]), {"id": (0, _int("id")), "symbol": (1, _text)}),
    StreamSpec("positionHistory", "/wapi/v1/history/position", "positionHistoryQueryAll", "openedAt", "auto",
               lambda r: (r["symbol"], r.get("state"), market_type_of(r["symbol"])),
               {"symbol": (0, _text), "state": (1, _enum("state", {"Open", "Closed"})),
                "marketType": (2, _enum("marketType", MARKET_TYPES))}, headers=False),
    StreamSpec("rfqHistory", "/wapi/v1/history/rfq", "rfqHistoryQueryAll", "createdAt", "auto",
               lambda r: (r["rfqId"], r["symbol"], r.get("status"), r.get("side"),
                          r.get("deferredSettlementQuoteId") is not None),
               {"rfqId": (0, _text), "symbol": (1, _text), "status": (2, _enum("status", ORDER_STATUS)),
                "side": (3, _enum("side", SIDES)), "deferredSettlement": (4, _bool("deferredSettlement"))}),
    StreamSpec("rfqFills", "/wapi/v1/history/rfq/fill", "rfqFillHistoryQueryAll", "filledAt", "auto",
               lambda r: (r["quoteId"], r["symbol"], r.get("side"),
                          "CollateralConversion" if r.get("systemOrderType") == "CollateralConversion" else "User",
                          False),
               {"quoteId": (0, _text), "symbol": (1, _text), "side": (2, _enum("side", SIDES)),
                "fillType": (3, _enum("fillType", {"User", "CollateralConversion"})),
                "deferredSettlement": (4, _bool("deferredSettlement"))}),
    StreamSpec("quoteHistory", "/wapi/v1/history/quote", "quoteHistoryQueryAll", "createdAt", "auto",
               lambda r: (r["quoteId"], r.get("symbol"), r.get("status"), bool(r.get("deferredSettlement"))),
               {"quoteId": (0, _text), "symbol": (1, _text), "status": (2, _enum("status", ORDER_STATUS)),
                "deferredSettlement": (3, _bool("deferredSettlement"))}),
    StreamSpec("quoteFills", "/wapi/v1/history/quote/fill", "quoteFillHistoryQueryAll", "filledAt", "auto",
               lambda r: (r["quoteId"], r["symbol"], r.get("side")),
               {"quoteId": (0, _text), "symbol": (1, _text), "side": (2, _enum("side", SIDES))}),
    StreamSpec("strategies", "/wapi/v1/history/strategies", "strategyHistoryQueryAll", "createdAt", "auto",
               lambda r: (r["id"], r["symbol"], market_type_of(r["symbol"])),
               {"strategyId": (0, _text), "symbol": (1, _text), "marketType": (2, _enum("marketType", MARKET_TYPES))}),
    StreamSpec("deposits", "/wapi/v1/capital/deposits", "depositQueryAll", "createdAt", "trim",
               lambda r: (r.get("source") == "administrator",),
               {"excludePlatform": (0, lambda vals: frozenset({False}) if "true" in vals else frozenset({False, True}))},
               sort=False, headers=False, from_to=True),
    StreamSpec("withdrawals", "/wapi/v1/capital/withdrawals", "withdrawalQueryAll", "createdAt", "us",
               lambda r: (r["id"], r.get("clientId")),
               {"id": (0, _int("id")), "clientId": (1, _text)}, sort=False, headers=False, from_to=True),
]

STREAMS: dict[str, StreamSpec] = {s.name: s for s in _SPECS}
BY_PATH: dict[str, StreamSpec] = {s.path: s for s in _SPECS}


class Table:
    """One account's rows of one stream, ascending by time: one JSON blob plus row offsets."""

    _CACHE = 64

    def __init__(self, spec: StreamSpec, blob: bytes, offsets: array, ts: list[int], attrs: list[tuple]):
        self.spec = spec
        self.blob = blob
        self.offsets = offsets  # len(rows) + 1 boundaries into blob
        self.ts = ts
        self.attrs = attrs
        self._views: OrderedDict[tuple, tuple[list[int], list[int]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.ts)

    def row(self, i: int) -> bytes:
        return self.blob[self.offsets[i]:self.offsets[i + 1]]

    def _view(self, filt: tuple) -> tuple[list[int] | None, list[int]]:
        if not filt:
            return None, self.ts
        hit = self._views.get(filt)
        if hit is not None:
            self._views.move_to_end(filt)
            return hit
        idx = [i for i, a in enumerate(self.attrs) if all(a[k] in vals for k, vals in filt)]
        view = (idx, [self.ts[i] for i in idx])
        self._views[filt] = view
        if len(self._views) > self._CACHE:
            self._views.popitem(last=False)
        return view

    def page(self, filt: tuple, frm: int | None, to: int | None, offset: int, limit: int,
             desc: bool) -> tuple[bytes, int]:
        """(JSON array body, total rows matching) of one page."""
        idx, ts = self._view(filt)
        lo = bisect.bisect_left(ts, frm) if frm is not None else 0
        hi = bisect.bisect_right(ts, to) if to is not None else len(ts)
        total = max(0, hi - lo)
        if desc:
            b = hi - offset
            a = max(lo, b - limit)
            positions = range(b - 1, a - 1, -1) if b > lo else range(0)
        else:
            a = lo + offset
            b = min(hi, a + limit)
            positions = range(a, b) if a < hi else range(0)
        blob, off = self.blob, self.offsets
        if idx is not None:
            positions = [idx[i] for i in positions]
        return b"[" + b",".join([blob[off[i]:off[i + 1]] for i in positions]) + b"]", total

    def records(self) -> list[dict]:
        return [orjson.loads(self.row(i)) for i in range(len(self))]


class TableBuilder:
    def __init__(self, spec: StreamSpec):
        self.spec = spec
        self.buf = bytearray()
        self.offsets = array("q", [0])
        self.ts: list[int] = []
        self.attrs: list[tuple] = []

    def add(self, record: dict, ms: int | None = None) -> None:
        if ms is None:
            ms = parse_ts_ms(record[self.spec.ts_field])
        self.buf += orjson.dumps(record)
        self.offsets.append(len(self.buf))
        self.ts.append(ms)
        self.attrs.append(self.spec.extract(record))

    def build(self) -> Table:
        ts = self.ts
        buf = bytes(self.buf)
        self.buf = bytearray()
        if any(ts[i] > ts[i + 1] for i in range(len(ts) - 1)):
            order = sorted(range(len(ts)), key=ts.__getitem__)
            off = self.offsets
            out = bytearray()
            new_off = array("q", [0])
            for i in order:
                out += buf[off[i]:off[i + 1]]
                new_off.append(len(out))
            return Table(self.spec, bytes(out), new_off, [ts[i] for i in order], [self.attrs[i] for i in order])
        return Table(self.spec, buf, self.offsets, ts, self.attrs)
