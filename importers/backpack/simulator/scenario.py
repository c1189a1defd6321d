"""Scenario files: an account described as the API's own records (docs/scenario-format.md).

``load_scenario(path)`` validates every record (one-line :class:`ScenarioError` naming the key and
record index), replays the history with the simulator's Book and serves the state it implies, unless
the file gives ``balances``/``positions``/``borrowLendPositions``/``collateral``, which are then served
as given (so a test can make the exchange disagree with its own history).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import orjson

from ._time import parse_ts_ms
from .book import Book
from .markets import CATALOGUE, MINUTE_MS, MarketDef, PricePath, RecordKlines
from .store import STREAMS, TableBuilder, market_type_of
from .world import Account, World, derive_state, finish_account, keypair

__all__ = ["ScenarioError", "load_scenario", "parse_scenario", "dump_world", "scenario_of"]

STATE_KEYS = ("balances", "positions", "borrowLendPositions", "collateral")
OTHER_KEYS = ("klines", "markPrices", "subaccounts", "now", "userId", "live")
ACCOUNT_KEYS = set(STREAMS) | set(STATE_KEYS)
_DEC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
SIDES = ("Bid", "Ask")

# field -> kind; kinds: str, dec, ts, int, bool, side, or a tuple of allowed strings
REQUIRED: dict[str, dict[str, object]] = {
    "fills": {"orderId": "str", "symbol": "str", "side": "side", "price": "dec", "quantity": "dec", "fee": "dec",
              "feeSymbol": "str", "timestamp": "ts"},
    "orders": {"id": "str", "symbol": "str", "side": "side", "createdAt": "ts"},
    "funding": {"symbol": "str", "quantity": "dec", "intervalEndTimestamp": "ts"},
    "settlements": {"quantity": "dec", "source": "str", "timestamp": "ts"},
    "interest": {"paymentType": ("EntryFee", "Borrow", "Lend", "UnrealizedPositivePnl", "UnrealizedNegativePnl"),
                 "quantity": "dec", "symbol": "str", "timestamp": "ts"},
    "borrowLendHistory": {"eventType": ("Borrow", "BorrowRepay", "Lend", "LendRedeem"), "positionId": "str",
                          "quantity": "dec", "symbol": "str", "timestamp": "ts"},
    "borrowLendPositionHistory": {"positionId": "str", "symbol": "str", "createdAt": "ts"},
    "dust": {"id": "int", "symbol": "str", "quantity": "dec", "usdcReceived": "dec", "timestamp": "ts"},
    "positionHistory": {"id": "str", "symbol": "str", "openedAt": "ts"},
    "rfqHistory": {"rfqId": "str", "symbol": "str", "createdAt": "ts"},
    "rfqFills": {"rfqId": "str", "quoteId": "str", "symbol": "str", "side": "side", "quantity": "dec",
                 "fillPrice": "dec", "filledAt": "ts"},
    "quoteHistory": {"rfqId": "str", "quoteId": "str", "createdAt": "ts"},
    "quoteFills": {"rfqId": "str", "quoteId": "str", "symbol": "str", "side": "side", "quantity": "dec",
                   "fillPrice": "dec", "fee": "dec", "feeSymbol": "str", "filledAt": "ts"},
    "strategies": {"id": "str", "symbol": "str", "createdAt": "ts"},
    "deposits": {"id": "int", "symbol": "str", "quantity": "dec", "status": "str", "createdAt": "ts"},
    "withdrawals": {"id": "int", "symbol": "str", "quantity": "dec", "fee": "dec", "status": "str",
                    "createdAt": "ts"},
}
#: Streams that move the Book, in the order they replay within one millisecond.
REPLAYED = ("deposits", "fills", "rfqFills", "quoteFills", "funding", "settlements", "borrowLendHistory",
            "interest", "dust", "withdrawals")


class ScenarioError(ValueError):
    """A malformed scenario file. The message is one line naming the key, the record index and the problem."""


def _short(value: object) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, (bytes,)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_field(where: str, record: dict, name: str, kind: object) -> None:
    if name not in record:
        raise ScenarioError(f"{where}: missing field {name!r}")
    value = record[name]
    problem = None
    if kind == "str":
        if not isinstance(value, str) or not value:
            problem = "must be a non-empty string"
    elif kind == "dec":
        if not isinstance(value, str) or not _DEC.match(value):
            problem = "must be a decimal string such as \"1.25\""
    elif kind == "ts":
        try:
            parse_ts_ms(value)
        except (ValueError, TypeError):
            problem = "must be a naive ISO timestamp such as \"2025-01-02T03:04:05.678\""
    elif kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            problem = "must be an integer"
    elif kind == "side":
        if value not in SIDES:
            problem = "must be \"Bid\" or \"Ask\""
    elif isinstance(kind, tuple) and value not in kind:
        problem = f"must be one of {', '.join(kind)}"
    if problem:
        raise ScenarioError(f"{where}: field {name!r} {problem}, got {_short(value)}")


def _validate_stream(prefix: str, key: str, records: object) -> list[dict]:
    if not isinstance(records, list):
        raise ScenarioError(f"{prefix}{key}: must be a JSON array of records")
    for i, r in enumerate(records):
        where = f"{prefix}{key}[{i}]"
        if not isinstance(r, dict):
            raise ScenarioError(f"{where}: must be a JSON object, got {_short(r)}")
        for name, kind in REQUIRED[key].items():
            _check_field(where, r, name, kind)
        if key in ("fills", "rfqFills", "quoteFills"):
            symbol = r["symbol"]
            if "_" not in symbol:
                raise ScenarioError(f"{where}: field 'symbol' must be BASE_QUOTE[_PERP], got {_short(symbol)}")
    return records


def _validate_state(prefix: str, key: str, value: object) -> None:
    if key == "balances":
        if not isinstance(value, dict):
            raise ScenarioError(f"{prefix}balances: must be an object keyed by asset")
        for asset, bal in value.items():
            if not isinstance(bal, dict):
                raise ScenarioError(f"{prefix}balances[{asset!r}]: must be an object with available/locked/staked")
            for f in ("available", "locked", "staked"):
                _check_field(f"{prefix}balances[{asset!r}]", bal, f, "dec")
    elif key == "collateral":
        if not isinstance(value, dict):
            raise ScenarioError(f"{prefix}collateral: must be an object (MarginAccountSummary)")
    else:
        if not isinstance(value, list):
            raise ScenarioError(f"{prefix}{key}: must be a JSON array")
        for i, r in enumerate(value):
            if not isinstance(r, dict):
                raise ScenarioError(f"{prefix}{key}[{i}]: must be a JSON object, got {_short(r)}")
            _check_field(f"{prefix}{key}[{i}]", r, "symbol", "str")
            _check_field(f"{prefix}{key}[{i}]", r, "netQuantity", "dec")


def _account(doc: dict, prefix: str, name: str, seed: int, user_id: int, sub_id: int | None,
             marks: dict[str, Decimal], fill_prices: list) -> Account:
    builders = {n: TableBuilder(s) for n, s in STREAMS.items()}
    events = []
    for key in STREAMS:
        records = _validate_stream(prefix, key, doc.get(key, []))
        b = builders[key]
        ts_field = STREAMS[key].ts_field
        order = REPLAYED.index(key) if key in REPLAYED else None
        for i, r in enumerate(records):
            ms = parse_ts_ms(r[ts_field])
            b.add(r, ms)
            if order is not None:
                events.append((ms, order, i, key, r))
            if key == "fills":
                fill_prices.append((r["symbol"], ms, Decimal(r["price"]), Decimal(r["quantity"])))
    for key in STATE_KEYS:
        if key in doc:
            _validate_state(prefix, key, doc[key])
    book = Book()
    events.sort(key=lambda e: e[:3])
    for ms, _o, i, key, r in events:
        try:
            book.apply(key, r, ms)
        except (InvalidOperation, ValueError, KeyError) as exc:
            raise ScenarioError(f"{prefix}{key}[{i}]: cannot be replayed: {exc}") from None
    api = keypair(seed, name)
    state, positions = derive_state(book, marks=marks, user_id=user_id, subaccount_id=sub_id)
    if "balances" in doc:
        state["capital"] = doc["balances"]
    if "collateral" in doc:
        state["collateral"] = doc["collateral"]
    if "borrowLendPositions" in doc:
        state["borrowLendPositions"] = doc["borrowLendPositions"]
    if "positions" in doc:
        positions = doc["positions"]
    acc = Account(name=name, api_key=api[0], api_secret=api[1], user_id=user_id, subaccount_id=sub_id,
                  tables={n: b.build() for n, b in builders.items()}, book=book)
    finish_account(acc, state, positions)
    return acc


def _klines(doc: dict) -> dict[str, dict[int, list]]:
    raw = doc.get("klines", {})
    if not isinstance(raw, dict):
        raise ScenarioError("klines: must be an object keyed by symbol, each a JSON array of 1m bars")
    out: dict[str, dict[int, list]] = {}
    for symbol, bars in raw.items():
        if not isinstance(bars, list):
            raise ScenarioError(f"klines[{symbol!r}]: must be a JSON array of 1m bars")
        for i, bar in enumerate(bars):
            where = f"klines[{symbol!r}][{i}]"
            if not isinstance(bar, dict):
                raise ScenarioError(f"{where}: must be a JSON object")
            for f in ("open", "high", "low", "close", "volume"):
                _check_field(where, bar, f, "dec")
            _check_field(where, bar, "start", "ts")
            start = parse_ts_ms(bar["start"])
            if start % MINUTE_MS:
                raise ScenarioError(f"{where}: field 'start' must be a whole minute (bars are 1m)")
            volume = Decimal(bar["volume"])
            close = Decimal(bar["close"])
            qv = Decimal(bar["quoteVolume"]) if isinstance(bar.get("quoteVolume"), str) else volume * close
            out.setdefault(symbol, {})[start] = [Decimal(bar["open"]), Decimal(bar["high"]), Decimal(bar["low"]),
                                                 close, volume, qv, int(bar.get("trades", 0) or 0)]
    return out


def parse_scenario(doc: object, *, seed: int = 1) -> World:
    if not isinstance(doc, dict):
        raise ScenarioError("scenario: the top level must be a JSON object")
    for key in doc:
        if key not in ACCOUNT_KEYS and key not in OTHER_KEYS:
            raise ScenarioError(f"scenario: unknown key {key!r} (known: {', '.join(sorted(ACCOUNT_KEYS | set(OTHER_KEYS)))})")
    user_id = doc.get("userId", 100_000 + seed % 900_000)
    # prices: given 1m klines, else 1m bars built from all fills
    fill_prices: list = []
    minute_bars = _klines(doc)
    marks: dict[str, Decimal] = {}
    for symbol, value in (doc.get("markPrices") or {}).items():
        _check_field(f"markPrices[{symbol!r}]", {"v": value}, "v", "dec")
        marks[symbol] = Decimal(value)
    subs = doc.get("subaccounts", [])
    if not isinstance(subs, list):
        raise ScenarioError("subaccounts: must be a JSON array of objects with a name and stream keys")
    # first pass for fill prices (marks default to the last traded price)
    accounts_docs = [(doc, "", "main", None)]
    for i, sub in enumerate(subs):
        where = f"subaccounts[{i}]"
        if not isinstance(sub, dict) or not isinstance(sub.get("name"), str) or not sub["name"]:
            raise ScenarioError(f"{where}: must be an object with a non-empty 'name'")
        for key in sub:
            if key not in ACCOUNT_KEYS and key not in ("name", "subaccountId"):
                raise ScenarioError(f"{where}: unknown key {key!r}")
        accounts_docs.append((sub, f"{where}.", sub["name"], sub.get("subaccountId", i + 1)))
    for d, prefix, _n, _s in accounts_docs:
        for i, r in enumerate(_validate_stream(prefix, "fills", d.get("fills", []))):
            fill_prices.append((r["symbol"], parse_ts_ms(r["timestamp"]), Decimal(r["price"]), Decimal(r["quantity"])))
    prices = RecordKlines(minute_bars) if minute_bars else RecordKlines.from_fills(fill_prices)
    last: dict[str, tuple[int, Decimal]] = {}
    for symbol, ms, price, _q in fill_prices:
        if symbol not in last or ms >= last[symbol][0]:
            last[symbol] = (ms, price)
    for symbol in prices.minute_bars:
        p = prices.last_price(symbol)
        if p is not None:
            marks.setdefault(symbol, p)
    for symbol, (_ms, price) in last.items():
        marks.setdefault(symbol, price)
    for symbol in list(marks):
        parts = symbol.split("_")
        if len(parts) >= 2 and parts[1] == "USDC":
            marks.setdefault(parts[0], marks[symbol])
    accounts = [_account(d, prefix, name, seed, user_id, sub_id, marks, [])
                for d, prefix, name, sub_id in accounts_docs]
    known = {m.symbol for m in CATALOGUE}
    extra = []
    for symbol in sorted({s for s, *_ in fill_prices} - known):
        base, quote = symbol.split("_")[:2]
        extra.append(MarketDef(symbol, base, quote, market_type_of(symbol), 6, 6, 0))
    now = 0
    for acc in accounts:
        for t in acc.tables.values():
            if len(t):
                now = max(now, t.ts[-1])
    if isinstance(doc.get("now"), str):
        now = parse_ts_ms(doc["now"])
    now = now + 1 if now else 1_735_689_600_000
    live = doc.get("live")
    if live is not None and not isinstance(live, dict):
        raise ScenarioError("scenario: live: must be an object (docs/watch.md)")
    return World(accounts=accounts, markets=CATALOGUE + tuple(extra), prices=prices, now_ms=now, marks=marks,
                 seed=seed, live=live)


def load_scenario(path: str | Path, *, seed: int = 1) -> World:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError(f"scenario {path}: cannot read: {exc.strerror}") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {path}: not valid JSON: {str(exc).splitlines()[0]}") from None
    return parse_scenario(doc, seed=seed)


def scenario_of(world: World) -> dict:
    """The world's history as a scenario document (state keys omitted: they are derived on load)."""
    main, *subs = world.accounts
    doc: dict = {key: main.tables[key].records() for key in STREAMS if len(main.tables[key])}
    doc["subaccounts"] = []
    for acc in subs:
        sub = {"name": acc.name, "subaccountId": acc.subaccount_id}
        sub.update({key: acc.tables[key].records() for key in STREAMS if len(acc.tables[key])})
        doc["subaccounts"].append(sub)
    doc["markPrices"] = {k: format(v, "f") for k, v in sorted(world.marks.items())}
    if isinstance(world.prices, PricePath):
        klines: dict[str, list] = {}
        for acc in world.accounts:
            fills = acc.tables["fills"]
            minutes: dict[str, set[int]] = {}
            for ms, attrs in zip(fills.ts, fills.attrs):
                minutes.setdefault(attrs[0], set()).add(ms - ms % MINUTE_MS)
            for symbol, mins in minutes.items():
                for m in sorted(mins):
                    klines.setdefault(symbol, []).extend(world.prices.bars(symbol, "1m", m, m))
        doc["klines"] = {s: sorted(b, key=lambda x: x["start"]) for s, b in klines.items()}
    doc["userId"] = world.accounts[0].user_id
    doc["now"] = _iso(world.now_ms - 1)
    return doc


def _iso(ms: int) -> str:
    from ._time import render_ts

    return render_ts(ms, "auto")


def dump_world(world: World, path: str | Path) -> None:
    Path(path).write_bytes(orjson.dumps(scenario_of(world), option=orjson.OPT_INDENT_2))
