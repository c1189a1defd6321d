"""``reconcile demo``: the whole chain, offline, against a generated account on a local simulator."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console


def run_demo(console: Console, *, fills: int, seed: int, workdir: Path | None) -> int:
    from ledger.db import make_engine, trial_balance, upgrade

    work = workdir or Path(tempfile.mkdtemp(prefix="reconcile-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{work / 'demo.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        tb = trial_balance(conn)
    engine.dispose()
    console.print(f"database created at {db_url}; trial balance: {'zero' if not any(tb.values()) else tb}")
    console.print("still missing: simulator, sync, check, gains export (later issues)")
    return 0
