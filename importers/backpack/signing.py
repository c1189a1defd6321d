"""Backpack Exchange request signing: pure functions, shared by the client and the simulator.

The recipe (REFERENCE.md §2.3, reproduced byte for byte by ``tests/importers/test_signing.py``
against ``signing-vectors.json``)::

    instruction=<name>[&k=v ...sorted by key]&timestamp=<ms>&window=<ms>

Values are rendered as sent: strings verbatim, integers as digits, booleans lowercase, absent or
null keys left out. Values containing characters that URLs percent-encode are signed in their raw
(decoded) form; that choice lives in :data:`SIGN_RAW_VALUES` (docs/assumptions.md, A-SIGN-1).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import nacl.exceptions
import nacl.signing

from importers.backpack.errors import KeyError_

__all__ = [
    "DEFAULT_WINDOW_MS",
    "MAX_WINDOW_MS",
    "KeyError_",
    "SIGN_RAW_VALUES",
    "Credentials",
    "render_value",
    "signing_string",
    "batch_signing_string",
    "sign",
    "verify",
    "public_key_of",
]

DEFAULT_WINDOW_MS = 5000
MAX_WINDOW_MS = 60000

#: A-SIGN-1: sign the raw (decoded) value, as bpx-py, backpack-exchange-sdk and the exchange's own
#: Rust client do. Flip to False to sign the percent-encoded form (ccxt's behaviour).
SIGN_RAW_VALUES = True


def render_value(value: Any, *, raw: bool = SIGN_RAW_VALUES) -> str:
    """Render one parameter value the way it appears in the signing string."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list)):
        # A-SIGN-2: nested values are signed as compact JSON (the exchange's Rust client's form).
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    elif isinstance(value, float):
        raise TypeError("refusing to sign a float parameter: send decimals as strings")
    else:
        raise TypeError(f"cannot sign a parameter of type {type(value).__name__}")
    return text if raw else quote(text, safe="")


def _params_part(params: Mapping[str, Any] | None, *, raw: bool) -> str:
    if not params:
        return ""
    items = [(k, v) for k, v in params.items() if v is not None]
    items.sort(key=lambda kv: kv[0])
    return "".join(f"&{k}={render_value(v, raw=raw)}" for k, v in items)


def signing_string(
    instruction: str,
    params: Mapping[str, Any] | None,
    timestamp_ms: int,
    window_ms: int = DEFAULT_WINDOW_MS,
    *,
    raw: bool = SIGN_RAW_VALUES,
) -> str:
    """The exact string that is signed for one request."""
    return f"instruction={instruction}{_params_part(params, raw=raw)}&timestamp={timestamp_ms}&window={window_ms}"


def batch_signing_string(
    instruction: str,
    orders: Sequence[Mapping[str, Any]],
    timestamp_ms: int,
    window_ms: int = DEFAULT_WINDOW_MS,
    *,
    raw: bool = SIGN_RAW_VALUES,
) -> str:
    """Batch form (POST /api/v1/orders): one segment per element, in array order."""
    segments = [f"instruction={instruction}{_params_part(o, raw=raw)}" for o in orders]
    return "&".join(segments) + f"&timestamp={timestamp_ms}&window={window_ms}"


def _b64decode(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not text.strip():
        raise KeyError_(f"{what} is empty")
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyError_(f"{what} is not valid standard base64") from None


@dataclass(frozen=True)
class Credentials:
    """An API key pair. The secret seed is held but never shown: repr and str hide it."""

    api_key: str
    _signer: nacl.signing.SigningKey = field(repr=False, compare=False)

    @classmethod
    def from_base64(cls, api_key: str, api_secret: str) -> "Credentials":
        """Build from the exchange's base64 forms; accepts a 32-byte seed or a 64-byte seed||public key."""
        secret = _b64decode(api_secret, "API secret")
        if len(secret) not in (32, 64):
            raise KeyError_(f"API secret must decode to 32 bytes (an Ed25519 seed) or 64 bytes, got {len(secret)}")
        signer = nacl.signing.SigningKey(secret[:32])
        derived = bytes(signer.verify_key)
        if len(secret) == 64 and secret[32:] != derived:
            raise KeyError_("API secret is 64 bytes but its second half is not the public key of its seed")
        key = _b64decode(api_key, "API key")
        if len(key) != 32:
            raise KeyError_(f"API key must decode to 32 bytes (an Ed25519 public key), got {len(key)}")
        if key != derived:
            raise KeyError_("API key does not match the API secret (the secret's public key differs)")
        return cls(api_key=api_key.strip(), _signer=signer)

    def sign(self, message: str) -> str:
        return base64.b64encode(self._signer.sign(message.encode("utf-8")).signature).decode("ascii")

    def __repr__(self) -> str:  # pragma: no cover - trivial, but tested for secrecy
        return f"Credentials(api_key={self.api_key!r}, api_secret=<hidden>)"

    __str__ = __repr__


def sign(seed_b64: str, message: str) -> str:
    """Sign a message with a base64 seed; returns base64 signature (test helper and simulator)."""
    seed = _b64decode(seed_b64, "API secret")[:32]
    return base64.b64encode(nacl.signing.SigningKey(seed).sign(message.encode("utf-8")).signature).decode("ascii")


def public_key_of(seed_b64: str) -> str:
    seed = _b64decode(seed_b64, "API secret")[:32]
    return base64.b64encode(bytes(nacl.signing.SigningKey(seed).verify_key)).decode("ascii")


def verify(api_key_b64: str, message: str, signature_b64: str) -> bool:
    """True when signature_b64 is a valid Ed25519 signature of message by api_key_b64."""
    try:
        key = nacl.signing.VerifyKey(base64.b64decode(api_key_b64, validate=True))
        key.verify(message.encode("utf-8"), base64.b64decode(signature_b64, validate=True))
        return True
    except (nacl.exceptions.BadSignatureError, binascii.Error, ValueError, TypeError):
        return False
