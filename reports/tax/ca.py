"""Canada: Schedule 3 style rows (ACB), superficial losses listed apart, 50% inclusion beside the gain.

- One row per disposal (the engine's ``acb`` and ``superficial-loss`` pieces of one disposal summed):
  description, year of acquisition (the year the ACB pool last became non-empty, Toronto day), proceeds
  of disposition, ACB, outlays and expenses, gain or loss **allowed** (the superficial part of a loss is
  denied: nil), and the taxable part at the year's inclusion rate (``jurisdictions`` rule
  ``inclusion_rate``, 50%).
- Outlays: the engine's proceeds are already net of disposal fees (TAX-RULES §1.2), so the outlays
  column is 0 and the proceeds are net: the gain is the same either way.
- ``ca-superficial-losses.csv``: each denied loss, the units substituted and that the amount was
  added to the ACB of the substituted property (the engine added it to the pool).
- Totals: capital gains, allowed capital losses, net, and the taxable capital gain (or allowable
  capital loss) at the inclusion rate.
"""

from __future__ import annotations

from decimal import Decimal

from ledger.booking.jurisdictions import tax_day

from .common import Fixed, Num, add, pct

__all__ = ["write", "README_NOTES", "schedule_3", "summary", "ZONE"]

ZONE = "America/Toronto"
ZERO = Decimal(0)


def _rows(run):
    """Per disposal: [description, acquired year, proceeds, acb, outlays, allowed gain, denied, units, asset, disposed day, id]."""
    by: dict[str, list] = {}
    order: list[str] = []
    zone_name = run.settings.tax_zone
    for g in run.gains:
        r = by.get(g.disposal_id)
        if r is None:
            order.append(g.disposal_id)
            r = by[g.disposal_id] = [g.asset, tax_day(g.acquired, zone_name).year, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, tax_day(g.disposed, zone_name), g.account]
        r[2] = add((r[2], g.proceeds))
        r[3] = add((r[3], g.cost_basis))
        r[7] = add((r[7], g.quantity))
        if g.term == "superficial-loss":
            r[6] = add((r[6], -g.gain))  # denied
            r[8] = add((r[8], g.quantity))
        else:
            r[5] = add((r[5], g.gain))
        r[1] = min(r[1], tax_day(g.acquired, zone_name).year)
    return [(d, by[d]) for d in order]


def schedule_3(run, rows=None) -> dict[str, Decimal]:
    rows = rows if rows is not None else _rows(run)
    rate = run.settings.jurisdiction.rule("inclusion_rate", run.year)
    gains = add(r[5] for _, r in rows if r[5] > 0)
    losses = add(-r[5] for _, r in rows if r[5] < 0)
    net = gains - losses
    return {
        "Proceeds of disposition": add(r[2] for _, r in rows),
        "Adjusted cost base": add(r[3] for _, r in rows),
        "Outlays and expenses": ZERO,
        "Capital gains": gains,
        "Capital losses allowed": losses,
        "Superficial losses denied (added to ACB)": add(r[6] for _, r in rows),
        "Net capital gain (loss)": net,
        "Inclusion rate": rate,
        "Taxable capital gain" if net >= 0 else "Allowable capital loss (carry back 3 / forward)": net * rate,
    }


def summary(run) -> list[tuple[str, Decimal]]:
    s = schedule_3(run)
    keys = ("Proceeds of disposition", "Net capital gain (loss)", "Superficial losses denied (added to ACB)")
    out = [(k, s[k]) for k in keys]
    out += [(k, v) for k, v in s.items() if k.startswith(("Taxable", "Allowable"))]
    return out


def README_NOTES(run) -> list[str]:
    rate = run.settings.jurisdiction.rule("inclusion_rate", run.year)
    return [
        "CA notes:",
        "  ACB: one average cost per identical property across all accounts (ITA s.47); a disposal removes ACB x sold / held",
        "  superficial loss (s.54): a loss is denied for min(units sold, units acquired 30 days before to 30 days after, units held at the "
        "end of that period) / units sold; the denied amount is added to the substituted units' ACB; listed in ca-superficial-losses.csv",
        f"  inclusion rate {pct(rate)} for {run.year} (the taxable part is shown beside each gain); tax year: the calendar year on the {run.settings.tax_zone} day",
        "  ca-schedule-3.csv: Schedule 3 style rows (crypto is 'other property'), proceeds net of disposal fees (outlays 0); ca-acb-pools.csv: "
        "each property's ACB at the start and the end of the year; ca-income.csv: income (lending interest) and perps as the ledger posts them",
    ]


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    q = run.rounding
    rows = _rows(run)
    rate = run.settings.jurisdiction.rule("inclusion_rate", run.year)
    if run.currency != "CAD":
        warnings = [*warnings, f"NOTE: the reporting currency is {run.currency}, not CAD: set [reporting] currency = \"CAD\" (with CAD rates in the FX file) for the return"]
    s3 = schedule_3(run, rows)
    table(run, folder, "ca-schedule-3-totals", f"Schedule 3 totals {run.year}: rounded, exact, rounding difference",
          ("line", f"{run.currency} (rounded)", f"{run.currency} (exact)", "rounding difference"),
          [[k, Num(v) if k == "Inclusion rate" else Fixed(q(v)), Num(v), Num(ZERO if k == "Inclusion rate" else q(v) - v)] for k, v in s3.items()], warnings=warnings)
    cells = []
    for did, r in rows:
        asset, year, proceeds, acb, outlays, allowed, denied, units = r[:8]
        cells.append([f"{units} {asset}", Num(Decimal(year)), Fixed(q(proceeds)), Fixed(q(acb)), Fixed(q(outlays)), Fixed(q(allowed)), Fixed(q(allowed * rate)),
                      Fixed(q(denied)), r[9].isoformat(), r[10], did, Num(proceeds), Num(acb), Num(allowed)])
    table(run, folder, "ca-schedule-3", "Schedule 3 style rows: one per disposal (gain or loss allowed; a superficial loss's denied part is nil here)",
          ("Description", "Year of acquisition", "Proceeds of disposition", "Adjusted cost base", "Outlays and expenses", "Gain (or loss)",
           f"Taxable at {pct(rate)}", "Superficial loss denied", "Disposal date", "account", "disposal_id", "proceeds (exact)", "ACB (exact)", "gain (exact)"),
          cells, warnings=warnings)
    sup = [[r[9].isoformat(), r[0], Num(r[7]), Num(r[8]), Fixed(q(r[6])), Num(r[6]), "added to the ACB of the substituted units", did]
           for did, r in rows if r[6]]
    table(run, folder, "ca-superficial-losses", "superficial losses (ITA s.54): each denied loss and the units substituted",
          ("Disposal date", "Asset", "Units sold", "Units substituted", f"Denied loss {run.currency} (rounded)", f"Denied loss {run.currency} (exact)", "treatment",
           "disposal_id"), sup, warnings=warnings)
    start, end = run.bounds
    from datetime import timedelta

    eps = timedelta(microseconds=1)
    pools: dict[str, list] = {}
    for i, t in ((0, start - eps), (2, end - eps)):
        for lot in run.lots_at(t):
            p = pools.setdefault(lot.asset, [ZERO, ZERO, ZERO, ZERO])
            p[i] = add((p[i], lot.quantity))
            p[i + 1] = add((p[i + 1], lot.cost))
    table(run, folder, "ca-acb-pools", f"each property's units and ACB at the start and the end of {run.year}",
          ("Asset", "units at start", f"ACB {run.currency} at start", "units at end", f"ACB {run.currency} at end"),
          [[a, Num(v[0]), Num(v[1]), Num(v[2]), Num(v[3])] for a, v in sorted(pools.items())], warnings=warnings)
    inc = [[l.category, Fixed(q(l.value)), Num(l.value), Num(Decimal(l.entries)), Num(Decimal(l.unpriced))] for l in run.income_lines]
    table(run, folder, "ca-income", "income and expenses by type (interest is income; perps reported separately), signed: positive is money in",
          ("type", f"{run.currency} (rounded)", f"{run.currency} (exact)", "entries", "unpriced entries (not in the value)"), inc, warnings=warnings)
    out = {f"s3 {k}": v for k, v in s3.items()}
    out["net gain"] = add(g.gain for g in run.gains)
    return out
