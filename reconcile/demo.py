"""``reconcile demo``: the whole chain, offline, against a generated account on a local simulator.

Starts the simulator on a free loopback port with a generated account (main + one sub-account),
writes a config and secret files (mode 600) into a work directory, then runs exactly what a user
runs: ``init``, ``sync`` (which ends with the reconciliation check), ``prices``, ``export gains``
for each tax year under the configured method, ``export journal``; prints the headline figures and
stops the simulator.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from . import EXIT_OK
from rich.table import Table


#: The demo's local simulator keeps the exchange's 2000 requests a minute but lifts the klines limit
#: (30 a minute on the exchange), so pricing a year of history takes seconds, not minutes.
DEMO_RATE_LIMITS = (2000, 6000)


def _write_opening_lots(work: Path, db_url: str) -> int:
    """The user's own records of coins bought elsewhere before they were deposited: for every
    deposit from outside of a non-cash asset, a lot bought 90 days earlier at 80 % of its value on
    deposit (the demo's stand-in for a real purchase history). Returns the number of lots."""
    from datetime import datetime, timedelta, timezone

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
            when = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
            when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
            basis = (D(str(q)) * D(str(price)) * D("0.8")).quantize(D("0.01"))
            rows.append(f"{acct},{asset},{plain(D(str(q)))},{(when - timedelta(days=90)).date().isoformat()}T00:00:00Z,{plain(basis)}")
    engine.dispose()
    (work / "opening-lots.csv").write_text("\n".join(rows) + "\n")
    return len(rows) - 1


def _write_config(work: Path, handle, *, method: str, jurisdiction: str, db_url: str) -> Path:
    lines = ["[database]", f'url = "{db_url}"', ""]
    for name, (key, secret) in handle.accounts.items():
        path = work / f"{name}.secret"
        path.write_text(secret + "\n")
        os.chmod(path, 0o600)
        lines += ["[[accounts]]", f'name = "{name}"', f'api_key = "{key}"', f'api_secret_file = "{path.name}"', f'base_url = "{handle.base_url}"',
                  "rate_per_second = 30", "kline_rate_per_minute = 6000  # the local simulator; the exchange allows 30", ""]
    lines += ["[reporting]", 'currency = "USD"', f'jurisdiction = "{jurisdiction}"', f'method = "{method}"']
    lines.append('opening_lots = "opening-lots.csv"  # written by the demo after pricing (see _write_opening_lots)')
    cfg = work / "reconcile.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def run_demo(console: Console, run: Callable[[list[str]], int], *, fills: int, seed: int, workdir: Path | None, method: str = "fifo",
             jurisdiction: str = "us", db_url: str | None = None) -> int:
    """The demo; ``run(argv)`` runs one ``reconcile`` command as a user would (the CLI's ``main``,
    handed in by the CLI: this module does not import it)."""
    from importers.backpack.simulator.server import serve_in_thread
    from ledger.money import plain

    main = run

    started = time.perf_counter()
    work = (workdir or Path(tempfile.mkdtemp(prefix="reconcile-demo-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]reconcile demo[/bold]: work directory {work}")
    with serve_in_thread(seed=seed, fills=fills, rate_limits=DEMO_RATE_LIMITS) as handle:
        console.print(f"simulator on {handle.base_url} serving a generated account ({fills} fills, seed {seed}; accounts: {', '.join(handle.accounts)})")
        db_url = db_url or f"sqlite:///{work / 'demo.db'}"
        cfg = _write_config(work, handle, method=method, jurisdiction=jurisdiction, db_url=db_url)
        base = ["--config", str(cfg)]
        steps = [["init", *base], ["sync", "--quiet", "--no-check", *base], ["prices", *base], ["check", *base]]
        check_code = EXIT_OK
        for argv in steps:
            console.print(f"\n$ reconcile {' '.join(a for a in argv if a not in base)}")
            code = main(argv)
            if argv[0] == "check":
                check_code = code
            elif code != EXIT_OK:
                console.print(f"[red]step failed with exit code {code}[/red]")
                return code

    n_lots = _write_opening_lots(work, db_url)
    console.print(f"\nopening lots: {n_lots} lots for coins deposited from outside written to opening-lots.csv (the user's purchase records)")

    # Headline figures: realized gains and income per tax year under the configured method.
    from ledger.books import book_ledger, resolve_settings
    from ledger.db import ensure_schema, make_engine
    from reports.income import income_summary

    from .config import load_config

    books_settings = resolve_settings(load_config(cfg).reporting)
    settings = books_settings.booking
    engine = make_engine(db_url)
    ensure_schema(engine)
    with engine.connect() as conn:
        books = book_ledger(conn, books_settings)
        income = income_summary(conn, books_settings.tax_year)
    per_year: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for g in books.gains:
        y = books_settings.tax_year(g.disposed)
        per_year[y]["proceeds"] += g.proceeds
        per_year[y]["basis"] += g.cost_basis
        per_year[y][g.term] += g.gain
    # The warnings concern the whole ledger: listed with the first year's export, counted after it.
    exports = []
    for i, year in enumerate(sorted(per_year)):
        # The generated account is incomplete on purpose (deposits of assets the exchange has no market for):
        # the exports and statements are written anyway and carry the warning on their first line (docs/reports.md).
        exports.append(["export", "gains", "--year", str(year), "--format", "csv", "--allow-incomplete", "--out", str(work / f"gains-{year}.csv"), *base,
                        *(["--quiet"] if i else [])])
        exports.append(["statement", "--year", str(year), "--format", "html", "--allow-incomplete", "--out", str(work / f"statement-{year}.html"), *base])
        exports.append(["statement", "--year", str(year), "--format", "xlsx", "--allow-incomplete", "--out", str(work / f"statement-{year}.xlsx"), *base])
    exports.append(["export", "journal", "--format", "csv", "--out", str(work / "journal.csv"), *base])
    for argv in exports:
        code = main(argv)
        if code != EXIT_OK:
            engine.dispose()
            console.print(f"[red]reconcile {' '.join(argv[:2])} failed with exit code {code}[/red]")
            return code
    engine.dispose()

    table = Table(title=f"realized gains and income ({settings.method}, {settings.scope}, {settings.jurisdiction}; {settings.currency})")
    for col in ("tax year", "proceeds", "cost basis", "short-term", "long-term"):
        table.add_column(col, justify="right")
    for year in sorted(per_year):
        f = per_year[year]
        table.add_row(str(year), *(f"{plain(round(f[k], 2))}" for k in ("proceeds", "basis", "short", "long")))
    console.print(table)
    if income:
        itable = Table(title=f"income and expenses outside spot disposals ({settings.currency}; + received, - paid)")
        for col in ("tax year", "category", "value", "entries", "unpriced"):
            itable.add_column(col, justify="left" if col == "category" else "right")
        for line in income:
            itable.add_row(str(line.year), line.category, plain(round(line.value, 2)), str(line.entries), str(line.unpriced))
        console.print(itable)
    all_findings = books.findings
    if all_findings:
        kinds: dict[str, int] = defaultdict(int)
        for fnd in all_findings:
            kinds[fnd.kind] += 1
        console.print("warnings: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    elapsed = time.perf_counter() - started
    verdict = "ledger equals the exchange to the last unit" if check_code == EXIT_OK else "DIFFERENCES FOUND (see the check above)"
    console.print(f"\nreconciliation: {verdict}")
    console.print(f"ledger: {db_url}")
    console.print(f"files in {work}: reconcile.toml, opening-lots.csv, journal.csv, "
                  + ", ".join(f"gains-{y}.csv, statement-{y}.html, statement-{y}.xlsx" for y in sorted(per_year)))
    console.print(f"demo finished in {elapsed:.1f}s; simulator stopped")
    return check_code
