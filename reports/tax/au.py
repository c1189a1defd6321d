"""Australia: the CGT schedule totals and the per-disposal list (ITAA 1997 Div 115 discount).

- Each engine row (one parcel of one disposal; FIFO parcels by default, specific identification as a
  standing order ``hifo``/``lofo``) is one CGT event row: its gain, or its loss.
- Discount: a row whose parcel was held at least 12 months, the acquisition and disposal days
  excluded (the engine's term 'long' on the Australia/Sydney day), is a discount capital gain.
- The schedule: total current year capital gains; capital losses applied first to the non-discount
  gains, then to the discount gains (the order that leaves the most discount: our reading, the ATO
  lets the taxpayer choose); the discount (the year's ``cgt_discount`` rule, 50% for individuals) on
  what is left of the discount gains (AU-2: losses before the discount); net capital gain; or the
  net capital loss to carry forward. Net capital losses of earlier income years are not in these
  files (add them before the discount).
- The income year runs 1 July to 30 June: ``--year 2024`` is 2024/25.
"""

from __future__ import annotations

from decimal import Decimal

from ledger.booking.jurisdictions import tax_day

from .common import Fixed, Num, add, pct

__all__ = ["write", "README_NOTES", "cgt_schedule", "summary"]

ZERO = Decimal(0)


def cgt_schedule(run) -> dict[str, Decimal]:
    rate = run.settings.jurisdiction.rule("cgt_discount", run.year)
    discount_gains = add(g.gain for g in run.gains if g.gain > 0 and g.term == "long")
    other_gains = add(g.gain for g in run.gains if g.gain > 0 and g.term != "long")
    losses = add(-g.gain for g in run.gains if g.gain < 0)
    on_other = min(losses, other_gains)
    on_discount = min(losses - on_other, discount_gains)
    left_discount = discount_gains - on_discount
    discount = left_discount * rate
    net = other_gains - on_other + left_discount - discount
    return {
        "Total current year capital gains": discount_gains + other_gains,
        "of which discount capital gains (held 12 months or more)": discount_gains,
        "Capital losses of the year": losses,
        "Capital losses applied": on_other + on_discount,
        "CGT discount applied": discount,
        "Net capital gain": net,
        "Net capital losses carried forward to later income years": losses - on_other - on_discount,
        "CGT discount rate": rate,
    }


def summary(run) -> list[tuple[str, Decimal]]:
    s = cgt_schedule(run)
    return [(k, s[k]) for k in ("Total current year capital gains", "Capital losses applied", "CGT discount applied", "Net capital gain",
                                 "Net capital losses carried forward to later income years")]


def README_NOTES(run) -> list[str]:
    j = run.settings.jurisdiction
    return [
        "AU notes:",
        f"  income year {run.label}: 1 July {run.year} to 30 June {run.year + 1} on the {run.settings.tax_zone} day; method {run.settings.booking.method_for(run.year)} "
        "(FIFO parcels by default; hifo/lofo are specific identification by a standing order recorded before the disposals)",
        f"  discount: {j.holding_rule}; rate {pct(j.rule('cgt_discount', run.year))} (individuals and trusts; super funds 33 1/3%: not modelled)",
        "  capital losses are applied before the discount, first to non-discount gains (au-cgt-schedule.csv); prior years' net capital losses are not included",
        "  au-cgt-disposals.csv: one row per CGT event (parcel) with its discount eligibility; au-income.csv: income and perps as the ledger posts them",
    ]


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    q = run.rounding
    if run.currency != "AUD":
        warnings = [*warnings, f"NOTE: the reporting currency is {run.currency}, not AUD: set [reporting] currency = \"AUD\" (with AUD rates in the FX file) for the return"]
    s = cgt_schedule(run)
    table(run, folder, "au-cgt-schedule", f"CGT schedule {run.label}: rounded, exact, rounding difference",
          ("label", f"{run.currency} (rounded)", f"{run.currency} (exact)", "rounding difference"),
          [[k, Num(v) if k == "CGT discount rate" else Fixed(q(v)), Num(v), Num(ZERO if k == "CGT discount rate" else q(v) - v)] for k, v in s.items()],
          warnings=warnings)
    zone_name = run.settings.tax_zone
    rows = [[g.asset, tax_day(g.acquired, zone_name).isoformat(), tax_day(g.disposed, zone_name).isoformat(), Num(g.quantity), Fixed(q(g.proceeds)),
             Fixed(q(g.cost_basis)), Fixed(q(g.gain)), "yes" if g.term == "long" and g.gain > 0 else "no", g.account, g.disposal_id, g.lot_id,
             Num(g.proceeds), Num(g.cost_basis), Num(g.gain)] for g in run.gains]
    table(run, folder, "au-cgt-disposals", "every CGT event (parcel) of the income year",
          ("Asset", "Acquired", "Disposed", "Units", "Capital proceeds", "Cost base", "Gain (loss)", "Discount eligible", "account", "disposal_id", "parcel (lot_id)",
           "proceeds (exact)", "cost base (exact)", "gain (exact)"), rows, warnings=warnings)
    inc = [[l.category, Fixed(q(l.value)), Num(l.value), Num(Decimal(l.entries)), Num(Decimal(l.unpriced))] for l in run.income_lines]
    table(run, folder, "au-income", "income and expenses by type (interest is ordinary income; perps reported separately), signed: positive is money in",
          ("type", f"{run.currency} (rounded)", f"{run.currency} (exact)", "entries", "unpriced entries (not in the value)"), inc, warnings=warnings)
    out = {f"cgt {k}": v for k, v in s.items()}
    out["net gain"] = add(g.gain for g in run.gains)
    return out
