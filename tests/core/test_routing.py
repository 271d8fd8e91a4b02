"""Routing (provider/core/routing.py): which containers are routable, the views of each
color, the active color without and with state, and what a switch needs."""

from __future__ import annotations

import pytest

from provider.core.model import Color, Container, Health, ServiceState
from provider.core.refusals import SwitchRefused
from provider.core.routing import Options, active_color, check_switch, initial_color, observe
from tests.factories import make_container

OPTIONS = Options()


def _networked(networks: dict[str, str], extra: dict[str, str] | None = None) -> Container:
    return make_container(port=80, networks=networks, name="web-1", extra=extra)


@pytest.mark.parametrize(
    ("health", "state", "routable"),
    [
        (Health.HEALTHY, "running", True),
        (Health.NONE, "running", True),
        (Health.STARTING, "running", False),
        (Health.UNHEALTHY, "running", False),
        (Health.HEALTHY, "exited", False),
        (Health.HEALTHY, "paused", False),
        (Health.NONE, "created", False),
        (Health.HEALTHY, "restarting", False),
    ],
)
def test_routable_is_running_and_healthy_or_unchecked(
    health: Health, state: str, routable: bool
) -> None:
    """Only running containers that are healthy or have no healthcheck take traffic."""
    c = make_container(health=health, state=state)
    assert routable == c.routable
    view = observe([c], OPTIONS).services["web"]
    assert int(routable) == view.color(Color.BLUE).routable


@pytest.mark.parametrize(
    ("container", "url"),
    [
        (make_container(port=8081), "http://127.0.0.1:8081"),
        (make_container(port=80, ip="10.0.0.5"), "http://10.0.0.5:80"),
        (make_container(port=80, ip="fd00::5"), "http://[fd00::5]:80"),
    ],
)
def test_server_url(container: Container, url: str) -> None:
    """Host-network containers use the host address; others their network's IP."""
    view = observe([container], OPTIONS).services["web"]
    assert (url,) == view.color(Color.BLUE).urls


def test_bad_container_isolated_to_its_service() -> None:
    """A bad label marks only its own service in error."""
    containers = [
        make_container("web", "blue"),
        make_container("api", "blue", port="nope"),
        make_container("api", "green"),
    ]
    obs = observe(containers, OPTIONS)
    assert obs.services["web"].errors == ()
    assert len(obs.services["api"].errors) == 1


def test_disagreeing_containers_of_one_color_are_an_error() -> None:
    """Two blue containers with different rules cannot both define the router."""
    containers = [
        make_container(extra={"bluegreen.rule": "Host(`a`)"}),
        make_container(extra={"bluegreen.rule": "Host(`b`)"}),
    ]
    view = observe(containers, OPTIONS).services["web"]
    assert [e[:24] for e in view.errors] == ["blue containers disagree"]


@pytest.mark.parametrize(
    ("colors", "expected"),
    [
        ([], None),
        ([("blue", Health.HEALTHY)], Color.BLUE),
        ([("green", Health.HEALTHY)], Color.GREEN),
        ([("blue", Health.HEALTHY), ("green", Health.HEALTHY)], Color.BLUE),
        ([("blue", Health.STARTING), ("green", Health.HEALTHY)], Color.GREEN),
        ([("blue", Health.UNHEALTHY), ("green", Health.STARTING)], None),
    ],
)
def test_initial_color_without_state(
    colors: list[tuple[str, Health]], expected: Color | None
) -> None:
    """With no state, the routable color is active, blue if both are."""
    obs = observe([make_container("web", c, health=h) for c, h in colors], OPTIONS)
    view = obs.services.get("web")
    assert expected == (initial_color(view) if view else None)


def test_persisted_state_wins_over_observation() -> None:
    """A restarted provider keeps the remembered color even if the other is also routable."""
    view = observe(
        [make_container("web", "blue"), make_container("web", "green")], OPTIONS
    ).services["web"]
    assert active_color(view, ServiceState(active=Color.GREEN)) == Color.GREEN


@pytest.mark.parametrize(
    ("green", "replicas", "force", "allowed"),
    [
        ([Health.HEALTHY], 1, False, True),
        ([Health.STARTING], 1, False, False),
        ([Health.STARTING], 1, True, True),
        ([Health.HEALTHY], 2, False, False),
        ([Health.HEALTHY, Health.HEALTHY], 2, False, True),
        ([], 1, False, False),
    ],
)
def test_check_switch_needs_replicas(
    green: list[Health], replicas: int, force: bool, allowed: bool
) -> None:
    """A switch needs bluegreen.replicas routable containers in the target, unless forced."""
    containers = [make_container("web", "blue")] + [
        make_container("web", "green", health=h, extra={"bluegreen.replicas": str(replicas)})
        for h in green
    ]
    view = observe(containers, OPTIONS).services["web"]
    if allowed:
        check_switch(view, Color.GREEN, force=force)
    else:
        with pytest.raises(SwitchRefused):
            check_switch(view, Color.GREEN, force=force)


def test_labels_without_a_service_are_reported_unassigned() -> None:
    """A container that names no service cannot err any service: its problem is kept apart."""
    stray = Container("z" * 64, "stray", "running", Health.HEALTHY, {"bluegreen.color": "x"}, 1.0)
    obs = observe([stray, make_container("web", "blue")], OPTIONS)
    assert (("label bluegreen.service is missing",), ()) == (
        obs.unassigned,
        obs.services["web"].errors,
    )


def test_a_service_view_has_both_colors() -> None:
    """Asking a view for a color it has no container of gives that color, empty."""
    view = observe([make_container("web", "blue")], OPTIONS).services["web"]
    assert (Color.BLUE, Color.GREEN) == (
        view.color(Color.BLUE).color,
        view.color(Color.GREEN).color,
    )
    assert ((), 0, None) == (
        view.color(Color.GREEN).members,
        view.color(Color.GREEN).routable,
        view.color(Color.GREEN).route,
    )


@pytest.mark.parametrize(
    ("container", "problem"),
    [
        (
            _networked({"front": "10.1.0.2"}, {"bluegreen.network": "back"}),
            "container web-1 is not on network back",
        ),
        (_networked({}), "container web-1 has no network"),
        (
            _networked({"front": "10.1.0.2", "back": "10.2.0.2"}),
            "container web-1 is on several networks (back, front); set the network label",
        ),
        (_networked({"app": ""}), "container web-1 has no IP address yet"),
    ],
)
def test_unreachable_container_is_not_routable_and_says_why(
    container: Container, problem: str
) -> None:
    """A running container Traefik cannot reach gets no URL, is not routable, and says why."""
    view = observe([container], OPTIONS).services["web"]
    (member,) = view.color(Color.BLUE).members
    assert (None, problem, False, ()) == (
        member.url,
        member.problem,
        member.routable,
        view.color(Color.BLUE).urls,
    )
    assert [problem] == list(view.errors)


@pytest.mark.parametrize(
    ("colors", "expected"),
    [
        ([("green", Health.HEALTHY)], Color.GREEN),
        ([("blue", Health.STARTING), ("green", Health.HEALTHY)], Color.GREEN),
        ([("blue", Health.STARTING), ("green", Health.UNHEALTHY)], Color.BLUE),
        ([], Color.BLUE),
    ],
)
def test_active_color_without_state(colors: list[tuple[str, Health]], expected: Color) -> None:
    """Not adopted yet: the routable color serves; with none routable, blue."""
    containers = [make_container("web", c, health=h) for c, h in colors]
    view = observe(containers, OPTIONS).services.get("web")
    if view is None:
        view = observe([make_container("web", "blue", state="exited")], OPTIONS).services["web"]
    assert expected == active_color(view, None)
