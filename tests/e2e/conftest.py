"""Fixtures that serve the Backpack simulator in-process on a free loopback port.

Session-wide (one generated account shared by every e2e test; rate limits lifted):

- ``sim``: the :class:`~importers.backpack.simulator.server.SimulatorHandle` (``.base_url``,
  ``.accounts`` name -> (api_key, api_secret), ``.world`` with the replayed Book per account).
- ``sim_base_url``, ``sim_credentials`` (main account ``(api_key, api_secret)``),
  ``sim_sub_credentials`` (the sub-account's pair).
- ``signed_get``: ``signed_get(path, instruction, params=None, *, account="main", window=5000,
  timestamp=None, headers=None)`` -> ``httpx.Response``, signed like bpx-py (decoded values).

Per test:

- ``start_simulator``: a context-manager factory taking the keywords of ``serve_in_thread``
  (``world=``, ``seed=``, ``fills=``, ``scenario=``, ``faults=``, ``rate_limits=``) for tests that need
  their own server (faults, rate limits, scenarios). Servers are stopped at teardown.
"""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest

from importers.backpack.signing import signing_string, sign
from importers.backpack.simulator.generate import generate_world
from importers.backpack.simulator.server import serve_in_thread

SIM_SEED = 7
SIM_FILLS = 600
NO_LIMITS = (1_000_000, 1_000_000)


@pytest.fixture(scope="session")
def sim_world():
    """The shared generated world (seed 7, 600 fills)."""
    return generate_world(SIM_SEED, SIM_FILLS)


@pytest.fixture(scope="session")
def sim(sim_world):
    with serve_in_thread(sim_world, rate_limits=NO_LIMITS) as handle:
        yield handle


@pytest.fixture(scope="session")
def sim_base_url(sim) -> str:
    return sim.base_url


@pytest.fixture(scope="session")
def sim_credentials(sim) -> tuple[str, str]:
    return sim.accounts["main"]


@pytest.fixture(scope="session")
def sim_sub_credentials(sim) -> tuple[str, str]:
    return sim.accounts["sub1"]


def signed_request(client: httpx.Client, credentials: tuple[str, str], path: str, instruction: str,
                   params: dict | None = None, *, window: int | None = 5000, timestamp: int | None = None,
                   headers: dict | None = None) -> httpx.Response:
    """GET ``path`` signed with ``credentials`` (values signed decoded, as bpx-py and the SDK do)."""
    api_key, secret = credentials
    params = {k: v for k, v in (params or {}).items() if v is not None}
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    signed_window = 5000 if window is None else window
    signature = sign(secret, signing_string(instruction, params, ts, signed_window))
    sent = {"X-API-Key": api_key, "X-Signature": signature, "X-Timestamp": str(ts)}
    if window is not None:
        sent["X-Window"] = str(window)
    sent.update(headers or {})
    return client.get(path, params=params, headers=sent)


@pytest.fixture(scope="session")
def sim_client(sim):
    with httpx.Client(base_url=sim.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def signed_get(sim, sim_client):
    def get(path: str, instruction: str, params: dict | None = None, *, account: str = "main", **kw):
        return signed_request(sim_client, sim.accounts[account], path, instruction, params, **kw)

    return get


@pytest.fixture
def start_simulator():
    with contextlib.ExitStack() as stack:
        def start(**kw):
            kw.setdefault("rate_limits", NO_LIMITS)
            return stack.enter_context(serve_in_thread(**kw))

        yield start
