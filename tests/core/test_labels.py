"""Label parsing (provider/core/labels.py): what a container's labels place, and the problems
they report, named, bounded and never a crash."""

from __future__ import annotations

import pytest

from provider.core.labels import LabelDefaults, LabelProblem, Placement, parse
from provider.core.model import Color, Container, Health
from provider.core.routing import Options, observe
from tests.factories import make_container

OPTIONS = Options()


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


def test_network_label_picks_the_network() -> None:
    """With several networks, bluegreen.network chooses; without it the service errs."""
    networks = {"front": "10.1.0.2", "back": "10.2.0.2"}
    two = make_container(port=80, networks=networks, extra={"bluegreen.network": "back"})
    assert observe([two], OPTIONS).services["web"].color(Color.BLUE).urls == ("http://10.2.0.2:80",)
    ambiguous = make_container(port=80, networks=networks)
    view = observe([ambiguous], OPTIONS).services["web"]
    assert len(view.errors) == 1
    assert "several networks" in view.errors[0]


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds_are_accepted(port: int) -> None:
    """Ports 1 and 65535 are the ends of the valid range (0 and 65536 are label errors)."""
    placement = parse(make_container(port=port), LabelDefaults())
    assert not isinstance(placement, LabelProblem)
    assert port == placement.port


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
