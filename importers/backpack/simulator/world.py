"""A served world: accounts (keys, history tables, exchange-reported state) and market data."""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from ..signing import public_key_of
from .book import POSITION_CONTEXT, Book, split_symbol
from .markets import CATALOGUE, HOUR_MS, MarketDef, PricePath, RecordKlines
from .store import STREAMS, Table, TableBuilder

__all__ = ["Account", "World", "keypair", "derive_state", "funding_rate", "fmt"]

ZERO = Decimal(0)
ONE = Decimal(1)
COLLATERAL_WEIGHT = {"USDC": Decimal("1"), "USDT": Decimal("0.98"), "SOL": Decimal("0.85"), "BTC": Decimal("0.9"),
                     "ETH": Decimal("0.9")}
IMF = Decimal("0.02")
MMF = Decimal("0.0125")
IMF_FN = {"type": "sqrt", "base": "0.02", "factor": "0.0000935"}
MMF_FN = {"type": "sqrt", "base": "0.0125", "factor": "0.0000561"}


def fmt(d: Decimal) -> str:
    return format(d, "f")


def keypair(seed: int, name: str) -> tuple[str, str]:
    """(api_key, api_secret) deterministic by seed and account name (secret = base64 32-byte seed)."""
    secret = base64.b64encode(hashlib.sha256(f"backpack-sim:{seed}:{name}".encode()).digest()).decode()
    return public_key_of(secret), secret


def funding_rate(symbol: str, hour_index: int) -> Decimal:
    """The hourly funding rate of a perp for the interval ending at hour ``hour_index`` (since epoch)."""
    k = zlib.crc32(f"{symbol}:{hour_index}".encode()) % 61
    return Decimal(k - 15).scaleb(-6)


@dataclass
class Account:
    name: str
    api_key: str
    api_secret: str
    user_id: int
    subaccount_id: int | None
    tables: dict[str, Table]
    state: dict[str, bytes] = field(default_factory=dict)  # capital, collateral, borrowLendPositions, account
    positions: list[dict] = field(default_factory=list)  # open perp positions (filtered per request)
    book: Book | None = None


@dataclass
class World:
    accounts: list[Account]
    markets: tuple[MarketDef, ...]
    prices: PricePath | RecordKlines
    now_ms: int  # the end of the history: mark prices, tickers and public trades are taken here
    marks: dict[str, Decimal]  # asset or symbol -> mark price
    seed: int = 0
    live: dict | None = None  # the scenario's live-stream options (simulator/ws.py LiveOptions)

    def account_by_key(self) -> dict[str, Account]:
        return {a.api_key: a for a in self.accounts}

    @property
    def main(self) -> Account:
        return self.accounts[0]

    def asset_mark(self, asset: str) -> Decimal:
        if asset in ("USDC",):
            return ONE
        return self.marks.get(asset, ZERO)


def empty_tables(builders: dict[str, TableBuilder] | None = None) -> dict[str, Table]:
    builders = builders or {}
    return {name: (builders[name].build() if name in builders else TableBuilder(spec).build())
            for name, spec in STREAMS.items()}


def derive_state(book: Book, *, marks: dict[str, Decimal], user_id: int, subaccount_id: int | None,
                 unsettled: Decimal = ZERO) -> tuple[dict[str, object], list[dict]]:
    """The exchange-reported state implied by a replayed Book (A-BAL-1)."""

    def mark(asset: str) -> Decimal:
        return ONE if asset == "USDC" else marks.get(asset, ZERO)

    capital = {a: {"available": fmt(v), "locked": "0", "staked": "0"}
               for a, v in sorted(book.spot.items()) if v != 0}
    bl_positions = []
    for asset in sorted(set(book.lent) | set(book.borrowed)):
        net = book.lent.get(asset, ZERO) - book.borrowed.get(asset, ZERO)
        if net == 0:
            continue
        m = mark(asset)
        bl_positions.append({
            "id": book.bl_position_ids.get(asset, "0"), "symbol": asset, "netQuantity": fmt(net),
            "cumulativeInterest": fmt(book.interest_total.get(asset, ZERO)), "markPrice": fmt(m),
            "netExposureQuantity": fmt(abs(net)), "netExposureNotional": fmt(abs(net) * m),
            "estLiquidationPrice": "0", "imf": fmt(IMF), "imfFunction": IMF_FN, "mmf": fmt(MMF),
            "mmfFunction": MMF_FN,
        })
    positions = []
    pnl_unrealized = ZERO
    exposure = ZERO
    for symbol in sorted(book.positions):
        pos = book.positions[symbol]
        if pos.net == 0:
            continue
        m = marks.get(symbol, pos.last_price)
        entry = pos.entry
        upnl = POSITION_CONTEXT.multiply(pos.net, POSITION_CONTEXT.subtract(m, entry))  # A-PERP-3
        pnl_unrealized += upnl
        exposure += abs(pos.net) * m
        positions.append({
            "breakEvenPrice": fmt(entry), "entryPrice": fmt(entry), "estLiquidationPrice": "0",
            "imf": fmt(IMF), "imfFunction": IMF_FN, "markPrice": fmt(m), "mmf": fmt(MMF), "mmfFunction": MMF_FN,
            "netCost": fmt(pos.net * entry), "netQuantity": fmt(pos.net), "netExposureQuantity": fmt(abs(pos.net)),
            "netExposureNotional": fmt(abs(pos.net) * m), "pnlRealized": fmt(pos.realized),
            "pnlUnrealized": fmt(upnl), "cumulativeFundingPayment": fmt(pos.funding),
            "subaccountId": subaccount_id, "symbol": symbol, "userId": user_id, "positionId": pos.position_id,
            "cumulativeInterest": "0",
        })
    collateral = []
    assets_value = ZERO
    weighted = ZERO
    liabilities = ZERO
    for asset in sorted(set(book.spot) | set(book.lent)):
        spot = book.spot.get(asset, ZERO)
        lend = book.lent.get(asset, ZERO)
        total = spot + lend
        if total == 0:
            continue
        m = mark(asset)
        w = COLLATERAL_WEIGHT.get(asset, Decimal("0.5"))
        notional = total * m
        assets_value += notional
        weighted += notional * w
        collateral.append({
            "symbol": asset, "assetMarkPrice": fmt(m), "totalQuantity": fmt(total), "balanceNotional": fmt(notional),
            "collateralWeight": fmt(w), "collateralValue": fmt(notional * w), "openOrderQuantity": "0",
            "lendQuantity": fmt(lend), "availableQuantity": fmt(spot),
        })
    for asset, owed in book.borrowed.items():
        liabilities += owed * mark(asset)
    net_equity = assets_value - liabilities + pnl_unrealized + unsettled
    summary = {
        "assetsValue": fmt(assets_value), "borrowLiability": fmt(liabilities), "collateral": collateral,
        "imf": fmt(IMF), "unsettledEquity": fmt(unsettled), "liabilitiesValue": fmt(liabilities),
        "marginFraction": fmt(net_equity / exposure) if exposure else None, "mmf": fmt(MMF),
        "netEquity": fmt(net_equity), "netEquityAvailable": fmt(net_equity - exposure * IMF),
        "netEquityLocked": fmt(exposure * IMF), "netExposureFutures": fmt(exposure),
        "pnlUnrealized": fmt(pnl_unrealized),
    }
    return {"capital": capital, "collateral": summary, "borrowLendPositions": bl_positions}, positions


def account_settings() -> dict:
    return {
        "autoBorrowSettlements": True, "autoLend": False, "autoRealizePnl": True, "autoRepayBorrows": True,
        "borrowLimit": "100000", "futuresMakerFee": "2", "futuresTakerFee": "5", "leverageLimit": "10",
        "limitOrders": 500, "liquidating": False, "positionLimit": "1000000", "spotMakerFee": "8",
        "spotTakerFee": "10", "triggerOrders": 500,
    }


def finish_account(acc: Account, state: dict[str, object], positions: list[dict]) -> None:
    acc.state = {k: orjson.dumps(v) for k, v in state.items()}
    acc.state.setdefault("account", orjson.dumps(account_settings()))
    acc.positions = positions


def marks_from_path(path: PricePath, now_ms: int) -> dict[str, Decimal]:
    marks: dict[str, Decimal] = {}
    for m in path.by_symbol.values():
        price = path.price_at(m.symbol, now_ms - 1)
        marks[m.symbol] = price
        marks.setdefault(m.base, price)
    return marks


def hour_index(ms: int) -> int:
    return ms // HOUR_MS


__all__ += ["empty_tables", "finish_account", "marks_from_path", "account_settings", "hour_index", "split_symbol",
            "CATALOGUE"]
