"""What ``bluegreen deploy`` and ``bluegreen rollback`` share: polling, reports, guarded stops.

``deploy/deploy_rollout.py`` brings up a new color and switches to it;
``deploy/rollback.py`` switches back to the previous one. Both drive the
provider through :class:`ProviderApi` and compose through :class:`ComposeApi`
(Protocols in ``deploy/rollout_api.py``, re-exported here with the
:class:`Reporter` and :class:`Outcome` of ``deploy/outcome.py``:
``deploy.client.ProviderClient`` and ``deploy.compose.Compose`` in production,
fakes in the tests), follow ``/status`` with a
:class:`Rollout`, and never stop the active color
(:meth:`Rollout.stop_unless_active`). A :class:`Rollout` re-reads ``/status``
on each of the provider's events (``GET /events``, ``deploy/follow.py``) and
polls when that is unavailable; the snapshots, hence the output, are the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from deploy.client import ProviderClient
from deploy.errors import (
    CliError,
    ComposeError,
    Interrupted,
    ProviderUnreachable,
    RolloutFailed,
    SwitchRefusedError,
    TokenError,
    UnknownServiceError,
)
from deploy.follow import EventStream, EventsUnavailable
from deploy.outcome import STREAMS_CUT_EXIT as STREAMS_CUT_EXIT
from deploy.outcome import Outcome as Outcome
from deploy.outcome import Reporter as Reporter
from deploy.progress import RolloutTracker, Verdict
from deploy.rollout_api import Clock as Clock
from deploy.rollout_api import ComposeApi as ComposeApi
from deploy.rollout_api import ProviderApi as ProviderApi
from deploy.rollout_api import Sleep as Sleep
from deploy.snapshot import ContainerSnapshot, ServiceSnapshot, parse_service
from provider.core.model import Color

DEFAULT_COMPOSE_SERVICE = "{service}-{color}"
#: How long the provider may be unreachable mid-rollout before we give up.
UNREACHABLE_GRACE_S = 10.0
#: A ready color the provider has not promoted, nor said why, after this long: switch via API.
OPERATOR_SWITCH_AFTER_S = 5.0
#: Following /events, re-read /status at least this often even if nothing is announced.
QUIET_RESYNC_S = 5.0


def describe_containers(containers: Sequence[ContainerSnapshot]) -> list[str]:
    """Each container's state, health and last healthcheck lines, for a failure report."""
    lines: list[str] = []
    for c in containers:
        lines.append(f"  {c.name or c.id} ({c.id[:12]}): {c.state}, health {c.health}")
        output = c.health_output.strip()
        if output:
            lines += [f"    last healthcheck: {line}" for line in output.splitlines()[-5:]]
        elif c.problem:
            lines.append(f"    problem: {c.problem}")
    return lines


class Rollout:
    """Polling, the operator switch and the guarded stop: shared by deploy and rollback."""

    def __init__(
        self,
        client: ProviderApi,
        service: str,
        out: Reporter,
        clock: Clock,
        sleep: Sleep,
        poll_interval: float,
    ) -> None:
        self.client = client
        self.service = service
        self.out = out
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval
        self.last: ServiceSnapshot | None = None
        #: Follow the provider's /events (a real client only; fakes are polled).
        self.events_url = client.url if isinstance(client, ProviderClient) else None
        self.events_token = client.token if isinstance(client, ProviderClient) else None

    def snapshot(self) -> ServiceSnapshot:
        snap = parse_service(self.client.status(self.service))
        self.last = snap
        return snap

    def wait(
        self, tracker: RolloutTracker, deadline: float, *, may_switch: bool
    ) -> tuple[Verdict, tuple[ContainerSnapshot, ...]]:
        """Follow until SWITCHED (or READY when not ``may_switch``), FAILED or the deadline.

        Returns the final verdict and, for FAILED or a timeout, the containers to blame.
        """
        with self.event_stream() as stream:
            return self._wait(tracker, deadline, may_switch=may_switch, stream=stream)

    @contextlib.contextmanager
    def event_stream(self) -> Iterator[EventStream | None]:
        """The service's event stream, opened before the first snapshot; ``None``: poll."""
        stream: EventStream | None = None
        if self.events_url is not None:
            with contextlib.suppress(EventsUnavailable):
                stream = EventStream(self.events_url, self.service, token=self.events_token)
        try:
            yield stream
        finally:
            if stream is not None:
                stream.close()

    def _pause(self, stream: EventStream | None, deadline: float, wake: float | None) -> None:
        """Until the next event (or timer) when following the stream, else one poll interval."""
        if stream is None or stream.ended:
            self.sleep(self.poll_interval)
            return
        now = self.clock()
        until = min(deadline, now + QUIET_RESYNC_S, wake if wake is not None else deadline)
        stream.wait(max(until - now, 0.0))

    def _wait(
        self,
        tracker: RolloutTracker,
        deadline: float,
        *,
        may_switch: bool,
        stream: EventStream | None,
    ) -> tuple[Verdict, tuple[ContainerSnapshot, ...]]:
        unreachable_since: float | None = None
        ready_since: float | None = None
        switch_sent = False
        polls = int(max(deadline - self.clock(), 0) / max(self.poll_interval, 0.01)) + 2
        if stream is not None:
            polls += 10_000  # each event is one more round
        for _ in range(polls):
            try:
                snap: ServiceSnapshot | None = self.snapshot()
                unreachable_since = None
            except UnknownServiceError:
                snap = None  # a first deploy: the provider has not seen the containers yet
            except ProviderUnreachable as exc:
                now = self.clock()
                if unreachable_since is None:
                    unreachable_since = now
                    self.out.line(f"provider unreachable ({exc.reason}); retrying")
                elif now - unreachable_since > UNREACHABLE_GRACE_S:
                    raise
                snap = None
            if snap is not None:
                step = tracker.observe(snap)
                for line in step.lines:
                    self.out.line(line)
                if step.verdict is Verdict.SWITCHED or step.verdict is Verdict.FAILED:
                    return step.verdict, step.failing
                if step.verdict is Verdict.READY:
                    if not may_switch:
                        return step.verdict, ()
                    now = self.clock()
                    ready_since = ready_since if ready_since is not None else now
                    waited = now - ready_since
                    silent_too_long = step.provider_silent and waited >= OPERATOR_SWITCH_AFTER_S
                    if not switch_sent and (step.needs_operator_switch or silent_too_long):
                        switch_sent = self._operator_switch(tracker.target)
                        continue
                else:
                    ready_since = None
            if self.clock() >= deadline:
                break
            if unreachable_since is not None:
                self.sleep(self.poll_interval)
                continue
            operator_due = None
            if ready_since is not None and not switch_sent:
                operator_due = ready_since + OPERATOR_SWITCH_AFTER_S
            self._pause(stream, deadline, operator_due)
        return Verdict.WAITING, tracker.not_ready(self.last)

    def _operator_switch(self, target: Color) -> bool:
        """The provider will not promote on its own: switch through the API."""
        self.out.line(f"{target} is ready; switching through the API (needs BLUEGREEN_TOKEN)")
        try:
            self.client.switch(self.service, target, reason="deploy")
        except SwitchRefusedError as exc:
            self.out.line(f"switch refused for now: {exc.detail}")
            return False
        return True

    def stop_unless_active(
        self,
        compose: ComposeApi,
        compose_name: str,
        color: Color,
        what: str = "new",
        containers: Sequence[str] = (),
    ) -> str | None:
        """Retire ``color`` at the provider, then stop its containers unless it is active.

        ``POST /retire`` is persisted before it is answered and from then on no
        automatic promotion or rollback targets ``color``, so the check of the
        active color just before ``compose stop`` cannot be overtaken by the
        watcher; 409 means ``color`` is already active. Answers ``None`` when
        stopped, else why the containers were left running. Never stops the
        active color: a switch to it observed after the stop raises. ``containers``:
        the ones the provider listed for ``color`` (stopped without a compose call).
        """
        retired = False
        try:
            self.client.retire(self.service, color)
            retired = True
        except SwitchRefusedError:
            return self._leave_running(color)
        except UnknownServiceError:
            pass  # the provider never saw the service: nothing of it can be active
        except TokenError:
            self.out.line(
                f"warning: no usable BLUEGREEN_TOKEN, so the provider cannot be told that "
                f"{color} is being stopped; checking the active color just before the stop"
            )
        except CliError as exc:
            self.out.line(f"cannot retire {color} at the provider: {exc.message}")
            return f"the provider could not be told that {color} is being stopped"
        try:
            known: ServiceSnapshot | None = self.snapshot()
        except CliError:
            known = self.last
        if known is not None and known.active == color and known.adopted:
            return self._leave_running(color)
        self.out.line(f"stopping the {what} {color} containers ({compose_name})")
        compose_step(compose, compose_name, lambda: compose.stop(compose_name, containers))
        if not retired:
            self._check_not_active_after_stop(color, compose, compose_name)
        return None

    def _leave_running(self, color: Color) -> str:
        self.out.line(f"{color} is the active color now; leaving its containers running")
        return f"the provider made {color} active meanwhile"

    def _check_not_active_after_stop(self, color: Color, compose: ComposeApi, name: str) -> None:
        """Without a retire mark the watcher may have switched to ``color`` during the stop."""
        try:
            after = self.snapshot()
        except CliError:
            return
        if after.active == color and after.adopted:
            raise RolloutFailed(
                f"the provider switched {self.service} to {color} while its containers were "
                f"being stopped: {color} serves nothing now. Start it with "
                f"`{compose.hint('start', name)}` or switch back with `bluegreen switch "
                f"{self.service}`; set BLUEGREEN_TOKEN so deploys can retire a color first."
            )


def new_containers(
    run: Rollout, color: Color, before: Sequence[str]
) -> list[ContainerSnapshot] | None:
    """``color``'s containers the provider sees now that were not there ``before``.

    ``None`` when the provider cannot tell (unreachable); ``[]`` for a service it never saw.
    """
    try:
        snap = run.snapshot()
    except UnknownServiceError:
        return []
    except CliError:
        return None
    return [c for c in snap.color(color).containers if c.id not in before]


def compose_step(compose: ComposeApi, service: str, step: Callable[[], None]) -> None:
    """Run one compose command; if it fails, say whether the service is missing from the file.

    The check costs a compose call, so it runs only on failure, never on the happy path.
    """
    try:
        step()
    except ComposeError:
        compose.require_services(service)
        raise


def stop_after_interrupt(
    run: Rollout, compose: ComposeApi, name: str, color: Color, what: str = "new"
) -> None:
    """Ctrl-C before the switch: stop what this command started; a second Ctrl-C says what runs."""
    try:
        run.stop_unless_active(compose, name, color, what)
    except KeyboardInterrupt:
        raise Interrupted(
            f"cleanup interrupted: the new {color} containers may still run; "
            f"stop them with `{compose.hint('stop', name)}`"
        ) from None
    except CliError as exc:
        raise Interrupted(
            f"deploy interrupted, and stopping the new {color} containers failed: {exc.message}"
        ) from exc


def record_image(compose: ComposeApi, name: str, image: str, out: Reporter) -> None:
    """Pin the color's image in ``.env``: a later plain ``up -d`` then recreates nothing.

    Written as soon as compose created the containers, so ``.env`` always says what
    runs (after a failed deploy too: ``up -d`` then only restarts the stopped new
    containers, which the provider never promotes unless they get healthy).
    """
    try:
        line = compose.record_image(name, image)
    except CliError as exc:
        out.line(
            f"warning: could not record the image ({exc.message}); a plain `up -d` "
            f"would recreate {name} with its default image"
        )
        return
    out.line(f"recorded {line} in {compose.env_file()}")


def check_token(client: ProviderApi, nothing_was: str) -> None:
    """``GET /auth``; a wrong token says that nothing happened yet."""
    try:
        client.check_token()
    except TokenError as exc:
        raise TokenError(
            f"{exc.message}; nothing was {nothing_was}",
            status=exc.status,
            code=exc.code,
            detail=exc.detail,
        ) from None
