"""The one way a benchmark hands its figures to ``benchmarks/run_all.py``.

Each benchmark prints its figures for a person and also calls ``record`` for each one; when
``$BENCH_RESULTS`` names a file (``run_all.py`` sets it), the figure is appended to it as one JSON
line, so the table is built from the measured values, never by parsing printed text. Run alone, a
benchmark records nothing.
"""

from __future__ import annotations

import json
import os

__all__ = ["record", "measure"]

#: The measuring process: it runs the command as its only child and reports that child's figures, so
#: nothing the benchmark itself did before (a ledger built with forked workers, say) is counted in.
_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "wall = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(p.returncode, f'{wall:.3f}', f'{u.ru_utime + u.ru_stime:.3f}', u.ru_maxrss)\n"
    "sys.stderr.write(p.stderr[-3000:]); sys.stdout.write(p.stdout[-2000:])\n"
)


def record(bench: str, figure: str, value: float | int | None, unit: str, *, target: str = "", ok: bool | None = None) -> None:
    """One measured figure: ``value`` in ``unit``, the ``target`` it is held to (as text) and whether
    it met it (``None``: no target, or not decidable here)."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    line = {"bench": bench, "figure": figure, "value": value, "unit": unit, "target": target, "ok": ok}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def measure(argv: list[str], *, env: dict[str, str] | None = None) -> tuple[int, float, float, float, str]:
    """Run ``argv`` as a person would, from a fresh measuring process: (exit code, wall seconds, CPU
    seconds of it and every process it forked, the peak RSS in MiB of the largest of them, the tail of
    its output). Peak RSS is ``ru_maxrss`` of the children: the largest process, not their sum."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, env=env)
    head, _, rest = proc.stdout.partition("\n")
    code, wall, cpu, rss_kib = head.split()
    return int(code), float(wall), float(cpu), int(rss_kib) / 1024, (rest + proc.stderr)[-1500:]
