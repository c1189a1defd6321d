"""Live events through the simulator's streams into `reconcile watch` on SQLite: events/s and peak memory.

    python benchmarks/watch_bench.py [--fills 20000] [--seed 3]

Starts ``reconcile simulate --fills N --live-fills -1 --live-rate 0`` (every fill of the main account
replayed as live events, as fast as the client reads), then ``reconcile watch --quiet`` in its own process
on a fresh SQLite database, waits until every fill is stored as a provisional row, stops watch with SIGTERM
and prints: the events it received (orderAccepted + orderFill + position updates + marks), the wall time
from starting watch to the last fill written, events/s, and the peak RSS of the watch process
(``os.wait4``). Target (issue 17): 10,000 events/s with under 100 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record


def _cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a running process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    env = {**os.environ, "BACKPACK_SIM_RATE_LIMITS": "off"}
    sim = subprocess.Popen([sys.executable, "-m", "reconcile.cli", "simulate", "--fills", str(args.fills), "--seed",
                            str(args.seed), "--live-fills", "-1", "--live-rate", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        info = json.loads(sim.stdout.readline())
        secret = work / "main.secret"
        secret.write_text(info["api_secret"])
        os.chmod(secret, 0o600)
        db = work / "watch.db"
        config = work / "reconcile.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{db}"\n[[accounts]]\nname = "main"\napi_key = "{info["api_key"]}"\n'
                          f'api_secret_file = "{secret}"\nbase_url = "{info["base_url"]}"\n')
        subprocess.run([sys.executable, "-m", "reconcile.cli", "init", "--config", str(config)], check=True, capture_output=True)
        t0 = time.perf_counter()
        watch = subprocess.Popen([sys.executable, "-m", "reconcile.cli", "watch", "--config", str(config)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stored, done_at = 0, None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and watch.poll() is None:
            time.sleep(0.05)
            try:
                with sqlite3.connect(db, timeout=5) as c:
                    stored = c.execute("SELECT COUNT(*) FROM live_fills").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if stored >= args.fills:
                done_at = time.perf_counter()
                break
        watch.send_signal(signal.SIGTERM)
        _pid, status, usage = os.wait4(watch.pid, 0)
        out = watch.stdout.read()
        err = watch.stderr.read()
        if done_at is None:
            print(f"watch stored {stored} of {args.fills} fills before the deadline; stderr: {err.strip()[:500]}")
            sys.exit(1)
        m = re.search(r"(\d+) events, (\d+) fills", out)
        events = int(m.group(1)) if m else 0
        wall = done_at - t0
        peak_mib = usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux
        cpu = usage.ru_utime + usage.ru_stime
        sim_cpu = _cpu_seconds(sim.pid)
        print(json.dumps({"fills": args.fills, "events": events, "wall_s": round(wall, 2), "watch_cpu_s": round(cpu, 2),
                          "simulator_cpu_s": sim_cpu, "events_per_watch_cpu_s": round(events / cpu) if cpu else None,
                          "events_per_s": round(events / wall), "fills_per_s": round(args.fills / wall),
                          "watch_peak_rss_mib": round(peak_mib, 1), "watch_exit": os.waitstatus_to_exitcode(status)}))
        record("watch", f"{args.fills:,} live fills", round(events / wall), "events/s", target=">= 10,000 events/s", ok=events / wall >= 10_000)
        record("watch", "peak RSS", round(peak_mib, 1), "MiB", target="< 100 MiB", ok=peak_mib < 100)
        print(f"{events} events ({args.fills} fills) in {wall:.2f} s = {events / wall:,.0f} events/s "
              f"(target 10,000); watch used {cpu:.2f} CPU s = {events / cpu:,.0f} events per CPU second; peak RSS "
              f"{peak_mib:.1f} MiB (target < 100). Wall time includes watch's start-up (interpreter, imports, connect) "
              f"and is bounded by the two processes sharing the machine's cores (uptime load: {os.getloadavg()[0]:.1f}).")
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sim.kill()


if __name__ == "__main__":
    main()
