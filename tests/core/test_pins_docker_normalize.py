"""Docker's JSON to observations at the edges: fields a document may lack, timestamps,
the healthy streak, and each condition of the live-restore rule on its own.

Pinned by mutation testing (docs/mutation.md): the first run of
``provider/core/docker_normalize.py`` left these behaviours unjudged by
``tests/core/test_docker_normalize.py``.
"""

# ruff: noqa: E501  (table rows read best one to a line)

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from provider.core.docker_normalize import (
    MAX_HEALTH_OUTPUT,
    list_signature,
    monitor_reset,
    normalize,
    parse_time,
)
from provider.core.model import Container, Health

T0 = 1714564800.0  # 2024-05-01T12:00:00Z


def at(seconds: float) -> str:
    """Docker's RFC 3339 spelling of ``T0 + seconds`` (seconds < 60)."""
    whole, frac = divmod(seconds, 1)
    text = f"2024-05-01T12:00:{int(whole):02d}"
    return f"{text}.{round(frac * 1e9):09d}Z" if frac else f"{text}Z"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        (1714564800, None),
        ("0001-01-01T00:00:00.000000000Z", None),
        ("2024-05-01T12:00:00.5Z", T0 + 0.5),
        ("2024-05-01T12:00:00.1234569Z", T0 + 0.123456),
        ("2024-05-01T12:00:00.123456789+02:00", T0 - 7200 + 0.123456),
        ("2024-05-01T12:00:00+00:00", T0),
        (" 2024-05-01T12:00:00Z ", T0),
        ("2024-05-01T12:00:00.5ZZ", None),
    ],
)
def test_parse_time_edges(raw: object, expected: float | None) -> None:
    """Non-strings and the zero time are unset; fractions are cut to microseconds, not rounded."""
    got = parse_time(raw)
    assert expected == (None if got is None else pytest.approx(got, abs=1e-6))


def inspect(
    *,
    status: str | None = "running",
    started: str | None = at(1),
    health: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    state: dict[str, Any] = {"Health": health}
    if status is not None:
        state["Status"] = status
    if started is not None:
        state["StartedAt"] = started
    return {"Id": "c1", "State": state, **top}


def probe(end: float | None, code: int = 0, start: float | None = None, **more: Any) -> Any:
    entry: dict[str, Any] = {"ExitCode": code, **more}
    if end is not None:
        entry["End"] = at(end)
    if start is not None:
        entry["Start"] = at(start)
    return entry


@pytest.mark.parametrize(
    ("doc", "health", "since"),
    [
        (inspect(), Health.NONE, T0 + 1),
        (inspect(status="exited"), Health.NONE, None),
        (inspect(status=None), Health.NONE, None),
        (inspect(started=None), Health.NONE, None),
        (inspect(health={"Status": "healthy", "Log": []}), Health.HEALTHY, None),
        (inspect(health={"Status": "healthy"}), Health.HEALTHY, None),
        (
            inspect(health={"Status": "healthy", "Log": [probe(3), probe(5), probe(7)]}),
            Health.HEALTHY,
            T0 + 3,
        ),
        (
            inspect(health={"Status": "healthy", "Log": [probe(3), probe(5, 1), probe(7), probe(9)]}),
            Health.HEALTHY,
            T0 + 7,
        ),
        (
            inspect(health={"Status": "healthy", "Log": [probe(3), "junk", probe(7)]}),
            Health.HEALTHY,
            T0 + 7,
        ),
        (
            inspect(health={"Status": "healthy", "Log": [probe(3), probe(None), probe(7)]}),
            Health.HEALTHY,
            T0 + 3,
        ),
        (
            inspect(started=None, health={"Status": "healthy", "Log": [probe(3)]}),
            Health.HEALTHY,
            T0 + 3,
        ),
        (
            inspect(health={"Status": "healthy", "Log": [probe(5, 1)]}),
            Health.HEALTHY,
            None,
        ),
        (
            inspect(status="paused", health={"Status": "healthy", "Log": [probe(3)]}),
            Health.HEALTHY,
            None,
        ),
        (inspect(health={"Status": "unhealthy", "Log": [probe(3)]}), Health.UNHEALTHY, None),
        (inspect(health={"Status": None}), Health.NONE, T0 + 1),
    ],
    ids=[
        "no-check-running",
        "no-check-exited",
        "no-status",
        "no-start",
        "healthy-empty-log",
        "healthy-no-log",
        "streak-from-first-pass",
        "streak-after-last-failure",
        "streak-stops-at-junk",
        "entry-without-end-keeps-streak",
        "no-start-streak-alone",
        "healthy-but-last-failed",
        "not-running",
        "unhealthy",
        "null-status-is-none",
    ],
)  # fmt: skip
def test_healthy_since_from_dockers_records(
    doc: dict[str, Any], health: Health, since: float | None
) -> None:
    """The start of the current run of passing probes (never before the start), else unset."""
    c = normalize(doc, "bluegreen")
    assert (health, since) == (c.health, c.healthy_since)


def test_a_bare_document_has_defaults() -> None:
    """Only ``Id`` is required: every other field has a neutral value."""
    assert Container(
        id="c1",
        name="",
        state="unknown",
        health=Health.NONE,
        labels={},
        created=0.0,
        networks={},
        network_mode="default",
        exposed_ports=(),
        health_output="",
        healthy_since=None,
        image="",
    ) == normalize({"Id": "c1"}, "bluegreen")
    with pytest.raises(KeyError):
        normalize({}, "bluegreen")


def test_fields_come_from_their_places() -> None:
    """Labels of the prefix only, addresses with IPv6 fallback, TCP ports, image, mode."""
    doc = {
        "Id": "c2",
        "Name": "/Xapp-1",
        "Created": at(2),
        "State": {"Status": "created"},
        "Config": {
            "Image": "app:2",
            "Labels": {"bg.service": "app", "bg": "x", "bgx.color": "y", "bluegreen.color": "z"},
            "ExposedPorts": {"80": {}, "81/tcp": {}, "82/udp": {}, "83/sctp": {}, "x/tcp": {}},
        },
        "HostConfig": {"NetworkMode": "host"},
        "NetworkSettings": {
            "Networks": {
                "v4": {"IPAddress": "10.0.0.2", "GlobalIPv6Address": "fd00::2"},
                "v6": {"IPAddress": "", "GlobalIPv6Address": "fd00::3"},
                "none": None,
            }
        },
    }
    c = normalize(doc, "bg")
    assert ("c2", "Xapp-1", "created", T0 + 2, "app:2", "host") == (
        c.id,
        c.name,
        c.state,
        c.created,
        c.image,
        c.network_mode,
    )
    assert {"bg.service": "app"} == dict(c.labels)
    assert (80, 81) == c.exposed_ports
    assert {"v4": "10.0.0.2", "v6": "fd00::3", "none": ""} == dict(c.networks)


@pytest.mark.parametrize(
    ("log", "output"),
    [
        ([probe(3, Output="first"), probe(4, Output="  last\n")], "last"),
        ([probe(3, Output="x" * 600 + "END ")], "x" * (MAX_HEALTH_OUTPUT - 3) + "END"),
        ([probe(3, Output=None)], ""),
        ([probe(3)], ""),
        ([probe(3, Output="first"), "junk"], ""),
        ([], ""),
    ],
)
def test_health_output_is_the_newest_probes_tail(log: list[Any], output: str) -> None:
    """The newest probe's output, stripped, its last 500 characters kept."""
    doc = inspect(health={"Status": "healthy", "Log": log})
    assert output == normalize(doc, "bluegreen").health_output


FAULT = (
    'connection error: desc = "transport: Error while dialing dial '
    'unix:///run/containerd/containerd.sock: timeout"'
)


#: A probe in flight when dockerd closed its containerd client (grpc-go's words).
CLOSING = "rpc error: code = Canceled desc = grpc: the client connection is closing"
LOST = "rpc error: code = Unavailable desc = transport is closing"
EOF = "rpc error: code = Unavailable desc = error reading from server: EOF"
#: A probe that ran and hung: a verdict on the app, not a daemon fault.
TIMEOUT = "Health check exceeded timeout (30s)"


def healthy_before(since: float = 3.0, **changes: Any) -> Container:
    """The last observation: healthy and routable since ``T0 + since``."""
    seen = normalize(inspect(health={"Status": "healthy", "Log": [probe(since)]}), "bluegreen")
    return replace(seen, **changes)


@pytest.mark.parametrize(
    ("status", "log", "previous", "reset"),
    [
        ("starting", [probe(4)], healthy_before(), True),
        ("starting", [probe(None, start=4)], healthy_before(), True),
        ("starting", [probe(4, start=1)], healthy_before(), True),
        ("starting", [probe(4, start=0.5)], healthy_before(), False),
        ("starting", [probe(None)], healthy_before(), False),
        ("starting", [], healthy_before(), False),
        ("starting", ["junk"], healthy_before(), False),
        ("starting", [probe(4, 1)], healthy_before(), False),
        ("starting", [probe(4)], healthy_before(1.0), True),
        ("starting", [probe(4)], healthy_before(healthy_since=T0 + 0.5), False),
        ("starting", [probe(4)], healthy_before(healthy_since=None), False),
        ("starting", [probe(4)], healthy_before(state="exited"), False),
        ("starting", [probe(4)], healthy_before(health=Health.NONE), False),
        ("starting", [probe(4)], None, False),
        ("healthy", [probe(4)], healthy_before(), False),
        ("unhealthy", [probe(4)], healthy_before(), False),
        ("unhealthy", [], healthy_before(), False),
        ("unhealthy", [probe(4), probe(None, -1, start=5, Output=FAULT)], healthy_before(), True),
        ("unhealthy", [probe(None, -1, start=5, Output=FAULT)], healthy_before(), False),
        ("unhealthy", [probe(2, 1), probe(4), probe(None, -1, start=5, Output=FAULT)], healthy_before(), True),
        ("unhealthy", [probe(4), probe(None, 1, start=5, Output=FAULT)], healthy_before(), False),
        (
            "unhealthy",
            [probe(4), probe(None, -1, start=5, Output=FAULT.replace("containerd.sock", "x"))],
            healthy_before(),
            False,
        ),
        (
            "unhealthy",
            [probe(4), probe(None, -1, start=5, Output=FAULT.replace("Error while dialing", "x"))],
            healthy_before(),
            False,
        ),
        ("unhealthy", [probe(4), probe(None, -1, start=5)], healthy_before(), False),
        ("unhealthy", [probe(4), "junk"], healthy_before(), False),
        ("unhealthy", [probe(4), probe(None, -1, start=5, Output=CLOSING)], healthy_before(), True),
        ("unhealthy", [probe(4), probe(None, -1, start=5, Output=LOST)], healthy_before(), True),
        ("unhealthy", [probe(4), probe(None, -1, start=5, Output=EOF)], healthy_before(), True),
        ("unhealthy", [probe(4), probe(None, 1, start=5, Output=CLOSING)], healthy_before(), False),
        ("unhealthy", [probe(None, -1, start=5, Output=LOST)], healthy_before(), False),
        ("unhealthy", [probe(4, 1), probe(None, -1, start=5, Output=LOST)], healthy_before(), False),
        ("unhealthy", [probe(4), probe(None, -1, start=5, Output=TIMEOUT)], healthy_before(), False),
    ],
    ids=[
        "reset",
        "probe-start-only",
        "probe-start-counts-first",
        "probe-before-start",
        "probe-without-times",
        "no-probe",
        "junk-probe",
        "probe-failed",
        "streak-began-at-start",
        "started-after-streak",
        "previous-without-streak",
        "previous-not-routable",
        "previous-without-check",
        "first-sight",
        "healthy-is-no-reset",
        "unhealthy-passed",
        "unhealthy-no-log",
        "daemon-fault",
        "daemon-fault-alone",
        "daemon-fault-judged-on-the-probe-before",
        "fault-text-but-exit-1",
        "dial-error-not-containerd",
        "containerd-but-no-dial-error",
        "exit-minus-1-without-output",
        "junk-newest",
        "containerd-client-closing",
        "containerd-transport-closing",
        "containerd-eof",
        "closing-text-but-exit-1",
        "connection-lost-alone",
        "connection-lost-after-a-failed-probe",
        "a-timeout-is-a-verdict",
    ],
)  # fmt: skip
def test_each_condition_of_a_monitor_reset(
    status: str, log: list[Any], previous: Container | None, reset: bool
) -> None:
    """A reset needs all of: running, same run, healthy before, newest probe of this run passed."""
    doc = inspect(health={"Status": status, "Log": log})
    assert reset == monitor_reset(doc["State"], previous)
    c = normalize(doc, "bluegreen", previous)
    if reset:
        assert previous is not None
        assert (Health.HEALTHY, previous.healthy_since) == (c.health, c.healthy_since)
    else:
        assert Health(status) == c.health


@pytest.mark.parametrize("status", ["exited", None])
def test_no_reset_unless_running(status: str | None) -> None:
    """A stopped container is news even if its log would pass."""
    doc = inspect(status=status, health={"Status": "starting", "Log": [probe(4)]})
    assert not monitor_reset(doc["State"], healthy_before())


def test_no_reset_without_a_start_time() -> None:
    """Without ``StartedAt`` the same run cannot be told: no reset."""
    doc = inspect(started=None, health={"Status": "starting", "Log": [probe(4)]})
    assert not monitor_reset(doc["State"], healthy_before())


@pytest.mark.parametrize(
    ("summary", "signature"),
    [
        ({"State": "running", "Status": "Up 3 seconds (healthy)"}, ("running", "(healthy)")),
        ({"State": "running", "Status": "Up 3 seconds"}, ("running", "")),
        ({"State": "exited", "Status": "Exited (0) 3 seconds ago"}, ("exited", "")),
        ({"State": "running", "Status": "Up (x) 2 s (health: starting)"}, ("running", "(health: starting)")),
        ({}, ("", "")),
        ({"State": None, "Status": None}, ("", "")),
    ],
)  # fmt: skip
def test_list_signature_keeps_state_and_trailing_health(
    summary: dict[str, Any], signature: tuple[str, str]
) -> None:
    """Only a parenthesised health at the end counts; an exit code in the middle does not."""
    assert signature == list_signature(summary)
