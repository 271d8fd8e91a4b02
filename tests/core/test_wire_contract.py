"""The typed documents (``provider/core/wire.py``) and ``provider/openapi.yaml`` agree.

The provider builds its answers as the TypedDicts and the CLI reads them
through the same ones (mypy checks both sides); this pins the third copy of
the contract, the published spec: each documented schema names exactly the
TypedDict's keys, and a key the spec requires is one the TypedDict always holds.
"""

from __future__ import annotations

from typing import Any

import pytest

from provider.core import state_json, wire
from provider.openapi import SPEC

SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


@pytest.mark.parametrize("name", sorted(wire.SCHEMAS))
def test_each_typed_document_has_the_keys_its_schema_documents(name: str) -> None:
    """Same key names on both sides, no more, no fewer."""
    typed = wire.SCHEMAS[name]
    assert sorted(SCHEMAS[name]["properties"]) == sorted(typed.__annotations__)


@pytest.mark.parametrize("name", sorted(wire.SCHEMAS))
def test_what_the_spec_requires_the_type_always_holds(name: str) -> None:
    """A required key of the spec is never ``NotRequired`` in the TypedDict."""
    typed = wire.SCHEMAS[name]
    assert set() == set(SCHEMAS[name].get("required", ())) - set(typed.__required_keys__)


def test_every_response_schema_of_a_typed_document_is_listed() -> None:
    """The schemas of /status, the command answers and the events all have a TypedDict."""
    typed_elsewhere = {"Error", "Ready"}  # the API's own small answers
    assert set() == set(SCHEMAS) - set(wire.SCHEMAS) - typed_elsewhere


def test_optional_keys_are_the_documented_ones() -> None:
    """Only a plain switch's ``detail`` and ``POST /canary``'s ``active`` may be absent from
    an answer, and only ``canaries``, ``maintenance`` and ``bakes`` from the state file: every other
    key is always written. The file's canary is ``/status``'s without ``analysis``."""
    optional = {(n, k) for n, t in wire.SCHEMAS.items() for k in t.__optional_keys__}
    assert {
        ("SwitchRecord", "detail"),
        ("SwitchRecord", "images"),
        ("SwitchResult", "traefik"),
        ("CanaryResult", "active"),
    } == optional
    assert {"canaries", "maintenance", "bakes"} == state_json.StateDoc.__optional_keys__
    stored = set(wire.StoredCanaryDoc.__annotations__)
    assert {"analysis"} == set(wire.CanaryDoc.__annotations__) - stored
