"""The pure decision of ``provider/core/applied.py``: has Traefik applied a service's switch?

Tables: which pollers are live, which color a Traefik's probes show, and the
service's answer across live, stale and disagreeing pollers.
"""

from __future__ import annotations

from typing import Any

import pytest

from provider.core import applied
from provider.core.applied import Applied, Poller, Timing
from provider.core.model import Color

BLUE, GREEN = Color.BLUE, Color.GREEN
TIMING = Timing(hold=2.5, stale_after=10.0)
#: Body versions: 1 and 2 route web to blue, 3 and 4 to green, 5 splits it (a canary).
ROUTES: dict[int, dict[str, Color | None]] = {
    1: {"web": BLUE},
    2: {"web": BLUE, "api": GREEN},
    3: {"web": GREEN},
    4: {"web": GREEN},
    5: {"web": None},
}


@pytest.mark.parametrize(
    ("poller", "now", "expected"),
    [
        (Poller("a", "10.0.0.1", 100.0, held=1), 10_000.0, True),  # a request held: polling now
        (Poller("a", "10.0.0.1", 100.0), 112.5, True),  # hold + stale_after: still live
        (Poller("a", "10.0.0.1", 100.0), 112.6, False),  # past it: stopped polling
        (Poller("a", "10.0.0.1", 100.0), 100.0, True),
    ],
)
def test_live(poller: Poller, now: float, expected: bool) -> None:
    """Live while a request is held, or until hold + stale_after after the last one."""
    assert expected == applied.live(poller, TIMING, now)


@pytest.mark.parametrize(
    ("probed", "expected"),
    [
        ({}, (None, None)),
        ({1: 10.0}, (BLUE, 10.0)),
        ({1: 10.0, 2: 11.0}, (BLUE, 10.0)),  # the run of blue versions started at 1
        ({1: 10.0, 2: 11.0, 3: 12.0}, (GREEN, 12.0)),  # the newest version decides
        ({3: 12.0, 4: 13.0}, (GREEN, 12.0)),
        ({2: 11.0, 4: 13.0}, (GREEN, 13.0)),  # 3 never probed: green since 4
        ({4: 13.0, 5: 14.0}, (None, 14.0)),  # a split route: no single color
        ({9: 20.0}, (None, 20.0)),  # a version whose routes are forgotten: unknown
    ],
)
def test_route_applied(probed: dict[int, float], expected: tuple[Any, Any]) -> None:
    """The color a Traefik routes to is the newest probed version's, since its run began."""
    assert expected == applied.route_applied(probed, ROUTES, "web")


A = Poller("a", "10.0.0.1", 100.0, held=1)
B = Poller("b", "10.0.0.2", 100.0, held=1)
STALE_B = Poller("b", "10.0.0.2", 50.0)


@pytest.mark.parametrize(
    ("pollers", "probes", "active", "expected"),
    [
        # No Traefik ever polled: unknown.
        ([], {}, GREEN, Applied(None, None, None, None)),
        # Polling, but no probe yet: not applied.
        ([A], {}, GREEN, Applied(False, None, None, 30.0)),
        # The probe shows the old color.
        ([A], {"10.0.0.1": {2: 95.0}}, GREEN, Applied(False, BLUE, None, 30.0)),
        # The probe shows the new color: applied since its first probe.
        ([A], {"10.0.0.1": {2: 95.0, 3: 80.0}}, GREEN, Applied(True, GREEN, 80.0, 10.0)),
        # Two live Traefiks: one behind keeps it unapplied, and the color unknown.
        (
            [A, B],
            {"10.0.0.1": {3: 80.0}, "10.0.0.2": {2: 75.0}},
            GREEN,
            Applied(False, None, None, 30.0),
        ),
        # Both applied: since the later of the two.
        (
            [A, B],
            {"10.0.0.1": {3: 80.0}, "10.0.0.2": {4: 85.0}},
            GREEN,
            Applied(True, GREEN, 85.0, 15.0),
        ),
        # One stopped polling: not waited for.
        ([A, STALE_B], {"10.0.0.1": {3: 80.0}}, GREEN, Applied(True, GREEN, 80.0, 10.0)),
        # Every Traefik stopped polling: never applied (nothing proves it routes there).
        ([STALE_B], {"10.0.0.2": {3: 80.0}}, GREEN, Applied(False, None, None, 30.0)),
        # A canary's split route is not the active color alone.
        ([A], {"10.0.0.1": {5: 80.0}}, GREEN, Applied(False, None, None, 30.0)),
    ],
)
def test_service_applied(
    pollers: list[Poller],
    probes: dict[str, dict[int, float]],
    active: Color,
    expected: Applied,
) -> None:
    """Applied: at least one live poller, and every live one's probes show the active color."""
    now, changed_at = 100.0, 70.0
    got = applied.service_applied(pollers, probes, ROUTES, "web", active, TIMING, now, changed_at)
    assert expected == got


def test_lag_is_unknown_without_a_route_change_time() -> None:
    """No time for the route's change (the body does not route the service there): no lag."""
    got = applied.service_applied([A], {}, ROUTES, "web", GREEN, TIMING, 100.0, None)
    assert Applied(False, None, None, None) == got


def test_recheck_at_is_the_next_poller_to_go_stale() -> None:
    """With no request held, the answer can change when a live poller goes stale."""
    quiet = [Poller("a", "x", 100.0), Poller("b", "y", 95.0), A]
    assert 107.5 == applied.recheck_at(quiet, TIMING, 100.0)
    assert applied.recheck_at([A], TIMING, 100.0) is None


def test_routes_of_reads_the_weighted_parent() -> None:
    """One color per service from its weighted parent; a split or foreign name is None."""
    config = {
        "http": {
            "services": {
                "web": {"weighted": {"services": [{"name": "web-green", "weight": 1}]}},
                "api": {
                    "weighted": {
                        "services": [
                            {"name": "api-blue", "weight": 90},
                            {"name": "api-green", "weight": 10},
                        ]
                    }
                },
                "shop": {"weighted": {"services": [{"name": "other", "weight": 1}]}},
                "web-green": {"loadBalancer": {"servers": []}},
            }
        }
    }
    assert {"web": GREEN, "api": None, "shop": None} == applied.routes_of(config)


def test_with_probe_adds_one_router_and_service_and_changes_nothing_else() -> None:
    """The probe: a router no request matches, a health check naming the body's probe id."""
    config = {"http": {"routers": {"web": {"rule": "Host(`web`)"}}, "services": {}}}
    probed = applied.with_probe(config, "http://bluegreen:8080", "0a1b2c", ["web"])
    assert {"rule": "Host(`web`)"} == probed["http"]["routers"]["web"]
    router = probed["http"]["routers"][applied.PROBE_NAME]
    assert (applied.PROBE_RULE, ["web"]) == (router["rule"], router["entryPoints"])
    balancer = probed["http"]["services"][applied.PROBE_NAME]["loadBalancer"]
    assert [{"url": "http://bluegreen:8080"}] == balancer["servers"]
    assert "/traefik/applied/0a1b2c" == balancer["healthCheck"]["path"]
    assert {"rule": "Host(`web`)"} == config["http"]["routers"]["web"]
    assert applied.PROBE_NAME not in config["http"]["routers"]  # the input is not changed


def test_pollers_json() -> None:
    """Each poller: its id, when it last polled (now while held), its applied version, live."""
    pollers = [Poller("b", "y", 50.0), Poller("a", "x", 90.0, held=1)]
    got = applied.pollers_json(pollers, {"x": {3: 80.0, 4: 85.0}}, TIMING, 100.0)
    assert [
        {"id": "a", "last_poll": 100.0, "applied_version": 4, "live": True},
        {"id": "b", "last_poll": 50.0, "applied_version": None, "live": False},
    ] == got


def test_probe_id_is_the_digest_of_the_rendered_bytes() -> None:
    """The same bytes, the same id in every process (a restart serves the same body)."""
    assert applied.probe_id(b"{}") == applied.probe_id(b"{}")
    assert applied.probe_id(b"{}") != applied.probe_id(b'{"http":{}}')
    assert applied.PROBE_ID_CHARS == len(applied.probe_id(b"{}"))
