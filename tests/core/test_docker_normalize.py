"""Docker's inspect and list JSON to the core's observations (pure: no Docker needed).

Pins :mod:`provider.core.docker_normalize`, the watcher's normalization step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from provider.core.docker_normalize import list_signature, normalize, parse_time
from provider.core.model import Container, Health

INSPECT: dict[str, Any] = {
    "Id": "c0ffee" * 10 + "abcd",
    "Name": "/web-green-1",
    "Created": "2024-05-01T12:00:00.123456789Z",
    "State": {
        "Status": "running",
        "StartedAt": "2024-05-01T12:00:01.5Z",
        "Health": {
            "Status": "healthy",
            "Log": [
                {"End": "2024-05-01T12:00:02Z", "ExitCode": 1, "Output": "wget: 404\n"},
                {"End": "2024-05-01T12:00:03Z", "ExitCode": 0, "Output": "ok\n"},
                {"End": "2024-05-01T12:00:04Z", "ExitCode": 0, "Output": "  ok  \n"},
            ],
        },
    },
    "Config": {
        "Labels": {"bluegreen.service": "web", "bluegreen.color": "green", "other": "x"},
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}, "9090/tcp": {}},
    },
    "HostConfig": {"NetworkMode": "bridge"},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}, "v6": {}}},
}


def test_normalize_keeps_what_the_core_needs() -> None:
    """Inspect JSON becomes a Container: prefix labels only, health, output, ports, networks."""
    c = normalize(INSPECT, "bluegreen")

    assert (INSPECT["Id"], "web-green-1", "running", Health.HEALTHY) == (
        c.id,
        c.name,
        c.state,
        c.health,
    )
    assert {"bluegreen.service": "web", "bluegreen.color": "green"} == dict(c.labels)
    assert ("ok", (8080, 9090), "bridge") == (c.health_output, c.exposed_ports, c.network_mode)
    assert {"bridge": "172.17.0.2", "v6": ""} == dict(c.networks)
    assert parse_time("2024-05-01T12:00:00.123456Z") == c.created
    assert parse_time("2024-05-01T12:00:03Z") == c.healthy_since


@pytest.mark.parametrize(
    ("health", "started", "expected"),
    [
        (None, "2024-05-01T12:00:01.5Z", (Health.NONE, "2024-05-01T12:00:01.5Z")),
        ({"Status": "starting", "Log": []}, "2024-05-01T12:00:01Z", (Health.STARTING, None)),
        ({"Status": "unhealthy"}, "2024-05-01T12:00:01Z", (Health.UNHEALTHY, None)),
        ({"Status": "weird"}, "2024-05-01T12:00:01Z", (Health.STARTING, None)),
        (
            {"Status": "healthy", "Log": [{"End": "2024-05-01T12:00:00Z", "ExitCode": 0}]},
            "2024-05-01T12:00:01Z",
            (Health.HEALTHY, "2024-05-01T12:00:01Z"),
        ),
    ],
    ids=["no-healthcheck", "starting", "unhealthy", "unknown-is-starting", "log-before-restart"],
)
def test_normalize_health_and_healthy_since(
    health: dict[str, Any] | None, started: str, expected: tuple[Health, str | None]
) -> None:
    """healthy_since: start time without a healthcheck, never before a (re)start, else None."""
    doc = {**INSPECT, "State": {"Status": "running", "StartedAt": started, "Health": health}}

    c = normalize(doc, "bluegreen")

    since = expected[1]
    assert (expected[0], parse_time(since) if since else None) == (c.health, c.healthy_since)


def restored(
    status: str = "starting",
    started: str = "2024-05-01T12:00:01.5Z",
    newest: tuple[str, int] = ("2024-05-01T12:00:04Z", 0),
    state: str = "running",
) -> dict[str, Any]:
    """INSPECT as Docker >= 25 answers for it after a live restore (moby 0e62dba): the
    daemon reset health to ``starting``, FailingStreak 0, and kept the probe log."""
    start, code = newest
    log = [
        {"Start": "2024-05-01T12:00:02Z", "End": "2024-05-01T12:00:02.1Z", "ExitCode": 0},
        {"Start": start, "End": start, "ExitCode": code, "Output": "ok\n" if code == 0 else "x"},
    ]
    health = {"Status": status, "FailingStreak": 0, "Log": log}
    return {**INSPECT, "State": {"Status": state, "StartedAt": started, "Health": health}}


#: What Docker 20.10 recorded for a probe in flight while the test's dockerd stopped.
DIAL_ERROR = {
    "Start": "2024-05-01T12:00:05Z",
    "ExitCode": -1,
    "Output": 'connection error: desc = "transport: Error while dialing dial '
    'unix:///tmp/bgd-k46lmuoe/x/containerd/containerd.sock: timeout"',
}


def with_probe(doc: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with one more probe result at the end of its health log."""
    health = doc["State"]["Health"]
    state = {**doc["State"], "Health": {**health, "Log": [*health["Log"], entry]}}
    return {**doc, "State": state}


BEFORE_RESTART = normalize({**INSPECT, "State": {**INSPECT["State"], "Health": {
    "Status": "healthy",
    "Log": [{"Start": "2024-05-01T12:00:02Z", "End": "2024-05-01T12:00:02.1Z", "ExitCode": 0}],
}}}, "bluegreen")  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "previous", "expected"),
    [
        (restored(), BEFORE_RESTART, Health.HEALTHY),
        (restored(started="2024-05-01T12:00:03Z", newest=("2024-05-01T12:00:02.5Z", 0)),
         BEFORE_RESTART, Health.STARTING),
        (restored(newest=("2024-05-01T12:00:09Z", 1)), BEFORE_RESTART, Health.STARTING),
        (restored(), replace(BEFORE_RESTART, health=Health.UNHEALTHY, healthy_since=None),
         Health.STARTING),
        (restored(), None, Health.STARTING),
        (restored(state="exited"), BEFORE_RESTART, Health.STARTING),
        (restored(status="unhealthy"), BEFORE_RESTART, Health.UNHEALTHY),
        (with_probe(restored(status="unhealthy"), DIAL_ERROR), BEFORE_RESTART, Health.HEALTHY),
        (with_probe(restored(status="unhealthy"), DIAL_ERROR), None, Health.UNHEALTHY),
        (with_probe(restored(status="unhealthy"), {**DIAL_ERROR, "Output": "timeout"}),
         BEFORE_RESTART, Health.UNHEALTHY),
    ],
    ids=[
        "monitor-reset-same-run",
        "truly-restarted",
        "probe-failed-after-reset",
        "was-unhealthy",
        "first-sight",
        "exited",
        "unhealthy-is-unhealthy",
        "probe-broken-by-daemon-shutdown",
        "daemon-fault-first-sight",
        "real-probe-failure",
    ],
)  # fmt: skip
def test_a_health_monitor_reset_is_not_news(
    doc: dict[str, Any], previous: Container | None, expected: Health
) -> None:
    """``starting`` in the same run, newest probe passed, healthy before: the daemon's
    monitor restarted (live restore), the container did not; anything else stands."""
    c = normalize(doc, "bluegreen", previous)

    routable = expected is Health.HEALTHY and doc["State"]["Status"] == "running"
    assert (expected, routable) == (c.health, c.routable)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01T12:00:00Z", 1714564800.0),
        ("2024-05-01T12:00:00.5+02:00", 1714557600.5),
        ("2024-05-01T12:00:00.123456789Z", 1714564800.123456),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_time(raw: str, expected: float | None) -> None:
    """Docker's nanosecond RFC 3339 times parse; the zero time and junk are None."""
    assert expected == parse_time(raw)


def test_list_signature_ignores_uptime() -> None:
    """The listing signature changes with state or health, not with the uptime text."""
    a = list_signature({"State": "running", "Status": "Up 3 seconds (healthy)"})
    b = list_signature({"State": "running", "Status": "Up 4 seconds (healthy)"})
    c = list_signature({"State": "running", "Status": "Up 4 seconds (unhealthy)"})

    assert (a, True) == (b, a != c)
