"""A deterministic generated account: ``generate_world(seed, fills)``.

The generator walks one timeline (orders, perp episodes, transfers, hourly ticks) in time order and
applies every record it emits to a :class:`~.book.Book` as it goes, so its decisions (which side, how
much) never drive a balance negative, and the served state is that Book's replay of the emitted
history (A-BAL-1). Sizes: ``fills`` fills in the main account's ``history/fills`` (exactly), about
45% of them perpetual; every other stream scales gently with ``fills``. docs/simulator.md lists the
content.
"""

from __future__ import annotations

import random
from decimal import Decimal

from ._time import render_ts
from .book import Book
from .markets import CATALOGUE, HOUR_MS, MINUTE_MS, PricePath
from .store import STREAMS, TableBuilder
from .world import (
    Account,
    World,
    derive_state,
    finish_account,
    funding_rate,
    keypair,
    marks_from_path,
)

__all__ = ["generate_world", "HISTORY_START_MS", "HISTORY_DAYS", "MIN_FILLS"]

HISTORY_START_MS = 1_725_148_800_000  # 2024-09-01T00:00:00Z
HISTORY_DAYS = 400
DAY_MS = 86_400_000
MIN_FILLS = 40
ZERO = Decimal(0)
Q6 = Decimal("0.000001")
Q8 = Decimal("0.00000001")
SPOT_MIX = (("SOL_USDC", 40), ("BTC_USDC", 25), ("ETH_USDC", 25), ("USDT_USDC", 10))
PERPS = ("SOL_USDC_PERP", "BTC_USDC_PERP", "ETH_USDC_PERP")
CHAIN = {"USDC": ("solana", "Solana"), "USDT": ("ethereum", "Ethereum"), "SOL": ("solana", "Solana"),
         "BTC": ("bitcoin", "Bitcoin"), "ETH": ("ethereum", "Ethereum"), "PYTH": ("solana", "Solana"),
         "JUP": ("solana", "Solana")}
MARKETS = {m.symbol: m for m in CATALOGUE}
# fee rates as (numerator, 10**k denominators) kept Decimal
SPOT_TAKER = Decimal("0.001")
SPOT_MAKER = Decimal("0.0008")
PERP_TAKER = Decimal("0.0005")
PERP_MAKER = Decimal("-0.00002")  # rebate (A-FEE-2)
LEND_APR = Decimal("0.06")
BORROW_APR = Decimal("0.11")
HOURS_PER_YEAR = Decimal(8760)


def _q(d: Decimal, quantum: Decimal) -> Decimal:
    return d.quantize(quantum)


class _Gen:
    def __init__(self, world_seed: int, name: str, user_id: int, subaccount_id: int | None, path: PricePath,
                 rng: random.Random, id_base: int):
        self.name = name
        self.user_id = user_id
        self.sub = subaccount_id
        self.path = path
        self.rng = rng
        self.book = Book()
        self.b = {n: TableBuilder(s) for n, s in STREAMS.items()}
        self.events: list[tuple[int, int, str, object]] = []
        self._seq = 0
        self.trade_id = id_base * 10_000_000 + 1
        self.order_id = 10_000_000_000 + id_base * 1_000_000_000
        self.dep_id = id_base * 1_000_000 + 1
        self.wd_id = id_base * 1_000_000 + 1
        self.dust_id = id_base * 1_000 + 1
        self.engine_seq = id_base * 100_000_000 + 1
        self.rfq_id = 50_000_000_000 + id_base * 1_000_000_000
        self.pending_pnl: dict[str, Decimal] = {}
        self.pending_fee: dict[str, Decimal] = {}
        self.last_pos_id: dict[str, str] = {}
        self.bl_ids: dict[str, str] = {}
        self.bl_rows: list[dict] = []  # borrowLend position history rows, finalised at the end
        self.fill_count = 0
        self.valve_deposits = 0
        self.auto_borrows = 0
        self.drain_at: int | None = None  # from then on, the next fee settlement finds USDC (almost) empty

    # ---------------------------------------------------------------- scheduling
    def at(self, ms: int, kind: str, payload: object = None, prio: int = 5) -> None:
        self._seq += 1
        self.events.append((ms, prio, self._seq, kind, payload))

    def run(self, end_ms: int) -> None:
        h = (self.path.start_ms // HOUR_MS + 1) * HOUR_MS
        while h < end_ms:
            self.at(h, "hour", None, prio=0)
            h += HOUR_MS
        self.events.sort()
        for ms, _prio, _seq, kind, payload in self.events:
            getattr(self, "ev_" + kind)(ms, payload)
        self.events = []

    # ---------------------------------------------------------------- emit helpers
    def emit(self, stream: str, record: dict, ms: int) -> None:
        self.b[stream].add(record, ms)

    def ts(self, ms: int, stream: str) -> str:
        spec = STREAMS[stream]
        return render_ts(ms, spec.style, self._seq * 7919 + ms)

    def next_order_id(self) -> str:
        self.order_id += 1 + self.rng.randrange(97)
        return str(self.order_id)

    def bal(self, asset: str) -> Decimal:
        return self.book.spot.get(asset, ZERO)

    def ensure(self, asset: str, need: Decimal, ms: int) -> None:
        """Safety valve: a confirmed deposit so that ``need`` of ``asset`` is available."""
        have = self.bal(asset)
        if have >= need:
            return
        amount = (need - have) * 2 + (Decimal(5000) if asset in ("USDC", "USDT") else Decimal(1))
        self.valve_deposits += 1
        self.deposit(ms, asset, _q(amount, Decimal(1)), "confirmed")

    def deposit(self, ms: int, asset: str, qty: Decimal, status: str, source: str | None = None) -> dict:
        chain = CHAIN.get(asset, ("solana", "Solana"))[0]
        src = source or chain
        r = {
            "id": self.dep_id, "toAddress": None if src in ("internal", "administrator") else f"{self.name}Addr{asset}",
            "fromAddress": None if src in ("internal", "administrator") else f"ext{self.dep_id:08x}",
            "source": src, "status": status,
            "transactionHash": None if src in ("internal", "administrator") else f"0x{self.dep_id * 2654435761:064x}"[-66:],
            "symbol": asset, "quantity": format(qty, "f"), "createdAt": self.ts(ms, "deposits"), "fiatAmount": None,
            "fiatCurrency": None, "institutionBic": None, "platformMemo": None,
        }
        self.dep_id += 1 + self.rng.randrange(3)
        self.emit("deposits", r, ms)
        self.book.deposit(r)
        return r

    def withdrawal(self, ms: int, asset: str, qty: Decimal, fee: Decimal, status: str, internal: bool = False,
                   to: str | None = None) -> dict:
        r = {
            "id": self.wd_id, "blockchain": CHAIN.get(asset, ("solana", "Solana"))[1], "clientId": None,
            "identifier": None, "quantity": format(qty, "f"), "fee": format(fee, "f"), "fiatFee": None,
            "fiatState": None, "fiatSymbol": None, "providerId": None, "symbol": asset, "status": status,
            "subaccountId": None, "toAddress": to or f"extWallet{asset}{self.wd_id}",
            "transactionHash": f"0x{self.wd_id * 40503:064x}" if status == "confirmed" and not internal else None,
            "createdAt": self.ts(ms, "withdrawals"), "isInternal": internal, "bankName": None,
            "bankIdentifier": None, "accountIdentifier": None, "triggerAt": None,
        }
        self.wd_id += 1 + self.rng.randrange(3)
        if status == "confirmed":
            self.ensure(asset, qty + fee, ms)
        self.emit("withdrawals", r, ms)
        self.book.withdrawal(r)
        return r

    def settle(self, ms: int, source: str, qty: Decimal, position_id: str | None) -> None:
        if qty == 0:
            return
        short = ZERO
        if qty < 0 and self.bal("USDC") < -qty:
            if self.book.lent.get("USDC", ZERO):  # USDC lent out: the safety valve instead
                self.ensure("USDC", -qty, ms)
            else:  # the exchange auto-borrows what a settlement takes below zero (autoBorrowSettlements)
                short = -qty - max(self.bal("USDC"), ZERO)
        r = {"quantity": format(qty, "f"), "source": source, "subaccountId": self.sub,
             "timestamp": self.ts(ms, "settlements"), "userId": self.user_id, "positionId": position_id,
             "engineSequence": self.engine_seq}
        self.engine_seq += 1 + self.rng.randrange(5)
        self.emit("settlements", r, ms)
        self.book.settlement(r)
        if short:
            self.auto_borrow(ms, short)

    def auto_borrow(self, ms: int, qty: Decimal) -> None:
        """A-PERP-5: USDC driven negative by a settlement is borrowed at once (``AutoBorrowRepay``)."""
        owed = self.book.borrowed.get("USDC", ZERO)
        if not owed:
            self.bl_ids["USDC"] = str(80_000_000 + self.rng.randrange(10_000_000))
            self.bl_rows.append({"positionId": self.bl_ids["USDC"], "quantity": format(qty, "f"), "symbol": "USDC",
                                 "source": "AutoBorrowRepay", "cumulativeInterest": "0",
                                 "avgInterestRate": format(BORROW_APR, "f"), "side": "Borrow",
                                 "createdAt": self.ts(ms, "borrowLendPositionHistory"), "_ms": ms})
        else:
            for row in self.bl_rows:
                if row["positionId"] == self.bl_ids["USDC"]:
                    row["quantity"] = format(owed + qty, "f")
        self.auto_borrows += 1
        self.bl_row(ms, "Borrow", "USDC", qty, owed + qty, "AutoBorrowRepay")

    # ---------------------------------------------------------------- orders and fills
    def order_record(self, oid: str, ms: int, symbol: str, side: str, otype: str, price: Decimal | None,
                     qty: Decimal, executed: Decimal, executed_quote: Decimal, status: str,
                     system: str | None = None, client_id: int | None = None) -> dict:
        return {
            "id": oid, "createdAt": self.ts(ms, "orders"), "executedQuantity": format(executed, "f"),
            "executedQuoteQuantity": format(executed_quote, "f"), "expiryReason": None, "orderType": otype,
            "postOnly": otype == "Limit" and status != "Filled" or None, "price": None if price is None else format(price, "f"),
            "quantity": format(qty, "f"), "quoteQuantity": None, "selfTradePrevention": "RejectTaker",
            "status": status, "side": side, "stopLossTriggerPrice": None, "stopLossLimitPrice": None,
            "stopLossTriggerBy": None, "symbol": symbol, "takeProfitTriggerPrice": None,
            "takeProfitLimitPrice": None, "takeProfitTriggerBy": None, "timeInForce": "GTC" if otype == "Limit" else "IOC",
            "triggerBy": None, "triggerPrice": None, "triggerQuantity": None, "clientId": client_id,
            "systemOrderType": system, "strategyId": None, "slippageTolerance": None, "slippageToleranceType": None,
        }

    def fill_record(self, ms: int, oid: str, symbol: str, side: str, price: Decimal, qty: Decimal, fee: Decimal,
                    fee_symbol: str, maker: bool, system: str | None, client_id: int | None) -> dict:
        r = {"clientId": None if client_id is None else str(client_id), "fee": format(fee, "f"),
             "feeSymbol": fee_symbol, "isMaker": maker, "orderId": oid, "price": format(price, "f"),
             "quantity": format(qty, "f"), "side": side, "symbol": symbol, "systemOrderType": system,
             "timestamp": self.ts(ms, "fills"), "tradeId": self.trade_id}
        self.trade_id += 1 + self.rng.randrange(40)
        self.fill_count += 1
        return r

    def ev_spot(self, ms: int, payload: tuple[str, int]) -> None:
        symbol, nfills = payload
        m = MARKETS[symbol]
        rng = self.rng
        ticks = self.path.ticks_at(symbol, ms)
        price = m.price(ticks)
        notional = rng.randrange(20, 2000)
        steps = max(nfills, notional * 10 ** (m.price_dp + m.qty_dp) // max(ticks, 1))
        qty = Decimal(steps).scaleb(-m.qty_dp)
        reserve = Decimal(1000)
        can_bid = self.bal(m.quote) - qty * price >= reserve
        can_ask = self.bal(m.base) >= qty
        side = "Bid" if rng.random() < 0.5 else "Ask"
        if side == "Bid" and not can_bid:
            side = "Ask" if can_ask else "Bid"
        elif side == "Ask" and not can_ask:
            side = "Bid"
        if side == "Bid":
            self.ensure(m.quote, qty * price + reserve, ms)
        maker = rng.random() < 0.35
        zero_fee = symbol == "USDT_USDC"
        rate = ZERO if zero_fee else (SPOT_MAKER if maker else SPOT_TAKER)
        client_id = rng.randrange(1, 2**32) if rng.random() < 0.3 else None
        oid = self.next_order_id()
        cuts = sorted(rng.sample(range(1, steps), nfills - 1)) if nfills > 1 else []
        bounds = [0, *cuts, steps]
        quote_total = ZERO
        for i in range(nfills):
            part = Decimal(bounds[i + 1] - bounds[i]).scaleb(-m.qty_dp)
            if side == "Bid":
                fee, fee_sym = _q(part * rate, Q8), m.base
            else:
                fee, fee_sym = _q(part * price * rate, Q6), m.quote
            r = self.fill_record(ms, oid, symbol, side, price, part, fee, fee_sym, maker, None, client_id)
            self.emit("fills", r, ms)
            self.book.fill(r, ms)
            quote_total += part * price
        created = ms - (rng.randrange(1, 600_000) if maker else 0)
        self.emit("orders", self.order_record(oid, created, symbol, side, "Limit" if maker else "Market",
                                              price if maker else None, qty, qty, quote_total, "Filled",
                                              client_id=client_id), created)
        if rng.random() < 0.06:  # a cancelled order that never filled
            coid = self.next_order_id()
            cp = m.price(ticks - 50 if side == "Bid" else ticks + 50)
            self.emit("orders", self.order_record(coid, ms + 1, symbol, side, "Limit", cp, qty, ZERO, ZERO,
                                                  "Cancelled"), ms + 1)

    def ev_perp(self, ms: int, payload: tuple[str, str, bool]) -> None:
        symbol, action, last = payload
        m = MARKETS[symbol]
        rng = self.rng
        pos = self.book.positions.get(symbol)
        net = pos.net if pos is not None else ZERO
        step = m.step
        size = Decimal(rng.randrange(100, 5000) if m.base != "ETH" else rng.randrange(100, 20000)).scaleb(-m.qty_dp)
        if m.base == "BTC":
            size = Decimal(rng.randrange(100, 10000)).scaleb(-m.qty_dp)
        if net == 0 and action in ("reduce", "flip", "close", "liq", "adl"):
            action = "open"
        if action in ("reduce", "adl") and abs(net) < 2 * step:
            action = "add"
        system = None
        if action in ("open", "add"):
            side = ("Bid" if rng.random() < 0.5 else "Ask") if net == 0 else ("Bid" if net > 0 else "Ask")
            qty = size
        else:
            side = "Ask" if net > 0 else "Bid"
            if action in ("reduce", "adl"):
                steps = int(abs(net) / step)
                qty = Decimal(rng.randrange(1, steps)) * step
                if action == "adl":  # auto-deleveraging: the exchange closes part of the position
                    system = "LiquidatePositionOnAdl"
            elif action == "flip":
                qty = abs(net) + size
            else:
                qty = abs(net)
                if action == "liq":
                    system = "LiquidatePositionOnBook"
        price = self.path.price_at(symbol, ms)
        maker = system is None and rng.random() < 0.3
        rate = PERP_MAKER if maker else PERP_TAKER
        fee = _q(qty * price * rate, Q6)
        client_id = rng.randrange(1, 2**32) if system is None and rng.random() < 0.3 else None
        oid = self.next_order_id()
        r = self.fill_record(ms, oid, symbol, side, price, qty, fee, "USDC", maker, system, client_id)
        before = self.book.positions.get(symbol)
        snapshot = None
        if before is not None and before.net != 0:
            snapshot = (before.position_id, before.entry, before.opened_ms)
        self.emit("fills", r, ms)
        realized = self.book.fill(r, ms)
        pos = self.book.positions[symbol]
        self.last_pos_id[symbol] = pos.position_id
        self.pending_pnl[symbol] = self.pending_pnl.get(symbol, ZERO) + realized
        self.pending_fee[symbol] = self.pending_fee.get(symbol, ZERO) + fee
        otype = "Market" if system or not maker else "Limit"
        self.emit("orders", self.order_record(oid, ms, symbol, side, otype, None if otype == "Market" else price,
                                              qty, qty, qty * price, "Filled", system=system, client_id=client_id), ms)
        if pos.net == 0 and snapshot is not None:
            self.position_row(pos, snapshot, ms, price, closed=True, liquidated=qty if system else ZERO)

    def position_row(self, pos, snapshot, ms: int, price: Decimal, *, closed: bool, liquidated: Decimal) -> None:
        pid, entry, opened = snapshot
        mark = self.path.price_at(pos.symbol, ms)
        r = {
            "id": pid, "symbol": pos.symbol, "netQuantity": format(pos.net, "f"),
            "netExposureQuantity": format(abs(pos.net), "f"), "netExposureNotional": format(abs(pos.net) * mark, "f"),
            "netCost": format(pos.net * entry, "f"), "markPrice": format(mark, "f"), "entryPrice": format(entry, "f"),
            "cumulativePnlRealized": format(pos.realized, "f"),
            "unrealizedPnl": format(pos.net * (mark - entry), "f"), "fundingQuantity": format(pos.funding, "f"),
            "interest": "0", "liquidated": format(liquidated, "f"), "imf": "0.02", "fees": format(pos.fees, "f"),
            "state": "Closed" if closed else "Open", "closedVolume": "0", "liquidationFees": "0",
            "closingPrice": format(price, "f") if closed else None, "accountLeverage": None,
            "openedAt": self.ts(opened, "positionHistory"), "closedAt": self.ts(ms, "positionHistory") if closed else None,
        }
        self.emit("positionHistory", r, opened)

    # ---------------------------------------------------------------- hourly: funding, interest, settlement
    def ev_hour(self, ms: int, _payload: object) -> None:
        hour = ms // HOUR_MS
        owed = self.book.borrowed.get("USDC", ZERO)
        if owed > 0 and self.bal("USDC") >= owed + Decimal(100):  # auto-repay once USDC covers the borrow (before this hour's interest)
            self.bl_row(ms, "BorrowRepay", "USDC", owed, ZERO, "AutoBorrowRepay")
            self._close_bl("USDC")
        for symbol in PERPS:
            pos = self.book.positions.get(symbol)
            if pos is None or pos.net == 0:
                continue
            rate = funding_rate(symbol, hour)
            mark = self.path.price_at(symbol, ms)
            qty = _q(-(pos.net * mark * rate), Q6)
            if qty == 0:
                continue
            r = {"userId": self.user_id, "subaccountId": self.sub, "symbol": symbol, "quantity": format(qty, "f"),
                 "intervalEndTimestamp": render_ts(ms, "sec"), "fundingRate": format(rate, "f")}
            self.emit("funding", r, ms)
            self.book.funding(r)
            self.settle(ms, "FundingPayment", qty, pos.position_id)
        for asset, lent in list(self.book.lent.items()):
            if lent > 0:
                self.interest(ms, asset, "Lend", lent, LEND_APR)
        for asset, owed in list(self.book.borrowed.items()):
            if owed > 0:
                self.interest(ms, asset, "Borrow", owed, BORROW_APR)
        if hour % 4 == 0:
            if self.drain_at is not None and ms >= self.drain_at and not self.book.lent.get("USDC", ZERO):
                fees = sum((v for v in self.pending_fee.values() if v > 0), ZERO)
                keep = _q(fees / 2, Q6)
                out = self.bal("USDC") - keep - 1
                if fees > 0 and out > 0:  # a withdrawal leaves less USDC than the fees about to settle
                    self.withdrawal(ms, "USDC", out, Decimal(1), "confirmed")
                    self.drain_at = None
            for symbol in PERPS:
                pnl = self.pending_pnl.get(symbol, ZERO)
                q = _q(pnl, Q6)
                if q:
                    self.settle(ms, "RealizePnl", q, self.last_pos_id.get(symbol))
                    self.pending_pnl[symbol] = pnl - q
                fees = self.pending_fee.get(symbol, ZERO)
                if fees:
                    self.settle(ms, "TradingFees", -fees, self.last_pos_id.get(symbol))
                    self.pending_fee[symbol] = ZERO

    def interest(self, ms: int, asset: str, kind: str, base: Decimal, apr: Decimal) -> None:
        qty = _q(base * apr / HOURS_PER_YEAR, Q8)
        if qty <= 0:
            return
        pid = self.bl_ids[asset]
        r = {"paymentType": kind, "interestRate": format(apr, "f"), "interval": 3600, "marketSymbol":
             f"{asset}_USDC" if asset != "USDC" else "USDC", "positionId": pid, "quantity": format(qty, "f"),
             "symbol": asset, "timestamp": render_ts(ms, "sec")}
        self.emit("interest", r, ms)
        self.book.interest(r)
        total = self.book.lent.get(asset, ZERO) if kind == "Lend" else self.book.borrowed.get(asset, ZERO)
        self.bl_row(ms, kind, asset, qty, total, "Interest")
        for row in self.bl_rows:
            if row["positionId"] == pid:
                row["cumulativeInterest"] = format(Decimal(row["cumulativeInterest"]) + qty, "f")

    def bl_row(self, ms: int, event: str, asset: str, qty: Decimal, total: Decimal, source: str) -> None:
        r = {"eventType": event, "positionId": self.bl_ids[asset], "positionQuantity": format(total, "f"),
             "quantity": format(qty, "f"), "source": source, "symbol": asset,
             "timestamp": self.ts(ms, "borrowLendHistory"), "spotMarginOrderId": None}
        self.emit("borrowLendHistory", r, ms)
        self.book.borrow_lend(r)

    # ---------------------------------------------------------------- borrow / lend
    def ev_lend(self, ms: int, payload: tuple[str, Decimal]) -> None:
        asset, qty = payload
        if self.book.lent.get(asset, ZERO) or self.book.borrowed.get(asset, ZERO):
            return
        self.ensure(asset, qty + Decimal(1000), ms)
        self.bl_ids[asset] = str(60_000_000 + self.rng.randrange(10_000_000))
        self.bl_row(ms, "Lend", asset, qty, qty, "Manual")
        self.bl_rows.append({"positionId": self.bl_ids[asset], "quantity": format(qty, "f"), "symbol": asset,
                             "source": "Manual", "cumulativeInterest": "0", "avgInterestRate": format(LEND_APR, "f"),
                             "side": "Lend", "createdAt": self.ts(ms, "borrowLendPositionHistory"), "_ms": ms})

    def ev_redeem(self, ms: int, asset: str) -> None:
        lent = self.book.lent.get(asset, ZERO)
        if lent > 0:
            self.bl_row(ms, "LendRedeem", asset, lent, ZERO, "Manual")
            self._close_bl(asset)

    def ev_borrow(self, ms: int, payload: tuple[str, Decimal]) -> None:
        asset, qty = payload
        if self.book.lent.get(asset, ZERO) or self.book.borrowed.get(asset, ZERO):
            return
        self.bl_ids[asset] = str(70_000_000 + self.rng.randrange(10_000_000))
        self.bl_row(ms, "Borrow", asset, qty, qty, "Manual")
        self.bl_rows.append({"positionId": self.bl_ids[asset], "quantity": format(qty, "f"), "symbol": asset,
                             "source": "Manual", "cumulativeInterest": "0", "avgInterestRate": format(BORROW_APR, "f"),
                             "side": "Borrow", "createdAt": self.ts(ms, "borrowLendPositionHistory"), "_ms": ms})

    def ev_repay(self, ms: int, asset: str) -> None:
        owed = self.book.borrowed.get(asset, ZERO)
        if owed > 0:
            self.ensure(asset, owed, ms)
            self.bl_row(ms, "BorrowRepay", asset, owed, ZERO, "AutoBorrowRepay" if self.rng.random() < 0.5 else "Manual")
            self._close_bl(asset)

    def _close_bl(self, asset: str) -> None:
        for row in self.bl_rows:
            if row["positionId"] == self.bl_ids[asset]:
                row["quantity"] = "0"

    # ---------------------------------------------------------------- transfers, dust, rfq
    def ev_deposit(self, ms: int, payload: tuple) -> None:
        asset, qty, status, *src = payload
        self.deposit(ms, asset, qty, status, src[0] if src else None)

    def ev_withdraw(self, ms: int, payload: tuple) -> None:
        asset, qty, fee, status = payload
        if status == "confirmed" and self.bal(asset) < qty + fee + Decimal(100):
            return
        self.withdrawal(ms, asset, qty, fee, status)

    def ev_internal_out(self, ms: int, payload: tuple[str, Decimal, str]) -> None:
        asset, qty, to = payload
        self.withdrawal(ms, asset, qty, ZERO, "confirmed", internal=True, to=to)

    def ev_dust(self, ms: int, payload: tuple[str, Decimal, Decimal]) -> None:
        asset, qty, usdc = payload
        if self.bal(asset) < qty:
            return
        r = {"id": self.dust_id, "quantity": format(qty, "f"), "symbol": asset, "usdcReceived": format(usdc, "f"),
             "timestamp": self.ts(ms, "dust")}
        self.dust_id += 1 + self.rng.randrange(9)
        self.emit("dust", r, ms)
        self.book.dust(r)

    def ev_rfq(self, ms: int, maker: bool) -> None:
        rng = self.rng
        symbol = rng.choice(("SOL_USDC_RFQ", "BTC_USDC_RFQ"))
        m = MARKETS[symbol]
        ticks = self.path.ticks_at(symbol, ms)
        steps = max(1, rng.randrange(200, 3000) * 10 ** (m.price_dp + m.qty_dp) // ticks)
        qty = Decimal(steps).scaleb(-m.qty_dp)
        side = rng.choice(("Bid", "Ask"))
        if side == "Ask" and self.bal(m.base) < qty:
            side = "Bid"
        spread = max(1, ticks // 2000)
        price = m.price(ticks + spread if side == "Bid" else ticks - spread)
        if side == "Bid":
            self.ensure("USDC", qty * price + Decimal(100), ms)
        self.rfq_id += 1 + rng.randrange(50)
        rfq_id = str(self.rfq_id)
        quote_id = str(self.rfq_id + 500_000_000)
        created = ms - rng.randrange(500, 5000)
        if maker:
            fee, fee_sym = (_q(qty * Decimal("0.0002"), Q8), m.base) if side == "Bid" else \
                (_q(qty * price * Decimal("0.0002"), Q6), "USDC")
            r = {"clientId": None, "quoteId": quote_id, "rfqId": rfq_id, "symbol": symbol, "side": side,
                 "quantity": format(qty, "f"), "fillPrice": format(price, "f"), "fee": format(fee, "f"),
                 "feeSymbol": fee_sym, "createdAt": self.ts(created, "quoteFills"), "filledAt": self.ts(ms, "quoteFills")}
            self.emit("quoteFills", r, ms)
            self.book.quote_fill(r)
            bid = m.price(ticks - spread)
            ask = m.price(ticks + spread)
            self.emit("quoteHistory", {"rfqId": rfq_id, "quoteId": quote_id, "clientId": None,
                                       "bidPrice": format(bid if side == "Bid" else price, "f"),
                                       "askPrice": format(ask if side == "Bid" else price, "f"), "status": "Filled",
                                       "createdAt": self.ts(created, "quoteHistory"), "deferredSettlement": False},
                      created)
        else:
            r = {"rfqId": rfq_id, "clientId": None, "quoteId": quote_id, "symbol": symbol, "side": side,
                 "quantity": format(qty, "f"), "quoteQuantity": format(qty * price, "f"),
                 "fillPrice": format(price, "f"), "createdAt": self.ts(created, "rfqFills"),
                 "filledAt": self.ts(ms, "rfqFills"), "systemOrderType": None}
            self.emit("rfqFills", r, ms)
            self.book.rfq_fill(r)
            self.emit("rfqHistory", {"rfqId": rfq_id, "clientId": None, "symbol": symbol, "side": side, "price": None,
                                     "quantity": format(qty, "f"), "quoteQuantity": None,
                                     "submissionTime": self.ts(created, "rfqHistory"),
                                     "expiryTime": self.ts(created + 30_000, "rfqHistory"), "status": "Filled",
                                     "executionMode": "AwaitAccept", "createdAt": self.ts(created, "rfqHistory"),
                                     "deferredSettlementQuoteId": None}, created)

    # ---------------------------------------------------------------- finish
    def finish(self, end_ms: int, api: tuple[str, str]) -> Account:
        for symbol, pos in self.book.positions.items():
            if pos.net != 0:
                self.position_row(pos, (pos.position_id, pos.entry, pos.opened_ms), end_ms - 1, ZERO, closed=False,
                                  liquidated=ZERO)
        for row in self.bl_rows:
            ms = row.pop("_ms")
            self.emit("borrowLendPositionHistory", row, ms)
        unsettled = sum(self.pending_pnl.values(), ZERO) - sum(self.pending_fee.values(), ZERO)
        marks = marks_from_path(self.path, end_ms)
        state, positions = derive_state(self.book, marks=marks, user_id=self.user_id, subaccount_id=self.sub,
                                        unsettled=unsettled)
        acc = Account(name=self.name, api_key=api[0], api_secret=api[1], user_id=self.user_id,
                      subaccount_id=self.sub, tables={n: b.build() for n, b in self.b.items()}, book=self.book)
        finish_account(acc, state, positions)
        return acc


def _split(total: int, parts: int, rng: random.Random, lo: int, hi: int) -> list[int]:
    out = []
    left = total
    while left > 0:
        n = min(left, rng.randint(lo, hi))
        out.append(n)
        left -= n
    return out


def generate_world(seed: int, fills: int, *, subaccounts: int = 1) -> World:
    """The generated world for (seed, fills): a main account with ``fills`` fills and one sub-account
    (``subaccounts=2``: a second one, ``sub2``, that receives SOL from main, trades it and sends USDC
    on to ``sub1``; the first sub-account's and main's own streams are those of the one-sub world
    but for those transfers)."""
    if fills < MIN_FILLS:
        raise ValueError(f"fills must be at least {MIN_FILLS} (got {fills})")
    if subaccounts not in (1, 2):
        raise ValueError(f"subaccounts must be 1 or 2 (got {subaccounts})")
    start = HISTORY_START_MS
    end = start + HISTORY_DAYS * DAY_MS
    path = PricePath(seed, start, end)
    rng = random.Random(f"world:{seed}")
    user_id = 100_000 + seed % 900_000
    main_key = keypair(seed, "main")
    sub_key = keypair(seed, "sub1")
    main = _Gen(seed, "main", user_id, None, path, random.Random(f"main:{seed}"), 1)
    sub = _Gen(seed, "sub1", user_id, 1, path, random.Random(f"sub1:{seed}"), 2)

    # ---- main: funding of the account
    t0 = start + 5 * MINUTE_MS
    scale = max(1, fills // 2000)
    for i, (asset, qty) in enumerate((("USDC", 100_000 * scale), ("SOL", 200 * scale), ("BTC", 2 * scale),
                                      ("ETH", 20 * scale), ("USDT", 20_000 * scale))):
        main.at(t0 + i * 61_000, "deposit", (asset, Decimal(qty), "confirmed"), prio=1)
    for month in range(HISTORY_DAYS // 30):
        base = start + (15 + 30 * month) * DAY_MS
        main.at(base + rng.randrange(DAY_MS), "deposit", ("USDC", Decimal(2000 + 50 * month), "confirmed"))
        if month % 2 == 1:
            main.at(base + 3 * DAY_MS + rng.randrange(DAY_MS), "withdraw", ("USDC", Decimal(500), Decimal(1), "confirmed"))
        if month % 3 == 2:
            main.at(base + 5 * DAY_MS, "withdraw", ("SOL", Decimal("5.5"), Decimal("0.01"), "confirmed"))
    main.at(start + 100 * DAY_MS + 12_345, "deposit", ("SOL", Decimal(3), "declined"))
    main.at(start + 140 * DAY_MS + 2_222, "deposit", ("USDT", Decimal(1500), "cancelled"))
    main.at(start + 200 * DAY_MS + 7_007, "deposit", ("USDC", Decimal("25.5"), "confirmed", "administrator"))
    main.at(end - 2 * HOUR_MS, "deposit", ("USDC", Decimal(777), "pending"))
    main.at(start + 120 * DAY_MS + 999, "withdraw", ("ETH", Decimal("0.5"), Decimal("0.002"), "ownershipVerificationRequired"))
    main.at(end - 3 * HOUR_MS, "withdraw", ("USDC", Decimal(250), Decimal(1), "pending"))
    # ---- USDC emptied before a fee settlement (day 200): the exchange auto-borrows the shortfall
    main.drain_at = start + 200 * DAY_MS
    # ---- internal transfer main -> sub1 (day 60)
    t_int = start + 60 * DAY_MS + 4_321
    main.at(t_int, "internal_out", ("USDC", Decimal(5000), "sub1"))
    sub.at(t_int + 1_500, "deposit", ("USDC", Decimal(5000), "confirmed", "internal"))
    # ---- lending and borrowing episodes
    ep_hours = min(720, max(24, fills // 50))
    for day in (20, 150):
        t = start + day * DAY_MS + 17 * MINUTE_MS
        main.at(t, "lend", ("USDC", Decimal(10_000)))
        main.at(t + ep_hours * HOUR_MS + 3 * MINUTE_MS, "redeem", "USDC")
    main.at(end - ep_hours * HOUR_MS - 41 * MINUTE_MS, "lend", ("USDC", Decimal(8_000)))
    for day in (30, 170):
        t = start + day * DAY_MS + 29 * MINUTE_MS
        main.at(t, "borrow", ("ETH", Decimal("1.5")))
        main.at(t + ep_hours * HOUR_MS + 7 * MINUTE_MS, "repay", "ETH")
    main.at(end - ep_hours * HOUR_MS - 53 * MINUTE_MS, "borrow", ("ETH", Decimal("0.75")))
    # ---- dust
    for day, asset, qty, usdc in ((90, "PYTH", "3.25", "1.104"), (250, "JUP", "1.7", "0.9521")):
        t = start + day * DAY_MS + 3_333
        main.at(t, "deposit", (asset, Decimal(qty), "confirmed"))
        main.at(t + 2 * DAY_MS, "dust", (asset, Decimal(qty), Decimal(usdc)))
    # ---- RFQ taker fills and maker quote fills
    for _ in range(max(4, fills // 250)):
        main.at(start + DAY_MS + rng.randrange((HISTORY_DAYS - 2) * DAY_MS), "rfq", False)
    for _ in range(max(3, fills // 400)):
        main.at(start + DAY_MS + rng.randrange((HISTORY_DAYS - 2) * DAY_MS), "rfq", True)

    # ---- perp episodes
    perp_total = fills * 45 // 100
    spot_total = fills - perp_total
    hold = [("SOL_USDC_PERP", 3), ("BTC_USDC_PERP", 2)]
    perp_left = perp_total - sum(n for _, n in hold)
    episodes = _split(perp_left, 0, rng, 3, 8)
    if len(episodes) > 1 and episodes[-1] < 3:
        short = episodes.pop()
        episodes[-1] += short
    n_ep = len(episodes)
    span = (HISTORY_DAYS - 3) * DAY_MS
    slot = span // max(1, n_ep)
    liq_episode = n_ep // 2
    adl_episode = n_ep // 3 if n_ep // 3 != liq_episode else n_ep // 3 + 1
    for j, k in enumerate(episodes):
        symbol = PERPS[rng.randrange(len(PERPS))]
        t = start + DAY_MS + j * slot + rng.randrange(max(1, slot * 3 // 10))
        gap = max(2000, min(600_000, slot * 6 // (10 * k)))
        actions = ["open"]
        for _ in range(k - 2):
            actions.append(rng.choice(("add", "reduce", "reduce", "flip")))
        if j == adl_episode:
            actions[-1] = "adl"
        actions.append("liq" if j == liq_episode else "close")
        for i, action in enumerate(actions):
            main.at(t, "perp", (symbol, action, i == k - 1))
            t += rng.randrange(gap // 3, gap) + 1
    for n, (symbol, k) in enumerate(hold):
        t = end - 40 * HOUR_MS + n * 3 * HOUR_MS + 11_111
        for i, action in enumerate(["open", "add", "reduce"][:k]):
            main.at(t, "perp", (symbol, action, False))
            t += 5 * MINUTE_MS + 17

    # ---- spot orders
    sizes = _split(spot_total, 0, rng, 1, 3)
    times = sorted(start + HOUR_MS + rng.randrange(span) for _ in sizes)
    names = [s for s, _ in SPOT_MIX]
    weights = [w for _, w in SPOT_MIX]
    symbols = rng.choices(names, weights, k=len(sizes))
    for t, n, symbol in zip(times, sizes, symbols):
        main.at(t, "spot", (symbol, n))

    # ---- sub-account: trades after the transfer, one withdrawal
    sub_sizes = _split(max(6, fills // 100), 0, rng, 1, 2)
    for n in sub_sizes:
        t = t_int + DAY_MS + rng.randrange((HISTORY_DAYS - 62) * DAY_MS)
        sub.at(t, "spot", (rng.choice(("SOL_USDC", "USDT_USDC")), n))
    sub.at(t_int + 30 * DAY_MS, "withdraw", ("USDC", Decimal(100), Decimal(1), "confirmed"))

    extra = []
    if subaccounts == 2:
        # ---- a second sub-account: SOL from main (day 75; its lots move with it), a few SOL trades of its
        # own (its own random stream), USDC on to sub1 (day 300)
        sub2_key = keypair(seed, "sub2")
        sub2 = _Gen(seed, "sub2", user_id, 2, path, random.Random(f"sub2:{seed}"), 3)
        rng2 = random.Random(f"world-sub2:{seed}")
        t_sol = start + 75 * DAY_MS + 2_468
        main.at(t_sol, "internal_out", ("SOL", Decimal(4), "sub2"))
        sub2.at(t_sol + 2_000, "deposit", ("SOL", Decimal(4), "confirmed", "internal"))
        for n in _split(max(4, fills // 300), 0, rng2, 1, 2):
            sub2.at(t_sol + DAY_MS + rng2.randrange(200 * DAY_MS), "spot", ("SOL_USDC", n))
        t_usdc = start + 300 * DAY_MS + 9_753
        sub2.at(t_usdc, "internal_out", ("USDC", Decimal(50), "sub1"))
        sub.at(t_usdc + 1_200, "deposit", ("USDC", Decimal(50), "confirmed", "internal"))
        extra.append((sub2, sub2_key))
    main.run(end)
    sub.run(end)
    for g, _ in extra:
        g.run(end)
    accounts = [main.finish(end, main_key), sub.finish(end, sub_key), *(g.finish(end, k) for g, k in extra)]
    return World(accounts=accounts, markets=CATALOGUE, prices=path, now_ms=end, marks=marks_from_path(path, end),
                 seed=seed)
