"""The OpenAPI 3.0 description served at ``/openapi.json``, loaded from ``openapi.yaml``.

The document is data in the package (issue 20), not code: a reader edits one
YAML file, and the wheel and the image ship it as package data. It is loaded
and serialized once, at import, with sorted keys, so every request is answered
the same bytes (house style 5) and a broken file stops the server at start
rather than on the first request. ``tests/api/test_openapi.py`` keeps the document
true to the handlers. Pure: no I/O framework, so the test tiers can import it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import yaml

#: The file beside this module that holds the document.
RESOURCE = "openapi.yaml"


def load() -> dict[str, Any]:
    """Parse the packaged document (anchors resolved; a fresh object on every call)."""
    text = resources.files(__package__).joinpath(RESOURCE).read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    if not isinstance(spec, dict) or "paths" not in spec:
        raise ValueError(f"{RESOURCE}: not an OpenAPI document")
    return spec


def serialize(spec: dict[str, Any]) -> bytes:
    """The body ``GET /openapi.json`` answers: JSON with sorted keys."""
    return json.dumps(spec, sort_keys=True).encode()


SPEC: dict[str, Any] = load()
#: Serialized once: the document never changes while the server runs.
BODY: bytes = serialize(SPEC)
