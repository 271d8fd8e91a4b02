"""The drain's I/O: look at the old color's connections until ``drain_policy`` says stop.

The CLI runs on the Docker host (as root), so it can read each container's TCP
table through its main process: ``docker inspect`` gives the PID,
``/proc/<pid>/net/tcp`` and ``tcp6`` the sockets of the container's network
namespace (``deploy/tcp_table.py`` counts the inbound ESTABLISHED ones). A CLI
that cannot (not root, in a container of its own, Docker on another host, Swarm
tasks on other nodes) sees nothing, and the drain then waits ``--drain-timeout``.

After ``compose stop`` the containers' exit codes say how the open connections
ended: an app that handled SIGTERM exits by itself (its WebSockets got a close
frame, if it sent one), while 137/143 (killed by SIGKILL after the stop grace
period, or by a SIGTERM it did not handle) means the kernel cut them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy import tcp_table
from deploy.drain_policy import DrainEnd, DrainPolicy, Sample, decide

INSPECT_TIMEOUT_S = 20.0
#: A process that died of SIGKILL (the stop grace period ran out) or of SIGTERM unhandled.
KILLED_EXIT_CODES = frozenset({128 + 9, 128 + 15})


class ConnectionProbe(Protocol):
    """What the drain asks of the engine (``DockerProbe``; fakes in the tests)."""

    def connections(self, container_ids: Sequence[str], ports: Collection[int]) -> int | None:
        """Connections open to these containers' ``ports``; None when none could be read."""
        ...

    def peers(
        self, container_ids: Sequence[str], ports: Collection[int]
    ) -> frozenset[tcp_table.Peer] | None:
        """The same connections, each told apart (the stop's watch follows them)."""
        ...

    def killed(self, container_ids: Sequence[str]) -> list[str]:
        """Of these stopped containers, the ones that did not exit by themselves."""
        ...


class BlindProbe:
    """Sees nothing (Swarm, or a CLI with no access to the PIDs): the drain waits the timeout."""

    def connections(self, container_ids: Sequence[str], ports: Collection[int]) -> int | None:
        return None

    def peers(
        self, container_ids: Sequence[str], ports: Collection[int]
    ) -> frozenset[tcp_table.Peer] | None:
        return None

    def killed(self, container_ids: Sequence[str]) -> list[str]:
        return []


@dataclass(frozen=True)
class ContainerState:
    """What ``docker inspect`` says of one container, for the drain."""

    id: str
    pid: int
    exit_code: int
    oom_killed: bool


def parse_inspect(text: str) -> list[ContainerState]:
    """The lines of ``docker inspect --format '{{.Id}} {{.State.Pid}} ...'`` (see below)."""
    states: list[ContainerState] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 4:
            continue
        try:
            states.append(
                ContainerState(fields[0], int(fields[1]), int(fields[2]), fields[3] == "true")
            )
        except ValueError:
            continue
    return states


class DockerProbe:
    """``docker inspect`` for the PIDs, ``/proc/<pid>/net/tcp{,6}`` for the connections."""

    FORMAT = "{{.Id}} {{.State.Pid}} {{.State.ExitCode}} {{.State.OOMKilled}}"

    def __init__(self, environ: Mapping[str, str], proc: Path = Path("/proc")) -> None:
        self.environ = dict(environ)
        self.proc = proc
        #: PIDs by container, inspected once: a running container keeps its PID, and a
        #: ``docker inspect`` per look would cost more than the look (a second, loaded).
        self._pids: dict[tuple[str, ...], list[int]] = {}

    def _inspect(self, container_ids: Sequence[str]) -> list[ContainerState]:
        if not container_ids:
            return []
        argv = ["docker", "inspect", "--format", self.FORMAT, *container_ids]
        try:
            result = subprocess.run(
                argv,
                env=self.environ,
                capture_output=True,
                text=True,
                timeout=INSPECT_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return []
        return parse_inspect(result.stdout)

    def _table(self, pid: int) -> tuple[str, str] | None:
        """The netns (to count a shared one once) and both tables of ``pid``; None: unreadable."""
        base = self.proc / str(pid)
        try:
            namespace = os.readlink(base / "ns" / "net")
            text = (base / "net" / "tcp").read_text()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # IPv6 disabled in the namespace
            text += (base / "net" / "tcp6").read_text()
        return namespace, text

    def connections(self, container_ids: Sequence[str], ports: Collection[int]) -> int | None:
        peers = self.peers(container_ids, ports)
        return None if peers is None else len(peers)

    def peers(
        self, container_ids: Sequence[str], ports: Collection[int]
    ) -> frozenset[tcp_table.Peer] | None:
        """Each network namespace read once (containers on the host's network share one)."""
        key = tuple(container_ids)
        if key not in self._pids:
            self._pids[key] = [s.pid for s in self._inspect(container_ids) if s.pid > 0]
        seen: dict[str, str] = {}
        for pid in self._pids[key]:
            table = self._table(pid)
            if table is not None:
                seen.setdefault(*table)
        if not seen:
            return None
        return frozenset().union(
            *(tcp_table.inbound_peers(tcp_table.parse(t), ports) for t in seen.values())
        )

    def killed(self, container_ids: Sequence[str]) -> list[str]:
        return [
            s.id
            for s in self._inspect(container_ids)
            if s.pid == 0 and (s.exit_code in KILLED_EXIT_CODES or s.oom_killed)
        ]


class StopWatch:
    """Looks at the old color's connections while it is being stopped, in a thread.

    ``last`` counts, at the last look that could still read a container (what was open
    when its process died: the kill, if the grace period ran out), the connections that
    were already open at the first look. A stream the kill cut was open before the stop
    began; a healthcheck's connection made during the stop was not (the engine runs the
    checks until the container dies, and on a loaded host one lasted long enough to be
    seen: a clean deploy reported a cut stream).
    """

    def __init__(
        self,
        probe: ConnectionProbe,
        container_ids: Sequence[str],
        ports: Collection[int],
        interval: float = 0.1,
    ) -> None:
        self.last: int | None = None
        self._args = (probe, list(container_ids), set(ports), interval)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stop-watch", daemon=True)

    def _run(self) -> None:
        probe, ids, ports, interval = self._args
        first: frozenset[tcp_table.Peer] | None = None
        while not self._done.is_set():
            peers = probe.peers(ids, ports)
            if peers is None:
                return  # every process is gone
            first = peers if first is None else first
            self.last = len(peers & first)
            self._done.wait(interval)

    def __enter__(self) -> StopWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)


@dataclass(frozen=True)
class DrainReport:
    """How the drain went: how long, why it ended, what was open when it ended."""

    seconds: float
    end: DrainEnd
    #: Connections open to the old color when the drain ended (None: not seen).
    open_at_stop: int | None

    def describe(self) -> str:
        if self.open_at_stop is None:
            seen = "connections not visible from here"
        else:
            seen = f"{self.open_at_stop} connection(s) open"
        why = "idle" if self.end is DrainEnd.IDLE else "--drain-timeout passed"
        return f"drained {self.seconds:.1f}s ({why}; {seen})"


def drain(
    probe: ConnectionProbe,
    container_ids: Sequence[str],
    ports: Collection[int],
    policy: DrainPolicy,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> DrainReport:
    """Sample the old color's connections until it is idle or the timeout passes."""
    started = clock()
    samples: list[Sample] = []
    while True:
        now = clock() - started
        samples.append(Sample(now, probe.connections(container_ids, ports)))
        step = decide(policy, samples, now)
        if step.end is not DrainEnd.WAITING:
            return DrainReport(now, step.end, samples[-1].connections)
        assert step.wake is not None
        sleep(max(step.wake - (clock() - started), 0.0))
