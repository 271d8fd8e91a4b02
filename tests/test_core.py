"""Table-driven tests of the pure core: labels -> routable sets -> Traefik config."""

from __future__ import annotations

import json

import pytest

from provider.core.labels import LabelDefaults, LabelProblem, Placement, parse
from provider.core.model import Color, Container, Health, ServiceState, SwitchRecord
from provider.core.refusals import SwitchRefused
from provider.core.render import PREVIEW_PRIORITY_BASE, render, serialize
from provider.core.routing import Options, active_color, check_switch, initial_color, observe
from provider.core.status import service_status
from tests.factories import make_container

OPTIONS = Options()


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
    ("labels", "message"),
    [
        ({"bluegreen.color": "blue"}, "bluegreen.service is missing"),
        ({"bluegreen.service": "web"}, "bluegreen.color is missing"),
        ({"bluegreen.service": "web", "bluegreen.color": "red"}, "expected blue or green"),
        (
            {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "http"},
            "expected a number",
        ),
        (
            {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "70000"},
            "expected 1-65535",
        ),
        (
            {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "0"},
            "bluegreen.port is 0; expected 1-65535",
        ),
        (
            {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "65536"},
            "bluegreen.port is 65536; expected 1-65535",
        ),
        ({"bluegreen.service": "web", "bluegreen.color": "blue"}, "exposes 0 ports"),
        (
            {
                "bluegreen.service": "web",
                "bluegreen.color": "blue",
                "bluegreen.port": "1",
                "bluegreen.replicas": "0",
            },
            "expected 1-1000",
        ),
        (
            {
                "bluegreen.service": "web",
                "bluegreen.color": "blue",
                "bluegreen.port": "1",
                "bluegreen.promote": "sometimes",
            },
            "expected auto or manual",
        ),
        (
            {
                "bluegreen.service": "web",
                "bluegreen.color": "blue",
                "bluegreen.port": "1",
                "bluegreen.tls": "maybe",
            },
            "expected true or false",
        ),
        (
            {
                "bluegreen.service": "web",
                "bluegreen.color": "blue",
                "bluegreen.port": "1",
                "bluegreen.rule": "Host(`a`)) || (Host(`b`)",
            },
            "found ')' at position 10",
        ),
        (
            {
                "bluegreen.service": "web",
                "bluegreen.color": "blue",
                "bluegreen.port": "1",
                "bluegreen.middlewares": "ok, bad name",
            },
            "not a valid name",
        ),
        ({"bluegreen.service": "web-blue", "bluegreen.color": "blue"}, "must not end in"),
        ({"bluegreen.service": "we b", "bluegreen.color": "blue"}, "must be 1-63"),
    ],
)
def test_bad_labels_are_problems_not_crashes(labels: dict[str, str], message: str) -> None:
    """Every bad label yields a message naming the label and what is expected."""
    c = Container("x" * 64, "c1", "running", Health.HEALTHY, labels, 1.0)
    problem = parse(c, LabelDefaults())
    assert isinstance(problem, LabelProblem)
    assert message in problem.message


def test_labels_full_set_parse() -> None:
    """All documented labels are read, with defaults where absent."""
    c = make_container(
        extra={
            "bluegreen.rule": "Host(`example.com`) && PathPrefix(`/api`)",
            "bluegreen.entrypoints": "web, websecure",
            "bluegreen.middlewares": "auth@file,compress",
            "bluegreen.tls.certresolver": "le",
            "bluegreen.replicas": "2",
            "bluegreen.promote": "manual",
            "bluegreen.network": "app",
        }
    )
    placed = parse(c, LabelDefaults())
    assert isinstance(placed, Placement)
    assert placed.route.entrypoints == ("web", "websecure")
    assert placed.route.middlewares == ("auth@file", "compress")
    assert (placed.route.tls, placed.route.certresolver, placed.route.replicas) == (True, "le", 2)
    assert placed.network == "app"


def test_port_defaults_to_the_only_exposed_port() -> None:
    """Without a port label, a single exposed port is used."""
    c = Container(
        "y" * 64,
        "c",
        "running",
        Health.NONE,
        {"bluegreen.service": "web", "bluegreen.color": "green"},
        1.0,
        network_mode="host",
        exposed_ports=(3000,),
    )
    placed = parse(c, LabelDefaults())
    assert isinstance(placed, Placement)
    assert placed.port == 3000


def test_custom_label_prefix() -> None:
    """The label prefix is a setting."""
    c = make_container(prefix="bg")
    assert isinstance(parse(c, LabelDefaults(prefix="bg")), Placement)
    assert isinstance(parse(c, LabelDefaults()), LabelProblem)


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


def test_network_label_picks_the_network() -> None:
    """With several networks, bluegreen.network chooses; without it the service errs."""
    networks = {"front": "10.1.0.2", "back": "10.2.0.2"}
    two = make_container(port=80, networks=networks, extra={"bluegreen.network": "back"})
    assert observe([two], OPTIONS).services["web"].color(Color.BLUE).urls == ("http://10.2.0.2:80",)
    ambiguous = make_container(port=80, networks=networks)
    view = observe([ambiguous], OPTIONS).services["web"]
    assert len(view.errors) == 1
    assert "several networks" in view.errors[0]


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


def _config(containers: list[Container], active: Color = Color.BLUE) -> dict[str, object]:
    views = observe(containers, OPTIONS).services
    return render(views, {name: active for name in views}, OPTIONS)


def test_render_blue_active_shape() -> None:
    """The documented shape: main router, weighted service, color LBs, preview routers."""
    config = _config(
        [
            make_container("web", "blue", port=8081),
            make_container("web", "blue", port=8082),
            make_container("web", "green", port=8083, health=Health.STARTING),
        ]
    )
    assert config == {
        "http": {
            "routers": {
                "web": {"rule": "Host(`web`)", "service": "web", "entryPoints": ["web"]},
                "web-preview-blue": {
                    "rule": "(Host(`web`)) && Header(`X-Bluegreen-Color`, `blue`)",
                    "service": "web-blue",
                    "entryPoints": ["web"],
                    "priority": 1_000_011,  # base + len("Host(`web`)")
                },
                "web-preview-green": {
                    "rule": "(Host(`web`)) && Header(`X-Bluegreen-Color`, `green`)",
                    "service": "web-green",
                    "entryPoints": ["web"],
                    "priority": 1_000_011,  # base + len("Host(`web`)")
                },
            },
            "services": {
                "web": {"weighted": {"services": [{"name": "web-blue", "weight": 1}]}},
                "web-blue": {
                    "loadBalancer": {
                        "servers": [
                            {"url": "http://127.0.0.1:8081"},
                            {"url": "http://127.0.0.1:8082"},
                        ]
                    }
                },
                "web-green": {"loadBalancer": {"servers": []}},
            },
        }
    }


def test_render_tls_and_middlewares_come_from_active_color() -> None:
    """The main router takes rule, middlewares and TLS from the active color only."""
    blue = make_container("web", "blue", extra={"bluegreen.rule": "Host(`old`)"})
    green = make_container(
        "web",
        "green",
        extra={
            "bluegreen.rule": "Host(`new`)",
            "bluegreen.middlewares": "auth@file",
            "bluegreen.tls": "true",
        },
    )
    routers = _config([blue, green], Color.GREEN)["http"]["routers"]  # type: ignore[index]
    assert routers["web"] == {
        "rule": "Host(`new`)",
        "service": "web",
        "entryPoints": ["web"],
        "middlewares": ["auth@file"],
        "tls": {},
    }
    assert (
        routers["web-preview-blue"]["rule"]
        == "(Host(`old`)) && Header(`X-Bluegreen-Color`, `blue`)"
    )


def test_render_active_color_without_containers_keeps_router() -> None:
    """If the active color has no routable container the router stays (503, not 404)."""
    config = _config([make_container("web", "green")], Color.BLUE)
    http = config["http"]
    assert "web" in http["routers"]  # type: ignore[index,operator]
    assert http["services"]["web-blue"] == {"loadBalancer": {"servers": []}}  # type: ignore[index]


def test_render_is_byte_stable_whatever_the_input_order() -> None:
    """Same observations in any order give the same bytes (Traefik hashes the body)."""
    containers = [
        make_container(s, c, port=p)
        for s, c, p in [("b", "blue", 1), ("a", "green", 2), ("a", "blue", 3), ("b", "blue", 4)]
    ]
    one = serialize(_config(containers))
    two = serialize(_config(list(reversed(containers))))
    assert one == two
    assert json.loads(one) == _config(containers)
    assert one.index(b'"http"') < one.index(b'"routers"') < one.index(b'"services"')


def test_render_nothing_observed_is_empty() -> None:
    """No containers: an empty config (only ever served after the first sync)."""
    assert _config([]) == {}


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds_are_accepted(port: int) -> None:
    """Ports 1 and 65535 are the ends of the valid range (0 and 65536 are label errors)."""
    placement = parse(make_container(port=port), LabelDefaults())
    assert not isinstance(placement, LabelProblem)
    assert port == placement.port


def test_serialize_sorts_keys_at_every_level() -> None:
    """The body's bytes do not depend on dict insertion order, at any depth: keys are sorted."""
    config = {
        "http": {
            "services": {"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": {}},
            "routers": {"z-router": {"service": "z", "rule": "Host(`z`)"}},
        }
    }
    expected = (
        b'{"http":{"routers":{"z-router":{"rule":"Host(`z`)","service":"z"}},'
        b'"services":{"a":{},"b":{"a":[{"x":3,"y":2}],"z":1}}}}'
    )
    assert expected == serialize(config)


def test_preview_priority_is_base_plus_rule_length() -> None:
    """Preview routers keep Traefik's order among themselves (longer rule first) and all
    stay above every main router, whose default priority is at most the longest rule."""
    api = make_container(
        "api", "blue", extra={"bluegreen.rule": "Host(`shop`) && PathPrefix(`/api`)"}
    )
    shop = make_container("shop", "blue", extra={"bluegreen.rule": "Host(`shop`)"})
    routers = _config([api, shop])["http"]["routers"]  # type: ignore[index]
    api_priority = routers["api-preview-blue"]["priority"]
    shop_priority = routers["shop-preview-blue"]["priority"]
    assert PREVIEW_PRIORITY_BASE + len("Host(`shop`) && PathPrefix(`/api`)") == api_priority
    assert PREVIEW_PRIORITY_BASE + len("Host(`shop`)") == shop_priority
    assert PREVIEW_PRIORITY_BASE > 2048  # labels refuse longer rules (rule_syntax.MAX_RULE)
    assert "priority" not in routers["api"]  # main routers keep Traefik's default


# --- Pinned by mutation testing (docs/mutation.md) ---------------------------------------


def _problem(extra: dict[str, str], *, name: str = "c1") -> str:
    """The label problem of a blue ``web`` container on port 1 with ``extra`` labels."""
    labels = {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "1"}
    c = Container("x" * 64, name, "running", Health.HEALTHY, {**labels, **extra}, 1.0)
    problem = parse(c, LabelDefaults())
    assert isinstance(problem, LabelProblem)
    return problem.message


def _placed(extra: dict[str, str]) -> Placement:
    """The placement of a blue ``web`` container with ``extra`` labels (must parse)."""
    placed = parse(make_container(extra=extra), LabelDefaults())
    assert isinstance(placed, Placement), placed
    return placed


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"bluegreen.entrypoints": " , "}, "bluegreen.entrypoints is empty"),
        ({"bluegreen.entrypoints": "web, we b"}, "bluegreen.entrypoints: entrypoints item"),
        ({"bluegreen.middlewares": "a b"}, "bluegreen.middlewares: middlewares item"),
        ({"bluegreen.tls.certresolver": "l e"}, "bluegreen.tls.certresolver 'l e' is not"),
        ({"bluegreen.replicas": "two"}, "bluegreen.replicas is 'two'; expected a whole"),
        ({"bluegreen.replicas": "\u00b2"}, "expected a whole number"),
        ({"bluegreen.replicas": "1001"}, "bluegreen.replicas is 1001; expected 1-1000"),
    ],
)
def test_label_problem_names_the_label_and_the_container(
    extra: dict[str, str], needle: str
) -> None:
    """Each refused label value is reported under its label's name and its container's name."""
    message = _problem(extra, name="shop-blue-1")
    assert message.startswith("container shop-blue-1: ")
    assert needle in message


@pytest.mark.parametrize(
    ("label", "limit"),
    [
        ("bluegreen.color", 40),
        ("bluegreen.port", 40),
        ("bluegreen.tls", 40),
        ("bluegreen.replicas", 40),
        ("bluegreen.promote", 40),
        ("bluegreen.tls.certresolver", 80),
        ("bluegreen.middlewares", 80),
        ("bluegreen.service", 80),
    ],
)
def test_label_problem_echoes_a_bounded_prefix_of_the_value(label: str, limit: int) -> None:
    """A huge bad value is quoted cut to its first characters, so one label cannot flood logs."""
    value = "q" * limit + "!" * 200
    message = _problem({label: value})
    assert repr(value[:limit]) in message
    assert value[: limit + 1] not in message


@pytest.mark.parametrize(
    ("raw", "replicas"),
    [("1", 1), ("10", 10), ("0000000002", 2), (" 3 ", 3), ("1000", 1000)],
)
def test_replicas_label_reads_whole_numbers_up_to_the_limit(raw: str, replicas: int) -> None:
    """Replicas are decimal: zeros count only as digits, leading zeros and blanks are ignored."""
    assert replicas == _placed({"bluegreen.replicas": raw}).route.replicas


def test_port_label_ignores_leading_zeros() -> None:
    """``bluegreen.port=0000000080`` is port 80: leading zeros never push it past the range."""
    assert 80 == _placed({"bluegreen.port": "0000000080"}).port


@pytest.mark.parametrize(
    ("raw", "tls"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("", False),
    ],
)
def test_tls_label_spellings(raw: str, tls: bool) -> None:
    """``bluegreen.tls`` reads true/1/yes and false/0/no (any case); empty means no TLS."""
    assert tls == _placed({"bluegreen.tls": raw}).route.tls


@pytest.mark.parametrize("name", ["web-blue", "web-green", "api-green"])
def test_service_names_ending_in_a_color_are_refused(name: str) -> None:
    """``<x>-blue`` and ``<x>-green`` would collide with another service's derived names."""
    assert "must not end in -blue or -green" in _problem({"bluegreen.service": name})


def test_bad_service_name_message_says_what_is_allowed() -> None:
    """The message for a bad service name tells which characters and shape are accepted."""
    message = _problem({"bluegreen.service": "-web"})
    assert (
        "must be 1-63 letters, digits, '-' or '_', starting and ending with a letter or digit"
        in (message)
    )


@pytest.mark.parametrize(
    "rule",
    [
        "(Host(`a`) || (Host(`b`) && Path(`/c`)))",
        "Path(`/a(`)",
        "Path(`/a)`)",
        "Host(`it's`) && Path(`/x\"`)",
        'Host("a)") || Host(`b`)',
    ],
)
def test_well_formed_rules_are_accepted(rule: str) -> None:
    """Nested parentheses, and parentheses or other quotes inside string literals, are fine."""
    assert rule == _placed({"bluegreen.rule": rule}).route.rule


@pytest.mark.parametrize(
    "rule",
    [
        "   ",
        "Host(`a`",
        "Host(`a`))",
        "Host(`a)",
        "Host(`a`)\x00",
        "Host(`a`)\x7f",
        "Host(`a\x85`)",
        "Host(`a\u2028`)",
    ],
)
def test_malformed_rules_are_label_problems(rule: str) -> None:
    """Blank rules, unbalanced parentheses, open quotes and control characters are refused."""
    assert "bluegreen.rule" in _problem({"bluegreen.rule": rule})


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


def _networked(networks: dict[str, str], extra: dict[str, str] | None = None) -> Container:
    return make_container(port=80, networks=networks, name="web-1", extra=extra)


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


def test_disagreeing_color_has_no_route_and_names_the_labels() -> None:
    """A color whose containers disagree has no route; the error lists the labels to compare."""
    containers = [
        make_container(extra={"bluegreen.rule": "Host(`a`)"}),
        make_container(extra={"bluegreen.rule": "Host(`b`)"}),
        make_container("web", "green"),
    ]
    view = observe(containers, OPTIONS).services["web"]
    assert (None, Color.BLUE) == (view.color(Color.BLUE).route, view.color(Color.BLUE).color)
    assert view.route == view.color(Color.GREEN).route
    assert "(rule, entrypoints, middlewares, tls, replicas or promote)" in view.errors[0]


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


def test_render_certresolver_goes_to_router_tls() -> None:
    """``bluegreen.tls.certresolver`` becomes the routers' ``tls.certResolver``."""
    config = _config([make_container(extra={"bluegreen.tls.certresolver": "le"})])
    routers = config["http"]["routers"]  # type: ignore[index]
    assert {"certResolver": "le"} == routers["web"]["tls"]
    assert {"certResolver": "le"} == routers["web-preview-blue"]["tls"]


def test_render_green_active_with_no_blue_containers() -> None:
    """A service that only has green containers, green active, gets green's services and routers."""
    config = _config([make_container("web", "green", port=8085)], Color.GREEN)
    http = config["http"]
    assert {"web", "web-green"} == set(http["services"])  # type: ignore[index]
    assert {"web", "web-preview-green"} == set(http["routers"])  # type: ignore[index]
    assert {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:8085"}]}} == http[  # type: ignore[index]
        "services"
    ]["web-green"]


def test_render_a_color_without_an_agreed_route_has_no_preview_router() -> None:
    """Blue's containers disagree: blue gets no preview router; green's is still rendered."""
    config = _config(
        [
            make_container(extra={"bluegreen.rule": "Host(`a`)"}),
            make_container(extra={"bluegreen.rule": "Host(`b`)"}),
            make_container("web", "green"),
        ],
        Color.GREEN,
    )
    assert {"web", "web-preview-green"} == set(config["http"]["routers"])  # type: ignore[index]
    assert {"web", "web-blue", "web-green"} == set(config["http"]["services"])  # type: ignore[index]


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
    assert (True, "green", record.to_json()) == (
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


def test_serialized_config_has_no_incidental_whitespace() -> None:
    """The body is compact JSON: no space after a key's colon or between items."""
    body = serialize(_config([make_container("web", "blue"), make_container("api", "green")]))
    assert (False, False) == (b'": ' in body, b'", "' in body)
    assert json.loads(body) == _config(
        [make_container("web", "blue"), make_container("api", "green")]
    )
