"""The simulator verifies signed requests as the exchange does (REFERENCE.md §2, A-SIGN-1, A-TIME-1, A-AUTH-1)."""

from __future__ import annotations

import base64
import time
from urllib.parse import quote

import pytest

from importers.backpack.signing import sign, signing_string

from .conftest import signed_request

FILLS = "/wapi/v1/history/fills"
FILLS_I = "fillHistoryQueryAll"


def _unauthorized(resp, fragment: str = "") -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body["code"] == "UNAUTHORIZED"
    assert fragment.lower() in body["message"].lower()


def test_auth__valid_request_passes(signed_get):
    resp = signed_get(FILLS, FILLS_I, {"limit": "5"})
    assert resp.status_code == 200
    assert len(resp.json()) == 5


def test_auth__forged_signature(sim_client, sim):
    api_key, _ = sim.accounts["main"]
    other_secret = base64.b64encode(bytes(range(32))).decode()
    resp = signed_request(sim_client, (api_key, other_secret), FILLS, FILLS_I, {"limit": "5"})
    _unauthorized(resp, "signature")


def test_auth__altered_param(sim_client, sim):
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    signature = sign(secret, signing_string(FILLS_I, {"limit": "5"}, ts, 5000))
    resp = sim_client.get(FILLS, params={"limit": "6"},
                          headers={"X-API-Key": api_key, "X-Signature": signature, "X-Timestamp": str(ts)})
    _unauthorized(resp, "signature")


def test_auth__wrong_instruction(sim_client, sim):
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    signature = sign(secret, signing_string("orderHistoryQueryAll", {}, ts, 5000))
    resp = sim_client.get(FILLS, headers={"X-API-Key": api_key, "X-Signature": signature, "X-Timestamp": str(ts)})
    _unauthorized(resp, "signature")


def test_auth__unknown_key(sim_client):
    secret = base64.b64encode(bytes(range(1, 33))).decode()
    from importers.backpack.signing import public_key_of

    resp = signed_request(sim_client, (public_key_of(secret), secret), FILLS, FILLS_I)
    _unauthorized(resp, "api key")


def test_auth__expired(signed_get):
    resp = signed_get(FILLS, FILLS_I, timestamp=int(time.time() * 1000) - 5001 - 1000)
    _unauthorized(resp, "expired")


def test_auth__future(signed_get):
    resp = signed_get(FILLS, FILLS_I, timestamp=int(time.time() * 1000) + 5000 + 2000)
    _unauthorized(resp, "future")


def test_auth__wide_window_accepts_old_timestamp(signed_get):
    resp = signed_get(FILLS, FILLS_I, timestamp=int(time.time() * 1000) - 30_000, window=60000)
    assert resp.status_code == 200


def test_auth__window_above_maximum(signed_get):
    resp = signed_get(FILLS, FILLS_I, window=60001)
    assert resp.status_code == 400
    assert resp.json()["code"] == "INVALID_CLIENT_REQUEST"


def test_auth__absent_window_signs_default(signed_get):
    resp = signed_get(FILLS, FILLS_I, {"limit": "2"}, window=None)
    assert resp.status_code == 200


@pytest.mark.parametrize("drop", ["X-API-Key", "X-Signature", "X-Timestamp"])
def test_auth__missing_header(sim_client, sim, drop):
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    headers = {"X-API-Key": api_key, "X-Signature": sign(secret, signing_string(FILLS_I, {}, ts, 5000)),
               "X-Timestamp": str(ts)}
    del headers[drop]
    _unauthorized(sim_client.get(FILLS, headers=headers), drop)


def test_auth__unknown_headers_ignored(signed_get):
    resp = signed_get(FILLS, FILLS_I, {"limit": "1"}, headers={"X-Broker-Id": "1400", "X-Whatever": "x"})
    assert resp.status_code == 200


def test_auth__percent_encoded_signature_accepted(sim_client, sim):
    """ccxt signs percent-encoded values (``sources=AutoLend%2CManual``); the simulator accepts both forms."""
    api_key, secret = sim.accounts["main"]
    params = {"sources": "Interest,Manual", "limit": "3"}
    for form in ("raw", "encoded"):
        ts = int(time.time() * 1000)
        signed = params if form == "raw" else {k: quote(v, safe="") for k, v in params.items()}
        signature = sign(secret, signing_string("borrowHistoryQueryAll", signed, ts, 5000))
        resp = sim_client.get("/wapi/v1/history/borrowLend", params=params,
                              headers={"X-API-Key": api_key, "X-Signature": signature, "X-Timestamp": str(ts)})
        assert resp.status_code == 200, (form, resp.text)


def test_auth__sub_account_key_serves_its_own_history(signed_get, sim):
    main = signed_get("/api/v1/capital", "balanceQuery").json()
    sub = signed_get("/api/v1/capital", "balanceQuery", account="sub1").json()
    assert main != sub
    assert set(sub) <= set(main) | {"USDC", "SOL", "USDT"}


def test_auth__signed_body_on_delete(sim_client, sim):
    """Bodies are verified from the JSON values (the official DELETE example); writes are then refused."""
    api_key, secret = sim.accounts["main"]
    ts = int(time.time() * 1000)
    body = {"orderId": 28, "symbol": "BTC_USDT"}
    signature = sign(secret, signing_string("orderCancel", body, ts, 5000))
    headers = {"X-API-Key": api_key, "X-Signature": signature, "X-Timestamp": str(ts),
               "Content-Type": "application/json; charset=utf-8"}
    resp = sim_client.request("DELETE", "/api/v1/order", json=body, headers=headers)
    assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN"
    tampered = sim_client.request("DELETE", "/api/v1/order", json={**body, "orderId": 29}, headers=headers)
    _unauthorized(tampered, "signature")
