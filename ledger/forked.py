"""One helper for the work a command hands to the machine's second core: a forked process that runs
``target(url, *args, send)`` over its own database connection and sends back one dict.

Used by the report's method comparison (``ledger.report_books``), its perpetuals (``reports.report``),
the perpetuals proof's cycle checks (``ledger.perps``) and the balance scan of ``check --at``
(``ledger.reconcile.check_accounts``); ``call`` runs one function so. It is the same code the parent would run: ``start`` returns None where a
fork is not worth it or not possible (an in-memory database, no fork), and a child that fails or
sends anything but a dict gives None from ``join``; the caller then runs the work in process.

``no_cycle_collection`` pauses the cycle collector while a booking builds its acyclic tuples (it
finds nothing in them and costs a tenth of the run).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

__all__ = ["start", "join", "stop", "call", "no_cycle_collection", "forkable"]


def forkable(conn: Connection) -> bool:
    """A child can open its own connection to this database (not an in-memory SQLite one)."""
    url = conn.engine.url
    return not (url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"))


def start(conn: Connection, target: Callable[..., None], *args: Any, daemon: bool = True):
    """Fork ``target(url, *args, send)``; the child handle ``(process, receiving end)``, or None (not
    forkable, or the fork failed). ``daemon=False`` for a child that forks a child of its own."""
    import multiprocessing

    if not forkable(conn):
        return None
    try:
        ctx = multiprocessing.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=target, args=(conn.engine.url.render_as_string(hide_password=False), *args, send), daemon=daemon)
        proc.start()
        send.close()
    except (OSError, ValueError):
        return None
    return proc, recv


def join(child) -> dict | None:
    """The dict the child sent, or None (it failed, or sent an error)."""
    proc, recv = child
    try:
        result = recv.recv()
    except EOFError:
        result = None
    finally:
        recv.close()
        proc.join()
    return result if isinstance(result, dict) else None


def stop(child) -> None:
    """Stop a child whose result is not wanted after all (the command stops early)."""
    proc, recv = child
    proc.terminate()
    proc.join()
    recv.close()


def _call_main(url: str, fn: Callable[[Connection], Any], send) -> None:
    try:
        from .db import make_engine

        engine = make_engine(url)
        with engine.connect() as conn:
            result = {"result": fn(conn)}
        engine.dispose()
        send.send(result)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which runs ``fn`` in process instead
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


def call(conn: Connection, fn: Callable[[Connection], Any]):
    """Start ``fn(connection)`` in a forked process over its own connection to ``conn``'s database; a
    handle for ``join`` (its dict: ``{"result": what fn returned}``), or None (not forkable)."""
    return start(conn, _call_main, fn)


@contextmanager
def no_cycle_collection():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
