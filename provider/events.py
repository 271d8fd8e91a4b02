"""The provider's one stream of typed events, a ring buffer of the recent ones, and fan-out.

Events are produced where the state changes (the controller, the automatic
switcher) and consumed by ``GET /events`` (Server-Sent Events), the status
page and the webhooks. Publishing never waits: it runs under the
controller's lock, in the middle of a switch, so every consumer gets the
event through its own bounded queue (or a non-blocking listener callback).
A consumer that cannot keep up loses its subscription, never slows a switch;
it reconnects with ``Last-Event-ID`` and resumes from the ring buffer.

Event ids are ``<boot>-<n>``: ``n`` counts up from 1 in this process and
``boot`` (the process start in milliseconds) tells a resuming client that the
provider restarted, so the events it missed are gone and it must re-read
``/status``.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider.core.model import Color, Container, Health, SwitchRecord
from provider.core.promotion import Action, Pending
from provider.core.routing import Observation, ServiceView
from provider.core.wire import EventDoc

#: Events kept for ``Last-Event-ID`` resumption.
DEFAULT_BUFFER = 1000
#: Events one subscriber may have queued before it is dropped as too slow.
SUBSCRIBER_QUEUE = 1000
#: What an id this provider hands out looks like: ``<boot ms>-<n>``, ASCII digits only
#: (``str.isdigit`` accepts "²", which ``int`` refuses) and bounded, so parsing a hostile
#: ``Last-Event-ID`` costs nothing and cannot fail.
_EVENT_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")


class EventKind(enum.StrEnum):
    """What happened; the value is the SSE ``event:`` name and the webhook's ``event``."""

    #: The active color of a service changed (any reason, any actor).
    SWITCH = "switch"
    #: An automatic promotion's pending stage changed, or it was done or refused.
    PROMOTION = "promotion"
    #: A rollback: a pending automatic one changed stage, or one (automatic or
    #: by an operator) was done or refused.
    ROLLBACK = "rollback"
    #: A canary's reservation, step, extension, abort or promotion.
    CANARY = "canary"
    #: A labelled container appeared, changed state or health, or went away.
    CONTAINER = "container"
    #: The provider connected to or lost the Docker API.
    DOCKER = "docker"
    #: A service's label errors changed (appeared, changed or cleared).
    LABEL_ERROR = "label_error"
    #: A deploy's release step (``deploy --release``) ended: its command, exit, output tail.
    RELEASE = "release"
    #: Maintenance of a service turned on (``to`` on) or off: its message, Retry-After, reason.
    MAINTENANCE = "maintenance"
    #: A bake after a switch started, judged a window, passed, reverted or was superseded.
    BAKE = "bake"


@dataclass(frozen=True)
class Event:
    """One event. ``service`` is ``None`` for events of the whole provider (``docker``).

    ``from_`` and ``to`` are colors for ``switch`` and ``rollback``, container
    phases for ``container``, ``disconnected``/``connected`` for ``docker``.
    ``images`` maps each color to its newest container's image, where known.
    ``detail`` holds the kind's own fields (``stage``, ``waiting_for``,
    ``container``, ``errors``...).
    """

    id: str
    kind: EventKind
    service: str | None
    at: float
    from_: str | None = None
    to: str | None = None
    reason: str | None = None
    actor: str | None = None
    images: Mapping[str, str | None] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> EventDoc:
        """The body of an SSE ``data:`` line and of a webhook POST (same shape)."""
        return {
            "id": self.id,
            "event": str(self.kind),
            "service": self.service,
            "from": self.from_,
            "to": self.to,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at,
            "images": dict(self.images),
            "detail": dict(self.detail),
        }


class Subscription:
    """One consumer's bounded queue of events, optionally of one service only.

    ``replay`` holds the buffered events after the client's ``Last-Event-ID``;
    ``gap`` is true when that id is unknown or too old, so some events are
    lost and the client must re-read ``/status``.
    """

    def __init__(self, bus: EventBus, service: str | None, size: int) -> None:
        self.bus = bus
        self.service = service
        self.replay: list[Event] = []
        self.gap = False
        self.closed_reason: str | None = None
        self._queue: deque[Event] = deque()
        self._size = size
        self._wakeup = asyncio.Event()

    def wants(self, event: Event) -> bool:
        return self.service is None or event.service in (None, self.service)

    def offer(self, event: Event) -> None:
        """Queue without waiting; a full queue ends the subscription (the client resumes)."""
        if self.closed_reason is not None or not self.wants(event):
            return
        if len(self._queue) >= self._size:
            self.close("too_slow")
            return
        self._queue.append(event)
        self._wakeup.set()

    async def next(self) -> Event | None:
        """The next event, or ``None`` once the subscription is closed."""
        while not self._queue:
            if self.closed_reason is not None:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.closed_reason is not None:
            return None
        return self._queue.popleft()

    def close(self, reason: str = "closed") -> None:
        """End the subscription; ``next`` answers ``None`` from now on. Idempotent."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self._queue.clear()
        self.bus._subscribers.discard(self)
        self._wakeup.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


Listener = Callable[[Event], None]


class EventBus:
    """Assigns ids, keeps the ring buffer, hands each event to every consumer."""

    def __init__(
        self,
        *,
        buffer: int = DEFAULT_BUFFER,
        clock: Callable[[], float] = time.time,
        subscriber_queue: int = SUBSCRIBER_QUEUE,
    ) -> None:
        self.clock = clock
        self.boot = str(int(time.time() * 1000))
        self.recent: deque[Event] = deque(maxlen=buffer)
        self.subscriber_queue = subscriber_queue
        self._seq = 0
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Listener] = []

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def publish(
        self,
        kind: EventKind,
        service: str | None,
        *,
        from_: str | None = None,
        to: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
        images: Mapping[str, str | None] | None = None,
        **detail: Any,
    ) -> Event:
        """Record and fan out one event. Never waits, never raises for a slow consumer."""
        self._seq += 1
        event = Event(
            id=f"{self.boot}-{self._seq}",
            kind=kind,
            service=service,
            at=self.clock(),
            from_=from_,
            to=to,
            reason=reason,
            actor=actor,
            images=dict(images or {}),
            detail=detail,
        )
        self.recent.append(event)
        for subscriber in list(self._subscribers):
            subscriber.offer(event)
        for listener in self._listeners:
            listener(event)
        return event

    def publish_switch(
        self,
        record: SwitchRecord,
        images: Mapping[str, str | None],
        *,
        forced: bool,
        followed: bool = False,
    ) -> None:
        """``switch`` for every change of color; also ``promotion``/``rollback`` done.

        ``followed``: another Swarm replica committed it (its webhooks are that
        replica's to send); shown as ``detail.followed``.
        """
        service = record.service
        from_ = str(record.from_color) if record.from_color else None
        to, reason, actor = str(record.to_color), record.reason, record.actor
        moved: dict[str, Any] = dict(from_=from_, to=to, reason=reason, actor=actor, images=images)
        if followed:
            moved["followed"] = True
        self.publish(EventKind.SWITCH, service, seq=record.seq, forced=forced, **moved)
        if reason == "auto-promote":
            self.publish(EventKind.PROMOTION, service, stage="done", seq=record.seq, **moved)
        elif reason in ("rollback", "auto-rollback"):
            self.publish(EventKind.ROLLBACK, service, stage="done", seq=record.seq, **moved)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every event; it must not block (webhooks queue it)."""
        self._listeners.append(listener)

    def subscribe(self, service: str | None = None, last_id: str | None = None) -> Subscription:
        """A new subscription, with the buffered events after ``last_id`` to replay first."""
        sub = Subscription(self, service, self.subscriber_queue)
        if last_id:
            sub.replay, sub.gap = self.since(last_id)
            sub.replay = [e for e in sub.replay if sub.wants(e)]
        self._subscribers.add(sub)
        return sub

    def since(self, last_id: str) -> tuple[list[Event], bool]:
        """Buffered events after ``last_id``, and whether some in between are lost.

        A malformed id counts as unknown (a gap: the client gets ``resync``), not as a
        400: a browser's EventSource gives up for good on any answer but 200.
        """
        match = _EVENT_ID.fullmatch(last_id.strip())
        if match is None or match.group(1) != self.boot:
            return [], True  # not one of ours (malformed, or an earlier boot): resync
        seq = int(match.group(2))
        if seq > self._seq:
            return [], True
        events = [e for e in self.recent if _seq_of(e) > seq]
        oldest = _seq_of(self.recent[0]) if self.recent else self._seq + 1
        return events, seq + 1 < oldest

    def close_all(self, reason: str = "shutdown") -> None:
        """End every subscription (server shutdown): stream handlers return at once."""
        for subscriber in list(self._subscribers):
            subscriber.close(reason)


#: The event of a pending automatic switch, by the switch's action.
EVENT_OF_ACTION = {Action.PROMOTE: EventKind.PROMOTION, Action.ROLLBACK: EventKind.ROLLBACK}


def publish_pending_stages(
    bus: EventBus, service: str, before: Pending | None, now: Pending | None
) -> None:
    """A ``promotion``/``rollback`` event when a pending switch reaches a new stage.

    Nothing when it is unchanged or gone: ``done`` is published with the
    switch (:meth:`EventBus.publish_switch`), ``refused`` by the switcher.
    """
    if now is None or (before is not None and before.stage == now.stage):
        return
    bus.publish(
        EVENT_OF_ACTION[now.kind],
        service,
        to=str(now.color),
        stage=str(now.stage),
        waiting_for=now.detail,
        due_at=now.due_at,
    )


def _seq_of(event: Event) -> int:
    return int(event.id.rpartition("-")[2])


def latest_images(pairs: Iterable[tuple[str, float, str]]) -> dict[str, str | None]:
    """Per color, the image of its newest container: ``(color, created, image)`` triples."""
    newest: dict[str, tuple[float, str]] = {}
    for color, created, image in pairs:
        if image and (color not in newest or created >= newest[color][0]):
            newest[color] = (created, image)
    return {color: newest[color][1] if color in newest else None for color in ("blue", "green")}


def images_of(view: ServiceView) -> dict[str, str | None]:
    """The newest image of each color of ``view`` (for ``switch`` events and webhooks)."""
    return latest_images(
        (str(color), m.container.created, m.container.image)
        for color in Color
        for m in view.color(color).members
    )


def phase(container: Container) -> str:
    """One word for a container's state and health: ``healthy``, ``starting``, ``exited``..."""
    if container.state != "running":
        return container.state
    return "running" if container.health is Health.NONE else str(container.health)


#: What the last refresh saw: container id -> (service, color, phase, name); service -> errors.
Seen = tuple[dict[str, tuple[str, str, str, str]], dict[str | None, tuple[str, ...]]]


def publish_observed(bus: EventBus, observation: Observation, seen: Seen) -> Seen:
    """Publish ``container`` and ``label_error`` events for what changed since ``seen``."""
    old_phases, old_errors = seen
    phases: dict[str, tuple[str, str, str, str]] = {}
    containers: dict[str, Container] = {}
    for name, view in observation.services.items():
        for color in Color:
            for member in view.color(color).members:
                c = member.container
                phases[c.id] = (name, str(color), phase(c), c.name)
                containers[c.id] = c
    for cid, (service, slot, now, _name) in sorted(phases.items()):
        before = old_phases.get(cid)
        if before is not None and before[2] == now:
            continue
        c = containers[cid]
        bus.publish(
            EventKind.CONTAINER,
            service,
            from_=before[2] if before else None,
            to=now,
            container={"id": cid[:12], "name": c.name, "color": slot, "image": c.image},
            state=c.state,
            health=str(c.health),
            health_output=c.health_output,
        )
    for cid, (owner, slot, before_phase, name) in sorted(old_phases.items()):
        if cid not in phases:
            bus.publish(
                EventKind.CONTAINER,
                owner,
                from_=before_phase,
                to="removed",
                container={"id": cid[:12], "name": name, "color": slot, "image": ""},
                state="removed",
                health="none",
                health_output="",
            )
    errors: dict[str | None, tuple[str, ...]] = {
        name: tuple(view.errors) for name, view in observation.services.items() if view.errors
    }
    if observation.unassigned:
        errors[None] = tuple(observation.unassigned)
    for which in sorted(set(errors) | set(old_errors), key=lambda s: s or ""):
        if errors.get(which, ()) != old_errors.get(which, ()):
            bus.publish(EventKind.LABEL_ERROR, which, errors=list(errors.get(which, ())))
    return phases, errors
