"""The drain's pure parts: TCP tables read as connections, and when the drain ends.

The TCP lines are real: captured from ``/proc/self/net/tcp`` and ``tcp6`` on this
host with a listener on port 47001 (0xB799, IPv4) and 47002 (0xB79A, IPv6 and
IPv4-mapped) and clients connected over loopback, plus lines of a container's
table read through its PID (peers on Docker's bridge).
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

import pytest

from deploy import tcp_table
from deploy.drain import BlindProbe, DrainReport, StopWatch, drain, parse_inspect
from deploy.drain_policy import DrainEnd, DrainPolicy, Sample, Step, decide, idle_since

TCP4 = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   1: 00000000:B799 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4653579 1 000000008ffda6c4 100 0 0 10 0
1224: 0100007F:9BA4 0100007F:B79A 06 00000000:00000000 03:000016CD 00000000     0        0 0 3 00000000813f443e
1225: 0100007F:9BAE 0100007F:B79A 01 00000000:00000000 00:00000000 00000000     0        0 4653591 2 00000000509b8a11 20 0 0 10 -1
2654: 0100007F:B799 0100007F:B328 01 00000000:00000000 00:00000000 00000000     0        0 4653581 1 00000000d876e26a 20 0 0 10 -1
2675: 0100007F:B318 0100007F:B799 06 00000000:00000000 03:000016C9 00000000     0        0 0 3 00000000b47fcca9
2676: 0100007F:B328 0100007F:B799 01 00000000:00000000 00:00000000 00000000     0        0 4653580 2 00000000a1ae96b2 20 0 0 10 -1
"""  # noqa: E501

TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:B79A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4653582 1 000000006577abb6 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:B79A 0000000000000000FFFF00000100007F:9BAE 01 00000000:00000000 00:00000000 00000000     0        0 4653592 1 000000000896a5e9 20 0 0 10 -1
   2: 00000000000000000000000001000000:B79A 00000000000000000000000001000000:A2CC 01 00000000:00000000 00:00000000 00000000     0        0 4653590 1 000000001f6ffc71 20 0 0 10 -1
   3: 00000000000000000000000001000000:A2BE 00000000000000000000000001000000:B79A 06 00000000:00000000 03:000016C8 00000000     0        0 0 3 00000000f50d426c
   4: 00000000000000000000000001000000:A2CC 00000000000000000000000001000000:B79A 01 00000000:00000000 00:00000000 00000000     0        0 4653583 2 000000008fa711e0 20 0 0 10 -1
"""  # noqa: E501

#: A container's table during a deploy: the app listens on 8080 (0x1F90); Traefik
#: (172.18.0.1, the bridge's gateway) holds two connections to it; the app has one
#: connection out to 172.18.0.5:5432 (a database; not inbound); a healthcheck
#: over loopback is in TIME_WAIT.
CONTAINER = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 812345 1 0000000000000000 100 0 0 10 0
   1: 020012AC:1F90 010012AC:C51A 01 00000000:00000000 00:00000000 00000000     0        0 812401 1 0000000000000000 20 4 30 10 -1
   2: 020012AC:1F90 010012AC:C51C 01 00000000:00000000 00:00000000 00000000     0        0 812402 1 0000000000000000 20 4 30 10 -1
   3: 020012AC:9C40 050012AC:1538 01 00000000:00000000 00:00000000 00000000     0        0 812403 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:1F90 0100007F:A4F0 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
"""  # noqa: E501


def test_ipv4_addresses_and_ports_are_decoded() -> None:
    """Host-order hex words and big-endian ports: 0100007F:B799 is 127.0.0.1:47001."""
    sockets = tcp_table.parse(TCP4)
    assert 6 == len(sockets)
    first = sockets[3]
    assert (ipaddress.IPv4Address("127.0.0.1"), 47001, 45864, "01") == (
        first.local,
        first.local_port,
        first.remote_port,
        first.state,
    )


def test_ipv6_and_mapped_addresses_are_decoded() -> None:
    """tcp6's 32 digits are four host-order words: ::1, and ::ffff:127.0.0.1 for IPv4."""
    sockets = tcp_table.parse(TCP6)
    assert ipaddress.IPv6Address("::ffff:127.0.0.1") == sockets[1].remote
    assert ipaddress.IPv6Address("::1") == sockets[2].local
    assert 47002 == sockets[2].local_port


@pytest.mark.parametrize(
    ("text", "ports", "expected"),
    [
        (TCP4, {47001}, 1),  # the server side; the client side's port is ephemeral
        (TCP4, {47002}, 0),  # not listened on in this table
        (TCP6, {47002}, 2),  # ::1 and the IPv4-mapped client
        (TCP6, {47001, 47002}, 2),
        (CONTAINER, {8080}, 2),  # Traefik's two; the outbound one and TIME_WAIT do not count
        (CONTAINER, {40000}, 0),  # the outbound connection's port is nobody's listener
        ("", {8080}, 0),
        ("garbage\n  1: nothing here 01\n", {8080}, 0),
    ],
)
def test_inbound_peers_are_the_connections_to_the_listening_ports(
    text: str, ports: set[int], expected: int
) -> None:
    """Only ESTABLISHED sockets on one of the ports, which the namespace listens on."""
    assert expected == len(tcp_table.inbound_peers(tcp_table.parse(text), ports))


def test_a_listener_on_a_port_makes_its_connections_inbound() -> None:
    """The same connection counts once its local port is a listening one."""
    line = "   1: 020012AC:9C40 050012AC:1538 01 00000000:00000000 00:0 0 0 0 1\n"
    listen = "   0: 00000000:9C40 00000000:0000 0A 00000000:00000000 00:0 0 0 0 1\n"
    assert 0 == len(tcp_table.inbound_peers(tcp_table.parse(line), {40000}))
    assert 1 == len(tcp_table.inbound_peers(tcp_table.parse(listen + line), {40000}))


POLICY = DrainPolicy(timeout=30.0, settle=0.5, interval=0.2)


@pytest.mark.parametrize(
    ("samples", "now", "expected"),
    [
        # Connections open: look again in one interval.
        ([(0.0, 3)], 0.0, Step(DrainEnd.WAITING, 0.2)),
        # First zero: wait until idle has held `settle` (not longer than an interval).
        ([(0.0, 3), (0.2, 0)], 0.2, Step(DrainEnd.WAITING, 0.4)),
        ([(0.0, 0)], 0.0, Step(DrainEnd.WAITING, 0.2)),
        ([(0.0, 0), (0.4, 0)], 0.4, Step(DrainEnd.WAITING, 0.5)),
        # Idle for settle seconds: done.
        ([(0.0, 0), (0.5, 0)], 0.5, Step(DrainEnd.IDLE)),
        ([(0.0, 3), (0.2, 0), (0.4, 0), (0.7, 0)], 0.7, Step(DrainEnd.IDLE)),
        # A connection in between restarts the idle run.
        ([(0.0, 0), (0.2, 1), (0.4, 0)], 0.4, Step(DrainEnd.WAITING, 0.6)),
        ([(0.0, 0), (0.2, 1), (0.6, 0)], 0.6, Step(DrainEnd.WAITING, 0.8)),
        # Not visible: never idle, wait the timeout.
        ([(0.0, None)], 0.0, Step(DrainEnd.WAITING, 0.2)),
        ([(29.9, None)], 29.9, Step(DrainEnd.WAITING, 30.0)),
        ([(30.0, None)], 30.0, Step(DrainEnd.TIMEOUT)),
        ([(0.0, 0), (0.3, None)], 0.3, Step(DrainEnd.WAITING, 0.5)),
        # The timeout ends a drain with connections open; never a wake past it.
        ([(29.95, 2)], 29.95, Step(DrainEnd.WAITING, 30.0)),
        ([(31.0, 2)], 31.0, Step(DrainEnd.TIMEOUT)),
        # Idle that holds exactly at the timeout is idle, not a timeout.
        ([(29.5, 0), (30.0, 0)], 30.0, Step(DrainEnd.IDLE)),
    ],
)
def test_decide(samples: list[tuple[float, int | None]], now: float, expected: Step) -> None:
    """Idle for `settle` ends the drain, else the timeout; wakes are never in the past."""
    step = decide(POLICY, [Sample(at, n) for at, n in samples], now)
    assert expected.end == step.end
    if expected.wake is None:
        assert step.wake is None
    else:
        assert step.wake == pytest.approx(expected.wake)
        assert step.wake > now


def test_idle_since_is_the_start_of_the_trailing_zero_run() -> None:
    """Only the zeros at the end count; None when the last look saw connections."""
    assert 0.4 == idle_since([Sample(0.0, 0), Sample(0.2, 2), Sample(0.4, 0), Sample(0.6, 0)])
    assert idle_since([Sample(0.0, 0), Sample(0.2, 2)]) is None
    assert idle_since([]) is None


def test_a_zero_timeout_ends_at_once() -> None:
    """--drain-timeout 0: the first look ends it (idle or not), as --drain 0 used to."""
    assert DrainEnd.TIMEOUT == decide(DrainPolicy(0.0), [Sample(0.0, 5)], 0.0).end


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """A probe answering a script of connection counts (the last one repeats)."""

    def __init__(self, counts: list[int | None], killed: list[str] | None = None) -> None:
        self.counts = counts
        self.looks = 0
        self._killed = killed or []

    def connections(self, container_ids: object, ports: object) -> int | None:
        count = self.counts[min(self.looks, len(self.counts) - 1)]
        self.looks += 1
        return count

    def peers(self, container_ids: Any, ports: Any) -> frozenset[tuple[str, int, int]] | None:
        """The counted connections as lasting ones, the same at every look."""
        count = self.connections(container_ids, ports)
        return None if count is None else frozenset(("127.0.0.1", n, 1) for n in range(count))

    def killed(self, container_ids: object) -> list[str]:
        return self._killed


def test_drain_ends_when_idle_holds() -> None:
    """Three looks with connections, then zeros: over once zero held for settle."""
    clock = Clock()
    report = drain(Script([2, 2, 1, 0]), ["a"], {80}, POLICY, clock, clock.sleep)
    assert DrainReport(pytest.approx(1.1), DrainEnd.IDLE, 0) == report  # type: ignore[arg-type]


def test_drain_times_out_with_connections_open() -> None:
    """A stream that never closes: the drain ends at the timeout, saying what was open."""
    clock = Clock()
    report = drain(Script([1]), ["a"], {80}, DrainPolicy(timeout=3.0), clock, clock.sleep)
    assert (DrainEnd.TIMEOUT, 1) == (report.end, report.open_at_stop)
    assert pytest.approx(3.0) == report.seconds
    assert all(s > 0 for s in clock.sleeps)
    assert "drained 3.0s (--drain-timeout passed; 1 connection(s) open)" == report.describe()


def test_a_blind_drain_waits_the_timeout() -> None:
    """Nothing visible (Swarm): the whole timeout, and the report says it could not see."""
    clock = Clock()
    report = drain(BlindProbe(), ["a"], {80}, DrainPolicy(timeout=2.0), clock, clock.sleep)
    assert "drained 2.0s (--drain-timeout passed; connections not visible from here)" == (
        report.describe()
    )


def test_parse_inspect_reads_pid_exit_code_and_oom() -> None:
    """``docker inspect --format`` lines; a malformed one is skipped."""
    text = "abc 4242 0 false\ndef 0 137 false\nbad line\nghi x 0 false\n"
    states = parse_inspect(text)
    assert [("abc", 4242, 0, False), ("def", 0, 137, False)] == [
        (s.id, s.pid, s.exit_code, s.oom_killed) for s in states
    ]


STREAM = ("127.0.0.1", 40001, 80)
CHECK = ("127.0.0.1", 40002, 80)


class Looks:
    """A probe answering a script of peer sets, one per look, then None (the process died);
    ``done`` is set at the last answer."""

    def __init__(self, looks: list[frozenset[tuple[str, int, int]]]) -> None:
        self.looks = looks
        self.done = threading.Event()

    def connections(self, container_ids: object, ports: object) -> int | None:
        raise AssertionError("the watch follows peers")

    def peers(self, container_ids: object, ports: object) -> frozenset[tuple[str, int, int]] | None:
        if not self.looks:
            self.done.set()
            return None
        return self.looks.pop(0)

    def killed(self, container_ids: object) -> list[str]:
        return []


@pytest.mark.parametrize(
    ("looks", "cut"),
    [
        # a stream open from the start of the stop to the kill: cut
        ([frozenset({STREAM}), frozenset({STREAM}), frozenset({STREAM})], 1),
        # a healthcheck's connection made during the stop, open at the kill: not a stream
        ([frozenset(), frozenset({CHECK}), frozenset({CHECK})], 0),
        ([frozenset({STREAM}), frozenset({STREAM, CHECK})], 1),
        # a stream that ended during the stop, or nothing at all
        ([frozenset({STREAM}), frozenset()], 0),
        ([frozenset()], 0),
        # the only look: what it saw
        ([frozenset({STREAM})], 1),
    ],
)
def test_the_stop_watch_counts_connections_open_since_the_stop_began(
    looks: list[frozenset[tuple[str, int, int]]], cut: int
) -> None:
    probe = Looks(looks)
    with StopWatch(probe, ["a"], {80}, interval=0.001) as watch:
        assert probe.done.wait(5.0)
    assert cut == watch.last
