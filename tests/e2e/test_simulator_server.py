"""``run_cli`` in a subprocess: one JSON line on start, a free port, clean exit on SIGTERM, exit 2 on bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx

from .conftest import signed_request

RUN = ("import sys; from importers.backpack.simulator.server import run_cli; "
       "sys.exit(run_cli('127.0.0.1', 0, {seed}, {fills}, {scenario!r}, {faults!r}, {dump!r}))")


def _spawn(seed=5, fills=80, scenario=None, faults=None, dump=None):
    code = RUN.format(seed=seed, fills=fills, scenario=scenario, faults=faults, dump=dump)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_server__prints_line_serves_and_stops_on_sigterm():
    proc = _spawn()
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert set(info) == {"base_url", "ws_url", "api_key", "api_secret", "subaccounts"}
        assert info["base_url"].startswith("http://127.0.0.1:") and not info["base_url"].endswith(":0")
        assert [s["name"] for s in info["subaccounts"]] == ["sub1"]
        with httpx.Client(base_url=info["base_url"]) as client:
            resp = signed_request(client, (info["api_key"], info["api_secret"]), "/api/v1/capital", "balanceQuery")
            assert resp.status_code == 200 and "USDC" in resp.json()
            sub = info["subaccounts"][0]
            resp = signed_request(client, (sub["api_key"], sub["api_secret"]), "/api/v1/capital", "balanceQuery")
            assert resp.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_server__dump_scenario_then_serve_it(tmp_path):
    dump = tmp_path / "account.json"
    proc = _spawn(dump=str(dump))
    assert proc.wait(timeout=60) == 0
    doc = json.loads(dump.read_text())
    assert len(doc["fills"]) == 80 and doc["subaccounts"][0]["name"] == "sub1"
    proc = _spawn(scenario=str(dump))
    try:
        info = json.loads(proc.stdout.readline())
        with httpx.Client(base_url=info["base_url"]) as client:
            rows = signed_request(client, (info["api_key"], info["api_secret"]), "/wapi/v1/history/fills",
                                  "fillHistoryQueryAll", {"limit": "1000"}).json()
        assert len(rows) == 80
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_server__malformed_scenario_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fills": [{"orderId": "1"}]}))
    proc = _spawn(scenario=str(bad))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "fills[0]" in lines[0]


def test_server__bad_faults_exit_2():
    proc = _spawn(faults="429=7")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "429" in err
