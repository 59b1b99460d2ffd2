"""The canonical form and the signature header, against the known-answer vectors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import independent_signer
import pytest
from pyservice_auth import (
    SignatureHeader,
    authorization_header,
    canonical_request,
    parse_signature_header,
    sign,
    signature_vectors,
)

VECTORS = signature_vectors()


def _canonical(vector: dict) -> str:
    return canonical_request(
        key_id=vector["key_id"],
        timestamp=vector["timestamp"],
        nonce=vector["nonce"],
        method=vector["method"],
        path=vector["path"],
        query=vector["query"],
        headers={name.lower(): value for name, value in vector["headers"].items()},
        body=vector["body"].encode("utf-8"),
    )


def test_the_vectors_file_is_shipped_inside_the_package() -> None:
    import pyservice_auth

    path = Path(pyservice_auth.__file__).parent / "signature_vectors.json"
    assert json.loads(path.read_text(encoding="utf-8"))["vectors"] == VECTORS
    assert len(VECTORS) >= 5


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_the_plugin_builds_each_vectors_canonical_request(vector: dict) -> None:
    assert _canonical(vector) == vector["canonical_request"]
    assert hashlib.sha256(vector["body"].encode("utf-8")).hexdigest() == vector["body_sha256"]


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_the_plugin_signs_each_vector_as_expected(vector: dict) -> None:
    signature = sign(vector["secret"].encode("utf-8"), _canonical(vector))
    assert signature == vector["signature"]
    assert (
        authorization_header(vector["key_id"], vector["timestamp"], vector["nonce"], signature)
        == (vector["authorization"])
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_the_independent_implementation_agrees_with_each_vector(vector: dict) -> None:
    assert independent_signer.vector(vector["name"], **_inputs(vector)) == vector


def _inputs(vector: dict) -> dict:
    names = ("secret", "key_id", "timestamp", "nonce", "method", "path", "query", "headers", "body")
    return {name: vector[name] for name in names}


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_each_vectors_header_parses_back_to_its_parts(vector: dict) -> None:
    assert parse_signature_header(vector["authorization"]) == SignatureHeader(
        vector["key_id"], vector["timestamp"], vector["nonce"], vector["signature"]
    )


@pytest.mark.parametrize(
    ("component", "kwargs"),
    [
        ("path", {"path": "/api/v1/echo\nx"}),
        ("path", {"query": "a=1\r\nb"}),
        ("content-type", {"headers": {"content-type": "application/json\nidempotency-key:x"}}),
    ],
)
def test_a_control_character_in_a_component_is_refused(component: str, kwargs: dict) -> None:
    base = {
        "key_id": "k",
        "timestamp": 1,
        "nonce": "n" * 16,
        "method": "POST",
        "path": "/p",
        "headers": {},
        "body": b"",
    }
    with pytest.raises(ValueError, match=f"the {component} of a signed request"):
        canonical_request(**{**base, **kwargs})


def test_a_trailing_newline_after_the_header_is_refused() -> None:
    header = VECTORS[0]["authorization"]
    assert parse_signature_header(header + "\n") is None
    assert parse_signature_header(header + " ") is None
