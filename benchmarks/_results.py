"""The one way a benchmark hands its figures to ``benchmarks/run_all.py``.

Each benchmark prints its figures for a person and also calls ``record`` for each one; when
``$BENCH_RESULTS`` names a file (``run_all.py`` sets it), the figure is appended to it as one JSON
line, so the table is built from the measured values, never by parsing printed text. Run alone, a
benchmark records nothing.
"""

from __future__ import annotations

import json
import os

__all__ = ["record"]


def record(bench: str, figure: str, value: float | int | None, unit: str, *, target: str = "", ok: bool | None = None) -> None:
    """One measured figure: ``value`` in ``unit``, the ``target`` it is held to (as text) and whether
    it met it (``None``: no target, or not decidable here)."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    line = {"bench": bench, "figure": figure, "value": value, "unit": unit, "target": target, "ok": ok}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
