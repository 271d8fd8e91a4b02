"""Stateful property test of the decision code: sequences of ordinary events, promises checked.

The defects of issue 9 were all *sequences* of ordinary events (a rollback, then a
restart; a failed write, then a resync; a typo'd deploy, then a crash) that no
single-scenario test walks through. This machine drives the real ``Controller``,
``AutoSwitcher`` (and through it ``promotion.decide``) and ``store`` with a
temporary state file; only the clock and the container source are fakes. The
rules are the events an operator and a Docker host produce; the invariants are the
product's promises (README "How it decides", "Failure modes"), checked after every
step against a small model the machine keeps of its own.

Issue 19 taught it the canary's edges: the driver's scrape as its own step
(``canary_scrape_races``: the lock is released, containers change before the
verdict lands), Traefik restarts (every series starts again from zero) and
malformed metrics (a bucket whose ``le`` is no number). Its invariants: no switch
goes to a color without servers unless an operator forced it; every change of
the active color is exactly one ``switch`` event; a judged step's figures are what
the color served (since the restart, if one shows); and, on an event loop whose
time is the fake clock, each background loop evaluates once per wait at one
simulated instant (a wake time in the past is never re-armed).

Invariants that depend on fixes not merged yet are switched on by feature
detection (see the ``EXPECT_*`` flags below), so they turn on by themselves once
the fixes land. ``BLUEGREEN_SM_EXPECT=all`` (or a comma-separated list of the names
in ``_forced`` calls) switches them on anyway, to hunt for the defects on code that
still has them.

Profiles (tests/conftest.py): ``ci`` by default; ``pytest --hypothesis-profile long
tests/property/test_state_machine.py`` for a long hunt.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from provider import atomic_file, canary_driver, store
from provider.auto_switch import AutoSwitcher, policy_from
from provider.canary_driver import CanaryDriver
from provider.controller import Controller, SwitchResult
from provider.core import canary as canaries
from provider.core.model import Color, Container, Health, MarkKind, ServiceState, State
from provider.core.promotion import Action
from provider.errors import (
    BlueGreenError,
    CanaryNotRunning,
    CanaryRefused,
    StateFileError,
    SwitchRefused,
    UnknownService,
    answer_for,
)
from provider.events import Event, EventKind
from provider.settings import Settings
from tests.factories import make_container
from tests.loop_wakes import evaluations_per_wait
from tests.property.machine_applied import AppliedRules
from tests.property.machine_bake import BakeRules
from tests.property.machine_fallback import FallbackRules
from tests.property.machine_gates import GateRules
from tests.property.machine_maintenance import MaintenanceRules

T = TypeVar("T")

SERVICES = ("shop", "blog")
PORT = 8080
START = 1_000_000.0
PROMOTE_AFTER = 1.0
ROLLBACK_AFTER = 5.0
#: Rounds of evaluate-and-switch at one instant before the switcher counts as flapping.
MAX_SETTLE_ROUNDS = 4
#: Where state files go: tmpfs if there is one (thousands of fsyncs per run on a shared disk
#: would dominate the run time; the store's atomicity is tested on a real disk elsewhere).
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
#: A deploy's healthcheck: none, passing 1.5 s or 12 s after each start, or never passing.
CHECKS: dict[str, float | str | None] = {
    "none": "none",
    "pass_soon": 1.5,
    "pass_late": 12.0,
    "never_pass": None,
}
#: A canary step's interval, and the limits its steps are judged by.
CANARY_INTERVAL = 2.0
CANARY_LIMITS = canaries.Limits(max_error_rate=0.1, max_p99_ms=None, min_requests=20)
#: History reasons that are canary records (a step, an abort) or its promotion (a switch).
CANARY_RECORDS = (canaries.REASON_STEP, canaries.REASON_ABORT)
#: Bad labels that make ``labels.parse`` refuse a container but still name its service.
BAD_LABELS = {
    "port": {"bluegreen.port": "http"},
    "color": {"bluegreen.color": "purple"},
    "replicas": {"bluegreen.replicas": "0"},
}


# -- fakes: the only parts that are not the product's own --------------------------


class FakeClock:
    """The provider's clock; only the machine moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeTimeLoop(asyncio.SelectorEventLoop):
    """The machine's event loop, whose time is the fake clock's: a loop's wait for a wake
    time (``asyncio.timeout``) ends when the machine moves the clock there, never by
    itself; so evaluations per wait are counted at one simulated instant, not timed."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def time(self) -> float:
        return self.clock.now


class FakeDocker:
    """What ``docker inspect`` would say of every labelled container, as normalized values.

    ``created`` and ``healthy_since`` are in the daemon's clock, which is the
    provider's clock plus ``offset`` (a remote daemon's clock may be skewed).
    Every start gives the container a new bridge IP, as Docker may, so a stale
    server URL is never accidentally right.
    """

    def __init__(self, clock: FakeClock, offset: float = 0.0) -> None:
        self.clock = clock
        self.offset = offset
        self.containers: dict[str, Container] = {}
        #: Per container: seconds from start until its healthcheck passes (``None``: never);
        #: absent for containers without a healthcheck.
        self.passes_after: dict[str, float | None] = {}
        #: When a starting container's healthcheck will pass (provider clock).
        self.pass_at: dict[str, float] = {}
        self.bad: set[str] = set()
        #: Labels every later deploy adds (tests/property/machine_fallback.py).
        self.extra_labels: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._ips = itertools.count(1)

    def now(self) -> float:
        return self.clock.now + self.offset

    def _ip(self) -> str:
        n = next(self._ips)
        return f"10.{(n // 62500) % 250 + 1}.{(n // 250) % 250}.{n % 250 + 1}"

    def of(self, service: str, *, good: bool | None = None) -> list[Container]:
        """The service's containers (optionally only good- or bad-labelled), in id order."""
        return [
            c
            for cid, c in sorted(self.containers.items())
            if c.labels.get("bluegreen.service") == service
            and (good is None or good is (cid not in self.bad))
        ]

    def checked(self, cid: str) -> bool:
        """The container has a healthcheck."""
        return cid in self.passes_after

    def next_pass(self) -> float | None:
        return min(self.pass_at.values(), default=None)

    def checks_passed(self, service: str) -> list[Container]:
        """The service's starting containers whose healthcheck passed by now."""
        due = [
            cid
            for cid, at in sorted(self.pass_at.items())
            if at <= self.clock.now and cid.startswith(f"{service}-")
        ]
        return [self.set_health(cid, Health.HEALTHY) for cid in due]

    def _schedule(self, cid: str) -> None:
        after = self.passes_after.get(cid)
        if after is not None:
            self.pass_at[cid] = self.clock.now + after

    def _new(
        self,
        service: str,
        color: str,
        labels: dict[str, str],
        *,
        running: bool,
        passes_after: float | str | None,
    ) -> Container:
        """``passes_after``: ``"none"`` for no healthcheck, else as in ``self.passes_after``."""
        hc = passes_after != "none"
        n = next(self._ids)
        now = self.now()
        container = make_container(
            service,
            color,
            port=PORT,
            cid=f"{service}-{color}-{n:04d}",
            name=f"{service}-{color}-{n}",
            state="running" if running else "exited",
            health=(Health.STARTING if hc else Health.NONE),
            extra=labels,
            created=now,
            networks={"app": self._ip() if running else ""},
            healthy_since=now if running and not hc else None,
        )
        self.containers[container.id] = container
        if hc:
            self.passes_after[container.id] = None if passes_after is None else float(passes_after)
            if running:
                self._schedule(container.id)
        return container

    def deploy(
        self,
        service: str,
        color: Color,
        count: int,
        replicas: int,
        passes_after: float | str | None,
    ) -> tuple[list[Container], list[str]]:
        """``compose up`` of one color: its old containers go, ``count`` new ones start."""
        removed = [
            c.id for c in self.of(service, good=True) if c.labels["bluegreen.color"] == color.value
        ]
        for cid in removed:
            self.remove(cid)
        labels = {"bluegreen.replicas": str(replicas), **self.extra_labels}
        new = [
            self._new(service, color.value, labels, running=True, passes_after=passes_after)
            for _ in range(count)
        ]
        return new, removed

    def add_bad(self, service: str, color: Color, kind: str, running: bool) -> Container:
        labels = BAD_LABELS[kind]
        container = self._new(service, color.value, labels, running=running, passes_after="none")
        self.bad.add(container.id)
        return container

    def set_health(self, cid: str, health: Health) -> Container:
        self.pass_at.pop(cid, None)
        old = self.containers[cid]
        since = old.healthy_since if old.health is Health.HEALTHY else self.now()
        new = replace(old, health=health, healthy_since=since if health is Health.HEALTHY else None)
        self.containers[cid] = new
        return new

    def stop(self, cid: str) -> Container:
        self.pass_at.pop(cid, None)
        new = replace(
            self.containers[cid], state="exited", networks={"app": ""}, healthy_since=None
        )
        self.containers[cid] = new
        return new

    def start(self, cid: str) -> Container:
        hc = self.checked(cid)
        self._schedule(cid)
        new = replace(
            self.containers[cid],
            state="running",
            networks={"app": self._ip()},
            health=Health.STARTING if hc else Health.NONE,
            healthy_since=None if hc else self.now(),
        )
        self.containers[cid] = new
        return new

    def remove(self, cid: str) -> None:
        self.containers.pop(cid)
        self.passes_after.pop(cid, None)  # ``bad`` keeps the id: the controller may know it
        self.pass_at.pop(cid, None)


class FakeTraefikMetrics:
    """Traefik's ``/metrics`` as the canary driver scrapes it: request counters (and the
    duration histogram's buckets) per color service, moved only by the machine.

    ``up`` false makes the scrape fail; ``malformed`` adds a bucket whose ``le`` is no
    number; ``restart`` resets every series (Traefik restarted). ``during`` runs inside
    the next scrape, while the driver holds no lock (a Docker event landing meanwhile).
    ``last`` is the truth behind the last scrape served: the restart count and counters.
    """

    def __init__(self) -> None:
        self.up = True
        self.malformed = False
        self.restarts = 0
        self.counts: dict[tuple[str, str], int] = {}
        self.during: Callable[[], Coroutine[Any, Any, None]] | None = None
        self.last: tuple[int, dict[tuple[str, str], int]] | None = None

    def add(self, service: str, color: Color, ok: int, errors: int) -> None:
        name = f"{service}-{color}@http"
        self.counts[(name, "200")] = self.counts.get((name, "200"), 0) + ok
        self.counts[(name, "500")] = self.counts.get((name, "500"), 0) + errors

    def restart(self) -> None:
        self.restarts += 1
        self.counts = {}

    async def fetch(self) -> str:
        if self.during is not None:
            during, self.during = self.during, None
            await during()
        if not self.up:
            raise aiohttp.ClientConnectionError("traefik metrics down")
        lines = ["# TYPE traefik_service_requests_total counter"]
        buckets = ["# TYPE traefik_service_request_duration_seconds histogram"]
        for (name, code), count in sorted(self.counts.items()):
            labels = f'code="{code}",method="GET",protocol="http",service="{name}"'
            lines.append(f"traefik_service_requests_total{{{labels}}} {count}")
            for le in ("0.1", "+Inf"):
                buckets.append(
                    f'traefik_service_request_duration_seconds_bucket{{{labels},le="{le}"}} {count}'
                )
        if self.malformed:
            for service, color in itertools.product(SERVICES, Color):
                labels = f'code="200",method="GET",protocol="http",service="{service}-{color}@http"'
                buckets.append(
                    f'traefik_service_request_duration_seconds_bucket{{{labels},le="fast"}} 1'
                )
        self.last = (self.restarts, dict(self.counts))
        return "\n".join(lines + buckets) + "\n"


class _FailingOs(ModuleType):
    """``os`` for ``provider.atomic_file`` whose ``fsync`` of a directory fails (after rename)."""

    def __init__(self) -> None:
        super().__init__("os")

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)


class _FullTempfile(ModuleType):
    """``tempfile`` for ``provider.atomic_file`` on a full disk: no temp file can be made."""

    def __init__(self) -> None:
        super().__init__("tempfile")

    def __getattr__(self, name: str) -> Any:
        return getattr(tempfile, name)

    @staticmethod
    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class StateDisk:
    """Switchable faults of the state file's disk, injected at the OS calls ``store`` makes
    (through ``provider.atomic_file``).

    ``full``: no temp file can be created (disk full, EMFILE): nothing is written.
    ``dir_fsync``: the rename happened but the directory fsync fails (defect 9).
    """

    def __init__(self) -> None:
        self.mode = "ok"

    def install(self) -> None:
        self._os, self._tempfile = atomic_file.os, atomic_file.tempfile
        self.set("ok")

    def set(self, mode: str) -> None:
        self.mode = mode
        atomic_file.os = _FailingOs() if mode == "dir_fsync" else self._os  # type: ignore[assignment]
        atomic_file.tempfile = _FullTempfile() if mode == "full" else self._tempfile  # type: ignore[assignment]

    def uninstall(self) -> None:
        atomic_file.os, atomic_file.tempfile = self._os, self._tempfile


# -- feature detection of the fixes in flight (issue 9) ---------------------------

#: Invariants to check even where their fix is not detected: ``all`` or a comma-separated
#: list of the names below (``marks,daemon_clock``), to hunt for the defects themselves.
FORCED = set(os.environ.get("BLUEGREEN_SM_EXPECT", "").split(","))


def _forced(name: str) -> bool:
    return "all" in FORCED or name in FORCED


def _probe_container(cid: str, ip: str, *, running: bool = True, **labels: str) -> Container:
    return make_container(
        "probe",
        "blue",
        port=80,
        cid=cid,
        name=cid,
        state="running" if running else "exited",
        health=Health.NONE,
        extra=labels,
        created=1.0,
        networks={"app": ip if running else ""},
    )


def _probe_controller(steps: list[list[Container]]) -> tuple[Controller, bytes]:
    """Feed a throwaway controller full syncs; its last body (for behaviour probes)."""

    async def feed() -> tuple[Controller, bytes]:
        with tempfile.TemporaryDirectory() as tmp:
            controller = Controller(Settings(state_file=Path(tmp) / "s.json"), State())
            for containers in steps:
                await controller.replace_containers(containers)
            return controller, controller.body

    return asyncio.run(feed())


def _stopped_bad_labels_freeze_nothing() -> bool:
    """Defect 3: a stopped container with bad labels must not freeze its service."""
    good1, good2 = _probe_container("a", "10.9.0.1"), _probe_container("c", "10.9.0.2")
    bad = _probe_container("b", "", running=False, **{"bluegreen.port": "http"})
    _, body = _probe_controller([[good1], [bad, good2]])
    return b"10.9.0.2" in body


def _frozen_service_drops_dead_urls() -> bool:
    """Defect 3: a frozen service (running bad labels) still drops servers that are gone."""
    good1 = _probe_container("a", "10.9.0.1")
    bad = _probe_container("b", "10.9.0.3", **{"bluegreen.port": "http"})
    _, body = _probe_controller([[good1], [bad, replace(good1, state="exited")]])
    return b"10.9.0.1" not in body


def _dir_fsync_failure_handled() -> bool:
    """Defect 9: a failed directory fsync after the rename must not leave memory behind."""
    disk = StateDisk()
    disk.install()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            disk.set("dir_fsync")
            store.save(Path(tmp) / "s.json", State(seq=1))
        return True
    except StateFileError:
        return False
    finally:
        disk.uninstall()


#: Defect 1/6: color marks (rejected, retiring) exist; auto-switches must honour them.
EXPECT_MARKS = _forced("marks") or "marks" in ServiceState.__dataclass_fields__
#: Defect 6: the operator can mark a color as being retired.
HAS_RETIRE = hasattr(Controller, "retire")
#: Defect 7: generation anchors in the daemon's clock; a skewed daemon is tested.
EXPECT_DAEMON_CLOCK = _forced("daemon_clock") or hasattr(Controller, "set_daemon_offset")
#: Defect 2: a failed adoption write never stops observations reaching the body.
EXPECT_WRITE_ERRORS_HANDLED = _forced("write_errors") or hasattr(
    _probe_controller([])[0], "state_write_error"
)
#: Defect 3: stopped bad-labelled containers freeze nothing.
EXPECT_STOPPED_BAD_IGNORED = _forced("stopped_bad") or _stopped_bad_labels_freeze_nothing()
#: Defect 3: a frozen service never serves a dead URL.
EXPECT_FROZEN_LIVE = _forced("frozen_live") or _frozen_service_drops_dead_urls()
#: Defect 9: a directory fsync failing after the rename is tested.
EXPECT_DIR_FSYNC_HANDLED = _forced("dir_fsync") or _dir_fsync_failure_handled()


# -- helpers --------------------------------------------------------------------


def url(container: Container) -> str:
    return f"http://{container.networks['app']}:{PORT}"


def service_part(body: bytes, service: str) -> dict[str, dict[str, Any]]:
    """The routers and services one service owns in a rendered body."""
    http = json.loads(body).get("http", {})
    return {
        kind: {k: v for k, v in http.get(kind, {}).items() if owner(k) == service}
        for kind in ("routers", "services", "middlewares")
    }


def owner(name: str) -> str:
    """The service a router, service or middleware name belongs to (names are
    ``<service>[-...]``, or ``_maintenance-<service>``)."""
    return name.removeprefix("_maintenance-").split("-", 1)[0]


class BlueGreenMachine(
    AppliedRules, FallbackRules, MaintenanceRules, GateRules, BakeRules, RuleBasedStateMachine
):
    """Two services on one provider, driven by Docker events, operators, time and faults."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(START)
        self.loop = FakeTimeLoop(self.clock)
        self.tmp = Path(tempfile.mkdtemp(prefix="bluegreen-sm-", dir=SCRATCH))
        self.path = self.tmp / "state.json"
        self.settings = Settings(
            state_file=self.path, promote_after=PROMOTE_AFTER, rollback_after=ROLLBACK_AFTER
        )
        self.docker = FakeDocker(self.clock)
        self.disk = StateDisk()
        self.disk.install()
        self.metrics = FakeTraefikMetrics()
        #: The driver's retry pause is real time; the machine has none to spare.
        self._retry_after = canary_driver.RETRY_AFTER_S
        canary_driver.RETRY_AFTER_S = 0.0
        #: Docker's daemon is reachable (the watcher's session may still be down).
        self.docker_up = True
        #: The watcher's session ended on an error and must resync before events flow.
        self.session_broken = False
        #: Old code only: an observation update raised, the body was not rebuilt.
        self.stale = False
        #: What the controller was told, container by container.
        self.seen: dict[str, Container] = {}
        #: Every ``switch`` event published, by every provider process the machine started:
        #: (service, seq, to, forced, whether ``to`` was ready when it was published).
        self.switch_events: list[tuple[str, int, Color, bool, bool]] = []
        #: Services an operator switched with ``force`` during the current step.
        self.forced: set[str] = set()
        #: Per service at the end of the last step: its active color, and whether Traefik
        #: got servers for it (the moment before the next step).
        self.served_before: dict[str, tuple[Color, bool]] = {}
        #: Per service: the driver's window baseline, and the truth behind it (restarts seen
        #: by Traefik's fake, its counters).
        self.baselines: dict[str, tuple[object, int, dict[tuple[str, str], int]]] = {}
        self.controller, self.switcher, self.driver = self._new_provider(State())
        # The model: what happened, by the machine's own account.
        self.history: list[tuple[str, Color | None, Color, str, str, float]] = []
        self.active: dict[str, Color] = {}
        self.previous: dict[str, Color | None] = {}
        self.marks: dict[tuple[str, Color], float] = {}
        self.deployed_at: dict[tuple[str, Color], float] = {}
        self.first_seen_at: dict[str, float] = {}
        self.last_switch_at: dict[str, float] = {}

    def teardown(self) -> None:
        """Cancel whatever the controller left running, close the loop, restore ``store``."""
        try:
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            self.disk.uninstall()
            canary_driver.RETRY_AFTER_S = self._retry_after
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- driving the provider ------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def _new_provider(self, state: State) -> tuple[Controller, AutoSwitcher, CanaryDriver]:
        controller = Controller(self.settings, state, clock=self.clock)
        if hasattr(controller, "set_daemon_offset"):
            controller.set_daemon_offset(self.docker.offset)
        switcher = AutoSwitcher(controller, policy_from(self.settings), clock=self.clock)
        driver = CanaryDriver(controller, fetch=self.metrics.fetch, clock=self.clock)
        controller.events.add_listener(lambda e, c=controller: self._on_event(c, e))
        return controller, switcher, driver

    def _on_event(self, controller: Controller, published: Event) -> None:
        """Keep each ``switch`` event, and whether its color was ready as it was published."""
        if published.kind is not EventKind.SWITCH or published.service is None:
            return
        to = Color(published.to)
        view = controller.observation.services.get(published.service)
        ready = view is not None and view.color(to).ready
        seq, forced = int(published.detail["seq"]), bool(published.detail["forced"])
        self.switch_events.append((published.service, seq, to, forced, ready))

    @property
    def session_live(self) -> bool:
        """Docker events reach the controller."""
        return self.docker_up and not self.session_broken and self.controller.docker_connected

    def _feed(self, call: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run one observation update; on the old code a failed adoption write raises."""
        try:
            self.run(call())
        except StateFileError:
            if EXPECT_WRITE_ERRORS_HANDLED:
                raise
            event("defect 2: an observation update raised StateFileError")
            self.stale = True
            # The watcher's session ends on the exception; it reconnects and resyncs later.
            self.run(self.controller.set_docker_connected(False, "watcher error"))
            self.session_broken = True
            return False
        self.stale = False
        return True

    def _note_seen(self) -> None:
        now = self.clock.now
        for c in self.seen.values():
            self.first_seen_at.setdefault(c.labels["bluegreen.service"], now)

    def _sync(self) -> None:
        """The watcher's session start: full sync, mark synced, connected."""
        world = dict(self.docker.containers)
        if dict(self.controller.containers) != world or not self.controller.synced:
            self.seen = world
            self._note_seen()
            if not self._feed(lambda: self.controller.replace_containers(world.values())):
                return
        self.session_broken = False
        self.run(self.controller.mark_synced())
        if hasattr(self.controller, "set_daemon_offset"):
            self.controller.set_daemon_offset(self.docker.offset)
        self.run(self.controller.set_docker_connected(True))
        self._note_adoptions()

    def _deliver(self, changed: list[Container], removed: Sequence[str] = ()) -> None:
        """Docker events of a change, if the watcher's session is live to see them."""
        if not self.session_live:
            return
        for c in changed:
            self.seen[c.id] = c
        for cid in removed:
            self.seen.pop(cid, None)
        self._note_seen()
        self._feed(lambda: self.controller.update_containers(changed, removed))
        self._note_adoptions()

    def _touching(self, service: str, change: Callable[[], None]) -> None:
        """Apply a change of one service; no other service's routers or services may move."""
        others = {s: service_part(self.controller.body, s) for s in SERVICES if s != service}
        stale_before = self.stale
        change()
        if self.stale or stale_before:
            return
        for other, part in others.items():
            assert part == service_part(self.controller.body, other), (
                f"an event of {service} changed {other}'s part of /traefik"
            )

    def _settle(self) -> float | None:
        """What the switcher's and the canary driver's loops do after a change: evaluate,
        switch (or judge a canary step) what is due."""
        stuck: set[tuple[str, str]] = set()
        switching = 0
        # Canary steps (ready, window opened, judged) may follow each other at one instant;
        # only the switcher's rounds count towards flapping.
        for _ in range(MAX_SETTLE_ROUNDS * 4):
            if switching > MAX_SETTLE_ROUNDS:
                break
            planned, wake = self.run(self._evaluate())
            due, canary_wake = self.run(self._evaluate_canaries())
            due = [d for d in due if (d.service, d.kind) not in stuck]
            if not planned and not due:
                wakes = [t for t in (wake, canary_wake) if t is not None]
                return min(wakes) if wakes else None
            switching += bool(planned)
            for item in planned:
                self._auto_switch(item)
            for item in due:
                if not self._canary_due(item):
                    # Not written (a failing disk): the driver retries after a pause.
                    stuck.add((item.service, item.kind))
        raise AssertionError(f"the switcher still switches after {MAX_SETTLE_ROUNDS} rounds")

    async def _evaluate(self) -> tuple[list[Any], float | None]:
        async with self.controller.lock:
            return self.switcher.evaluate()

    async def _evaluate_canaries(self) -> tuple[list[Any], float | None]:
        async with self.controller.lock:
            return self.driver.evaluate()

    def _canary_due(self, due: Any) -> bool:
        """One action of the canary driver, checked against what it may never do; whether
        it took effect."""
        service, canary = due.service, due.canary
        ready = self._ready(service, canary.color)
        state, windows = self.controller.state, dict(self.driver.windows)
        window, baseline = self.driver.windows.get(service), self.baselines.get(service)
        if window is None or baseline is None or baseline[0] is not window.baseline:
            baseline = None
        self.run(self.driver._act(due))
        if due.kind == "lost":
            assert not ready, f"the canary of {service} aborted as lost; {canary.color} is ready"
        self._note_baseline(service)
        new = self._take_canary_records(service)
        for record in new:
            if record.reason == canaries.REASON_STEP and record.detail and baseline:
                self._check_window(record.detail, canary, baseline)
        if self.controller.state.seq == state.seq:
            return self.controller.state is not state or self.driver.windows != windows
        latest = self.controller.state.canaries[service]
        if latest.phase is canaries.Phase.ABORTED:
            assert due.kind != "ready"
            mark = self.controller.state.services[service].marks.get(canary.color)
            assert mark is not None and mark.kind is MarkKind.REJECTED, "abort left no mark"
            self.marks[(service, canary.color)] = self.clock.now
            event(f"canary aborted ({due.kind})")
        for record in new:
            if record.reason == canaries.REASON_STEP and record.detail:
                self._check_step_figures(record.detail)
        if latest.phase is canaries.Phase.PROMOTED:
            # Ready when judged; that it still is when the verdict lands (the scrape releases
            # the lock) is the invariant ``no_switch_onto_a_color_without_servers``.
            assert ready, f"a canary promoted {service} to {canary.color}, which is not ready"
            event("canary promoted")
        return True

    def _note_baseline(self, service: str) -> None:
        """The driver took a new baseline from the scrape just made: keep its truth."""
        window = self.driver.windows.get(service)
        if window is None or window.baseline is None or self.metrics.last is None:
            return
        known = self.baselines.get(service)
        if known is None or known[0] is not window.baseline:
            self.baselines[service] = (window.baseline, *self.metrics.last)

    def _check_window(
        self,
        detail: dict[str, Any],
        canary: canaries.Canary,
        baseline: tuple[object, int, dict[tuple[str, str], int]],
    ) -> None:
        """A judged step's figures are what the canary color served since its baseline, or,
        after a Traefik restart any series shows (one fell), since that restart."""
        if "requests" not in detail or self.metrics.last is None:
            return
        _, restarts_then, then = baseline
        restarts_now, now = self.metrics.last
        name = f"{canary.service}-{canary.color}@http"
        before = {code: n for (svc, code), n in then.items() if svc == name}
        after = {code: n for (svc, code), n in now.items() if svc == name}
        fell = any(after.get(code, 0) < n for code, n in before.items())
        if restarts_now != restarts_then and fell:
            before = {}
            event("canary step judged across a Traefik restart")
        requests = sum(after.values()) - sum(before.values())
        errors = after.get("500", 0) - before.get("500", 0)
        assert (requests, errors) == (detail["requests"], detail["errors"]), (
            f"{name} served {errors} errors in {requests} requests; the step saw {detail}"
        )

    def _check_step_figures(self, detail: dict[str, Any]) -> None:
        """A judged step's verdict agrees with its figures and the limits."""
        verdict = detail.get("verdict")
        if "requests" not in detail:
            assert verdict in ("not_ready", "no_figures", "waiting", "running"), detail
            return
        rate, requests = float(detail["error_rate"]), int(detail["requests"])
        limits = CANARY_LIMITS
        if verdict == "breach":
            assert requests > 0 and rate > limits.max_error_rate, detail
        elif verdict == "pass":
            assert requests >= limits.min_requests and rate <= limits.max_error_rate, detail
        elif verdict == "pass_health_only":
            assert requests < limits.min_requests, detail
        event(f"canary step {verdict}")

    def _take_canary_records(self, service: str) -> list[Any]:
        """Adopt the canary's new history records (steps, abort, its switch) into the model."""
        known = len(self.history)
        records = list(self.controller.state.history)
        if len(records) < known:
            return []  # the history limit trimmed it; the invariant reports that
        new = records[known:]
        for record in new:
            assert record.service == service, f"a canary of {service} wrote {record}"
            if record.reason in CANARY_RECORDS:
                self.history.append(
                    (
                        record.service,
                        record.from_color,
                        record.to_color,
                        record.reason,
                        record.actor,
                        record.at,
                    )
                )
            else:
                assert record.reason == canaries.REASON_PROMOTE, f"unexpected {record}"
                self._record_switch(
                    service, record.to_color, record.reason, record.actor, marks_left=False
                )
        return new

    def _blocked(self, service: str, color: Color) -> bool:
        """``color`` is marked and the provider has seen no container of it created since."""
        mark = self.marks.get((service, color))
        if mark is None:
            return False
        since = mark + self.docker.offset  # the mark's time in the daemon's clock
        return not any(c.created > since for c in self._members(service, color))

    def _running_canary(self, service: str) -> canaries.Canary | None:
        return canaries.running(self.controller.state, service)

    # -- the model ---------------------------------------------------------------------

    def _live(self, service: str, color: Color) -> list[Container]:
        return [c for c in self._members(service, color) if c.routable]

    def _members(self, service: str, color: Color) -> list[Container]:
        return [
            c
            for cid, c in sorted(self.seen.items())
            if cid not in self.docker.bad
            and c.labels["bluegreen.service"] == service
            and c.labels["bluegreen.color"] == color.value
        ]

    def _replicas(self, service: str, color: Color) -> int:
        members = self._members(service, color)
        return int(members[0].labels["bluegreen.replicas"]) if members else 1

    def _ready(self, service: str, color: Color) -> bool:
        return len(self._live(service, color)) >= self._replicas(service, color)

    def _bad(self, service: str, *, running: bool | None = None) -> list[Container]:
        return [
            c
            for cid, c in sorted(self.seen.items())
            if cid in self.docker.bad
            and c.labels["bluegreen.service"] == service
            and (running is None or (c.state == "running") is running)
        ]

    def _freezes(self, service: str) -> bool | None:
        """Whether the service's label problems freeze it: yes, no, or either (unsettled)."""
        if self._bad(service, running=True):
            return True
        if self._bad(service):
            return None if EXPECT_STOPPED_BAD_IGNORED else True
        return False

    def _initial(self, service: str) -> Color | None:
        for color in Color:
            if self._live(service, color):
                return color
        return None

    def _current(self, service: str) -> Color:
        return self.active.get(service) or self._initial(service) or Color.BLUE

    def _known(self, service: str) -> bool:
        """Seen, adopted, or in maintenance (persisted: known after a restart without Docker)."""
        return (
            service in self.active
            or service in self.controller.state.maintenance
            or any(c.labels["bluegreen.service"] == service for c in self.seen.values())
        )

    def _note_adoptions(self) -> None:
        for name, svc in self.controller.state.services.items():
            if name not in self.active:
                expected = self._initial(name) or Color.BLUE
                assert expected is svc.active, f"{name} adopted with {svc.active}"
                self.active[name] = svc.active
                self.previous[name] = None
                event("service adopted")

    def _record_switch(
        self, service: str, to: Color, reason: str, actor: str, *, marks_left: bool
    ) -> None:
        now = self.clock.now
        before = self.active.get(service, self._current(service))
        self.history.append((service, before, to, reason, actor, now))
        self.previous[service] = before
        self.active[service] = to
        self.last_switch_at[service] = now
        self.marks.pop((service, to), None)
        if marks_left:
            self.marks[(service, before)] = now

    def _auto_switch(self, item: Any) -> None:
        """One due switch of the switcher, checked against what it may never do."""
        service, action, target = item.service, item.action, item.target
        seq = self.controller.state.seq
        connected = self.controller.docker_connected and self.docker_up
        live, replicas = len(self._live(service, target)), self._replicas(service, target)
        mark = self.marks.get((service, target))
        deployed = self.deployed_at.get((service, target), float("-inf"))
        anchor = self.last_switch_at.get(service, self.first_seen_at.get(service, START))
        others = {s: service_part(self.controller.body, s) for s in SERVICES if s != service}
        self.run(self.switcher._switch(item))
        if self.controller.state.seq == seq:
            event("automatic switch failed (state write)")
            return
        event(f"automatic switch: {action}")
        assert connected, f"{action} of {service} to {target} while Docker is disconnected"
        assert live >= replicas, f"{action} of {service} to {target}: {live} of {replicas} live"
        if EXPECT_MARKS and mark is not None:
            assert deployed > mark, (
                f"{action} of {service} to {target}, marked at {mark} and not deployed since"
            )
        if action is Action.PROMOTE:
            assert deployed > anchor, (
                f"promoted {service} to {target} deployed at {deployed}, before the anchor {anchor}"
            )
        for other, part in others.items():
            assert part == service_part(self.controller.body, other)
        self._record_switch(
            service, target, str(action), "watcher", marks_left=action is Action.ROLLBACK
        )

    def _operator(
        self,
        service: str,
        target: Color | None,
        call: Callable[[], Coroutine[Any, Any, SwitchResult]],
        *,
        force: bool,
        reason: str,
    ) -> None:
        """An operator's switch or rollback: refused, written, or (disk failing) neither.

        ``target`` is ``None`` for a switch to the other color; a rollback's target
        is the previous color.
        """
        unknown = not self._known(service)
        current = self._current(service)
        refused: bool | None = False  # None: either answer is right
        if reason == "rollback":
            previous = self.previous.get(service)
            refused = previous is None
            goal = previous or current.other
        else:
            goal = target or current.other
        noop = goal is current and service in self.active
        if not (force or refused or noop):
            refused = True if not self._ready(service, goal) else self._freezes(service)
        state, body = self.controller.state, self.controller.body
        written = True
        try:
            result: SwitchResult | None = self.run(call())
        except UnknownService:
            assert unknown, f"{service} is known, yet UnknownService"
            return
        except SwitchRefused as exc:
            assert not unknown, f"{service} is unknown, yet SwitchRefused"
            assert refused is not False, f"{reason} of {service} to {goal} refused: {exc}"
            assert (state, body) == (self.controller.state, self.controller.body)
            event(f"operator {reason} refused")
            return
        except StateFileError:
            assert self.disk.mode != "ok", "StateFileError with a healthy disk"
            if self.disk.mode == "full" or self.controller.state.seq == state.seq:
                assert (state, body) == (self.controller.state, self.controller.body)
                event(f"operator {reason} not written")
                return
            result, written = None, False
        assert not unknown, f"{service} is unknown, yet the {reason} answered"
        assert refused is not True, f"{reason} of {service} to {goal} should have been refused"
        assert written or self.disk.mode != "ok"
        if service not in self.active and service in self.controller.state.services:
            # A switch of a service never adopted adopts it with its current color first.
            self.active[service], self.previous[service] = current, None
        if self.controller.state.seq == state.seq:
            assert goal is current, f"{reason} of {service} to {goal} did nothing"
            return
        assert self.disk.mode != "full", "a switch was answered while no write can succeed"
        assert result is None or (result.changed and result.active is goal)
        if force:
            self.forced.add(service)
        event(f"operator {reason}{' (forced)' if force else ''}")
        self._record_switch(service, goal, reason, "operator", marks_left=reason == "rollback")

    # -- rules -----------------------------------------------------------------------

    @initialize(
        deployed=st.sampled_from([set(SERVICES), {SERVICES[0]}, set()]),
        healthcheck=st.booleans(),
        offset=st.sampled_from([0.0, 90.0, -90.0]) if EXPECT_DAEMON_CLOCK else st.just(0.0),
    )
    def first_sync(self, deployed: set[str], healthcheck: bool, offset: float) -> None:
        """The provider starts on a host where some services already run blue (healthy)."""
        self.docker.offset = offset
        self.clock.now -= 60
        for service in sorted(deployed):
            self.deployed_at[(service, Color.BLUE)] = self.clock.now
            new, _ = self.docker.deploy(service, Color.BLUE, 1, 1, 1.5 if healthcheck else "none")
            for c in new:
                if healthcheck:
                    self.docker.set_health(c.id, Health.HEALTHY)
        self.clock.now += 60
        self._sync()
        self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        idle=st.sampled_from([True, True, True, False]),
        replicas=st.integers(1, 3),
        short=st.sampled_from([False, False, False, True]),
        checks=st.sampled_from(["none", "pass_soon", "pass_late", "never_pass"]),
        gap=st.sampled_from([0.01, 0.0]),
    )
    def deploy(
        self, service: str, idle: bool, replicas: int, short: bool, checks: str, gap: float
    ) -> None:
        """``bluegreen deploy`` of a new generation of the idle color (or the active one).

        ``short``: one container fewer than ``replicas``; ``checks``: no
        healthcheck, or one that passes after 1.5 s, after 12 s, or never.
        """
        color = self._current(service).other if idle else self._current(service)
        self.clock.now += gap
        self.deployed_at[(service, color)] = self.clock.now
        count = replicas - 1 if short else replicas
        passes_after = CHECKS[checks]
        self._touching(
            service,
            lambda: self._deliver(
                *self.docker.deploy(service, color, count, replicas, passes_after)
            ),
        )
        self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        replicas=st.integers(1, 3),
        checks=st.sampled_from(["none", "pass_soon"]),
    )
    def rollout(self, service: str, replicas: int, checks: str) -> None:
        """The happy path of ``bluegreen deploy``: the idle color comes up healthy and
        2.5 s pass (enough for promote_after)."""
        self.deploy(service, True, replicas, False, checks, 0.01)
        self._advance(2.5)

    def _pick(self, service: str, pick: int, ok: Callable[[Container], bool]) -> Container | None:
        found = [c for c in self.docker.of(service) if ok(c)]
        return found[pick % len(found)] if found else None

    @rule(
        service=st.sampled_from(SERVICES),
        pick=st.integers(0, 5),
        verdict=st.sampled_from(["unhealthy", "healthy", "starting", "flap", "color_unhealthy"]),
    )
    def health_changes(self, service: str, pick: int, verdict: str) -> None:
        """A healthcheck verdict changes: one container's, a flap (healthy, unhealthy,
        healthy, each seen), or every running container of the picked one's color."""
        c = self._pick(service, pick, lambda c: c.state == "running" and self.docker.checked(c.id))
        if c is None:
            return
        if verdict == "color_unhealthy":
            color = c.labels["bluegreen.color"]
            ids = [
                x.id
                for x in self.docker.of(service)
                if x.labels["bluegreen.color"] == color
                and x.state == "running"
                and self.docker.checked(x.id)
            ]
            changes = [[(i, Health.UNHEALTHY) for i in ids]]
        elif verdict == "flap":
            changes = [[(c.id, h)] for h in (Health.HEALTHY, Health.UNHEALTHY, Health.HEALTHY)]
        else:
            changes = [[(c.id, Health(verdict))]]
        for batch in changes:
            self._touching(
                service,
                lambda b=batch: self._deliver([self.docker.set_health(i, h) for i, h in b]),  # type: ignore[misc]
            )
            self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        pick=st.integers(0, 5),
        action=st.sampled_from(["stop", "restart", "restart_seen_dying", "start", "remove"]),
    )
    def container_event(self, service: str, pick: int, action: str) -> None:
        """One container stops (crash, OOM kill), restarts (the watcher may or may not see
        it stopped in between), starts again, or is removed."""
        if action == "start":
            c = self._pick(service, pick, lambda c: c.state != "running")
        elif action == "remove":
            c = self._pick(service, pick, lambda c: True)
        else:
            c = self._pick(service, pick, lambda c: c.state == "running")
        if c is None:
            return
        if action == "remove":

            def change() -> None:
                self.docker.remove(c.id)
                self._deliver([], [c.id])

            self._touching(service, change)
        elif action == "stop":
            self._touching(service, lambda: self._deliver([self.docker.stop(c.id)]))
        else:
            if action == "restart_seen_dying":
                self._touching(service, lambda: self._deliver([self.docker.stop(c.id)]))
                self._settle()
            self._touching(service, lambda: self._deliver([self.docker.start(c.id)]))
        self._settle()

    @rule(service=st.sampled_from(SERVICES), color=st.sampled_from(Color))
    def restart_color(self, service: str, color: Color) -> None:
        """Every container of one color restarts at once (daemon restart, host reboot)."""
        ids = [c.id for c in self.docker.of(service) if c.labels["bluegreen.color"] == color]
        if ids:
            self._touching(service, lambda: self._deliver([self.docker.start(i) for i in ids]))
        self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        color=st.sampled_from(Color),
        kind=st.sampled_from(sorted(BAD_LABELS)),
        running=st.booleans(),
    )
    def bad_labels(self, service: str, color: Color, kind: str, running: bool) -> None:
        """A container with a typo'd label: left running, or stopped by a failed deploy."""
        self._touching(
            service, lambda: self._deliver([self.docker.add_bad(service, color, kind, running)])
        )
        self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        color=st.none() | st.sampled_from(Color),
        force=st.booleans(),
    )
    def operator_switch(self, service: str, color: Color | None, force: bool) -> None:
        """``POST /switch``, with or without a color and ``force``."""
        self._touching(
            service,
            lambda: self._operator(
                service,
                color,
                lambda: self.controller.switch(service, color, force=force, actor="operator"),
                force=force,
                reason="manual",
            ),
        )
        self._settle()

    @rule(service=st.sampled_from(SERVICES), force=st.booleans())
    def operator_rollback(self, service: str, force: bool) -> None:
        """``POST /rollback``: back to the previous color, which becomes rejected."""
        self._touching(
            service,
            lambda: self._operator(
                service,
                None,
                lambda: self.controller.rollback(service, force=force, actor="operator"),
                force=force,
                reason="rollback",
            ),
        )
        self._settle()

    if HAS_RETIRE:  # the API of defect 6's fix; the rule exists once it does

        @rule(service=st.sampled_from(SERVICES), color=st.sampled_from(Color))
        def operator_retire(self, service: str, color: Color) -> None:
            """``POST /retire``: the CLI is about to stop this color; never switch to it."""
            state = self.controller.state
            try:
                self.run(self.controller.retire(service, color, actor="operator"))  # type: ignore[attr-defined]
            except StateFileError:
                assert self.disk.mode != "ok"
                assert state == self.controller.state
                return
            except BlueGreenError as exc:
                assert state == self.controller.state
                if service in self.active and self.active[service] is color:
                    assert 409 == answer_for(exc)[0]
                event(f"retire refused ({answer_for(exc)[0]})")
                return
            assert not (service in self.active and self.active[service] is color), "retired"
            adopted = self.controller.state.services.get(service)
            if service not in self.active and adopted is not None:
                # Retiring a color of a service never adopted adopts it with the other
                # color active, so adoption can never later pick the retiring color.
                assert color.other is adopted.active, f"{service} adopted with {adopted.active}"
                self.active[service] = adopted.active
                self.previous[service] = None
            self._note_adoptions()
            self.marks[(service, color)] = self.clock.now
            if self._take_canary_records(service):
                event("retire ended the canary")
            event("retire")
            self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        steps=st.sampled_from([(50, 100), (10, 50, 100), (25, 100)]),
        await_ready=st.sampled_from([False, False, True]),
    )
    def canary_start(self, service: str, steps: tuple[int, ...], await_ready: bool) -> None:
        """``POST /canary`` of the idle color (``await_ready``: the CLI's reservation)."""
        target = self._current(service).other
        blocked = self._blocked(service, target)
        running = self._running_canary(service) is not None
        adopted = service in self.active
        state, body = self.controller.state, self.controller.body
        try:
            started = self.run(
                self.controller.start_canary(
                    service,
                    None,
                    steps=steps,
                    interval=CANARY_INTERVAL,
                    limits=CANARY_LIMITS,
                    actor="operator",
                    await_ready=await_ready,
                )
            )
        except UnknownService:
            assert not self._known(service)
            return
        except CanaryRefused as exc:
            assert (state, body) == (self.controller.state, self.controller.body)
            why = running or not adopted or self._freezes(service) is not False
            if not await_ready:
                why = why or blocked or not self._ready(service, target)
            assert why, f"canary of {service} to {target} refused: {exc}"
            event("canary refused")
            return
        except StateFileError:
            assert self.disk.mode != "ok"
            if self.controller.state.seq != state.seq:
                self._take_canary_records(service)  # renamed, then the directory fsync failed
            event("canary start not written")
            return
        assert adopted and not running, f"a canary of {service} started over {state}"
        if not await_ready:
            assert self._ready(service, target) and not blocked
        assert target is started.color
        self._take_canary_records(service)
        event(f"canary started{' (waiting)' if await_ready else ''}")
        self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        steps=st.sampled_from([(50, 100), (10, 50, 100)]),
        replicas=st.integers(1, 2),
        checks=st.sampled_from(["none", "pass_soon"]),
        earlier_errors=st.sampled_from([0, 10]),
    )
    def canary_rollout(
        self,
        service: str,
        steps: tuple[int, ...],
        replicas: int,
        checks: str,
        earlier_errors: int = 0,
    ) -> None:
        """``bluegreen canary``: reserve the canary (``await_ready``), then ``compose up``
        the idle color; the driver starts the first step once it is ready.

        ``earlier_errors``: the idle color's Traefik service answered 500s in an earlier
        life (a canary aborted before): its counters start the new canary's baseline."""
        before = self._running_canary(service)
        self.canary_start(service, steps, True)
        reserved = self._running_canary(service)
        if reserved is None or reserved is before:
            return
        self.metrics.add(service, reserved.color, 0, earlier_errors)
        self.deploy(service, True, replicas, False, checks, 0.01)
        self._advance(2.0)

    @rule(
        service=st.sampled_from(SERVICES),
        ok=st.sampled_from([0, 25, 40]),
        errors=st.sampled_from([0, 0, 1, 10, 40]),
        metrics_up=st.sampled_from([True, True, True, False]),
        restarted=st.sampled_from([False, False, True]),
    )
    def canary_traffic(
        self, service: str, ok: int, errors: int, metrics_up: bool, restarted: bool
    ) -> None:
        """Users reach the canary color through Traefik (its counters move), and Traefik's
        metrics endpoint answers or not; ``restarted``: Traefik restarted just before
        (every counter starts again from zero)."""
        if restarted:
            self.metrics.restart()
        canary = self._running_canary(service)
        color = canary.color if canary is not None else self._current(service).other
        self.metrics.add(service, color, ok, errors)
        self.metrics.up = metrics_up
        self._advance(CANARY_INTERVAL / 2)

    @rule(service=st.sampled_from(SERVICES), promote=st.booleans())
    def canary_operator(self, service: str, promote: bool) -> None:
        """``POST /canary/abort`` or ``POST /canary/promote``."""
        canary = self._running_canary(service)
        state, body = self.controller.state, self.controller.body
        event_: canaries.Event = (
            canaries.OperatorPromote("operator") if promote else canaries.OperatorAbort("operator")
        )
        try:
            self.run(self.controller.canary_event(service, event_, actor="operator"))
        except UnknownService:
            assert not self._known(service)
            return
        except (CanaryNotRunning, SwitchRefused) as exc:
            assert (state, body) == (self.controller.state, self.controller.body)
            if isinstance(exc, CanaryNotRunning):
                assert canary is None, f"the canary of {service} runs, yet {exc}"
            else:
                assert promote and canary is not None
                assert not self._ready(service, canary.color) or self._freezes(service)
            event(f"canary {'promote' if promote else 'abort'} refused")
            return
        except StateFileError:
            assert self.disk.mode != "ok"
            if self.controller.state.seq != state.seq:
                self._take_canary_records(service)
            return
        assert canary is not None
        self._take_canary_records(service)
        if not promote:
            mark = self.controller.state.services[service].marks.get(canary.color)
            assert mark is not None and mark.kind is MarkKind.REJECTED, "abort left no mark"
            self.marks[(service, canary.color)] = self.clock.now
        else:
            assert self.active[service] is canary.color
        event(f"operator canary {'promote' if promote else 'abort'}")
        self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        ok=st.sampled_from([25, 40]),
        errors=st.sampled_from([0, 1, 10]),
    )
    def traefik_restarts(self, service: str, ok: int, errors: int) -> None:
        """Traefik restarts: every counter of its metrics starts again from zero; users
        keep coming for a step's interval, to a running canary's color (of ``service``
        first, else of the other one) or to the idle color."""
        self.metrics.restart()
        self._settle()
        running = [s for s in (service, *SERVICES) if self._running_canary(s) is not None]
        service = running[0] if running else service
        canary = self._running_canary(service)
        color = canary.color if canary is not None else self._current(service).other
        self.metrics.add(service, color, ok, errors)
        self._advance(CANARY_INTERVAL)

    @rule(malformed=st.booleans())
    def traefik_metrics_malformed(self, malformed: bool) -> None:
        """Traefik's metrics carry a histogram bucket whose ``le`` is no number (or not)."""
        self.metrics.malformed = malformed
        self._settle()

    @rule(
        service=st.sampled_from(SERVICES),
        change=st.sampled_from(["remove_color", "stop_one", "color_unhealthy"]),
        ok=st.sampled_from([0, 40]),
    )
    def canary_scrape_races(self, service: str, change: str, ok: int) -> None:
        """The canary driver's next scrape is slow: while it runs (without the lock) the
        canary color's containers go, stop or fail their healthcheck; then its verdict
        lands. A canary is rolled out first if none runs; users' requests reach the color;
        the step's interval passes."""
        if self._running_canary(service) is None:
            self.canary_rollout(service, (50, 100), 1, "none")
        canary = self._running_canary(service)
        if canary is None:
            return
        self.metrics.add(service, canary.color, ok, 0)

        async def meanwhile() -> None:
            color = canary.color.value
            running = [
                c
                for c in self.docker.of(service, good=True)
                if c.labels["bluegreen.color"] == color and c.state == "running"
            ]
            if not running:
                return
            changed: list[Container] = []
            removed: list[str] = []
            if change == "remove_color":
                removed = [c.id for c in running]
                for cid in removed:
                    self.docker.remove(cid)
            elif change == "stop_one":
                changed = [self.docker.stop(running[0].id)]
            else:
                changed = [
                    self.docker.set_health(c.id, Health.UNHEALTHY)
                    for c in running
                    if self.docker.checked(c.id)
                ]
            if not self.session_live:
                return
            for c in changed:
                self.seen[c.id] = c
            for cid in removed:
                self.seen.pop(cid, None)
            await self.controller.update_containers(changed, removed)
            event(f"containers changed during a scrape ({change})")

        self.metrics.during = meanwhile
        self._advance(CANARY_INTERVAL)
        self.metrics.during = None

    @rule()
    def provider_restarts(self) -> None:
        """The provider process restarts: a new Controller from the state file."""
        state = store.load(self.path)
        before = {name: self.controller.active(name) for name in state.services}
        for name in set(self.active) - set(state.services):
            # Adopted in memory, never acknowledged on disk (a failing disk): forgotten.
            del self.active[name], self.previous[name]
        self.controller, self.switcher, self.driver = self._new_provider(state)
        self.session_broken = False
        self.stale = False
        self.seen = {}
        if self.docker_up:
            self._sync()
        after = {name: self.controller.active(name) for name in before}
        assert before == after, "a restart changed active colors"
        event("provider restarted")
        self._settle()

    @rule(
        mode=st.sampled_from(
            ["ok", "full", "dir_fsync"] if EXPECT_DIR_FSYNC_HANDLED else ["ok", "full"]
        )
    )
    def state_disk(self, mode: str) -> None:
        """The state file's disk fills up (or its directory fsync fails), or recovers."""
        self.disk.set(mode)

    @rule(back_now=st.booleans())
    def docker_goes_away(self, back_now: bool) -> None:
        """The daemon goes away and the watcher notices; it is back (and the watcher
        resyncs) at once, or once time passes (``time_passes``)."""
        self.docker_up = False
        self.run(self.controller.set_docker_connected(False, "daemon stopped"))
        self._settle()
        if back_now:
            self.docker_up = True
            self._sync()
            self._settle()

    @rule()
    def periodic_resync(self) -> None:
        """The watcher's resync interval elapses (a no-op while its session is down)."""
        if self.session_live:
            self._sync()
        self._settle()

    @rule(dt=st.sampled_from([1.0, 0.3, 2.5]))
    def a_moment_passes(self, dt: float) -> None:
        """Seconds pass (promote_after may elapse, rollback_after does not)."""
        self._advance(dt)

    @rule(dt=st.sampled_from([6.0, 30.0]))
    def time_passes(self, dt: float) -> None:
        """Time passes: Docker is back, healthchecks pass on schedule, the switcher wakes
        at each hold's end."""
        self.docker_up = True
        self._advance(dt)

    def _advance(self, dt: float) -> None:
        if self.docker_up and not self.session_live:
            self._sync()  # the watcher's backoff elapses and it reconnects
        until = self.clock.now + dt
        for _ in range(200):
            self._checks_pass()
            wake = self._settle()
            times = [
                t
                for t in (wake, self.docker.next_pass())
                if t is not None and self.clock.now < t <= until
            ]
            if not times:
                break
            self.clock.now = min(times)
        self.clock.now = until
        self._checks_pass()
        self._settle()

    def _checks_pass(self) -> None:
        """Deliver the healthchecks that passed by now, per service."""
        for service in SERVICES:
            healed = self.docker.checks_passed(service)
            if healed:
                self._touching(service, lambda h=healed: self._deliver(h))  # type: ignore[misc]

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def state_file_is_the_acknowledged_state(self) -> None:
        """What the file says is what the controller acts on (when the disk is healthy)."""
        if getattr(self.controller, "state_write_error", None) is None:
            assert store.load(self.path) == self.controller.state

    @invariant()
    def history_is_the_switches_that_happened(self) -> None:
        """``/history`` lists exactly the switches the machine saw happen, in order."""
        records = self.controller.state.history
        actual = [(r.service, r.from_color, r.to_color, r.reason, r.actor) for r in records]
        assert [h[:5] for h in self.history] == actual
        if self.docker.offset == 0:
            assert [h[5] for h in self.history] == [r.at for r in records]
        seqs = [r.seq for r in records]
        assert seqs == sorted(set(seqs))
        assert not seqs or seqs[-1] == self.controller.state.seq

    @invariant()
    def active_colors_are_the_models(self) -> None:
        """Active and previous colors follow adoptions and switches only; the controller
        holds exactly the containers it was told of."""
        services = self.controller.state.services
        assert self.active == {name: svc.active for name, svc in services.items()}
        assert self.previous == {name: svc.previous for name, svc in services.items()}
        assert self.seen == dict(self.controller.containers)

    @invariant()
    def status_renders(self) -> None:
        """``/status`` renders (as JSON) in every reachable state."""
        json.dumps(self.controller.status_all())

    @invariant()
    def traefik_serves_live_containers_only(self) -> None:
        """After the first sync: every live, unfrozen service is routed; no dead URL is served."""
        if not self.controller.synced or self.stale:
            return
        http = json.loads(self.controller.body).get("http", {})
        routers, services = http.get("routers", {}), http.get("services", {})
        known = {c.labels["bluegreen.service"] for c in self.seen.values()}
        assert {owner(name) for name in [*routers, *services]} <= known
        observed = self.controller.observation.services
        for service in SERVICES:
            live = {color: {url(c) for c in self._live(service, color)} for color in Color}
            stopped_bad_freezes = not EXPECT_STOPPED_BAD_IGNORED and self._bad(service)
            freezes = self._bad(service, running=True) or stopped_bad_freezes
            if (live[Color.BLUE] or live[Color.GREEN]) and not freezes:
                assert service in routers, f"{service} has live containers and is not routed"
            if service not in services:
                continue
            active = self._current(service)
            weighted = services[service]["weighted"]["services"]
            if canaries.weights(self.controller.state).get(service) is None:
                assert [{"name": f"{service}-{active}", "weight": 1}] == weighted
            frozen = service in observed and bool(observed[service].errors)
            if frozen and not EXPECT_FROZEN_LIVE:
                continue
            for color in Color:
                lb = services.get(f"{service}-{color}")
                if lb is None:
                    assert frozen or not self._members(service, color)
                    continue
                served = {s["url"] for s in lb["loadBalancer"]["servers"]}
                if frozen:
                    assert served <= live[color], f"{service}-{color} serves dead {served}"
                else:
                    assert live[color] == served, f"{service}-{color} serves {served}"

    @invariant()
    def weight_only_on_ready_unmarked_colors(self) -> None:
        """No share of traffic goes to a color that is not ready, nor to one marked
        rejected or retiring (and not deployed since), nor to any but the canary's color.

        A failing disk may keep a lost canary's weight (its abort cannot be written
        before it is served); a child without routable containers is dropped anyway.
        """
        if not self.controller.synced or self.stale:
            return
        services = json.loads(self.controller.body).get("http", {}).get("services", {})
        for service in SERVICES:
            if service not in services or self._freezes(service) is not False:
                continue
            children = services[service]["weighted"]["services"]
            served = [Color(c["name"].rsplit("-", 1)[1]) for c in children]
            assert all(self._live(service, color) for color in served) or len(served) == 1
            canary = self._running_canary(service)
            for color in served:
                if color is self._current(service) and len(served) == 1:
                    continue
                assert canary is not None and color in (canary.color, canary.base), (
                    f"{service}: weight on {color} without a canary"
                )
                if color is canary.base:
                    continue
                assert not self._blocked(service, color), f"{service}: weight on marked {color}"
                if self.controller.state_write_error is None:
                    assert self._ready(service, color), f"{service}: weight on unready {color}"

    @invariant()
    def body_weights_are_the_persisted_canary(self) -> None:
        """The weights Traefik gets are the canary the state file holds (with a healthy
        disk): the running step's share, minus a color without routable containers."""
        if not self.controller.synced or self.stale or self.controller.state_write_error:
            return
        persisted = store.load(self.path)
        services = json.loads(self.controller.body).get("http", {}).get("services", {})
        for service in SERVICES:
            if service not in services or (
                service in self.controller.observation.services
                and (self.controller.observation.services[service].errors)
            ):
                continue
            children = services[service]["weighted"]["services"]
            served = {Color(c["name"].rsplit("-", 1)[1]): c["weight"] for c in children}
            shares = canaries.weights(persisted).get(service)
            if shares is None or len([w for w in shares.values() if w > 0]) < 2:
                assert {self.controller.active(service): 1} == served
                continue
            live = {c: w for c, w in shares.items() if w > 0 and self._live(service, c)}
            if len(live) == 2:
                assert live == served
            else:
                assert len(served) == 1 and set(served.values()) == {1}

    @invariant()
    def an_abort_leaves_its_color_rejected(self) -> None:
        """The latest canary, if aborted (not ended by a switch, by a retire or by a
        newer deploy), left its color marked rejected until something replaced the mark."""
        for service, canary in self.controller.state.canaries.items():
            if canary.phase is not canaries.Phase.ABORTED or canary.ended is None:
                continue
            svc = self.controller.state.services.get(service)
            if svc is None or svc.active is canary.color:
                continue
            reason = canary.reason or ""
            if reason.startswith(("ended by a switch", "retired by")):
                continue
            history = self.controller.state.history
            aborts = [r.seq for r in history if r.service == service and r.reason == "canary-abort"]
            if not aborts or any(
                r.seq > aborts[-1] and r.to_color is canary.color and r.reason not in CANARY_RECORDS
                for r in history
                if r.service == service
            ):
                continue  # a switch to the color since cleared its mark
            mark = svc.marks.get(canary.color)
            assert mark is not None, f"aborted canary of {service} left {canary.color} unmarked"

    @invariant()
    def every_color_change_is_one_switch_event(self) -> None:
        """Every change of the active color, by any path (switch, rollback, automatic,
        canary promotion, operator promote), published exactly one ``switch`` event."""
        switches = [
            (r.service, r.seq, r.to_color)
            for r in self.controller.state.history
            if r.reason not in canaries.RECORD_ONLY
        ]
        assert switches == [(service, seq, to) for service, seq, to, *_ in self.switch_events]

    @invariant()
    def no_switch_onto_a_color_without_servers(self) -> None:
        """A switch goes to a ready color (unless an operator forced it): when published,
        and as served. No served service is left without servers by a switch while its
        active color had routable containers (served to Traefik) a moment before."""
        for service, _, to, forced, ready in self.switch_events:
            assert forced or ready, f"{service} switched to {to}, which was not ready"
        body = json.loads(self.controller.body).get("http", {}).get("services", {})
        for service, (before, had_servers) in self.served_before.items():
            now = self.active.get(service)
            if not had_servers or now in (None, before) or service in self.forced:
                continue
            if self.stale or not self.controller.synced:
                continue
            assert self._servers(body, service, now), (
                f"{service} switched from {before} (routable) to {now}, which has no servers"
            )
        self.served_before = {
            service: (color, bool(self._servers(body, service, color)))
            for service, color in self.active.items()
        }
        self.forced = set()

    @staticmethod
    def _servers(body: dict[str, Any], service: str, color: Color) -> list[Any]:
        """The servers Traefik gets for one color of a service (none if it is not served)."""
        return list(body.get(f"{service}-{color}", {}).get("loadBalancer", {}).get("servers", []))

    @invariant()
    def background_loops_wait(self) -> None:
        """At one simulated instant, with nothing changing, the automatic switcher's and
        the canary driver's loops each evaluate once per wait: a wake time in the past is
        never re-armed, in any state the machine reached."""
        for name, evaluate in (
            ("switcher", self.switcher.evaluate),
            ("driver", self.driver.evaluate),
        ):
            calls = self.run(evaluations_per_wait(self.controller, evaluate, self.clock))
            assert 1 == calls, f"the {name} evaluated {calls} times at one instant"


BlueGreenMachine.TestCase.settings = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
#: The ci profile takes about 30 s: the `slow` tier (CI runs every tier).
TestBlueGreenMachine = pytest.mark.slow(BlueGreenMachine.TestCase)
