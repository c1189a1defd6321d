"""Signature edge cases: the simulator is at least as strict as the real server is documented to be
(REFERENCE.md §2; docs/assumptions.md A-SIGN-3, A-SIGN-4, A-TIME-2, A-SIM-1; issue 20)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from importers.backpack.signing import sign, signing_string

from .helpers import REPO, cli_env

FILLS = "/wapi/v1/history/fills"
FILLS_I = "fillHistoryQueryAll"


def _headers(api_key: str, signature: str, ts: int, window: str | None = None) -> dict:
    h = {"X-API-Key": api_key, "X-Signature": signature, "X-Timestamp": str(ts)}
    if window is not None:
        h["X-Window"] = window
    return h


def test_auth__repeated_query_key_is_refused_even_when_its_last_value_was_signed(sim_client, sim):
    """`marketType=SPOT&marketType=PERP` signed over the last value only: refused, not served."""
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    signature = sign(secret, signing_string(FILLS_I, {"marketType": "PERP", "limit": "5"}, ts, 5000))
    resp = sim_client.get(f"{FILLS}?marketType=SPOT&marketType=PERP&limit=5", headers=_headers(api_key, signature, ts))
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"code": "INVALID_CLIENT_REQUEST", "message": "query parameter `marketType` is repeated: send one value per request"}
    # the same request with the key once is served
    resp = sim_client.get(f"{FILLS}?marketType=PERP&limit=5", headers=_headers(api_key, signature, ts))
    assert resp.status_code == 200, resp.text


def test_auth__a_signature_over_two_parameters_does_not_pass_for_one_value_holding_an_ampersand(sim_client, sim):
    """The decoded signing string of {limit: '5&offset=2'} equals that of {limit: 5, offset: 2}."""
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    two = sign(secret, signing_string(FILLS_I, {"limit": "5", "offset": "2"}, ts, 5000))
    assert signing_string(FILLS_I, {"limit": "5&offset=2"}, ts, 5000) == signing_string(FILLS_I, {"limit": "5", "offset": "2"}, ts, 5000)
    resp = sim_client.get(FILLS, params={"limit": "5&offset=2"}, headers=_headers(api_key, two, ts))
    assert resp.status_code == 401 and resp.json()["message"] == "Invalid signature", resp.text
    # the two-parameter request it was made for passes
    resp = sim_client.get(FILLS, params={"limit": "5", "offset": "2"}, headers=_headers(api_key, two, ts))
    assert resp.status_code == 200 and len(resp.json()) == 5


def test_auth__a_value_with_an_ampersand_signed_percent_encoded_still_passes(sim_client, sim):
    """ccxt's form (`%26`) is unambiguous, so it is still verified."""
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    signature = sign(secret, signing_string(FILLS_I, {"symbol": "A%26B", "limit": "5"}, ts, 5000))
    resp = sim_client.get(FILLS, params={"symbol": "A&B", "limit": "5"}, headers=_headers(api_key, signature, ts))
    assert resp.status_code == 200, resp.text
    assert resp.json() == []


@pytest.mark.parametrize("window", ["0", "-1", "-0", "60001", "+5000", "5000x", "5_000", "5e3"])
def test_auth__window_outside_1_to_60000_or_not_digits_is_refused_every_time(sim_client, sim, window):
    api_key, secret = sim.accounts["main"]
    for _ in range(5):  # X-Window: 0 used to pass when the request arrived within the same millisecond
        ts = int(time.time() * 1000) + 2  # even a timestamp slightly ahead of the server
        signature = sign(secret, signing_string(FILLS_I, {}, ts, window.strip()))
        resp = sim_client.get(FILLS, headers=_headers(api_key, signature, ts, window))
        assert resp.status_code == 400, (window, resp.text)
        message = resp.json()["message"]
        assert "between 1 and 60000" in message
        assert "at most" not in message
    if window.lstrip("-").isdigit():
        assert message == f"X-Window must be between 1 and 60000, got {int(window)}"


def test_auth__window_bounds_are_accepted(signed_get):
    assert signed_get(FILLS, FILLS_I, {"limit": "1"}, window=1, timestamp=int(time.time() * 1000) + 1).status_code in (200, 401)
    assert signed_get(FILLS, FILLS_I, {"limit": "1"}, window=60000).status_code == 200


def test_auth__timestamp_must_be_plain_digits(sim_client, sim):
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    signature = sign(secret, signing_string(FILLS_I, {}, ts, 5000))
    spelled = f"{str(ts)[:3]}_{str(ts)[3:]}"  # int() would read it as the same number
    resp = sim_client.get(FILLS, headers={"X-API-Key": api_key, "X-Signature": signature, "X-Timestamp": spelled})
    assert resp.status_code == 401 and resp.json()["message"] == "Invalid X-Timestamp header"


def test_simulate__sigterm_right_after_start_up_is_obeyed_every_time():
    """`reconcile simulate` reads SIGTERM sent the moment its URL is printed: exit 0, every time."""
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "reconcile.cli", "simulate", "--fills", "40"], cwd=REPO, env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert json.loads(line)["base_url"].startswith("http://127.0.0.1:"), line
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
