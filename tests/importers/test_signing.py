"""Request signing against the golden vectors of ../shared/backpack-api/signing-vectors.json.

The vectors are vendored in tests/data/ with the sha256 of the shared ground truth, so every checkout
tests them and proves the copy unchanged; when the shared folder is beside the checkout, the test also
proves the ground truth is still the recorded one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import nacl.signing
import pytest

from importers.backpack import signing
from importers.backpack.errors import BackpackError, KeyError_
from importers.backpack.signing import Credentials, batch_signing_string, signing_string, verify

VENDORED = Path(__file__).resolve().parents[1] / "data" / "signing-vectors.json"
SHARED = Path(os.environ.get("BACKPACK_API_DIR", Path(__file__).resolve().parents[3] / "shared" / "backpack-api")) / "signing-vectors.json"
VECTORS = json.loads(VENDORED.read_text())
CASES = VECTORS["cases"]
SEED_B64 = VECTORS["key"]["seed_b64"]
PUBLIC_B64 = VECTORS["key"]["public_key_b64"]


def _string_of(case: dict) -> str:
    if case["params_location"] == "json_array_body":
        return batch_signing_string(case["instruction"], case["params"], case["timestamp"], case["window"])
    return signing_string(case["instruction"], case["params"], case["timestamp"], case["window"])


#: sha256 of ../shared/backpack-api/signing-vectors.json, recorded beside the vendored copy when it was
#: vendored: the copy is checked against it in every checkout, the shared folder beside it or not.
GROUND_TRUTH_SHA256 = (VENDORED.parent / "signing-vectors.json.sha256").read_text().split()[0]


def test_vectors__vendored_copy_is_the_recorded_ground_truth_in_every_checkout():
    assert hashlib.sha256(VENDORED.read_bytes()).hexdigest() == GROUND_TRUTH_SHA256
    if SHARED.exists():  # beside the shared folder: the ground truth itself is still the recorded one
        assert hashlib.sha256(SHARED.read_bytes()).hexdigest() == GROUND_TRUTH_SHA256
        assert json.loads(SHARED.read_text()) == VECTORS


def test_vectors__all_eleven_present():
    assert len(CASES) == 11


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_signing_string__matches_vector_byte_for_byte(case):
    assert _string_of(case).encode("utf-8") == case["expected_signing_string"].encode("utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_signature__matches_vector_byte_for_byte(case):
    creds = Credentials.from_base64(PUBLIC_B64, SEED_B64)
    assert creds.sign(_string_of(case)) == case["expected_signature_b64"]
    assert signing.sign(SEED_B64, _string_of(case)) == case["expected_signature_b64"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_verify__accepts_each_vector_and_rejects_a_tampered_one(case):
    assert verify(PUBLIC_B64, case["expected_signing_string"], case["expected_signature_b64"])
    assert not verify(PUBLIC_B64, case["expected_signing_string"] + "&x=1", case["expected_signature_b64"])


def test_public_key_of__derives_the_vector_key():
    assert signing.public_key_of(SEED_B64) == PUBLIC_B64


def test_credentials__accepts_64_byte_seed_plus_public_key():
    full = base64.b64encode(base64.b64decode(SEED_B64) + base64.b64decode(PUBLIC_B64)).decode()
    creds = Credentials.from_base64(PUBLIC_B64, full)
    assert creds.sign("x") == signing.sign(SEED_B64, "x")


OTHER_PUBLIC = base64.b64encode(bytes(nacl.signing.SigningKey(bytes(range(2, 34))).verify_key)).decode()
MALFORMED = {
    "secret_not_base64": (PUBLIC_B64, "not*base64!", "API secret", "base64"),
    "secret_empty": (PUBLIC_B64, "", "API secret", "empty"),
    "secret_wrong_length": (PUBLIC_B64, base64.b64encode(b"\x01" * 31).decode(), "API secret", "31"),
    "secret_64_mismatching_half": (
        PUBLIC_B64, base64.b64encode(base64.b64decode(SEED_B64) + b"\x00" * 32).decode(), "API secret", "second half"),
    "key_not_base64": ("@@@", SEED_B64, "API key", "base64"),
    "key_wrong_length": (base64.b64encode(b"\x01" * 33).decode(), SEED_B64, "API key", "33"),
    "key_not_matching_secret": (OTHER_PUBLIC, SEED_B64, "API key", "does not match"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_credentials__malformed_key_gives_one_line_naming_which(name):
    key, secret, which, why = MALFORMED[name]
    with pytest.raises(KeyError_) as info:
        Credentials.from_base64(key, secret)
    text = str(info.value)
    assert text.startswith(which) and why in text
    assert "\n" not in text
    assert isinstance(info.value, BackpackError) and isinstance(info.value, ValueError)
    if secret:
        assert secret not in text


def test_credentials__repr_and_str_hide_the_secret():
    creds = Credentials.from_base64(PUBLIC_B64, SEED_B64)
    for text in (repr(creds), str(creds), f"{creds}"):
        assert SEED_B64 not in text and "hidden" in text
