"""A small mutation check (issue 20; docs/reliability.md): apply each known regression to the
production code, one at a time, run the tests meant to catch it, and expect them to fail.

    python benchmarks/mutation_check.py            # every mutation, its own tests (a few minutes)
    python benchmarks/mutation_check.py --list     # the mutations
    python benchmarks/mutation_check.py --only full_ignored,kline_beats_user
    python benchmarks/mutation_check.py --suite    # each mutation against the whole suite (slow)

Each mutation replaces one exact snippet (it must occur once, so a refactor that moves the code
makes the script say so instead of testing nothing) and is undone afterwards, whatever happens.
Prints one line per mutation (killed / SURVIVED, seconds) and exits 1 if any survived. The booking
engine's own rules are here too (the tax day and the tax year's bounds in UTC, the holding term off
by a day, 29 February, the method orders swapped, the US boundary's instant and zone), killed by the
engine's properties (tests/ledger/booking/test_booking_properties.py) and the UK 5/6 April edges
through the exports (tests/reports/test_uk_tax_day_edges.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


PROPERTIES = "tests/ledger/booking/test_booking_properties.py"
UK_EDGES = "tests/reports/test_uk_tax_day_edges.py"
HOSTILE = "tests/e2e/test_matrix_hostile.py"

MUTATIONS = [
    Mutation("kline_beats_user", "ledger/valuation.py",
             "        row = self.user.lookup(asset, t)\n        if row is not None:\n            return _Price(row.price",
             "        k = self._kline(asset, t)\n        if not isinstance(k, str):\n            return k\n"
             "        row = self.user.lookup(asset, t)\n        if row is not None:\n            return _Price(row.price",
             ("tests/ledger/test_price_precedence.py",), "a cached kline beats the user's price file"),
    Mutation("full_ignored", "importers/sync.py",
             "cursor = None if full else load_cursor(conn, venue_account, name)",
             "cursor = load_cursor(conn, venue_account, name)",
             ("tests/e2e/test_sync_full_late.py",), "sync ignores --full"),
    Mutation("no_text_cell", "reports/safety.py",
             "    if not value:\n        return value\n    if _UNSAFE.search(value):",
             "    return value\n    if _UNSAFE.search(value):",
             ("tests/reports/test_safety.py", "tests/e2e/test_matrix_hostile.py"), "text cells written as they are"),
    Mutation("gains_cells_raw", "reports/gains.py",
             "    p, t = _plain, text_cell\n", "    p, t = _plain, str\n",
             ("tests/e2e/test_matrix_hostile.py",), "the gains cells skip text_cell"),
    Mutation("lots_cells_raw", "reports/gains.py",
             "    t = text_cell\n    return [t(lot.account)", "    t = str\n    return [t(lot.account)",
             ("tests/e2e/test_matrix_hostile.py",), "the lots cells skip text_cell"),
    Mutation("no_terminal_escape", "reports/safety.py",
             "    return _UNSAFE_TERMINAL.sub(_escape, s) if _UNSAFE_TERMINAL.search(s) else s",
             "    return s",
             ("tests/e2e/test_matrix_hostile.py",), "ESC and bidi printed raw to the terminal"),
    Mutation("nul_accepted", "importers/backpack/endpoints.py",
             "    limit = MAX_SYMBOL_CHARS if name in SYMBOL_FIELDS else MAX_TEXT_CHARS\n",
             "    return None\n    limit = MAX_SYMBOL_CHARS if name in SYMBOL_FIELDS else MAX_TEXT_CHARS\n",
             ("tests/e2e/test_matrix_hostile.py",), "NUL and over-long exchange text accepted"),
    Mutation("sql_parameters_printed", "reconcile/cli.py",
             "        _error_line(f\"database: {_database_message(exc)}\")",
             "        _error_line(f\"database: {exc}\")",
             ("tests/e2e/test_matrix_bad_input.py::test_database_error__one_line_without_the_statement_or_its_parameters",),
             "a database error prints its statement and parameters"),
    Mutation("migrate_before_lock", "reconcile/cli.py",
             "    with database_lock(engine):\n        ensure_schema(engine, locked=True)",
             "    ensure_schema(engine, locked=True)\n    with database_lock(engine):",
             ("tests/e2e/test_matrix_races.py::test_two_first_syncs_racing__one_syncs_the_other_exits_with_the_lock_line",),
             "the first migration runs before the lock (caught most runs: a race)"),
    Mutation("check_beside_sync", "reconcile/cli.py",
             "        with database_lock(engine, shared=True):\n            code = _run_check(",
             "        with contextlib.nullcontext():\n            code = _run_check(",
             ("tests/e2e/test_matrix_races.py::test_check_during_a_first_sync__says_a_sync_is_running_and_records_nothing",),
             "check runs beside a sync"),
    Mutation("quiet_warns", "reconcile/cli.py", "    if not quiet:\n        yield\n        return\n    logger",
             "    if True:\n        yield\n        return\n    logger",
             ("tests/e2e/test_matrix_races.py::test_quiet_sync_on_a_faulty_exchange_prints_nothing_when_it_succeeds",),
             "--quiet still prints retry warnings"),
    Mutation("truncated_not_retried", "importers/backpack/client.py",
             "                        if retries >= self.max_retries:\n                            raise MalformedResponse",
             "                        if True:\n                            raise MalformedResponse",
             ("tests/importers/test_client.py",), "a truncated 200 body is fatal"),
    Mutation("no_backoff", "importers/backpack/client.py", "            delay = self._backoff(retries, response)",
             "            delay = 0.0", ("tests/importers/test_client.py",), "retries without backoff"),
    Mutation("year_zero", "reconcile/options.py", "YEAR_MIN, YEAR_MAX = 1970, 9998", "YEAR_MIN, YEAR_MAX = 0, 99999",
             ("tests/e2e/test_matrix_bad_input.py::test_bad_year__one_line_exit_2_nothing_written",), "--year 0 accepted"),
    Mutation("stale_prices_used", "ledger/completeness.py", "            if current != fp:",
             "            if False:", ("tests/e2e/test_matrix_bad_input.py::test_price_file_changed_after_valuation__stale_values_refused_exit_4_until_prices_runs",),
             "a changed price file is ignored by the exports"),
    Mutation("repeated_key_served", "importers/backpack/simulator/app.py", "            if k in seen:", "            if False:",
             ("tests/e2e/test_simulator_auth_edges.py",), "the simulator serves a repeated query key"),
    Mutation("ambiguous_signature", "importers/backpack/simulator/app.py",
             "    return any(\"&\" in k or", "    return False and any(\"&\" in k or",
             ("tests/e2e/test_simulator_auth_edges.py",), "a signature for two parameters passes for one value with '&'"),
    Mutation("window_zero", "importers/backpack/simulator/app.py", "            if not 1 <= window <= MAX_WINDOW_MS:",
             "            if not 0 <= window <= MAX_WINDOW_MS:", ("tests/e2e/test_simulator_auth_edges.py",), "X-Window: 0 accepted"),
    Mutation("statement_controls_raw", "reports/statement.py",
             "                      finalize=lambda v: terminal(v) if type(v) is str else v)",
             "                      finalize=lambda v: v)", (HOSTILE,), "the HTML statement prints ESC and bidi raw"),
    Mutation("chart_labels_raw", "reports/charts.py", "    return _html_escape(terminal(value))", "    return _html_escape(value)",
             (HOSTILE,), "the statement's SVG chart labels carry ESC and bidi raw"),
    Mutation("hledger_names_raw", "reports/tax/beancount.py", "    v = terminal(v).replace(", "    v = v.replace(",
             (HOSTILE,), "hledger commodity and account names carry ESC and CR raw"),
    Mutation("colon_asset_unvalued", "ledger/valuation.py", '    parts = name.split(":", 4)', '    parts = name.split(":")',
             (HOSTILE,), "an asset whose name holds ':' is never valued (its income unpriced)"),
    Mutation("report_reads_a_corrupt_price_file", "reconcile/cli.py",
             '"statement", "journal", "report", "tax", "income",', '"statement", "journal", "income",',
             ("tests/e2e/test_matrix_bad_input.py::test_corrupt_price_file__every_command_that_reads_values_refuses_it",),
             "report and export tax write figures from a corrupt or stale price file"),
    Mutation("tax_year_unchecked", "reconcile/cli.py",
             'typer.Option("--year", parser=parse_year, help="Tax year (uk: the year it starts, 2025 = 2025/26).")],\n'
             '    out: Annotated[str, typer.Option("--out", help="Output folder',
             'typer.Option("--year", help="Tax year (uk: the year it starts, 2025 = 2025/26).")],\n'
             '    out: Annotated[str, typer.Option("--out", help="Output folder',
             ("tests/e2e/test_matrix_bad_input.py::test_bad_year__one_line_exit_2_nothing_written",),
             "export tax --year 0 a ValueError, --year abc a usage box"),
    Mutation("wrong_shape_not_retried", "importers/backpack/client.py",
             "return self._send(ep, params, parse=lambda response: _shaped(ep, _json_body(response)))",
             "return self._send(ep, params, parse=_json_body)",
             ("tests/importers/test_client.py",), "a 200 of the wrong shape is fatal, not retried"),
    # -- the booking engine's own rules (issue 20: tax day, holding term, method orders, US boundary) --
    Mutation("tax_day_utc", "ledger/booking/jurisdictions.py",
             "    return instant.astimezone(zone(zone_name)).date()", "    return instant.astimezone(UTC).date()",
             (UK_EDGES, PROPERTIES), "the tax day derived in UTC (a sale at 2025-04-05T23:30Z lands in 2024/25)"),
    Mutation("year_bounds_utc", "ledger/booking/jurisdictions.py",
             "        tz = zone(zone_name or self.zone)", "        tz = UTC",
             (UK_EDGES,), "the tax year's bounds at UTC midnights (report, statement, income)"),
    Mutation("term_long_on_anniversary", "ledger/booking/engine.py",
             '"long" if day > ann else "short"', '"long" if day >= ann else "short"',
             (PROPERTIES,), "the holding term off by a day (long on the anniversary itself)"),
    Mutation("leap_day_anniversary", "ledger/booking/jurisdictions.py",
             "        return acquired.replace(year=acquired.year + 1, day=28)",
             "        return acquired.replace(year=acquired.year + 1, month=3, day=1)",
             (PROPERTIES,), "29 February's anniversary on 1 March (a day late)"),
    Mutation("fifo_lifo_swapped", "ledger/booking/methods.py",
             '        self._lifo = method == "lifo"', '        self._lifo = method != "lifo"',
             (PROPERTIES,), "FIFO relieves the newest lot, LIFO the oldest"),
    Mutation("hifo_lofo_swapped", "ledger/booking/methods.py",
             '        self._sign = -1 if method == "hifo" else 1', '        self._sign = 1 if method == "hifo" else -1',
             (PROPERTIES,), "HIFO relieves the cheapest lot, LOFO the dearest"),
    Mutation("average_cost_kept", "ledger/booking/methods.py",
             "        self.cost -= relieved", "        self.cost -= 0",
             (PROPERTIES,), "the average pool keeps the cost a disposal relieved"),
    Mutation("us_boundary_exclusive", "ledger/booking/engine.py",
             "            if boundary is not None and t >= boundary:", "            if boundary is not None and t > boundary:",
             (PROPERTIES,), "a disposal at the exact US boundary instant booked universally"),
    Mutation("us_boundary_utc", "ledger/booking/jurisdictions.py",
             "return datetime.combine(self.per_account_from, time.min, zone(zone_name or self.zone)).astimezone(UTC)",
             "return datetime.combine(self.per_account_from, time.min, UTC)",
             (PROPERTIES,), "the US per-account boundary at UTC midnight whatever the tax zone"),
    Mutation("par_ignored", "ledger/valuation.py",
             '            if self.settings.stablecoin_policy == "par" or asset == KLINE_QUOTE:',
             "            if asset == KLINE_QUOTE:",
             ("tests/ledger/test_price_precedence.py",), "a cached kline beats stablecoin par"),
    Mutation("par_beats_user", "ledger/valuation.py",
             "        row = self.user.lookup(asset, t)\n        if row is not None:\n            return _Price(row.price, row.currency,",
             '        if asset in STABLECOINS and self.settings.stablecoin_policy == "par":\n            return _Price(_ONE, "USD", "stablecoin par")\n'
             "        row = self.user.lookup(asset, t)\n        if row is not None:\n            return _Price(row.price, row.currency,",
             ("tests/ledger/test_price_precedence.py",), "stablecoin par beats the user's price file"),
    Mutation("gains_time_by_disposal_id", "reports/gains.py",
             "                if disposed is not last:  # a disposal's pieces are consecutive and share its time: formatted once\n"
             "                    last, when_s = disposed, iso_utc(disposed)",
             "                if disposal_id is not last:\n                    last, when_s = disposal_id, iso_utc(disposed)",
             ("tests/reports/test_gains_csv.py",), "the gains CSV reuses a row's time for the next row with the same disposal id"),
    Mutation("exponent_decimals", "reports/gains.py", "    return \"0\" if s == \"0\" or s == \"-0\" else s",
             "    return s + \".0\" if \".\" not in s else s", ("tests/reports/test_gains_export.py",),
             "gains cells not in their plain shortest spelling"),
]


def run(m: Mutation, suite: bool) -> tuple[bool, float, str]:
    path = REPO / m.file
    original = path.read_text()
    found = original.count(m.old)
    if found != 1:
        return False, 0.0, f"snippet found {found} times in {m.file}: update the mutation"
    tests = ["tests"] if suite else list(m.tests)
    started = time.monotonic()
    try:
        path.write_text(original.replace(m.old, m.new, 1))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                              cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    finally:
        path.write_text(original)
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    return proc.returncode != 0, time.monotonic() - started, tail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--only", help="comma-separated mutation names")
    ap.add_argument("--suite", action="store_true", help="run the whole suite for each mutation")
    args = ap.parse_args()
    chosen = MUTATIONS
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {m.name for m in MUTATIONS}
        if unknown:
            print(f"unknown mutation(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        chosen = [m for m in MUTATIONS if m.name in names]
    if args.list:
        for m in chosen:
            print(f"{m.name:24} {m.file:40} {m.what}")
        return 0
    survived = 0
    print(f"{len(chosen)} mutations; 2-core machine shared with other work: the seconds are indicative only")
    for m in chosen:
        killed, seconds, tail = run(m, args.suite)
        survived += not killed
        print(f"{'killed  ' if killed else 'SURVIVED'} {m.name:24} {seconds:6.1f}s  {m.what}  [{tail}]", flush=True)
    print(f"{len(chosen) - survived}/{len(chosen)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
