"""The /status document of a service (provider/core/status.py)."""

from __future__ import annotations

import dataclasses

from provider.core.model import Color, Health, ServiceState, SwitchRecord
from provider.core.routing import Options, observe
from provider.core.state_json import record_doc
from provider.core.status import service_status
from tests.factories import make_container

OPTIONS = Options()


def test_status_of_a_service_not_adopted() -> None:
    """Not in the state file: ``adopted`` false, no previous color, no last switch."""
    view = observe([make_container("web", "blue", health=Health.STARTING)], OPTIONS).services["web"]
    doc = service_status(
        view, None, Color.BLUE, pending=None, docker_connected=True, shown_stale=False
    )
    assert (False, None, None) == (doc["adopted"], doc["previous"], doc["last_switch"])


def test_status_documents_each_color_and_container() -> None:
    """The README's keys: per color counts, readiness, rule, promote; per container a 12-char id."""
    blue = dataclasses.replace(
        make_container("web", "blue", extra={"bluegreen.replicas": "2"}),
        image="shop:1.4",
        image_id="sha256:" + "3f57d9401f8d" + "0" * 52,
    )
    view = observe([blue], OPTIONS).services["web"]
    record = SwitchRecord("web", Color.GREEN, Color.BLUE, "manual", "api", 5.0, 1)
    state = ServiceState(Color.BLUE, Color.GREEN, record, 1.0)
    doc = service_status(
        view, state, Color.BLUE, pending=None, docker_connected=True, shown_stale=False
    )
    assert (True, "green", record_doc(record)) == (
        doc["adopted"],
        doc["previous"],
        doc["last_switch"],
    )
    colors = doc["colors"]
    assert {
        "routable": 1,
        "replicas": 2,
        "ready": False,
        "rule": "Host(`web`)",
        "promote": "auto",
        "image": "shop:1.4",
    } == {k: v for k, v in colors["blue"].items() if k != "containers"}
    assert {
        "routable": 0,
        "replicas": 1,
        "ready": False,
        "rule": None,
        "promote": None,
        "image": None,
    } == {k: v for k, v in colors["green"].items() if k != "containers"}
    assert [(blue.id[:12], "shop:1.4", "3f57d9401f8d")] == [
        (c["id"], c["image"], c["image_id"]) for c in colors["blue"]["containers"]
    ]


def test_a_switch_records_the_images_it_moved_between() -> None:
    """Which version was live before and after: the record keeps each color's newest
    container's image, and the state file round-trips it (history shows it)."""
    from provider.core import commands
    from provider.core.commands import Now
    from provider.core.model import State
    from provider.core.state_json import from_doc, record_doc, to_doc

    old = dataclasses.replace(make_container("web", "blue", created=1.0), image="shop:1.4")
    new = dataclasses.replace(
        make_container("web", "green", port=8081, created=2.0), image="shop:1.5"
    )
    view = observe([old, new], OPTIONS).services["web"]
    state = State(services={"web": ServiceState(Color.BLUE, first_seen=0.5)})

    decision = commands.decide(
        state,
        view,
        commands.Switch("web", Color.GREEN, force=False, reason="manual", actor="api"),
        Now(wall=10.0, daemon=10.0),
        history_limit=10,
    )

    assert decision.record is not None
    assert {"from": "shop:1.4", "to": "shop:1.5"} == record_doc(decision.record)["images"]
    assert decision.state.history == from_doc(to_doc(decision.state)).history
