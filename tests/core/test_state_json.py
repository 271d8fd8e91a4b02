"""The state file's codec keeps its bytes: files an older provider wrote load and are
written back byte for byte.

``tests/data/state/*.json`` were written by the code at cb4bf50 (``store.save`` and the
Swarm store's ``encode``), before the codec moved into ``provider/core/state_json.py``,
from the state :func:`golden_state` builds: every kind of value a state holds (marks of
both kinds, an anchor and none, a record with figures and one with an empty detail, a
running, an aborted and a waiting canary, non-ASCII text, tiny and large floats).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provider import store
from provider.core import state_json
from provider.core.canary_analysis import Window
from provider.core.model import (
    Canary,
    Color,
    ColorMark,
    Limits,
    MarkKind,
    Phase,
    ServiceState,
    State,
    StepResult,
    SwitchRecord,
    Verdict,
)
from provider.errors import StateFileError

DATA = Path(__file__).resolve().parents[1] / "data" / "state"
B, G = Color.BLUE, Color.GREEN
R1 = SwitchRecord("web", None, B, "adopted", "watcher", 1700000000.25, 1)


def golden_state() -> State:
    """The state behind ``full.json`` (the same calls that wrote it at cb4bf50)."""
    r2 = SwitchRecord("web", B, G, "manual — café ☕", "api", 1700000100.5, 2)
    figures = {"step": 2, "weight": 50, "verdict": "pass", "requests": 120, "errors": 1}
    figures |= {"error_rate": 0.008333, "p99_ms": 12.5}
    r3 = SwitchRecord("api", G, B, "canary", "canary", 1700000200.0, 3, detail=figures)
    r4 = SwitchRecord("api", B, G, "rollback", "auto", 1.0e-7, 4, detail={})
    services = {
        "web": ServiceState(
            G, B, r2, 1699999999.0, 1700000100.5,
            {B: ColorMark(MarkKind.REJECTED, 1700000100.5, "rolled back")},
        ),
        "api": ServiceState(
            G, B, r4, 12.0, None,
            {G: ColorMark(MarkKind.RETIRING, 5.0, "retire"),
             B: ColorMark(MarkKind.REJECTED, 4.0, "bad")},
        ),
        "old": ServiceState(B),
    }  # fmt: skip
    results = (
        StepResult(0, 5, Verdict.PASS, "ok", 1700000360.0, Window(100, 0, 3.25), 0),
        StepResult(1, 50, Verdict.EXTEND, "few", 1700000420.0, None, 1),
    )
    running = Canary(
        "web", G, B, (5, 50, 100), 60.0, Limits(0.01, None, 50), 1700000300.0, 1700000360.0,
        Phase.RUNNING, 1, 2, results, ("passed on health alone",), None, None, None,
    )  # fmt: skip
    breach = (StepResult(0, 10, Verdict.BREACH, "5xx", 3.0, Window(10, 9, None), 0),)
    aborted = Canary(
        "api", B, G, (10, 100), 0.5, Limits(0.5, 250.0, 0), 1.0, 2.0, Phase.ABORTED, 0, 0,
        breach, (), 4.0, "breach", 0.5,
    )  # fmt: skip
    waiting = Canary(
        "old", G, B, (100,), 30.0, Limits(), 7.0, 7.0, Phase.WAITING, 0, 0, (), (), None, None, 6.5
    )
    canaries = {"web": running, "api": aborted, "old": waiting}
    return State(services=services, history=(R1, r2, r3, r4), seq=4, canaries=canaries)


NO_CANARIES = State(services={"x": ServiceState(B)}, history=(R1,), seq=1)


@pytest.mark.parametrize(
    ("name", "state"), [("full.json", golden_state()), ("no-canaries.json", NO_CANARIES)]
)
def test_old_state_files_load_and_are_written_back_byte_for_byte(
    name: str, state: State, tmp_path: Path
) -> None:
    """A file written at cb4bf50 decodes to the state it was written from, and saving that
    state again (through the store's atomic write) gives the same bytes."""
    golden = (DATA / name).read_bytes()
    assert state == store.load(DATA / name)
    assert golden == state_json.encode(state)
    store.save(tmp_path / name, store.load(DATA / name))
    assert golden == (tmp_path / name).read_bytes()


def test_the_swarm_stores_compact_form_keeps_its_bytes() -> None:
    """The Swarm config's data (the same document, no whitespace) is unchanged too."""
    golden = (DATA / "full-compact.json").read_bytes()
    assert golden_state() == state_json.from_doc(json.loads(golden))
    assert golden == state_json.encode_compact(golden_state())


def test_a_state_without_canaries_has_no_canaries_key() -> None:
    """Files without canaries keep the shape they had before canaries existed."""
    assert "canaries" not in state_json.to_doc(NO_CANARIES)
    assert "canaries" in state_json.to_doc(golden_state())


def test_keys_added_later_are_optional() -> None:
    """A file from before marks, anchors and first_seen existed loads with their defaults."""
    doc = json.loads((DATA / "no-canaries.json").read_bytes())
    for key in ("marks", "anchor", "first_seen"):
        del doc["services"]["x"][key]
    assert NO_CANARIES == state_json.from_doc(doc)


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"version": 2, "seq": 0, "services": {}, "history": []},
        {"version": 1, "seq": 0, "services": {"x": {"active": "red"}}, "history": []},
        {"version": 1, "seq": 1e999, "services": {}, "history": []},
        {"version": 1, "seq": 0, "services": {}, "history": [[]]},
        {"version": 1, "seq": 0, "services": {}, "history": [], "canaries": []},
    ],
)
def test_a_document_that_is_no_state_is_a_shape_error(doc: object) -> None:
    """The codec raises one error type; the store turns it into StateFileError."""
    with pytest.raises(state_json.StateShapeError, match="unexpected shape"):
        state_json.from_doc(doc)
    with pytest.raises(StateFileError, match="unexpected shape"):
        store.from_json(doc)
