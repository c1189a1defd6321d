"""A generated multi-account history (seeded): spot buys and sells of several assets with fees in the
quote, the base or a third asset, crypto-to-crypto trades, interest, perp settlements."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from ledger.posting import Source, cash, lent, trade
from tests.reports.tax.sample import priced

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def generated(seed: int = 7, n: int = 120, accounts=("main", "sub"), assets=("BTC", "SOL", "ETH"), symbol=lambda a: a, note=lambda k: ""):
    rnd = random.Random(seed)
    held = {(a, s): Decimal(0) for a in accounts for s in assets}
    price = {"BTC": Decimal(40000), "SOL": Decimal(100), "ETH": Decimal(2000)}
    out = []
    t = START
    for i in range(n):
        t += timedelta(hours=rnd.randint(1, 200))
        acct = rnd.choice(accounts)
        a = rnd.choice(assets)
        for k in price:
            price[k] = (price[k] * Decimal(rnd.randint(90, 112)) / 100).quantize(Decimal("0.01"))
        sym = symbol(a)
        key = f"{note(i)}f{i}"
        src = Source(acct, "history/fills", key, t)
        r = rnd.random()
        if r < 0.08:
            q = Decimal(rnd.randint(1, 300)) / 100
            out.append(priced(cash(Source(acct, "history/interest", f"{note(i)}i{i}", t), kind="interest-income", asset="USDC", quantity=q, counter="Income:Interest",
                                   wallet=lent(acct, "USDC"), description=note(i)), USDC="1"))
            continue
        if r < 0.12:
            q = Decimal(rnd.randint(-500, 500)) / 100 or Decimal(1)
            out.append(priced(cash(Source(acct, "history/settlement", f"{note(i)}p{i}", t), kind=rnd.choice(["realized-pnl", "funding"]), asset="USDC", quantity=q,
                                   counter="Income:Perp:RealizedPnl", description=note(i)), USDC="1"))
            continue
        qty = Decimal(rnd.randint(1, 400)) / 100 if a != "BTC" else Decimal(rnd.randint(1, 400)) / 10000
        have = held[(acct, a)]
        side = "sell" if have >= qty and rnd.random() < 0.45 else "buy"
        quote_q = (qty * price[a]).quantize(Decimal("0.0001"))
        fee_kind = rnd.choice(["none", "quote", "base", "third"])
        fee, fee_asset = Decimal(0), None
        if fee_kind == "quote":
            fee, fee_asset = (quote_q / 1000).quantize(Decimal("0.000001")), "USDC"
        elif fee_kind == "base" and side == "buy":
            fee, fee_asset = (qty / 1000).quantize(Decimal("0.00000001")), sym
        if rnd.random() < 0.15 and side == "buy":  # crypto-to-crypto: pay with another asset held
            other = next((o for o in assets if o != a and held[(acct, o)] > 0), None)
            if other is not None:
                give = min(held[(acct, other)], (quote_q / price[other]).quantize(Decimal("0.00000001")))
                if give > 0:
                    e = trade(src, kind="spot-trade", base=sym, quote=symbol(other), side="buy", quantity=qty, quote_quantity=give, description=note(i))
                    out.append(priced(e, **{sym: str(price[a]), symbol(other): str(price[other])}))
                    held[(acct, a)] += qty
                    held[(acct, other)] -= give
                    continue
        e = trade(src, kind="spot-trade", base=sym, quote="USDC", side=side, quantity=qty, quote_quantity=quote_q, fee=fee, fee_asset=fee_asset, description=note(i))
        out.append(priced(e, **{sym: str(price[a]), "USDC": "1"}))
        held[(acct, a)] += qty - (fee if fee_asset == sym else 0) if side == "buy" else -qty
    return out
