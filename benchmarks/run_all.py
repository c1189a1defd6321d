"""Every benchmark, one table: ``python benchmarks/run_all.py [--quick] [--only a,b] [--markdown]``.

Runs each benchmark script as its own process (as a person would run it), collects the figures
each one ``record``s (``benchmarks/_results.py``: the measured values themselves, never parsed from
printed text) and prints one table with each figure's target beside it. The full run is the
README's performance table (about half an hour on the 2-core machine: several of the benchmarks
build a 1,000,000-fill ledger first); ``--quick`` runs every benchmark at a small size, to show
they all run (the test suite runs it once; it asserts figures were recorded, not their values).

Exit code: 0 when every benchmark ran (exit 0, or 2 = ran but missed a target) and recorded
figures; 1 otherwise. Targets missed are shown in the table's last column, not hidden.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...] | None  # None: not run by --quick (the quick run of another entry covers it)
    #: Run only when this module can be imported (a benchmark-only dependency such as rp2).
    needs: str | None = None
    #: With ``--cache DIR``: arguments that keep the benchmark's generated ledger in DIR/<name> and reuse it
    #: on the next run (setup is never timed; this only saves rebuilding it). "{dir}" is that folder.
    cache: tuple[str, ...] = ()


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


BENCHES: tuple[Bench, ...] = (
    Bench("simulator", "simulator_bench.py", ("--fills", "1000000"), ("--fills", "3000")),
    Bench("posting", "posting_bench.py", ("--fills", "1000000", "--db", "both"), ("--fills", "2000", "--db", "both")),
    Bench("sync", "sync_bench.py", ("--fills", "1000000", "--db", "sqlite"), ("--fills", "400", "--db", "sqlite")),
    Bench("valuation", "valuation_bench.py", ("--fills", "1000000", "--db", "both"), ("--fills", "2000", "--db", "sqlite")),
    Bench("booking", "booking_bench.py", ("--sizes", "10000", "100000", "1000000"), ("--sizes", "2000", "--methods", "fifo", "hifo")),
    Bench("rp2 race", "gains_vs_rp2.py", ("--trades", "100000", "--shapes", "simple,realistic", "--repeat", "3"),
          ("--trades", "1500", "--shapes", "simple,realistic", "--repeat", "1"), needs="rp2"),
    Bench("gains 1M", "gains_vs_rp2.py", ("--trades", "1000000", "--shapes", "realistic", "--repeat", "1", "--no-rp2"), None),
    Bench("gains (no rp2)", "gains_vs_rp2.py", (), ("--trades", "1500", "--shapes", "realistic", "--repeat", "1", "--no-rp2")),
    Bench("perpetuals", "perps_bench.py", ("--fills", "1000000"), ("--fills", "3000"), cache=("--reuse", "{dir}")),
    Bench("report", "report_bench.py", ("--fills", "1000000"), ("--fills", "2000"), cache=("--keep", "{dir}")),
    Bench("tax export", "tax_bench.py", ("--fills", "1000000"), ("--fills", "2000"), cache=("--keep", "{dir}")),
    Bench("watch", "watch_bench.py", ("--fills", "20000"), ("--fills", "300")),
)


def selected(quick: bool, only: set[str] | None) -> list[Bench]:
    """The benchmarks of this run: those with arguments for it, their dependency importable. Quick:
    the race script runs once, against RP2 when it is installed, else without it."""
    out = []
    for b in BENCHES:
        args = b.quick if quick else b.full
        if not args or (only is not None and b.name not in only) or (b.needs and not _has(b.needs)):
            continue
        if quick and b.name == "gains (no rp2)" and _has("rp2"):
            continue
        out.append(b)
    return out


def cache_args(bench: Bench, cache: Path | None, quick: bool) -> list[str]:
    """The benchmark's arguments for keeping its generated ledger under ``cache`` (none for a quick run)."""
    if cache is None or quick or not bench.cache:
        return []
    folder = cache / bench.script.removesuffix(".py")
    if bench.cache[0] == "--reuse" and not (folder / "perps.db").exists():
        return []  # perps_bench reuses a ledger only; it builds its own the first time
    folder.mkdir(parents=True, exist_ok=True)
    return [a.format(dir=folder) for a in bench.cache]


def run(bench: Bench, quick: bool, results: Path, timeout: float, cache: Path | None = None) -> tuple[int | None, float, str]:
    """Run one benchmark; its exit code (None: stopped at ``timeout`` seconds), wall seconds and the tail
    of its output."""
    env = dict(os.environ, BENCH_RESULTS=str(results), PYTHONUNBUFFERED="1")
    env.pop("RECONCILE_CONFIG", None)
    env.pop("RECONCILE_DB", None)
    argv = [sys.executable, str(HERE / bench.script), *(bench.quick if quick else bench.full), *cache_args(bench, cache, quick)]  # type: ignore[misc]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the benchmark and what it started (a simulator, a child process)
        out, _ = proc.communicate()
        code = None
    return code, time.perf_counter() - t0, (out or "")[-1500:]


def fmt_value(v, unit: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f} {unit}".rstrip()
    return f"{int(v):,} {unit}".rstrip()


def table(rows: list[dict], markdown: bool) -> str:
    head = ("benchmark", "figure", "measured", "target", "met", "load")
    body = [(r["bench"], r["figure"], fmt_value(r["value"], r["unit"]), r["target"] or "-",
             "-" if r["ok"] is None else ("yes" if r["ok"] else "NO"), "-" if r.get("load") is None else f"{r['load']:.1f}") for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:<{w}}}" if i in (0, 1, 3) else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*row) for row in body)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every benchmark at a small size (shows they run; times mean nothing)")
    ap.add_argument("--only", help="comma-separated benchmark names: " + ", ".join(b.name for b in BENCHES))
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (the README's)")
    ap.add_argument("--json", dest="json_out", help="also write every figure to this JSON file")
    ap.add_argument("--cache", type=Path, help="keep generated ledgers here and reuse them (perps, report, tax export)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds a benchmark may take (default 1200; quick: 600)")
    ap.add_argument("--table-from", nargs="+", type=Path, metavar="JSON",
                    help="print the table of figures saved by earlier runs' --json (several runs' parts, in order), run nothing")
    args = ap.parse_args(argv)
    if args.table_from:
        saved = [r for f in args.table_from for r in json.loads(f.read_text())]
        print(table(saved, args.markdown))
        return 0
    only = set(args.only.split(",")) if args.only else None
    benches = selected(args.quick, only)
    rows: list[dict] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for b in benches:
            results = Path(tmp) / f"{b.script}.{len(rows)}.jsonl"
            print(f"running {b.name}: {b.script} {' '.join([*((b.quick if args.quick else b.full) or ()), *cache_args(b, args.cache, args.quick)])}",
                  file=sys.stderr, flush=True)
            code, wall, tail = run(b, args.quick, results, args.timeout or (600 if args.quick else 1200), args.cache)
            got = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
            load_now = round(os.getloadavg()[0], 1)
            for r in got:
                r["script"] = b.script
                r["load"] = load_now  # the machine's 1-minute load average when the benchmark ended
            if args.quick:  # the targets are for the full sizes: a quick run's figures meet or miss nothing
                for r in got:
                    r["ok"] = None
            rows += got
            rows.append({"bench": b.name, "figure": "whole benchmark process (setup included)" + ("" if code is not None else ": STOPPED at the timeout"),
                         "value": round(wall, 1), "unit": "s", "target": "", "ok": None if code is not None else False, "script": b.script,
                         "load": load_now, "date": time.strftime("%Y-%m-%d", time.gmtime())})
            if code is None:
                failed.append(f"{b.name}: stopped after {wall:.0f} s (--timeout); {len(got)} figure(s) recorded before")
            elif code not in (0, 2) or not got:
                failed.append(f"{b.name}: exit {code}, {len(got)} figure(s); last output:\n{tail}")
    load = os.getloadavg()
    print(f"# benchmarks ({'quick' if args.quick else 'full'}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(table(rows, args.markdown))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1))
    for f in failed:
        print(f"\nFAILED {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
