"""Backpack records -> journal entries: one pure function per endpoint (docs/posting-rules.md).

Each function takes one validated record as the API returned it and a :class:`ledger.posting.Source`
and returns an :class:`Extracted`: the entries to post, or why none are posted:

- ``posted``: entries follow;
- ``memo``: kept raw, posts nothing by rule (another stream is authoritative for that money);
- ``pending``: a deposit/withdrawal whose status is not final; re-examined when seen again;
- ``unknown``: no rule knows this record (a new event type); kept raw and reported, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.journal import Entry
from ledger.money import D
from ledger.posting import Source, borrowed, cash, deposit, lent, move, perp_fill, spot, trade, withdrawal

__all__ = ["Extracted", "extract", "split_symbol", "EXTRACTORS", "SETTLEMENT_COUNTER"]


@dataclass(frozen=True, slots=True)
class Extracted:
    status: str
    entries: tuple[Entry, ...] = ()
    note: str | None = None


def _posted(*entries: Entry) -> Extracted:
    return Extracted("posted", tuple(entries))


def _memo(note: str) -> Extracted:
    return Extracted("memo", (), note)


def _unknown(note: str) -> Extracted:
    return Extracted("unknown", (), note)


_SIDE = {"Bid": "buy", "Ask": "sell"}
_MARKET_SUFFIXES = ("PERP", "RFQ")


_PAIRS: dict[str, tuple[str, str, str] | None] = {}  # memo of split_symbol (a venue lists few markets)
_NO_PAIR = object()


def split_symbol(symbol: str) -> tuple[str, str, str] | None:
    """``SOL_USDC`` -> (SOL, USDC, SPOT); ``SOL_USDC_PERP`` -> (SOL, USDC, PERP); None if not a pair."""
    if type(symbol) is not str:
        return _split_symbol(symbol)
    pair = _PAIRS.get(symbol, _NO_PAIR)
    if pair is _NO_PAIR:
        pair = _split_symbol(symbol)
        if len(_PAIRS) < 4096:
            _PAIRS[symbol] = pair
    return pair  # type: ignore[return-value]


def _split_symbol(symbol: str) -> tuple[str, str, str] | None:
    parts = symbol.split("_")
    kind = "SPOT"
    if len(parts) == 3 and parts[2] in _MARKET_SUFFIXES:
        kind = parts[2]
        parts = parts[:2]
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1], kind


# -- fills ----------------------------------------------------------------------------------------
def _fill(r: Mapping[str, Any], src: Source) -> Extracted:
    pair = split_symbol(r["symbol"])
    side = _SIDE.get(r["side"])
    if pair is None or side is None:
        return _unknown(f"fill on unrecognised market {r['symbol']!r} or side {r['side']!r}")
    base, quote, kind = pair
    qty, price = D(r["quantity"]), D(r["price"])
    desc_extra = f" ({r['systemOrderType']})" if r.get("systemOrderType") else ""
    if kind == "PERP":
        # A-PERP-1: perp fees move through TradingFees settlements; the fill's fee is kept raw.
        return _posted(perp_fill(src, symbol=r["symbol"], side=side, quantity=qty, price=price, description=f"perp {side} {qty} {r['symbol']} @ {price}{desc_extra}"))
    if kind != "SPOT":
        return _unknown(f"fill on {kind} market {r['symbol']!r}")
    return _posted(
        trade(
            src,
            kind="spot-trade",
            base=base,
            quote=quote,
            side=side,
            quantity=qty,
            price=price,
            fee=D(r["fee"]) if r.get("fee") is not None else Decimal(0),
            fee_asset=r.get("feeSymbol"),
            description=f"{side} {qty} {base} @ {price} {quote}{desc_extra}",
        )
    )


def _rfq_fill(r: Mapping[str, Any], src: Source) -> Extracted:
    """A-RFQ-1: taker fills carry no fee (the price includes it); they are not in history/fills."""
    pair = split_symbol(r["symbol"])
    side = _SIDE.get(r["side"])
    if pair is None or side is None or r.get("quantity") is None:
        return _unknown(f"RFQ fill with unrecognised market/side/quantity ({r.get('symbol')!r})")
    base, quote, _ = pair
    qty, price = D(r["quantity"]), D(r["fillPrice"])
    qq = D(r["quoteQuantity"]) if r.get("quoteQuantity") is not None else None
    return _posted(trade(src, kind="rfq-fill", base=base, quote=quote, side=side, quantity=qty, price=price, quote_quantity=qq))


def _quote_fill(r: Mapping[str, Any], src: Source) -> Extracted:
    pair = split_symbol(r["symbol"])
    side = _SIDE.get(r["side"])
    if pair is None or side is None:
        return _unknown(f"quote fill with unrecognised market/side ({r.get('symbol')!r})")
    base, quote, _ = pair
    return _posted(
        trade(
            src,
            kind="quote-fill",
            base=base,
            quote=quote,
            side=side,
            quantity=D(r["quantity"]),
            price=D(r["fillPrice"]),
            fee=D(r["fee"]) if r.get("fee") is not None else Decimal(0),
            fee_asset=r.get("feeSymbol"),
        )
    )


def _dust(r: Mapping[str, Any], src: Source) -> Extracted:
    # A-DUST-1
    return _posted(
        trade(src, kind="dust", base=r["symbol"], quote="USDC", side="sell", quantity=D(r["quantity"]), quote_quantity=D(r["usdcReceived"]),
              description=f"dust {r['quantity']} {r['symbol']} -> {r['usdcReceived']} USDC")
    )


# -- perp cash ------------------------------------------------------------------------------------
#: A-PERP-1/2: settlement source -> the account on the other side of the USDC movement.
SETTLEMENT_COUNTER: dict[str, tuple[str, str]] = {
    "RealizePnl": ("realized-pnl", "Income:Perp:RealizedPnl"),
    "CulledRealizePnlAuto": ("realized-pnl", "Income:Perp:RealizedPnl"),
    "CulledRealizePnlBookUtilisation": ("realized-pnl", "Income:Perp:RealizedPnl"),
    "CulledRealizePnlBookUtilization": ("realized-pnl", "Income:Perp:RealizedPnl"),
    "CulledRealizePnlAccountThreshold": ("realized-pnl", "Income:Perp:RealizedPnl"),
    "CulledRealizePnlSystemThreshold": ("realized-pnl", "Income:Perp:RealizedPnl"),
    "FundingPayment": ("funding", "Income:Funding"),
    "TradingFees": ("perp-fee", "Expenses:Fees:Trading"),
    "TradingFeesSystem": ("perp-fee", "Expenses:Fees:Trading"),
    "CulledBorrowInterest": ("interest-expense", "Expenses:Interest"),
    "BackstopProviderLiquidation": ("liquidation", "Income:Perp:Liquidation"),
    "BackstopAdlLiquidation": ("liquidation", "Income:Perp:Liquidation"),
    "BackstopLiquidityFundProceeds": ("liquidation", "Income:Perp:Liquidation"),
    "SystemLiabilityTransfer": ("liquidation", "Income:Perp:Liquidation"),
}
SETTLEMENT_ASSET = "USDC"  # A-PERP-2


def _settlement(r: Mapping[str, Any], src: Source) -> Extracted:
    rule = SETTLEMENT_COUNTER.get(r.get("source") or "")
    if rule is None:
        return _unknown(f"settlement source {r.get('source')!r} has no posting rule")
    kind, counter = rule
    q = D(r["quantity"])
    return _posted(cash(src, kind=kind, asset=SETTLEMENT_ASSET, quantity=q, counter=counter, description=f"settlement {r['source']} {q} USDC"))


# -- borrow / lend ----------------------------------------------------------------------------------
_INTEREST_INCOME = {"Lend", "UnrealizedPositivePnl"}
_INTEREST_COST = {"Borrow", "EntryFee", "UnrealizedNegativePnl"}


def _interest(r: Mapping[str, Any], src: Source) -> Extracted:
    """A-INT-1: direction from paymentType; quantity read as a magnitude."""
    pt = r.get("paymentType")
    asset = r["symbol"]
    q = abs(D(r["quantity"]))
    a = src.acct
    if pt == "Lend":
        return _posted(cash(src, kind="interest-income", asset=asset, quantity=q, counter="Income:Interest", wallet=lent(a, asset)))
    if pt in ("Borrow", "EntryFee"):
        return _posted(cash(src, kind="interest-expense", asset=asset, quantity=-q, counter="Expenses:Interest", wallet=borrowed(a, asset)))
    if pt == "UnrealizedPositivePnl":
        return _posted(cash(src, kind="interest-income", asset=asset, quantity=q, counter="Income:Interest"))
    if pt == "UnrealizedNegativePnl":
        return _posted(cash(src, kind="interest-expense", asset=asset, quantity=-q, counter="Expenses:Interest"))
    return _unknown(f"interest paymentType {pt!r} has no posting rule")


def _borrow_lend(r: Mapping[str, Any], src: Source) -> Extracted:
    """A-BL-1; rows with source=Interest are the interest stream's movement (A-INT-1)."""
    if r.get("source") == "Interest":
        return _memo("interest movement; posted from history/interest")
    asset, q, a = r["symbol"], abs(D(r["quantity"])), src.acct
    ev = r.get("eventType")
    if ev == "Lend":
        return _posted(move(src, kind="lend", asset=asset, quantity=q, from_account=spot(a, asset), to_account=lent(a, asset)))
    if ev == "LendRedeem":
        return _posted(move(src, kind="redeem", asset=asset, quantity=q, from_account=lent(a, asset), to_account=spot(a, asset)))
    if ev == "Borrow":
        return _posted(cash(src, kind="borrow", asset=asset, quantity=q, counter=borrowed(a, asset)))
    if ev == "BorrowRepay":
        return _posted(cash(src, kind="repay", asset=asset, quantity=-q, counter=borrowed(a, asset)))
    return _unknown(f"borrowLend eventType {ev!r} has no posting rule")


# -- capital ----------------------------------------------------------------------------------------
_FINAL_NOT_CONFIRMED = {"cancelled", "declined", "expired", "refunded", "void"}


def _deposit(r: Mapping[str, Any], src: Source) -> Extracted:
    status = r.get("status")
    if status == "confirmed":  # A-DEP-1
        internal = r.get("source") == "internal"
        return _posted(deposit(src, asset=r["symbol"], quantity=D(r["quantity"]), internal=internal))
    if status in _FINAL_NOT_CONFIRMED:
        return _memo(f"deposit {status}: no balance change")
    return Extracted("pending", (), f"deposit status {status!r} is not final")


def _withdrawal(r: Mapping[str, Any], src: Source) -> Extracted:
    status = r.get("status")
    if status == "confirmed":  # A-WD-1
        fee = D(r["fee"]) if r.get("fee") is not None else Decimal(0)
        return _posted(withdrawal(src, asset=r["symbol"], quantity=D(r["quantity"]), fee=fee, internal=bool(r.get("isInternal"))))
    if status in _FINAL_NOT_CONFIRMED:
        return _memo(f"withdrawal {status}: no balance change")
    return Extracted("pending", (), f"withdrawal status {status!r} is not final")


def _memo_of(note: str) -> Callable[[Mapping[str, Any], Source], Extracted]:
    return lambda _r, _src: _memo(note)


EXTRACTORS: dict[str, Callable[[Mapping[str, Any], Source], Extracted]] = {
    "fills": _fill,
    "rfqFill": _rfq_fill,
    "quoteFill": _quote_fill,
    "dust": _dust,
    "settlement": _settlement,
    "interest": _interest,
    "borrowLend": _borrow_lend,
    "deposits": _deposit,
    "withdrawals": _withdrawal,
    "funding": _memo_of("funding cash is posted from the FundingPayment settlement (A-PERP-1)"),
    "orders": _memo_of("orders move nothing; their fills do"),
    "borrowLendPositionHistory": _memo_of("position history; movements come from history/borrowLend"),
    "positionHistory": _memo_of("position history; positions come from fills"),
    "rfq": _memo_of("RFQ requests move nothing; their fills do"),
    "quote": _memo_of("quotes move nothing; their fills do"),
    "strategies": _memo_of("strategies move nothing; their child fills do"),
}


def extract(endpoint: str, record: Mapping[str, Any], src: Source) -> Extracted:
    fn = EXTRACTORS.get(endpoint)
    if fn is None:
        return _unknown(f"no posting rules for endpoint {endpoint}")
    return fn(record, src)
