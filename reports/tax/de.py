"""Germany: Anlage SO private sales (§23 EStG), §22 Nr. 3 income, perps apart (EXPORT-FORMATS.md §7).

- Disposals within one year of acquisition are taxable, later ones exempt (the engine's ``term``:
  'short' = held not more than one year on the Berlin day, so a sale on the anniversary is taxable).
  FIFO per wallet is the engine's (jurisdiction de forces method fifo, scope account).
- Freigrenze §23 Abs. 3 Satz 5: EUR 600 up to 2023, EUR 1,000 from 2024 (the jurisdiction table's
  versioned rule ``freigrenze_23``), a limit not an allowance: the year's net taxable total below it
  is tax-free, at or above it all of it is taxable.
- §22 Nr. 3 (lending interest, rewards): Freigrenze below EUR 256 (not more than EUR 255).
- Perps (Termingeschäfte, Anlage KAP) are listed apart, not in Anlage SO.
- The Aufstellung is human-facing: ``;`` separated, decimal comma, UTF-8 with BOM (German Excel).
"""

from __future__ import annotations

from decimal import Decimal

from ledger.booking.jurisdictions import jurisdiction, tax_day

from .common import Fixed, Num, NumText as _Raw, add, dmy, write_table

__all__ = ["write", "README_NOTES", "FREIGRENZE_23", "freigrenze", "freigrenze_22_3", "anlage_so", "leistungen", "termingeschaefte", "summary"]

_DE = jurisdiction("de")
#: §23 Freigrenze by Veranlagungszeitraum: (first year, limit), from the jurisdiction table.
FREIGRENZE_23 = dict(_DE.rules)["freigrenze_23"]
FREIGRENZE_22_3 = _DE.rule("freigrenze_22_3", 2024)
ZONE = "Europe/Berlin"
PERP_CATEGORIES = ("perp realized P&L", "perp funding", "perp trading fees", "perp liquidation")


def freigrenze(year: int) -> Decimal:
    """The §23 Freigrenze of ``year`` (the versioned rule of the jurisdiction table)."""
    return _DE.rule("freigrenze_23", year)


def freigrenze_22_3(year: int) -> Decimal:
    return _DE.rule("freigrenze_22_3", year)


def leistungen(run) -> dict[str, Decimal]:
    """§22 Nr. 3 EStG (lending interest, rewards): the total and what is taxable under its own Freigrenze."""
    received = add(l.value for l in run.income_lines if l.category == "interest received")
    limit = freigrenze_22_3(run.year)
    return {"Einkünfte §22 Nr. 3": received, "Freigrenze §22 Nr. 3": limit, "zu versteuern §22 Nr. 3": received if received >= limit else Decimal(0)}


def termingeschaefte(run) -> Decimal:
    """Perpetuals and futures (Termingeschäfte, §20 Abs. 2 Nr. 3 EStG): the net of their categories, apart from Anlage SO."""
    return add(l.value for l in run.income_lines if l.category in PERP_CATEGORIES)


def summary(run) -> list[tuple[str, Decimal]]:
    so = anlage_so(run)
    le = leistungen(run)
    return [("§23 Gewinn steuerpflichtig", so["Gewinn/Verlust (steuerpflichtig)"]), ("§23 steuerfrei (über 1 Jahr)", so["Gewinn/Verlust (steuerfrei, Haltefrist über 1 Jahr)"]),
            (f"§23 zu versteuern (Freigrenze {so[f'Freigrenze §23 Abs. 3 Satz 5 EStG {run.year}']})", so["zu versteuern nach Freigrenze"]),
            ("§22 Nr. 3 zu versteuern", le["zu versteuern §22 Nr. 3"]), ("Termingeschäfte (KAP)", termingeschaefte(run))]


def anlage_so(run) -> dict[str, Decimal]:
    taxable = [g for g in run.gains if g.term == "short"]
    exempt = [g for g in run.gains if g.term != "short"]
    net = add(g.gain for g in taxable)
    limit = freigrenze(run.year)
    return {
        "Veräußerungspreis (steuerpflichtig)": add(g.proceeds for g in taxable),
        "Anschaffungskosten (steuerpflichtig)": add(g.cost_basis for g in taxable),
        "Werbungskosten": Decimal(0),
        "Gewinn/Verlust (steuerpflichtig)": net,
        "Veräußerungspreis (steuerfrei, Haltefrist über 1 Jahr)": add(g.proceeds for g in exempt),
        "Gewinn/Verlust (steuerfrei, Haltefrist über 1 Jahr)": add(g.gain for g in exempt),
        f"Freigrenze §23 Abs. 3 Satz 5 EStG {run.year}": limit,
        "zu versteuern nach Freigrenze": net if net >= limit else Decimal(0),
    }


def _de(v: Decimal, q=None) -> str:
    s = format(q(v), "f") if q else format(v, "f")
    if q is None and "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.replace(".", ",")


def README_NOTES(run) -> list[str]:
    return [
        "DE notes:",
        f"  Anlage SO §23 EStG: Freigrenze {run.year}: EUR {freigrenze(run.year):,} (EUR 600 up to 2023, EUR 1,000 from 2024), applied to the net taxable total "
        "of these exports only (other private sales of the year count too: add them before applying it)",
        "  taxable = held not more than one year (Berlin day; a sale on the anniversary is taxable); FIFO per wallet (jurisdiction de)",
        "  anlage-so.csv: the totals by field name (line numbers move between years: enter by name); anlage-so-aufstellung.csv: one row per "
        "disposal lot (';' separated, decimal comma, for German Excel); anlage-so-leistungen.csv: §22 Nr. 3 income (Freigrenze below EUR 256); "
        "termingeschaefte.csv: perps (Anlage KAP, not SO)",
    ]


def write(run, folder, warnings) -> dict[str, Decimal]:
    from .run import table

    q = run.rounding
    so = anlage_so(run)
    limit = freigrenze(run.year)
    if run.currency != "EUR":
        warnings = [*warnings, f"NOTE: the reporting currency is {run.currency}, not EUR: the EUR columns hold {run.currency}; set [reporting] currency = \"EUR\" for the return"]
    pre = [*warnings, f"Freigrenze §23 EStG {run.year}: EUR {limit} (Gesamtgewinn unter der Grenze steuerfrei, sonst voll steuerpflichtig)"]
    table(run, folder, "anlage-so", f"Anlage SO {run.year}, private Veräußerungsgeschäfte (Kryptowerte): totals by field, Freigrenze applied; rounded, exact, difference",
          ("Feld", "EUR (gerundet)", "EUR (exakt)", "Rundungsdifferenz"), [[k, Fixed(q(v)), Num(v), Num(q(v) - v)] for k, v in so.items()], warnings=pre)
    header = ("Coin", "Konto", "Anschaffung", "Veräußerung", "Menge", "Veräußerungspreis EUR", "Anschaffungskosten EUR", "Werbungskosten EUR", "Gewinn EUR",
              "Haltefrist über 1 Jahr", "steuerpflichtig", "disposal_id", "lot_id")

    def rows():  # made as they are written (one pass for the CSV and the XLSX): a large year's rows are never held
        no_costs = _Raw("0,00")
        last_disposed, disposed_day = None, ""
        for g in run.gains:
            long_ = g.term != "short"
            if g.disposed != last_disposed:  # a disposal's pieces are consecutive: its day formatted once
                last_disposed, disposed_day = g.disposed, dmy(tax_day(g.disposed, ZONE))
            proceeds, cost = q(g.proceeds), q(g.cost_basis)
            yield [g.asset, g.account, dmy(tax_day(g.acquired, ZONE)), disposed_day, _Raw(_de(g.quantity)), _Raw(format(proceeds, "f").replace(".", ",")),
                   _Raw(format(cost, "f").replace(".", ",")), no_costs, _Raw(format(proceeds - cost, "f").replace(".", ",")), "ja" if long_ else "nein",
                   "nein" if long_ else "ja", g.disposal_id, g.lot_id]

    csv_path = folder.path("anlage-so-aufstellung.csv", "Aufstellung: one row per disposal lot (';', decimal comma, UTF-8 BOM); amounts rounded to the run's rounding")
    xlsx = folder.path("anlage-so-aufstellung.xlsx", "the Aufstellung as XLSX") if "xlsx" in run.formats else None
    write_table(csv_path, header, rows(), xlsx_path=xlsx, sheet="Aufstellung", bom=True, delimiter=";", preamble=pre)
    income = [l for l in run.income_lines if l.category not in PERP_CATEGORIES]
    le = leistungen(run)
    received, taxed, limit22 = le["Einkünfte §22 Nr. 3"], le["zu versteuern §22 Nr. 3"], le["Freigrenze §22 Nr. 3"]
    inc_rows = [[l.category, Fixed(q(l.value)), Num(l.value), Num(Decimal(l.unpriced))] for l in income]
    inc_rows.append([f"Einkünfte §22 Nr. 3 (Freigrenze unter EUR {limit22}: steuerfrei wenn niedriger)", Fixed(q(received)), Num(received), ""])
    inc_rows.append(["zu versteuern §22 Nr. 3", Fixed(q(taxed)), Num(taxed), ""])
    table(run, folder, "anlage-so-leistungen", "§22 Nr. 3 EStG income (lending interest, rewards) and expenses, with the EUR 256 Freigrenze",
          ("Art", "EUR (gerundet)", "EUR (exakt)", "ohne Wert (nicht enthalten)"), inc_rows, warnings=warnings)
    perps = [[l.category, Fixed(q(l.value)), Num(l.value), Num(Decimal(l.entries)), Num(Decimal(l.unpriced))] for l in run.income_lines if l.category in PERP_CATEGORIES]
    table(run, folder, "termingeschaefte", "perpetuals (Termingeschäfte, §20 Abs. 2 Nr. 3 EStG, Anlage KAP): the ledger's categories, not part of Anlage SO",
          ("Kategorie", "EUR (gerundet)", "EUR (exakt)", "Buchungen", "ohne Wert"), perps, warnings=warnings)
    out = {f"so {k}": v for k, v in so.items()}
    out["§22 Nr. 3 zu versteuern"] = taxed
    out["Termingeschäfte"] = termingeschaefte(run)
    out["net gain"] = add(g.gain for g in run.gains)
    return out
