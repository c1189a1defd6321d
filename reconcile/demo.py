"""``reconcile demo``: the whole chain, offline, against a generated account on a local simulator.

Starts the simulator on a free loopback port with a generated account (a main account and two
sub-accounts: 400 days of spot, perpetuals with flips, a liquidation and an ADL fill, lending and
borrowing, deposits and withdrawals, tokens the exchange lists no market for), writes a config and
secret files (mode 600) into the output folder, then runs exactly what a user runs: ``sync`` (which
values), ``check``, ``report`` (workbook and HTML statement), ``export tax`` for the configured
jurisdiction and ``export perps`` for each tax year, and ``export journal``; stops the simulator
and prints where every file is and the headline figures, each once, rounded to cents.

Two inputs a real user brings are made up by the demo, and it says so: a price for each token the
exchange lists no market for (``prices.csv``, from the price its dust conversion realized), and the
purchase records of coins deposited from outside (``opening-lots.csv``: bought 90 days before the
deposit at 80 % of its value).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import EXIT_OK

#: The demo's local simulator keeps the exchange's 2000 requests a minute but lifts the klines limit
#: (30 a minute on the exchange), so pricing a year of history takes seconds, not minutes.
DEMO_RATE_LIMITS = (2000, 6000)
CENT = Decimal("0.01")
CASH = ("USDC", "USDT", "USD")


def money(v: Decimal | None) -> str:
    """A figure as the demo prints it: cents, thousands separated."""
    return "-" if v is None else f"{v.quantize(CENT):,.2f}"


def _utc(ts) -> datetime:
    """A stored time read by a raw query, as the column type parses it (imported here: the demo's module loads with the CLI)."""
    from ledger.types import utc_from_db

    return utc_from_db(ts)


def _write_user_prices(work: Path, db_url: str) -> list[str]:
    """A user price for each asset deposited from outside that nothing in the ledger values (the
    exchange lists no market for it): the price its own later dust conversion realized, on the
    deposit's day, as a user would take a quote from elsewhere. Returns the assets priced."""
    from sqlalchemy import text

    from ledger.db import make_engine
    from ledger.money import D, plain

    engine = make_engine(db_url)
    rows = ["time,asset,price,currency,source"]
    assets: list[str] = []
    with engine.connect() as conn:
        unpriced = conn.execute(text(
            "SELECT DISTINCT a.symbol, e.timestamp FROM journal_entries e JOIN postings p ON p.entry_id = e.id"
            " JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
            " WHERE e.kind = 'deposit' AND ac.name LIKE 'Assets:Backpack:%' AND p.unit_price IS NULL ORDER BY e.timestamp")).all()
        for symbol, ts in unpriced:
            # The dust conversion of the asset: units given, USDC received.
            legs = conn.execute(text(
                "SELECT a.symbol, p.quantity FROM journal_entries e JOIN postings p ON p.entry_id = e.id"
                " JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
                " WHERE e.kind = 'dust' AND ac.name LIKE 'Assets:Backpack:%:Spot:%' AND e.id IN ("
                "  SELECT e2.id FROM journal_entries e2 JOIN postings p2 ON p2.entry_id = e2.id JOIN assets a2 ON a2.id = p2.asset_id"
                "  WHERE e2.kind = 'dust' AND a2.symbol = :s) ORDER BY e.timestamp"), {"s": symbol}).all()
            given = sum((-D(str(q)) for s, q in legs if s == symbol and D(str(q)) < 0), D(0))
            got = sum((D(str(q)) for s, q in legs if s in CASH and D(str(q)) > 0), D(0))
            if not given or not got:
                continue
            rows.append(f"{_utc(ts).date().isoformat()},{symbol},{plain((got / given).quantize(D('0.000001')))},USD,"
                        "demo: the price its dust conversion realized")
            assets.append(symbol)
    engine.dispose()
    (work / "prices.csv").write_text("\n".join(rows) + "\n")
    return assets


def _write_opening_lots(work: Path, db_url: str) -> int:
    """The user's own records of coins bought elsewhere before they were deposited: for every
    deposit from outside of a non-cash asset, a lot bought 90 days earlier at 80 % of its value on
    deposit (the demo's invented stand-in for a real purchase history). Returns the number of lots."""
    from sqlalchemy import text

    from ledger.db import make_engine
    from ledger.money import D, plain

    engine = make_engine(db_url)
    rows = ["account,asset,quantity,acquired,basis"]
    with engine.connect() as conn:
        for acct, ts, asset, q, price in conn.execute(text(
            "SELECT e.venue_account, e.timestamp, a.symbol, p.quantity, p.unit_price FROM journal_entries e"
            " JOIN postings p ON p.entry_id = e.id JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
            " WHERE e.kind = 'deposit' AND ac.name LIKE 'Assets:Backpack:%' AND a.symbol NOT IN ('USDC', 'USDT') AND p.unit_price IS NOT NULL"
            " ORDER BY e.timestamp, e.entry_key"
        )):
            basis = (D(str(q)) * D(str(price)) * D("0.8")).quantize(CENT)
            rows.append(f"{acct},{asset},{plain(D(str(q)))},{(_utc(ts) - timedelta(days=90)).date().isoformat()}T00:00:00Z,{plain(basis)}")
    engine.dispose()
    (work / "opening-lots.csv").write_text("\n".join(rows) + "\n")
    return len(rows) - 1


def _write_config(work: Path, handle, *, method: str | None, jurisdiction: str, db_url: str, inputs: bool) -> Path:
    """The config a user writes: one ``[[accounts]]`` per venue account (the secret in its own file,
    mode 600), ``[reporting]``; with ``inputs``, the user's price file and opening lots too."""
    lines = ["[database]", f'url = "{db_url}"', ""]
    for name, (key, secret) in handle.accounts.items():
        path = work / f"{name}.secret"
        path.write_text(secret + "\n")
        os.chmod(path, 0o600)
        lines += ["[[accounts]]", f'name = "{name}"', f'api_key = "{key}"', f'api_secret_file = "{path.name}"', f'base_url = "{handle.base_url}"',
                  "rate_per_second = 30", "kline_rate_per_minute = 6000  # the local simulator; the exchange allows 30", ""]
    lines += ["[reporting]", 'currency = "USD"', f'jurisdiction = "{jurisdiction}"']
    if method:
        lines.append(f'method = "{method}"')
    if inputs:
        lines.append('price_file = "prices.csv"  # the demo\'s made-up prices for tokens with no market')
        lines.append('opening_lots = "opening-lots.csv"  # the demo\'s invented purchase records of deposited coins')
    cfg = work / "reconcile.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def run_demo(console: Console, run: Callable[[list[str]], int], *, fills: int, seed: int, workdir: Path | None, method: str | None = None,
             jurisdiction: str = "us", db_url: str | None = None) -> int:
    """The demo; ``run(argv)`` runs one ``reconcile`` command as a user would (the CLI's ``main``,
    handed in by the CLI: this module does not import it). Returns the exit code: the first failing
    step's, else ``check``'s."""
    from importers.backpack.simulator.generate import generate_world
    from importers.backpack.simulator.server import serve_in_thread

    started = time.perf_counter()
    work = (workdir or Path(tempfile.mkdtemp(prefix="reconcile-demo-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]reconcile demo[/bold]: output folder {work}")
    db_url = db_url or f"sqlite:///{work / 'demo.db'}"

    def step(argv: list[str], base: list[str]) -> int:
        console.print(f"\n$ reconcile {' '.join(a for a in argv if a not in base)}", markup=False, highlight=False)
        return run(argv + base)

    world = generate_world(seed, fills, subaccounts=2)
    with serve_in_thread(world, rate_limits=DEMO_RATE_LIMITS) as handle:
        console.print(f"simulator on {handle.base_url} serving a generated account ({fills} fills, seed {seed}; accounts: {', '.join(handle.accounts)})")
        cfg = _write_config(work, handle, method=method, jurisdiction=jurisdiction, db_url=db_url, inputs=False)
        base = ["--config", str(cfg)]
        code = step(["sync", "--quiet", "--no-check"], base)
        if code != EXIT_OK:
            console.print(f"[red]sync failed with exit code {code}[/red]")
            return code
        priced = _write_user_prices(work, db_url)
        cfg = _write_config(work, handle, method=method, jurisdiction=jurisdiction, db_url=db_url, inputs=True)
        if priced:
            console.print(f"\nprices.csv: made up by the demo for {', '.join(priced)} (the exchange lists no market for them): "
                          "the price each one's dust conversion realized. Bring your own source for such tokens.")
        # The user's price file changed: value again (offline: the klines were fetched by sync).
        code = step(["prices", "--offline", "--quiet"], base)
        if code != EXIT_OK:
            return code
        n_lots = _write_opening_lots(work, db_url)
        console.print(f"opening-lots.csv: {n_lots} purchase records INVENTED by the demo for the coins deposited from outside "
                      "(bought 90 days before the deposit at 80 % of its value). Yours come from your own records.")
        check_code = step(["check"], base)

    from ledger.books import book_ledger, resolve_settings
    from ledger.db import make_engine
    from ledger.perps import perp_books
    from reports.income import income_summary

    from .config import load_config

    settings = resolve_settings(load_config(cfg).reporting)
    jur = settings.jurisdiction
    engine = make_engine(db_url)
    with engine.connect() as conn:
        first, last = conn.exec_driver_sql("SELECT MIN(timestamp), MAX(timestamp) FROM journal_entries").one()
        years = list(range(settings.tax_year(_utc(first)), settings.tax_year(_utc(last)) + 1))
        books = book_ledger(conn, settings, lots=False)
        income = income_summary(conn, settings.tax_year)
        perps = {y: perp_books(conn, settings, year=y) for y in years}
    engine.dispose()

    files: list[tuple[str, str]] = [("reconcile.toml", "the config (secrets in *.secret, mode 600)"), ("demo.db", "the ledger (SQLite)"),
                                    ("prices.csv", "user prices (made up by the demo)"), ("opening-lots.csv", "purchase records (invented by the demo)")]
    for year in years:
        label = jur.year_label(year)
        steps = [
            (["report", "--year", str(year), "--format", "xlsx,html", "--out", str(work / f"report-{year}")], f"report-{year}/",
             f"{label}: workbook and HTML statement"),
            (["export", "tax", "--year", str(year), "--format", "csv,xlsx,pdf", "--out", str(work / f"tax-{year}")], f"tax-{year}/",
             f"{label}: tax forms ({settings.booking.jurisdiction}), with a README"),
            (["export", "perps", "--year", str(year), "--format", "xlsx", "--out", str(work / f"perps-{year}.xlsx")], f"perps-{year}.xlsx",
             f"{label}: perpetual futures"),
        ]
        for argv, name, what in steps:
            code = step(argv, base)
            if code != EXIT_OK:
                console.print(f"[red]reconcile {' '.join(argv[:2])} failed with exit code {code}[/red]")
                return code
            files.append((name, what))
    code = step(["export", "journal", "--format", "csv", "--out", str(work / "journal.csv")], base)
    if code != EXIT_OK:
        return code
    files.append(("journal.csv", "the double-entry journal"))

    # The headline figures, each once, in cents.
    b = settings.booking
    per_year: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    terms: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for g in books.gains:
        y = settings.tax_year(g.disposed)
        f = per_year[y]
        f["proceeds"] += g.proceeds
        f["basis"] += g.cost_basis
        f["gain"] += g.gain
        terms[y][g.term] += g.gain  # short/long, or the rule that matched (uk: same-day, b&b, s104; averages)
    table = Table(title=f"spot: realized gains ({b.method}, {b.scope}, {b.jurisdiction}; {settings.currency})")
    for col in ("tax year", "proceeds", "cost basis", "gain", "of which, by term or rule"):
        table.add_column(col, justify="left" if col.startswith("of which") else "right", overflow="fold")
    for year in years:
        f = per_year[year]
        by = "; ".join(f"{t} {money(v)}" for t, v in sorted(terms[year].items()))
        table.add_row(jur.year_label(year), *(money(f[k]) for k in ("proceeds", "basis", "gain")), by or "-")
    console.print()
    console.print(table)
    ptable = Table(title=f"perpetual futures ({next(iter(perps.values())).method if perps else ''} matching; USDC; open positions at the mark)")
    for col in ("year", "realized", "fees", "funding", "net", "open", "unrealized"):
        ptable.add_column(col, justify="right", overflow="fold")
    for year, pb in perps.items():
        realized = sum((t.realized for t in pb.totals), Decimal(0))
        fees = sum((t.fees for t in pb.totals), Decimal(0))
        funding = sum((t.funding for t in pb.totals), Decimal(0))
        unrealized = [p.unrealized for p in pb.positions]
        ptable.add_row(jur.year_label(year), money(realized), money(-fees), money(funding), money(pb.net), str(len(pb.positions)),
                       "no mark price" if None in unrealized else money(sum(unrealized, Decimal(0))))
    console.print(ptable)
    other = [i for i in income if not i.category.startswith("perp ")]
    if other:
        itable = Table(title=f"other income and expenses ({settings.currency}; + received, - paid)")
        for col in ("tax year", "category", "value", "entries"):
            itable.add_column(col, justify="left" if col == "category" else "right", overflow="fold")
        for line in other:
            itable.add_row(jur.year_label(line.year), line.category, money(line.value), str(line.entries))
        console.print(itable)
    if books.findings:
        kinds: dict[str, int] = defaultdict(int)
        for fnd in books.findings:
            kinds[fnd.kind] += 1
        console.print("warnings: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    verdict = "ledger equals the exchange to the last unit" if check_code == EXIT_OK else "DIFFERENCES FOUND (see the check above)"
    console.print(f"\nreconciliation: {verdict}")
    console.print(f"files in {work}:")
    for name, what in files:
        console.print(f"  {name:<20} {what}", markup=False, highlight=False)
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; simulator stopped")
    return check_code
