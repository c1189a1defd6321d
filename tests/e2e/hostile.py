"""A scenario whose every exchange string carries hostile text (issue 20's hostile-data row).

``HOSTILE`` holds the values: script, formula (``=`` ``+`` ``-`` ``@``), control (ESC, BEL, TAB, CR),
bidirectional override and isolate, markup. They are legal for the ledger (docs/assumptions.md
A-TEXT-1), so a sync stores them and every output must neutralise them. ``REFUSED`` holds the values
the ledger refuses (NUL, over-long): a sync of a record carrying one stops with one line.
"""

from __future__ import annotations

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "formula": '=HYPERLINK("http://evil.example","x")',
    "plus": "+SUM(A1:A9)",
    "minus": "-2+3",
    "at": "@cmd",
    "esc": "\x1b[31mRED\x1b[0m\x07",
    "tab": "\tTAB",
    "cr": "\rCR",
    "lf": "LF\nX",
    "bidi": "\u202egnp.exe\u2066x\u2069",
    "markup": "[bold red]rich[/]",
    "del": "A\x7fB\x85C",
}
REFUSED = {
    "nul": "SOL\x00X",
    "long_symbol": "S" * 65,
}
#: Text that must never appear raw in any file or terminal output (each starts a control sequence or
#: reorders text).
CONTROL_CHARS = ["\x1b", "\x07", "\x7f", "\x85", "\u202e", "\u2066", "\u2069", "\x00"]


def _ts(day: int, minute: int = 0, hour: int = 10) -> str:
    return f"2025-02-{day:02d}T{hour:02d}:{minute:02d}:00.000"


def hostile_scenario(values: dict[str, str] | None = None, *, as_symbols: bool = True, income_and_perps: bool = False) -> dict:
    """USDC deposited; per hostile value an asset of that name bought and half sold (``as_symbols``),
    with hostile order ids, client ids and deposit addresses and hashes. ``income_and_perps`` adds,
    per value, interest paid in that asset and a perpetual of that name opened and closed, with its
    realized P&L and a funding payment (so `export income` and `export perps` carry the values too)."""
    values = HOSTILE if values is None else values
    doc: dict = {"deposits": [], "fills": [], "now": "2025-06-01T00:00:00"}
    doc["deposits"].append({"id": 1, "symbol": "USDC", "quantity": "100000", "createdAt": _ts(1), "source": "ethereum",
                            "status": "confirmed", "fromAddress": values.get("formula", "0xabc"),
                            "toAddress": values.get("script", "0xdef"), "transactionHash": values.get("bidi", "0x1")})
    trade = 1
    for i, (name, v) in enumerate(values.items()):
        asset = v if as_symbols else f"T{i}"
        symbol = f"{asset}_USDC"
        doc["fills"].append({"tradeId": trade, "orderId": v, "clientId": v, "symbol": symbol, "side": "Bid", "price": "10",
                             "quantity": "2", "fee": "0.01", "feeSymbol": "USDC", "isMaker": False, "timestamp": _ts(2 + i)})
        doc["fills"].append({"tradeId": trade + 1, "orderId": f"{v}#2", "clientId": None, "symbol": symbol, "side": "Ask",
                             "price": "12", "quantity": "1", "fee": "0.012", "feeSymbol": "USDC", "isMaker": True,
                             "timestamp": _ts(2 + i, 30)})
        trade += 2
        if income_and_perps:
            doc.setdefault("interest", []).append({"paymentType": "Lend", "interestRate": "0.05", "interval": 3600, "marketSymbol": asset,
                                                   "positionId": v, "quantity": "0.01", "symbol": asset, "timestamp": _ts(2 + i, 40)})
            perp = f"{asset}_USDC_PERP"
            for side, price, (hour, minute) in (("Bid", "10", (10, 50)), ("Ask", "11", (11, 10))):
                doc["fills"].append({"tradeId": trade, "orderId": f"{v}#p{trade}", "clientId": v, "symbol": perp, "side": side,
                                     "price": price, "quantity": "1", "fee": "0", "feeSymbol": "USDC", "isMaker": True,
                                     "timestamp": _ts(2 + i, minute, hour)})
                trade += 1
            position = str(5000000001 + i)
            doc.setdefault("positionHistory", []).append({
                "id": position, "symbol": perp, "netQuantity": "0", "netExposureQuantity": "0", "netExposureNotional": "0",
                "netCost": "0", "markPrice": "11", "entryPrice": "10", "cumulativePnlRealized": "1", "unrealizedPnl": "0",
                "fundingQuantity": "-0.01", "interest": "0", "liquidated": "0", "imf": "0.02", "fees": "0", "state": "Closed",
                "closedVolume": "0", "liquidationFees": "0", "closingPrice": "11", "accountLeverage": None,
                "openedAt": _ts(2 + i, 50), "closedAt": _ts(2 + i, 10, 11)})
            doc.setdefault("funding", []).append({"userId": 100007, "subaccountId": None, "symbol": perp, "quantity": "-0.01",
                                                  "intervalEndTimestamp": _ts(2 + i, 0, 11), "fundingRate": "0.0001"})
            for n, (source, q, minute) in enumerate((("FundingPayment", "-0.01", 0), ("RealizePnl", "1", 15))):
                doc.setdefault("settlements", []).append({"quantity": q, "source": source, "subaccountId": None, "timestamp": _ts(2 + i, minute, 11),
                                                          "userId": 100007, "positionId": position, "engineSequence": 100000001 + 2 * i + n})
    return doc
