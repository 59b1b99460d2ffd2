"""The known-answer test vectors of the signature, shipped with the package."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

__all__ = ["signature_vectors"]


def signature_vectors() -> list[dict[str, Any]]:
    """The known-answer vectors of signed requests (``signature_vectors.json``).

    Each vector gives the inputs (``secret``, ``key_id``, ``timestamp``,
    ``nonce``, ``method``, ``path``, ``query``, ``headers``, ``body`` as
    UTF-8 text) and the expected ``body_sha256``, ``canonical_request``,
    ``signature`` and ``authorization``. A client in another language can
    check itself against the same file.
    """
    text = files("pyservice_auth").joinpath("signature_vectors.json").read_text(encoding="utf-8")
    vectors: list[dict[str, Any]] = json.loads(text)["vectors"]
    return vectors
