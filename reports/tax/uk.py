"""United Kingdom: SA108 cryptoasset figures and the supporting computation (EXPORT-FORMATS.md §6).

- SA108 figures, labelled by name (the box numbers are [M]): number of disposals, disposal proceeds,
  allowable costs (including the purchase price), gains in the year before losses, losses in the year.
  **Number of disposals** counts distinct (token, London day) groups: all disposals of one token on
  one day are one disposal (same-day rule), whatever matching split the engine made. Gains and losses
  are per group: a group's net gain goes to gains if positive, to losses if negative.
- For 2024/25 the gains are also split before / on or after 30 October 2024 (the rate change).
- The computation: every engine row with its matching rule (the ``term`` of the uk method), and the
  Section 104 pool per token at the start and the end of the year (the engine's open lots then).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from ledger.booking.jurisdictions import tax_day

from .common import Fixed, Num, add

__all__ = ["write", "README_NOTES", "sa108_figures", "RULE_LABELS"]

RULE_LABELS = {"same-day": "Same day", "bed-and-breakfast": "Bed & breakfast (30 days)", "s104": "Section 104 pool"}
RATE_CHANGE = date(2024, 10, 30)
ZONE = "Europe/London"


def _groups(run):
    groups: dict[tuple[str, date], list] = {}
    for g in run.gains:
        groups.setdefault((g.asset, tax_day(g.disposed, ZONE)), []).append(g)
    return groups


def sa108_figures(run, groups=None) -> dict[str, Decimal]:
    groups = groups if groups is not None else _groups(run)
    proceeds = add(g.proceeds for g in run.gains)
    costs = add(g.cost_basis for g in run.gains)
    nets = [add(g.gain for g in gs) for gs in groups.values()]
    gains = add(n for n in nets if n > 0)
    losses = add(-n for n in nets if n < 0)
    out = {"Number of disposals": Decimal(len(groups)), "Disposal proceeds": proceeds, "Allowable costs (including the purchase price)": costs,
           "Gains in the year, before losses": gains, "Losses in the year": losses}
    if run.year == 2024:
        before = add(add(g.gain for g in gs) for (a, d), gs in groups.items() if d < RATE_CHANGE and add(g.gain for g in gs) > 0)
        out["Gains before 30 October 2024"] = before
        out["Gains on or after 30 October 2024"] = gains - before
    return out


def README_NOTES(run) -> list[str]:
    return [
        "UK notes:",
        "  sa108.csv: the cryptoasset figures by name (box numbers are not certain: enter by label); 'Number of disposals' counts "
        "(token, London day) groups, since all disposals of a token on one day are one disposal",
        "  gains and losses are per disposal group (net of its same-day, 30-day and pool parts); gains minus losses equals the sum of every row",
        "  uk-computation.csv: each row with its matching rule (same day, bed and breakfast, Section 104) and the matched acquisition date; "
        "uk-s104-pools.csv: each token's pool at the start and the end of the tax year (the engine's open lots at those instants)",
        "  income (lending, staking) goes on SA100 as miscellaneous income, not SA108: uk-income.csv; perps are reported separately "
        "(their realized P&L and funding are income categories there, treatment chosen by the user)",
        "  amounts: GBP; SA108 figures rounded per the run's rounding (HMRC accepts whole pounds; the exact figures are beside them)",
    ]


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    q = run.rounding
    groups = _groups(run)
    figs = sa108_figures(run, groups)
    extra = list(warnings)
    if run.currency != "GBP":
        extra.append(f"NOTE: the reporting currency is {run.currency}, not GBP: every amount here is in {run.currency}; set [reporting] currency = \"GBP\" for the return")
    if figs["Disposal proceeds"] >= Decimal(50000) and run.year >= 2023:
        extra.append("NOTE: disposal proceeds reach GBP 50,000: the disposals must be reported on the Self Assessment return")
    warnings = extra
    table(run, folder, "sa108", f"SA108 cryptoasset figures for {run.label} (6 April - 5 April), by label: rounded, exact, rounding difference",
          ("figure", f"amount {run.currency} (rounded)", f"amount {run.currency} (exact)", "rounding difference"),
          [[k, Num(v) if k == "Number of disposals" else Fixed(q(v)), Num(v), Num(Decimal(0) if k == "Number of disposals" else q(v) - v)] for k, v in figs.items()],
          warnings=extra)
    comp = []
    for (asset, day), gs in sorted(groups.items()):
        for g in gs:
            matched = tax_day(g.acquired, ZONE).isoformat() if g.term != "s104" else ""
            comp.append([asset, day.isoformat(), RULE_LABELS.get(g.term, g.term), matched, Num(g.quantity), Num(g.proceeds), Num(g.cost_basis), Num(g.gain),
                         g.account, g.disposal_id, g.lot_id, g.source_ref])
    table(run, folder, "uk-computation", "every disposal row of the year with its matching rule (the supporting computation), exact",
          ("Asset", "Disposal date", "Matching rule", "Matched acquisition date", "Quantity", f"Proceeds {run.currency}", f"Allowable cost {run.currency}", f"Gain {run.currency}", "account",
           "disposal_id", "lot_id", "source_ref"), comp, warnings=warnings)
    start, end = run.bounds
    eps = timedelta(microseconds=1)
    pools: dict[str, list] = {}
    for which, t in (("start", start - eps), ("end", end - eps)):
        for lot in run.lots_at(t):
            p = pools.setdefault(lot.asset, [Decimal(0), Decimal(0), Decimal(0), Decimal(0)])
            i = 0 if which == "start" else 2
            p[i] = add((p[i], lot.quantity))
            p[i + 1] = add((p[i + 1], lot.cost))
    prow = [[a, Num(v[0]), Num(v[1]), Num(v[2]), Num(v[3])] for a, v in sorted(pools.items())]
    table(run, folder, "uk-s104-pools", f"the Section 104 pool per token at the start (6 April {run.year}) and the end (5 April {run.year + 1}) of the year",
          ("Asset", "pool quantity at start", f"pool cost {run.currency} at start", "pool quantity at end", f"pool cost {run.currency} at end"), prow, warnings=warnings)
    inc = [[l.category, Fixed(q(l.value)), Num(l.value), Num(Decimal(l.entries)), Num(Decimal(l.unpriced))] for l in run.income_lines]
    table(run, folder, "uk-income", "income and expenses by type (miscellaneous income on SA100, not SA108; perps separately), signed: positive is money in",
          ("type", f"{run.currency} (rounded)", f"{run.currency} (exact)", "entries", "unpriced entries (not in the value)"), inc, warnings=warnings)
    out = {f"sa108 {k}": v for k, v in figs.items()}
    out["net gain"] = add(g.gain for g in run.gains)
    return out
