"""The /status document of a service (provider/core/status.py)."""

from __future__ import annotations

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
    blue = make_container("web", "blue", extra={"bluegreen.replicas": "2"})
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
    } == {k: v for k, v in colors["blue"].items() if k != "containers"}
    assert {"routable": 0, "replicas": 1, "ready": False, "rule": None, "promote": None} == {
        k: v for k, v in colors["green"].items() if k != "containers"
    }
    assert [blue.id[:12]] == [c["id"] for c in colors["blue"]["containers"]]
