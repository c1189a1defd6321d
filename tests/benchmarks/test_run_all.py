"""``benchmarks/run_all.py --quick``: every benchmark runs and records its figures (not their values:
the suite times nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_all  # noqa: E402


def test_run_all_quick__every_benchmark_runs_and_records_figures(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    ran = {b.name for b in run_all.selected(True, None)}
    whole = "whole benchmark process (setup included)"
    assert {r["bench"] for r in rows if r["figure"] == whole} == ran
    # Every script handed over at least one figure of its own, besides run_all's timing of its process.
    by_name = {b.name: b.script for b in run_all.BENCHES}
    with_figures = {r["script"] for r in rows if r["figure"] != whole}
    assert {by_name[n] for n in ran} <= with_figures, sorted({by_name[n] for n in ran} - with_figures)
    assert all(r["value"] is not None for r in rows)
    # A quick run judges no target: its sizes are far below the targets'.
    assert all(r["ok"] is None for r in rows)
    assert "benchmark" in proc.stdout and "measured" in proc.stdout


def test_the_table_shows_targets_and_misses():
    rows = [{"bench": "x", "figure": "f", "value": 1.5, "unit": "s", "target": "< 1 s", "ok": False},
            {"bench": "x", "figure": "g", "value": 120000, "unit": "fills/s", "target": "", "ok": None}]
    text = run_all.table(rows, markdown=False)
    assert "1.50 s" in text and "< 1 s" in text and "NO" in text and "120,000 fills/s" in text
    md = run_all.table(rows, markdown=True).splitlines()
    assert md[0].startswith("| benchmark |") and md[2] == "| x | f | 1.50 s | < 1 s | NO | - |"
