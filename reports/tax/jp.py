"""Japan: crypto gains as miscellaneous income (雑所得), per asset per calendar year (JST), in yen.

- Per asset: units and cost carried in (1 January), the year's disposals (units, proceeds, cost at the
  year's unit cost under the total average or each disposal's under the moving average), the gain, and
  units and cost carried forward (31 December): the calculation sheet's figures (暗号資産の計算書).
- Total: the year's miscellaneous income from crypto (gains and losses of crypto net within it);
  a net loss offsets no other income and is not carried forward.
- Income received in kind (lending interest) is miscellaneous income at its value when received;
  perpetuals are listed apart (jp-income.csv).
- The unit cost is exact unless ``[reporting] unit_cost_rounding`` rounds it to whole yen.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from .common import Fixed, Num, add

__all__ = ["write", "README_NOTES", "by_asset", "summary", "PERP_CATEGORIES"]

ZERO = Decimal(0)
PERP_CATEGORIES = ("perp realized P&L", "perp funding", "perp trading fees", "perp liquidation")


def by_asset(run) -> dict[str, list[Decimal]]:
    """asset -> [units in, cost in, units sold, proceeds, cost, gain, units out, cost out]."""
    start, end = run.bounds
    eps = timedelta(microseconds=1)
    out: dict[str, list[Decimal]] = {}
    for i, t in ((0, start - eps), (6, end - eps)):
        for lot in run.lots_at(t):
            r = out.setdefault(lot.asset, [ZERO] * 8)
            r[i] = add((r[i], lot.quantity))
            r[i + 1] = add((r[i + 1], lot.cost))
    for g in run.gains:
        r = out.setdefault(g.asset, [ZERO] * 8)
        r[2] = add((r[2], g.quantity))
        r[3] = add((r[3], g.proceeds))
        r[4] = add((r[4], g.cost_basis))
        r[5] = add((r[5], g.gain))
    return out


def _figures(run) -> dict[str, Decimal]:
    gains = add(g.gain for g in run.gains)
    received = add(l.value for l in run.income_lines if l.category == "interest received")
    perps = add(l.value for l in run.income_lines if l.category in PERP_CATEGORIES)
    return {
        "Proceeds (収入金額)": add(g.proceeds for g in run.gains),
        "Cost of crypto sold (必要経費: 売却原価)": add(g.cost_basis for g in run.gains),
        "Crypto gains (雑所得: 暗号資産の売却)": gains,
        "Income received in kind (雑所得: 貸付の利息)": received,
        "Perpetuals (reported apart)": perps,
        "Miscellaneous income from crypto (a loss offsets nothing)": max(gains + received, ZERO),
    }


def summary(run) -> list[tuple[str, Decimal]]:
    f = _figures(run)
    keys = ("Proceeds (収入金額)", "Crypto gains (雑所得: 暗号資産の売却)", "Income received in kind (雑所得: 貸付の利息)", "Miscellaneous income from crypto (a loss offsets nothing)")
    return [(k, f[k]) for k in keys]


def README_NOTES(run) -> list[str]:
    m = run.settings.booking.method_for(run.year)
    return [
        "JP notes:",
        f"  method {m} ({'総平均法: one unit cost for the whole year' if m == 'total-average' else '移動平均法: recomputed at each acquisition (by election)'}), "
        f"per asset across all accounts, calendar year on the {run.settings.tax_zone} day; unit cost rounding: {run.settings.booking.unit_cost_rounding}",
        "  jp-assets.csv: per asset the units and cost carried in, the year's disposals and the carry-forward (the calculation sheet's figures)",
        "  gains are miscellaneous income (雑所得) taxed with other income; a net loss offsets no other category and is not carried forward",
        "  jp-income.csv: lending interest (miscellaneous income at value received) and perps (listed apart), as the ledger posts them",
    ]


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    q = run.rounding
    if run.currency != "JPY":
        warnings = [*warnings, f"NOTE: the reporting currency is {run.currency}, not JPY: set [reporting] currency = \"JPY\" (with JPY rates in the FX file) for the return"]
    figs = _figures(run)
    table(run, folder, "jp-summary", f"miscellaneous income from crypto, {run.year}: rounded, exact, rounding difference",
          ("figure", f"{run.currency} (rounded)", f"{run.currency} (exact)", "rounding difference"),
          [[k, Fixed(q(v)), Num(v), Num(q(v) - v)] for k, v in figs.items()], warnings=warnings)
    rows = []
    for a, r in sorted(by_asset(run).items()):
        unit = r[4] / r[2] if r[2] else None
        rows.append([a, Num(r[0]), Num(r[1]), Num(r[2]), Num(r[3]), Num(r[4]), "" if unit is None else Num(unit), Num(r[5]), Num(r[6]), Num(r[7])])
    table(run, folder, "jp-assets", f"per asset: carried in on 1 January {run.year}, the year's disposals, carried forward on 31 December (exact)",
          ("Asset", "units carried in", "cost carried in", "units sold", "proceeds", "cost of units sold", "unit cost of units sold", "gain", "units carried forward",
           "cost carried forward"), rows, warnings=warnings)
    inc = [[l.category, Fixed(q(l.value)), Num(l.value), Num(Decimal(l.entries)), Num(Decimal(l.unpriced))] for l in run.income_lines]
    table(run, folder, "jp-income", "income and expenses by type (interest: miscellaneous income; perps listed apart), signed: positive is money in",
          ("type", f"{run.currency} (rounded)", f"{run.currency} (exact)", "entries", "unpriced entries (not in the value)"), inc, warnings=warnings)
    out = {f"jp {k}": v for k, v in figs.items()}
    out["net gain"] = add(g.gain for g in run.gains)
    return out
