"""Simulator benchmark: startup time for N fills and paging throughput to one client.

    python benchmarks/simulator_bench.py [--fills 1000000] [--seed 1] [--pages 0]

Startup is measured in a subprocess the way ``reconcile simulate`` runs (``run_cli``): from process
start to the printed JSON line. Paging walks ``/wapi/v1/history/fills`` (``sortDirection=Asc``, limit
1000) with plain httpx and per-request signing, with rate limits lifted via BACKPACK_SIM_RATE_LIMITS.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from importers.backpack.signing import sign, signing_string  # noqa: E402
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record

CODE = ("import sys; from importers.backpack.simulator.server import run_cli; "
        "sys.exit(run_cli('127.0.0.1', 0, {seed}, {fills}, None, None, None))")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pages", type=int, default=0, help="pages to fetch (0 = the whole fills history)")
    args = parser.parse_args()
    env = {**os.environ, "BACKPACK_SIM_RATE_LIMITS": "off"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CODE.format(seed=args.seed, fills=args.fills)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    try:
        info = json.loads(proc.stdout.readline())
        startup = time.perf_counter() - started
        print(f"startup: {startup:.1f} s to serve {args.fills:,} fills (seed {args.seed})")
        record("simulator", f"start-up, {args.fills:,} fills", round(startup, 2), "s", target="< 60 s", ok=startup < 60)
        key, secret = info["api_key"], info["api_secret"]
        records = pages = 0
        offset = 0
        t0 = time.perf_counter()
        with httpx.Client(base_url=info["base_url"], timeout=60) as client:
            while True:
                params = {"limit": "1000", "offset": str(offset), "sortDirection": "Asc"}
                ts = int(time.time() * 1000)
                sig = sign(secret, signing_string("fillHistoryQueryAll", params, ts, 5000))
                resp = client.get("/wapi/v1/history/fills", params=params,
                                  headers={"X-API-Key": key, "X-Signature": sig, "X-Timestamp": str(ts)})
                resp.raise_for_status()
                batch = resp.json()
                records += len(batch)
                pages += 1
                offset += 1000
                if len(batch) < 1000 or (args.pages and pages >= args.pages):
                    break
        elapsed = time.perf_counter() - t0
        print(f"paging: {records:,} records in {pages:,} pages in {elapsed:.1f} s = "
              f"{records / elapsed:,.0f} records/s ({pages / elapsed:.1f} pages/s, parsed JSON, one client)")
        record("simulator", "paging, one client", round(records / elapsed), "records/s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
