"""generic: the year's gains table with totals by term and by asset (exact and rounded)."""

from __future__ import annotations

from decimal import Decimal

from ledger.booking.jurisdictions import iso_utc

from .common import Fixed, Num, add

__all__ = ["write", "README_NOTES", "GAINS_COLUMNS"]

GAINS_COLUMNS = ("account", "asset", "quantity", "acquired", "disposed", "proceeds", "cost_basis", "gain", "term", "method", "lot_id", "disposal_id", "source_ref")


def README_NOTES(run) -> list[str]:
    return ["generic notes:", "  gains.csv holds the engine's rows exactly (times ISO-8601 UTC); gains-totals.csv sums them by term and by asset, "
            "exact and rounded, with the rounding difference"]


def totals_by(run, key) -> dict[str, list]:
    out: dict[str, list] = {}
    for g in run.gains:
        t = out.setdefault(key(g), [0, Decimal(0), Decimal(0), Decimal(0)])
        t[0] += 1
        t[1] = add((t[1], g.proceeds))
        t[2] = add((t[2], g.cost_basis))
        t[3] = add((t[3], g.gain))
    return out


def totals_rows(run, q) -> list:
    rows = []
    for kind, key in (("term", lambda g: g.term), ("asset", lambda g: g.asset), ("all", lambda g: "all")):
        for name, (n, p, c, gn) in sorted(totals_by(run, key).items()):
            rows.append([kind, name, Num(Decimal(n)), Num(p), Num(c), Num(gn), Fixed(q(p)), Fixed(q(c)), Fixed(q(p) - q(c)), Num(q(p) - q(c) - gn)])
    return rows


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    q = run.rounding
    table(run, folder, "gains", f"every (disposal, lot) piece of tax year {run.label}, exact, as the engine booked it", GAINS_COLUMNS,
          ([g.account, g.asset, Num(g.quantity), iso_utc(g.acquired), iso_utc(g.disposed), Num(g.proceeds), Num(g.cost_basis), Num(g.gain), g.term, g.method,
            g.lot_id, g.disposal_id, g.source_ref] for g in run.gains), human=False)
    rows = totals_rows(run, q)
    table(run, folder, "gains-totals", "totals by term, by asset and overall: exact, rounded, and the rounding difference",
          ("by", "group", "rows", "proceeds", "cost_basis", "gain", "proceeds (rounded)", "cost_basis (rounded)", "gain (rounded)", "rounding difference"), rows,
          warnings=warnings)
    out = {"rows": Decimal(len(run.gains))}
    for r in rows:
        out[f"{r[0]} {r[1]} gain"] = r[5].value
        out[f"{r[0]} {r[1]} proceeds"] = r[3].value
    return out
