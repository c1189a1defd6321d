"""Serving a world on loopback: ``run_cli`` (the ``reconcile simulate`` command) and ``serve_in_thread``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import uvicorn

from .app import RateLimits, SimulatorApp
from .faults import FaultPlan, FaultSpecError
from .world import World
from .ws import LiveOptions, StreamServer, WsFaultPlan, WsFaultSpecError

__all__ = ["run_cli", "serve_in_thread", "build_world", "SimulatorHandle", "make_server"]


def build_world(*, seed: int = 1, fills: int = 2000, scenario: str | None = None) -> World:
    """The generated world for (seed, fills), or the world of a scenario file."""
    gc_was = gc.isenabled()
    gc.disable()  # millions of small objects: the cyclic GC would rescan them for nothing
    try:
        if scenario is not None:
            from .scenario import load_scenario

            return load_scenario(scenario, seed=seed)
        from .generate import generate_world

        return generate_world(seed, fills)
    finally:
        gc.freeze()
        if gc_was:
            gc.enable()


def _bind(host: str, port: int) -> socket.socket:
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP;
    # without it uvicorn's separate header and body writes meet Nagle + delayed ACK (40 ms a request).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app: SimulatorApp) -> uvicorn.Server:
    live = app.ws.live if app.ws is not None else LiveOptions()
    # WebSocket keep-alive as the exchange (WEBSOCKET.md §5): Ping every 60 s, Close without a Pong in 120 s.
    config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning", http="httptools",
                            loop="asyncio", timeout_keep_alive=30, ws="websockets-sansio",
                            ws_ping_interval=live.ping_interval_s, ws_ping_timeout=live.ping_timeout_s,
                            ws_max_size=1 << 20)
    return uvicorn.Server(config)


def attach_streams(app: SimulatorApp, world: World, live: LiveOptions | dict | None = None,
                   ws_faults: str | WsFaultPlan | None = None) -> StreamServer:
    """Serve the WebSocket streams (simulator/ws.py) on ``app``'s port, path ``/``."""
    if live is None:
        live = LiveOptions.from_dict(world.live)
    elif isinstance(live, dict):
        live = LiveOptions.from_dict(live)
    plan = WsFaultPlan.parse(ws_faults) if isinstance(ws_faults, str) or ws_faults is None else ws_faults
    app.ws = StreamServer(world, live=live, faults=plan, clock=app.clock)
    return app.ws


def _ws_url(base_url: str) -> str:
    return "ws" + base_url[len("http"):] + "/"


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _announcement(world: World, base_url: str) -> dict:
    main = world.accounts[0]
    return {
        "base_url": base_url, "ws_url": _ws_url(base_url), "api_key": main.api_key, "api_secret": main.api_secret,
        "subaccounts": [{"name": a.name, "api_key": a.api_key, "api_secret": a.api_secret} for a in world.accounts[1:]],
    }


def run_cli(host: str, port: int, seed: int, fills: int, scenario: str | None, faults: str | None,
            dump_scenario: str | None, live_fills: int | None = None, live_rate: float | None = None,
            ws_faults: str | None = None) -> int:
    """Serve until SIGINT/SIGTERM; prints one JSON line (base_url and credentials) once listening."""
    from .scenario import ScenarioError, dump_world

    try:
        plan = FaultPlan.parse(faults)
        ws_plan = WsFaultPlan.parse(ws_faults)
        world = build_world(seed=seed, fills=fills, scenario=scenario)
        live = LiveOptions.from_dict(world.live)
        if live_fills is not None:
            live.fills = live_fills
        if live_rate is not None:
            live.rate = live_rate
    except (ScenarioError, FaultSpecError, WsFaultSpecError, ValueError, TypeError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    if dump_scenario:
        dump_world(world, dump_scenario)
        return 0
    try:
        sock = _bind(host, port)
    except OSError as exc:
        print(f"simulator: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    app = SimulatorApp(world, faults=plan)
    attach_streams(app, world, live, ws_plan)
    server = make_server(app)

    def stop(*_: object) -> None:
        # A stop requested before uvicorn installs its own handlers (right after start-up) is kept
        # here: uvicorn skips its main loop when should_exit is already set. Afterwards uvicorn
        # captures SIGINT/SIGTERM while serving and re-raises them after a graceful shutdown; this
        # handler absorbs the re-raise, so that a requested stop is a clean exit 0.
        server.should_exit = True

    # Installed before the announcement: a client that reads the URL and sends SIGTERM at once is obeyed.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(orjson.dumps(_announcement(world, _base_url(sock))).decode(), flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


@dataclass
class SimulatorHandle:
    base_url: str
    world: World
    app: SimulatorApp
    ws_url: str = ""
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (api_key, api_secret)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def api_key(self) -> str:
        return self.world.accounts[0].api_key

    @property
    def api_secret(self) -> str:
        return self.world.accounts[0].api_secret

    def announcement(self) -> dict:
        return _announcement(self.world, self.base_url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


@contextlib.contextmanager
def serve_in_thread(world: World | None = None, *, seed: int = 1, fills: int = 2000, scenario: str | None = None,
                    faults: str | FaultPlan | None = None, rate_limits: RateLimits | tuple | None = None,
                    host: str = "127.0.0.1", port: int = 0, clock=time.time, live: LiveOptions | dict | None = None,
                    ws_faults: str | WsFaultPlan | None = None) -> Iterator[SimulatorHandle]:
    """Serve ``world`` (or the one built from seed/fills/scenario) in a daemon thread; stop on exit.

    ``rate_limits``: a RateLimits, a ``(standard, historical)`` per-minute tuple, or None for the default
    (``BACKPACK_SIM_RATE_LIMITS`` or 2000/30).
    """
    if world is None:
        world = build_world(seed=seed, fills=fills, scenario=scenario)
    plan = FaultPlan.parse(faults) if isinstance(faults, str) or faults is None else faults
    limits = RateLimits(*rate_limits) if isinstance(rate_limits, tuple) else rate_limits
    app = SimulatorApp(world, faults=plan, rate_limits=limits, clock=clock)
    attach_streams(app, world, live, ws_faults)
    sock = _bind(host, port)
    server = make_server(app)

    def target() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=target, name="backpack-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:  # never hand out a URL nothing answers on
        server.should_exit = True
        sock.close()
        raise RuntimeError("the simulator's server did not start (see the log above for uvicorn's reason)")
    handle = SimulatorHandle(base_url=_base_url(sock), ws_url=_ws_url(_base_url(sock)), world=world, app=app,
                             accounts={a.name: (a.api_key, a.api_secret) for a in world.accounts},
                             _server=server, _thread=thread)
    try:
        yield handle
    finally:
        handle.stop()
        sock.close()
