"""The catalogue of Backpack read endpoints: one declaration per endpoint, shared by the client,
the sync loop and the simulator.

Each :class:`Endpoint` declares its path, its signing instruction (REFERENCE.md §5), the query
parameters it accepts, how it pages (``sortDirection``, ``from``/``to``, max ``limit``), the field
holding a record's time, a pure natural-key function (REFERENCE.md §7.9, docs/assumptions.md
A-KEY-1) and the field table its records are validated against (REFERENCE.md §3 and §5.2).

Every behaviour the exchange does not document is one named constant below, tagged with its row
in docs/assumptions.md, so it changes in one line once confirmed against a live account.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from importers.backpack.errors import MalformedResponse, RecordError

__all__ = [
    "SORT_ASC",
    "DEFAULT_SORT_WHEN_ABSENT",
    "FROM_TO_INCLUSIVE",
    "UNSORTED_ENDPOINT_ORDER",
    "HISTORY_MAX_LIMIT",
    "HISTORY_DEFAULT_LIMIT",
    "STANDARD",
    "HISTORICAL_MARKET_DATA",
    "Endpoint",
    "ENDPOINTS",
    "BY_PATH",
    "HISTORY",
    "get",
    "parse_ts",
    "ts_ms",
    "canonical_ts",
    "canonical_json_sha256",
]

# --- Undocumented behaviours: one constant each (docs/assumptions.md) -------------------------------

#: A-PAGE-1: the value the client sends for ``sortDirection`` wherever an endpoint accepts it, so that
#: rows arriving during a walk land at the end.
SORT_ASC = "Asc"
#: A-PAGE-1: the order the server uses when ``sortDirection`` is absent (the simulator's default).
DEFAULT_SORT_WHEN_ABSENT = "Desc"
#: A-PAGE-2: ``from``/``to`` (ms) are both inclusive. The client never depends on it: its time windows
#: overlap, so either reading loses nothing.
FROM_TO_INCLUSIVE = True
#: A-PAGE-4: deposits and withdrawals take no ``sortDirection``; they come newest first
#: (``createdAt`` desc, then ``id`` desc).
UNSORTED_ENDPOINT_ORDER = "Desc"
#: REFERENCE.md §4: ``limit`` default 100, max 1000 on every history endpoint and deposits/withdrawals.
HISTORY_MAX_LIMIT = 1000
HISTORY_DEFAULT_LIMIT = 100

#: Rate-limit buckets (REFERENCE.md §6): 2000/min standard, 30/min historical market data.
STANDARD = "standard"
HISTORICAL_MARKET_DATA = "historical"

# --- Time ---------------------------------------------------------------------------------------------

_DEC_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@lru_cache(maxsize=8192)
def parse_ts(text: str) -> datetime:
    """Parse a naive UTC ISO-8601 timestamp with 0-6 fractional digits into an aware UTC datetime.

    Accepts ``T`` or a space between date and time (klines use a space, REFERENCE.md §3). Raises
    ValueError for anything else, including a zone suffix (A-TS-1: history rows are naive UTC).
    Cached: the same string is parsed for validation, the natural key and the record's time.
    """
    if type(text) is not str:
        raise ValueError(f"timestamp must be a string, got {type(text).__name__}")
    n = len(text)
    if (
        (n == 19 or 21 <= n <= 26)
        and text[4] == "-"
        and text[7] == "-"
        and text[10] in "T "
        and text[13] == ":"
        and text[16] == ":"
        and (n == 19 or text[19] == ".")
        and text[:4].isdigit()
    ):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
    raise ValueError("timestamp is not naive ISO-8601 (YYYY-MM-DDTHH:MM:SS[.ffffff])")


def ts_ms(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime (floor: sub-millisecond digits are dropped)."""
    if moment.tzinfo is None:
        raise ValueError("ts_ms needs an aware datetime (UTC)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def canonical_ts(text: str) -> str:
    """A timestamp in one stable spelling (6 fractional digits), for natural keys."""
    return parse_ts(text).strftime("%Y-%m-%dT%H:%M:%S.%f")


def canonical_json_sha256(value: Any) -> str:
    """sha256 of the canonical JSON of a value: sorted keys, compact separators, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Field types --------------------------------------------------------------------------------------

FieldType = Literal["str", "int", "dec", "ts", "bool", "num", "any"]


def _type_problem(kind: FieldType, value: Any) -> str | None:
    """None when value has JSON type kind; otherwise a short reason (never the value itself)."""
    got = "null" if value is None else type(value).__name__
    if kind == "any":
        return None
    if kind == "str":
        return None if isinstance(value, str) else f"must be a string, got {got}"
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"must be an integer, got {got}"
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be a boolean, got {got}"
    if kind == "num":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"must be a number, got {got}"
    if kind == "dec":
        if not isinstance(value, str):
            return f"must be a decimal string, got {got}"
        if not _DEC_RE.match(value):
            return "must be a decimal string, got an unparseable string"
        try:
            Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex already guarantees it
            return "must be a decimal string, got an unparseable string"
        return None
    if kind == "ts":
        if not isinstance(value, str):
            return f"must be a naive ISO timestamp string, got {got}"
        try:
            parse_ts(value)
        except ValueError:
            return "must be a naive UTC ISO-8601 timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff], no zone)"
        return None
    raise AssertionError(kind)  # pragma: no cover


def _ts_ok(value: Any) -> bool:
    try:
        parse_ts(value)
        return True
    except ValueError:
        return False


#: Cheap acceptance tests per field type; only a value failing one pays for ``_type_problem``.
_FAST_OK: dict[str, Callable[[Any], bool]] = {
    "any": lambda v: True,
    "str": lambda v: type(v) is str,
    "int": lambda v: type(v) is int,
    "bool": lambda v: type(v) is bool,
    "num": lambda v: type(v) is int or type(v) is float,
    "dec": lambda v: type(v) is str and _DEC_RE.match(v) is not None,
    "ts": lambda v: type(v) is str and _ts_ok(v),
}


# --- What the ledger accepts from the exchange (docs/assumptions.md A-TEXT-1) ---------------------------

#: Fields whose text becomes an asset or market symbol in the ledger (``assets.symbol``, account names).
SYMBOL_FIELDS = frozenset({"symbol", "feeSymbol", "marketSymbol", "baseSymbol", "quoteSymbol"})
#: A-TEXT-1: the longest symbol the ledger stores (``assets.symbol`` is ``VARCHAR(64)``).
MAX_SYMBOL_CHARS = 64
#: A-TEXT-1: the longest other text field, and the longest natural key (``raw_records.natural_key`` is
#: ``VARCHAR(255)``).
MAX_TEXT_CHARS = 255
MAX_KEY_CHARS = 255


def text_problem(name: str, value: str) -> str | None:
    """None when the ledger accepts this exchange text (A-TEXT-1); otherwise why not (never the value).

    NUL is refused everywhere (PostgreSQL cannot store it in text; SQLite could, so refusing it keeps
    the two alike); so is a text longer than its column. Every other character (controls, ESC, bidi
    overrides, markup, formula prefixes) is data: it is stored as received and neutralised where it
    is shown (``reports.safety``)."""
    limit = MAX_SYMBOL_CHARS if name in SYMBOL_FIELDS else MAX_TEXT_CHARS
    if len(value) > limit:
        return f"is {len(value)} characters long; the ledger stores at most {limit}"
    if "\x00" in value:
        return "contains a NUL character, which the ledger does not store"
    return None


def _shown(key: str, limit: int = 80) -> str:
    """A record key for an error line: long keys cut (the line stays one line of sensible length)."""
    return key if len(key) <= limit else f"{key[:limit]}... ({len(key)} characters)"


@dataclass(frozen=True)
class F:
    """One field of a record: its JSON type and whether it must be present and non-null."""

    kind: FieldType
    required: bool = True


def _opt(kind: FieldType) -> F:
    return F(kind, required=False)


# --- Natural keys (A-KEY-1, REFERENCE.md §7.9) -----------------------------------------------------------


def _s(value: Any) -> str:
    """Render one key component: null as empty, everything else as its JSON text without quotes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill_key(r: Mapping[str, Any]) -> str:
    trade_id = r.get("tradeId")
    if trade_id:  # non-zero, non-null (system fills carry 0 or null: REFERENCE.md §5.2)
        return f"fills:{trade_id}:{r['orderId']}:{r['side']}:{r['symbol']}"
    return f"fills:sha256:{canonical_json_sha256(dict(r))}"


def _settlement_key(r: Mapping[str, Any]) -> str:
    seq = r.get("engineSequence")
    if seq is not None:
        return f"settlement:{seq}"
    parts = [canonical_ts(r["timestamp"]), r.get("source"), r.get("quantity"), r.get("positionId")]
    return f"settlement:sha256:{canonical_json_sha256(parts)}"


def _fields_key(name: str, *fields: str, ts_fields: tuple[str, ...] = ()) -> Callable[[Mapping[str, Any]], str]:
    def key(r: Mapping[str, Any]) -> str:
        parts = [canonical_ts(r[f]) if f in ts_fields and r.get(f) is not None else _s(r.get(f)) for f in fields]
        return ":".join([name, *parts])

    key.__name__ = f"{name}_key"
    return key


# --- The endpoint declaration ----------------------------------------------------------------------------

Kind = Literal["history", "state", "public"]
Shape = Literal["list", "object", "text"]


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """One read endpoint. ``instruction`` None means public (unsigned)."""

    name: str
    path: str
    instruction: str | None
    kind: Kind
    params: frozenset[str] = frozenset()
    sort_direction: bool = False
    from_to: bool = False
    max_limit: int | None = None
    time_field: str | None = None
    key: Callable[[Mapping[str, Any]], str] | None = None
    fields: Mapping[str, F] = field(default_factory=dict)
    shape: Shape = "list"
    bucket: str = STANDARD

    @property
    def signed(self) -> bool:
        return self.instruction is not None

    @property
    def paged(self) -> bool:
        return self.max_limit is not None

    def natural_key(self, record: Mapping[str, Any]) -> str:
        if self.key is None:
            raise TypeError(f"{self.name} declares no natural key")
        return self.key(record)

    def record_time(self, record: Mapping[str, Any]) -> datetime | None:
        """The record's time (aware UTC) from ``time_field``; None when the field is null."""
        if self.time_field is None or record.get(self.time_field) is None:
            return None
        return parse_ts(record[self.time_field])

    def validate_record(self, record: Any, index: int) -> None:
        """Raise RecordError naming this endpoint, the record (key, else index) and the field."""
        if not isinstance(record, dict):
            raise RecordError(self.name, f"#{index}", f"record must be a JSON object, got {type(record).__name__}")
        problem: tuple[str, str] | None = None
        for name, spec in self.fields.items():
            value = record.get(name)
            if value is None:
                if spec.required:
                    problem = (name, "is missing" if name not in record else "is null")
                    break
                continue
            if _FAST_OK[spec.kind](value):
                if spec.kind != "str" or (len(value) <= MAX_SYMBOL_CHARS and "\x00" not in value):
                    continue
                reason = text_problem(name, value)
            else:
                reason = _type_problem(spec.kind, value)
            if reason is not None:
                problem = (name, reason)
                break
        key = None
        if self.key is not None:
            try:
                key = self.key(record)
            except Exception:  # the key itself needs the broken field: fall back to the index
                key = None
        if problem is None:
            if key is None or len(key) <= MAX_KEY_CHARS:
                return
            raise RecordError(self.name, f"#{index}", f"natural key is {len(key)} characters long; the ledger stores at most {MAX_KEY_CHARS}")
        where = f"#{index}" if key is None else f"{_shown(key)} (#{index})"
        raise RecordError(self.name, where, f"field {problem[0]!r} {problem[1]}")

    def validate_response(self, body: Any) -> None:
        """Check the top-level shape, then each record (lists) or the object itself."""
        if self.shape == "list":
            if not isinstance(body, list):
                raise MalformedResponse(self.name, f"expected a JSON array, got {type(body).__name__}")
            for i, rec in enumerate(body):
                self.validate_record(rec, i)
        elif self.shape == "object":
            if not isinstance(body, dict):
                raise MalformedResponse(self.name, f"expected a JSON object, got {type(body).__name__}")
            if self.name == "balances":
                for asset, rec in body.items():
                    reason = text_problem("symbol", asset)
                    if reason is not None:
                        raise RecordError(self.name, f"#{_shown(asset)}", f"asset name {reason}")
                    self.validate_record(rec, asset)  # type: ignore[arg-type]
            else:
                self.validate_record(body, 0)


# --- Field tables (REFERENCE.md §5.2; openapi.yml required lists) --------------------------------------------

_FILL = {
    "tradeId": _opt("int"), "orderId": F("str"), "clientId": _opt("str"), "symbol": F("str"), "side": F("str"),
    "price": F("dec"), "quantity": F("dec"), "fee": F("dec"), "feeSymbol": F("str"), "isMaker": F("bool"),
    "systemOrderType": _opt("str"), "timestamp": F("ts"),
}
_ORDER = {
    "id": F("str"), "clientId": _opt("int"), "createdAt": F("ts"), "symbol": F("str"), "side": F("str"),
    "orderType": F("str"), "timeInForce": F("str"), "status": F("str"), "price": _opt("dec"), "quantity": _opt("dec"),
    "quoteQuantity": _opt("dec"), "executedQuantity": _opt("dec"), "executedQuoteQuantity": _opt("dec"),
    "postOnly": _opt("bool"), "selfTradePrevention": _opt("str"), "systemOrderType": _opt("str"),
    "strategyId": _opt("str"),
}
_FUNDING = {
    "userId": F("int"), "subaccountId": _opt("int"), "symbol": F("str"), "fundingRate": F("dec"),
    "intervalEndTimestamp": F("ts"), "quantity": F("dec"),
}
_SETTLEMENT = {
    "userId": F("int"), "subaccountId": _opt("int"), "timestamp": F("ts"), "positionId": _opt("str"),
    "engineSequence": _opt("int"), "quantity": F("dec"), "source": F("str"),
}
_INTEREST = {
    "paymentType": F("str"), "interestRate": F("dec"), "interval": F("int"), "marketSymbol": F("str"),
    "positionId": F("str"), "quantity": F("dec"), "symbol": F("str"), "timestamp": F("ts"),
}
_BORROW_LEND = {
    "eventType": F("str"), "positionId": F("str"), "quantity": F("dec"), "positionQuantity": _opt("dec"),
    "source": F("str"), "symbol": F("str"), "timestamp": F("ts"), "spotMarginOrderId": _opt("str"),
}
_BL_POSITION_ROW = {
    "positionId": F("str"), "quantity": F("dec"), "symbol": F("str"), "source": F("str"),
    "cumulativeInterest": F("dec"), "avgInterestRate": F("dec"), "side": F("str"), "createdAt": F("ts"),
}
_DUST = {"id": F("int"), "symbol": F("str"), "quantity": F("dec"), "usdcReceived": F("dec"), "timestamp": F("ts")}
_POSITION_ROW = {
    "id": F("str"), "symbol": F("str"), "state": F("str"),
    **{n: F("dec") for n in (
        "netQuantity", "netExposureQuantity", "netExposureNotional", "netCost", "markPrice", "entryPrice",
        "cumulativePnlRealized", "unrealizedPnl", "fundingQuantity", "interest", "liquidated", "imf", "fees",
        "closedVolume", "liquidationFees",
    )},
    "closingPrice": _opt("dec"), "accountLeverage": _opt("dec"), "openedAt": _opt("ts"), "closedAt": _opt("ts"),
}
_RFQ = {
    "rfqId": F("str"), "clientId": _opt("int"), "symbol": F("str"), "side": F("str"), "price": _opt("dec"),
    "quantity": _opt("dec"), "quoteQuantity": _opt("dec"), "submissionTime": F("ts"), "expiryTime": F("ts"),
    "status": F("str"), "executionMode": F("str"), "createdAt": F("ts"), "deferredSettlementQuoteId": _opt("str"),
}
_RFQ_FILL = {
    "rfqId": F("str"), "clientId": _opt("int"), "quoteId": F("str"), "symbol": F("str"), "side": F("str"),
    "quantity": _opt("dec"), "quoteQuantity": _opt("dec"), "fillPrice": F("dec"), "createdAt": F("ts"),
    "filledAt": F("ts"), "systemOrderType": _opt("str"),
}
_QUOTE = {
    "rfqId": F("str"), "quoteId": F("str"), "clientId": _opt("int"), "bidPrice": F("dec"), "askPrice": F("dec"),
    "status": F("str"), "createdAt": F("ts"), "deferredSettlement": _opt("bool"),
}
_QUOTE_FILL = {
    "quoteId": F("str"), "rfqId": F("str"), "clientId": _opt("int"), "symbol": F("str"), "side": F("str"),
    "quantity": F("dec"), "fillPrice": F("dec"), "fee": F("dec"), "feeSymbol": F("str"), "createdAt": F("ts"),
    "filledAt": F("ts"),
}
_STRATEGY = {
    "id": F("str"), "createdAt": F("ts"), "strategyType": F("str"), "status": F("str"), "symbol": F("str"),
    "side": F("str"), "quantity": _opt("dec"), "executedQuantity": _opt("dec"), "executedQuoteQuantity": _opt("dec"),
    "duration": _opt("int"), "interval": _opt("int"), "randomizedIntervalQuantity": _opt("bool"),
    "clientStrategyId": _opt("int"),
}
_DEPOSIT = {
    "id": F("int"), "symbol": F("str"), "quantity": F("dec"), "createdAt": F("ts"), "source": F("str"),
    "status": F("str"), "fromAddress": _opt("str"), "toAddress": _opt("str"), "transactionHash": _opt("str"),
    "fiatAmount": _opt("num"),
}
_WITHDRAWAL = {
    "id": F("int"), "blockchain": F("str"), "symbol": F("str"), "quantity": F("dec"), "fee": F("dec"),
    "status": F("str"), "toAddress": _opt("str"), "transactionHash": _opt("str"), "clientId": _opt("str"),
    "subaccountId": _opt("int"), "isInternal": F("bool"), "createdAt": F("ts"), "triggerAt": _opt("ts"),
    "fiatFee": _opt("dec"),
}
_BALANCE = {"available": F("dec"), "locked": F("dec"), "staked": F("dec")}
_COLLATERAL = {
    "assetsValue": F("dec"), "borrowLiability": F("dec"), "netEquity": F("dec"), "collateral": F("any"),
}
_OPEN_POSITION = {
    "symbol": F("str"), "netQuantity": F("dec"), "netCost": _opt("dec"), "entryPrice": F("dec"),
    "markPrice": F("dec"), "pnlRealized": _opt("dec"), "pnlUnrealized": _opt("dec"), "positionId": _opt("str"),
}
_BL_POSITION = {
    "id": F("str"), "symbol": F("str"), "netQuantity": F("dec"), "cumulativeInterest": _opt("dec"),
    "markPrice": _opt("dec"),
}
_MARKET = {"symbol": F("str"), "baseSymbol": F("str"), "quoteSymbol": F("str"), "marketType": F("str")}
_ASSET = {"symbol": F("str"), "tokens": _opt("any")}
_KLINE = {"start": F("ts"), "end": _opt("ts"), "open": _opt("dec"), "high": _opt("dec"), "low": _opt("dec"),
          "close": _opt("dec"), "volume": _opt("dec"), "quoteVolume": _opt("dec")}
_MARK_PRICE = {"symbol": F("str"), "markPrice": F("dec"), "indexPrice": _opt("dec"), "fundingRate": _opt("dec"),
               "nextFundingTimestamp": _opt("int")}
_TICKER = {"symbol": F("str"), "lastPrice": _opt("dec")}
_STATUS = {"status": F("str"), "message": _opt("str")}


def _h(name: str, path: str, instruction: str, params: str, *, time_field: str, key, fields, sort: bool = True,
       from_to: bool = False) -> Endpoint:
    base = {"limit", "offset"} | ({"sortDirection"} if sort else set()) | ({"from", "to"} if from_to else set())
    return Endpoint(
        name=name, path=path, instruction=instruction, kind="history",
        params=frozenset(base | set(params.split())), sort_direction=sort, from_to=from_to,
        max_limit=HISTORY_MAX_LIMIT, time_field=time_field, key=key, fields=fields,
    )


_ALL: list[Endpoint] = [
    # History: walked completely by the client's pager.
    _h("fills", "/wapi/v1/history/fills", "fillHistoryQueryAll",
       "orderId strategyId symbol fillType marketType", time_field="timestamp", key=_fill_key, fields=_FILL,
       from_to=True),
    _h("orders", "/wapi/v1/history/orders", "orderHistoryQueryAll", "orderId strategyId symbol marketType",
       time_field="createdAt", key=_fields_key("orders", "id"), fields=_ORDER),
    _h("funding", "/wapi/v1/history/funding", "fundingHistoryQueryAll", "subaccountId symbol",
       time_field="intervalEndTimestamp",
       key=_fields_key("funding", "symbol", "intervalEndTimestamp", "subaccountId", ts_fields=("intervalEndTimestamp",)),
       fields=_FUNDING),
    _h("settlement", "/wapi/v1/history/settlement", "settlementHistoryQueryAll", "source",
       time_field="timestamp", key=_settlement_key, fields=_SETTLEMENT),
    _h("interest", "/wapi/v1/history/interest", "interestHistoryQueryAll", "asset symbol positionId source",
       time_field="timestamp",
       key=_fields_key("interest", "positionId", "paymentType", "timestamp", ts_fields=("timestamp",)),
       fields=_INTEREST),
    _h("borrowLend", "/wapi/v1/history/borrowLend", "borrowHistoryQueryAll", "type sources positionId symbol",
       time_field="timestamp",
       key=_fields_key("borrowLend", "positionId", "eventType", "timestamp", "quantity", "source",
                       ts_fields=("timestamp",)),
       fields=_BORROW_LEND),
    _h("borrowLendPositionHistory", "/wapi/v1/history/borrowLend/positions", "borrowPositionHistoryQueryAll",
       "symbol side state", time_field="createdAt", key=_fields_key("borrowLendPositionHistory", "positionId"),
       fields=_BL_POSITION_ROW),
    _h("dust", "/wapi/v1/history/dust", "dustHistoryQueryAll", "id symbol", time_field="timestamp",
       key=_fields_key("dust", "id"), fields=_DUST),
    _h("positionHistory", "/wapi/v1/history/position", "positionHistoryQueryAll", "symbol state marketType",
       time_field="openedAt", key=_fields_key("positionHistory", "id"), fields=_POSITION_ROW),
    _h("rfq", "/wapi/v1/history/rfq", "rfqHistoryQueryAll", "rfqId symbol status side deferredSettlement",
       time_field="createdAt", key=_fields_key("rfq", "rfqId"), fields=_RFQ),
    _h("rfqFill", "/wapi/v1/history/rfq/fill", "rfqFillHistoryQueryAll",
       "quoteId symbol side fillType deferredSettlement", time_field="filledAt",
       key=_fields_key("rfqFill", "rfqId", "quoteId"), fields=_RFQ_FILL),
    _h("quote", "/wapi/v1/history/quote", "quoteHistoryQueryAll", "quoteId symbol status deferredSettlement",
       time_field="createdAt", key=_fields_key("quote", "quoteId"), fields=_QUOTE),
    _h("quoteFill", "/wapi/v1/history/quote/fill", "quoteFillHistoryQueryAll", "quoteId symbol side",
       time_field="filledAt", key=_fields_key("quoteFill", "quoteId", "rfqId"), fields=_QUOTE_FILL),
    _h("strategies", "/wapi/v1/history/strategies", "strategyHistoryQueryAll", "strategyId symbol marketType",
       time_field="createdAt", key=_fields_key("strategies", "id"), fields=_STRATEGY),
    _h("deposits", "/wapi/v1/capital/deposits", "depositQueryAll", "excludePlatform", time_field="createdAt",
       key=_fields_key("deposits", "id"), fields=_DEPOSIT, sort=False, from_to=True),
    _h("withdrawals", "/wapi/v1/capital/withdrawals", "withdrawalQueryAll", "id clientId", time_field="createdAt",
       key=_fields_key("withdrawals", "id"), fields=_WITHDRAWAL, sort=False, from_to=True),
    # Account state: one request each.
    Endpoint(name="balances", path="/api/v1/capital", instruction="balanceQuery", kind="state", shape="object",
             fields=_BALANCE),
    Endpoint(name="collateral", path="/api/v1/capital/collateral", instruction="collateralQuery", kind="state",
             params=frozenset({"subaccountId"}), shape="object", fields=_COLLATERAL),
    Endpoint(name="positions", path="/api/v1/position", instruction="positionQuery", kind="state",
             params=frozenset({"symbol", "marketType"}), fields=_OPEN_POSITION,
             key=_fields_key("positions", "symbol")),
    Endpoint(name="borrowLendPositions", path="/api/v1/borrowLend/positions", instruction="borrowLendPositionQuery",
             kind="state", fields=_BL_POSITION, key=_fields_key("borrowLendPositions", "symbol")),
    Endpoint(name="account", path="/api/v1/account", instruction="accountQuery", kind="state", shape="object"),
    # Public reference data: unsigned.
    Endpoint(name="markets", path="/api/v1/markets", instruction=None, kind="public",
             params=frozenset({"marketType"}), fields=_MARKET, key=_fields_key("markets", "symbol")),
    Endpoint(name="assets", path="/api/v1/assets", instruction=None, kind="public", params=frozenset({"country"}),
             fields=_ASSET, key=_fields_key("assets", "symbol")),
    Endpoint(name="klines", path="/api/v1/klines", instruction=None, kind="public",
             params=frozenset({"symbol", "interval", "startTime", "endTime", "priceType"}), fields=_KLINE,
             time_field="start", key=_fields_key("klines", "start", ts_fields=("start",)),
             bucket=HISTORICAL_MARKET_DATA),
    Endpoint(name="markPrices", path="/api/v1/markPrices", instruction=None, kind="public",
             params=frozenset({"symbol", "marketType"}), fields=_MARK_PRICE, key=_fields_key("markPrices", "symbol")),
    Endpoint(name="tickers", path="/api/v1/tickers", instruction=None, kind="public",
             params=frozenset({"interval"}), fields=_TICKER, key=_fields_key("tickers", "symbol")),
    Endpoint(name="time", path="/api/v1/time", instruction=None, kind="public", shape="text"),
    Endpoint(name="status", path="/api/v1/status", instruction=None, kind="public", shape="object",
             fields=_STATUS),
]

#: Every endpoint by its name (the name is also the prefix of its natural keys).
ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in _ALL}
#: Every endpoint by its path (for the simulator's router and signature check).
BY_PATH: dict[str, Endpoint] = {e.path: e for e in _ALL}
#: The history endpoints a full sync walks, in catalogue order.
HISTORY: tuple[Endpoint, ...] = tuple(e for e in _ALL if e.kind == "history")


def get(name: str) -> Endpoint:
    """Look an endpoint up by name; a clear error for a typo."""
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise KeyError(f"unknown Backpack endpoint {name!r}; known: {', '.join(sorted(ENDPOINTS))}") from None
