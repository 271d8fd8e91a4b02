"""Maintenance mode in the pure core: the decision (provider/core/maintenance.py through
``commands.decide``), its render (the public router to the page, previews to the colors),
and its place in the state file (absent when off: old files keep their bytes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provider.core import commands, state_json
from provider.core.maintenance import REASON_OFF, REASON_ON, SetMaintenance, retry_after_of
from provider.core.model import Color, Maintenance, ServiceState, State, SwitchRecord
from provider.core.refusals import BadCommand
from provider.core.render import maintenance_name, render, serialize
from provider.core.routing import Options, ServiceView, observe
from tests.factories import make_container

B, G = Color.BLUE, Color.GREEN
NOW = commands.Now(wall=1000.0, daemon=1000.0)
ADOPTED = State(services={"web": ServiceState(active=G, previous=B)}, seq=4)
URL = "http://127.0.0.1:8080"


def _view() -> ServiceView:
    containers = [
        make_container("web", "blue", port=8081),
        make_container("web", "green", port=8082),
    ]
    return observe(containers, Options()).services["web"]


def _decide(state: State, command: SetMaintenance) -> commands.Decision:
    return commands.decide(state, _view(), command, NOW, history_limit=10)


def test_on_persists_the_page_and_records_it_without_moving_traffic() -> None:
    """On: the state holds message and Retry-After; the record goes from and to the active
    color (reason maintenance-on), so nothing reads it as a switch."""
    command = SetMaintenance(
        "web", True, message="Migrating", retry_after=60, reason="v2", actor="a"
    )
    decision = _decide(ADOPTED, command)
    assert decision.state is not None
    assert {"web": Maintenance("Migrating", 60, 1000.0, "a", "v2")} == decision.state.maintenance
    detail = {"message": "Migrating", "retry_after": 60, "reason": "v2"}
    record = SwitchRecord("web", G, G, REASON_ON, "a", 1000.0, 5, detail=detail)
    assert record == decision.maintenance
    assert (record,) == decision.state.history
    assert ADOPTED.services == decision.state.services
    assert decision.record is None  # not a switch: no switch announced


@pytest.mark.parametrize(
    ("before", "command", "changes"),
    [
        (None, SetMaintenance("web", False), False),  # off when off
        (Maintenance("m", 30, 5.0, "api"), SetMaintenance("web", True, "m", 30), False),
        (Maintenance("m", 30, 5.0, "api"), SetMaintenance("web", True, "m", 31), True),
        (Maintenance("m", 30, 5.0, "api"), SetMaintenance("web", True, "n", 30), True),
        (Maintenance("m", 30, 5.0, "api"), SetMaintenance("web", False), True),
        (None, SetMaintenance("web", True), True),
    ],
)
def test_a_repeated_command_changes_nothing(
    before: Maintenance | None, command: SetMaintenance, changes: bool
) -> None:
    """On with the same page, or off when off: nothing to commit (a retried CLI is harmless)."""
    state = (
        ADOPTED if before is None else State(ADOPTED.services, seq=4, maintenance={"web": before})
    )
    decision = _decide(state, command)
    assert changes == (decision.state is not None)
    assert changes == (decision.maintenance is not None)


def test_changing_the_page_keeps_when_it_started_and_off_says_how_long() -> None:
    """A new message keeps ``since``; off removes the entry and records the duration."""
    state = State(ADOPTED.services, seq=4, maintenance={"web": Maintenance("m", 30, 400.0, "x")})
    updated = _decide(state, SetMaintenance("web", True, "n", 30)).state
    assert updated is not None
    assert 400.0 == updated.maintenance["web"].since
    off = _decide(updated, SetMaintenance("web", False, reason="done"))
    assert off.state is not None and {} == off.state.maintenance
    assert off.maintenance is not None
    assert (REASON_OFF, {"reason": "done", "seconds": 600.0}) == (
        off.maintenance.reason,
        off.maintenance.detail,
    )


@pytest.mark.parametrize(
    "command",
    [
        SetMaintenance("web", True, retry_after=0),
        SetMaintenance("web", True, retry_after=86401),
        SetMaintenance("web", True, message="x" * 501),
        SetMaintenance("web", False, reason="r" * 201),
    ],
)
def test_out_of_range_arguments_are_refused(command: SetMaintenance) -> None:
    """Retry-After 1..86400 s, message ≤ 500 and reason ≤ 200 characters: else a 400."""
    with pytest.raises(BadCommand):
        _decide(ADOPTED, command)


def _render(state: State, options: Options) -> dict[str, Any]:
    views = {"web": _view()}
    config = render(views, {"web": B}, options, None, retry_after_of(state))
    parsed: dict[str, Any] = json.loads(serialize(config))
    return parsed


ON = State(ADOPTED.services, maintenance={"web": Maintenance("m", 45, 1.0, "api")})


def test_while_on_the_public_router_goes_to_the_provider_page_and_previews_to_colors() -> None:
    """The public router's service is the page (the provider, path replaced); the preview
    routers still target the colors; nothing else changes."""
    plain = _render(ADOPTED, Options(maintenance_url=URL))
    config = _render(ON, Options(maintenance_url=URL))
    page = maintenance_name("web")
    routers = config["http"]["routers"]
    assert page == routers["web"]["service"] and [page] == routers["web"]["middlewares"]
    assert "web-blue" == routers["web-preview-blue"]["service"]
    assert "web-green" == routers["web-preview-green"]["service"]
    assert {page: {"replacePath": {"path": "/maintenance-page/web"}}} == config["http"][
        "middlewares"
    ]
    assert {"loadBalancer": {"servers": [{"url": URL}]}} == config["http"]["services"][page]
    del config["http"]["middlewares"], config["http"]["services"][page]
    config["http"]["routers"]["web"] = plain["http"]["routers"]["web"]
    assert plain == config


def test_without_the_provider_url_traefik_answers_503_with_retry_after() -> None:
    """No URL Traefik could reach the page at: an empty load balancer (Traefik's 503) and
    a headers middleware adding ``Retry-After``."""
    config = _render(ON, Options())
    page = maintenance_name("web")
    assert {"loadBalancer": {"servers": []}} == config["http"]["services"][page]
    headers = {"headers": {"customResponseHeaders": {"Retry-After": "45"}}}
    assert {page: headers} == config["http"]["middlewares"]


def test_off_leaves_nothing_of_it_and_the_bytes_are_stable() -> None:
    """Off renders exactly what a state that never had maintenance renders; on twice, the
    same bytes."""
    views = {"web": _view()}
    options = Options(maintenance_url=URL)
    never = serialize(render(views, {"web": B}, options))
    assert never == serialize(render(views, {"web": B}, options, None, {}))
    once = serialize(render(views, {"web": B}, options, None, retry_after_of(ON)))
    assert once == serialize(render(views, {"web": B}, options, None, retry_after_of(ON)))
    assert b"maintenance" not in never


def test_the_state_file_keeps_maintenance_and_omits_the_key_when_none() -> None:
    """It round-trips; a state without it has no ``maintenance`` key (old bytes kept)."""
    assert ON == state_json.from_doc(json.loads(state_json.encode(ON)))
    assert "maintenance" not in json.loads(state_json.encode(ADOPTED))
    assert {} == state_json.from_doc(json.loads(state_json.encode(ADOPTED))).maintenance
