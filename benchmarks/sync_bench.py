"""Full sync of a generated simulator account: wall time and peak memory.

    python benchmarks/sync_bench.py [--fills 1000000] [--db sqlite|postgresql] [--rate 30]

Starts ``reconcile simulate --fills N`` in its own process (reports how long it takes to be ready),
writes a config for the main account, runs ``reconcile sync --quiet`` in a child process and prints
its wall time, records/s and peak RSS (of the sync process). Targets (issue #5): the whole sync of
a 1,000,000-fill account under 3 minutes, peak memory under 1 GiB; the simulator ready within 60 s
(issue #4). The client's pace (requests/s) stays under the exchange's 2000/min limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--rate", type=float, default=30.0, help="client requests per second (the exchange allows 2000/min)")
    ap.add_argument("--prices", action="store_true", help="let sync value at its end too (its kline requests are paced at the exchange's "
                    "30 a minute, which then dominates; valuation has its own benchmark)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    t0 = time.perf_counter()
    sim = subprocess.Popen([sys.executable, "-m", "reconcile.cli", "simulate", "--fills", str(args.fills), "--seed", str(args.seed)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = sim.stdout.readline()
        ready = time.perf_counter() - t0
        info = json.loads(line)
        secret = work / "main.secret"
        secret.write_text(info["api_secret"])
        os.chmod(secret, 0o600)
        pgname = None
        if args.db == "sqlite":
            url = f"sqlite:///{work / 'bench.db'}"
        else:
            pgname = f"reconcile_syncbench_{os.getpid()}"
            with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{pgname}"')
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pgname}"
        (work / "reconcile.toml").write_text(
            f'[database]\nurl = "{url}"\n[[accounts]]\nname = "main"\napi_key = "{info["api_key"]}"\n'
            f'api_secret_file = "{secret}"\nbase_url = "{info["base_url"]}"\nrate_per_second = {args.rate}\n'
        )
        subprocess.run([sys.executable, "-m", "reconcile.cli", "init", "--config", str(work / "reconcile.toml")], check=True, capture_output=True)
        t1 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "reconcile.cli", "sync", "--quiet", *([] if args.prices else ["--no-prices"]), "--config", str(work / "reconcile.toml")], capture_output=True, text=True)
        wall = time.perf_counter() - t1
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        status = subprocess.run([sys.executable, "-m", "reconcile.cli", "status", "--json", "--config", str(work / "reconcile.toml")], capture_output=True, text=True)
        st = json.loads(status.stdout)
        records = sum(e["raw_records"] for e in st["endpoints"])
        print(f"simulator --fills {args.fills:,}: ready in {ready:.1f}s")
        print(f"sync ({args.db}, client pace {args.rate:g} req/s): exit {res.returncode} in {wall:.1f}s; {records:,} raw records "
              f"({records / wall:,.0f}/s); {st['entries']:,} entries, {st['postings']:,} postings; trial balance zero: {st['balanced']}; "
              f"peak RSS {peak:,.0f} MiB")
        record("sync", f"{args.db}, {args.fills:,}-fill account", round(wall, 1), "s", target="< 180 s", ok=res.returncode == 0 and wall < 180)
        record("sync", f"{args.db}, peak RSS", round(peak), "MiB", target="< 1024 MiB", ok=peak < 1024)
        if res.returncode != 0:
            print(res.stderr[-2000:])
        if pgname:
            with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pgname}" WITH (FORCE)')
    finally:
        sim.terminate()
        sim.wait(timeout=30)


if __name__ == "__main__":
    main()
