"""Headless LibreOffice and Chromium for the report tests: found, or installed with apt-get when missing.

A test that needs one calls ``soffice()``/``chromium()``: the path of the binary, installing Debian's
package (``libreoffice-calc``, ``chromium``) if it is absent. If the install fails the test is skipped
locally and fails under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_TRIED: dict[str, str | None] = {}


def _need(binary: str, package: str) -> str:
    if binary in _TRIED and _TRIED[binary]:
        return _TRIED[binary]  # type: ignore[return-value]
    path = shutil.which(binary)
    if path is None and binary not in _TRIED:
        try:
            subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", package], capture_output=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass
        path = shutil.which(binary)
    _TRIED[binary] = path
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{binary} is missing and `apt-get install -y {package}` did not install it (CI=true)")
        pytest.skip(f"{binary} is missing and `apt-get install -y {package}` did not install it")
    return path


def soffice() -> str:
    return _need("soffice", "libreoffice-calc")


def chromium() -> str:
    return _need("chromium", "chromium")


def chromium_flags(profile) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"]
