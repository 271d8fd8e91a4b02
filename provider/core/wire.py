"""The provider's public JSON documents, typed once.

What ``/status``, the command answers (``/switch``, ``/rollback``, ``/retire``,
``/canary``, ``/history``) and each event (``GET /events``, webhooks) hold: the
provider builds them as these types (``provider/core/status.py``,
``provider/core/state_json.py``, ``provider/api.py``, ``provider/events.py``) and
the CLI's ``deploy/snapshot.py`` reads them through the same types, so
``mypy --strict`` checks both sides against one definition. The key names are a
public contract (``docs/http-api.md``, ``provider/openapi.yaml``; a test keeps
the three in step). Types only: the CLI imports this, so it stays import-light.

Colors, phases and verdicts are plain ``str`` here: JSON holds the enums' values.
Keys spelled like Python keywords (``from``) need the functional syntax. No
``from __future__ import annotations`` here: Python 3.11 reads ``NotRequired``
from evaluated annotations only, and the contract test reads the optional keys.
"""

from typing import Any, NotRequired, TypedDict

# -- the state's values, as /status, the answers and the state file show them --------

#: One switch of the audit trail (``/history``, ``last_switch``, ``/switch``'s ``switch``).
SwitchRecordDoc = TypedDict(
    "SwitchRecordDoc",
    {
        "service": str,
        "from": str | None,
        "to": str,
        "reason": str,
        "actor": str,
        "at": float,
        "seq": int,
        #: A canary step's or abort's figures; absent for a plain switch.
        "detail": NotRequired[dict[str, Any]],
        #: The image of the color the switch moved from and to, where known.
        "images": NotRequired[dict[str, str]],
    },
)


class ColorMarkDoc(TypedDict):
    """A color no automatic switch may target (``marks``)."""

    kind: str
    since: float
    reason: str


#: A service's marks by color name, sorted.
MarksDoc = dict[str, ColorMarkDoc]


class FiguresDoc(TypedDict):
    """What one canary step's window measured."""

    requests: int
    errors: int
    error_rate: float
    p99_ms: float | None


class CanaryStepDoc(TypedDict):
    """The verdict of one canary step (``results``)."""

    step: int
    weight: int
    verdict: str
    detail: str
    at: float
    figures: FiguresDoc | None
    extensions: int


class StoredCanaryDoc(TypedDict):
    """A canary as the state file stores it (``next_decision_at`` always ``null`` there)."""

    color: str
    base: str
    phase: str
    steps: list[int]
    step: int
    weight: int
    interval: float
    max_error_rate: float
    max_p99_ms: float | None
    min_requests: int
    started: float
    step_started: float
    extensions: int
    next_decision_at: float | None
    results: list[CanaryStepDoc]
    warnings: list[str]
    ended: float | None
    reason: str | None
    created_after: float | None


class CanaryDoc(StoredCanaryDoc):
    """A canary as ``/status`` and the canary commands show it: how its steps are judged
    (``traefik-metrics`` or ``health-only``) besides what the file stores."""

    analysis: str


# -- /status ------------------------------------------------------------------------


class ContainerDoc(TypedDict):
    """One container of one color (also inside a pending switch)."""

    id: str
    name: str
    state: str
    health: str
    health_output: str
    address: str | None
    created: float
    routable: bool
    problem: str | None
    #: The image the container was created from, as named; and its short ID.
    image: str
    image_id: str


class PendingDoc(TypedDict):
    """A promotion or rollback the provider has not made yet (``pending_*``)."""

    kind: str
    color: str
    stage: str
    waiting_for: str
    since: float | None
    due_at: float | None
    generation_after: float | None
    routable: int
    replicas: int
    containers: list[ContainerDoc]


class ColorStatusDoc(TypedDict):
    """One color of one service."""

    containers: list[ContainerDoc]
    routable: int
    replicas: int
    ready: bool
    rule: str | None
    promote: str | None
    #: The image of the color's newest container (``None`` without containers).
    image: str | None


class TraefikAppliedDoc(TypedDict):
    """A service's ``traefik``: has every live Traefik applied its active color?

    ``applied`` null: no Traefik has polled; ``color``: what Traefik is known to route to.
    """

    applied: bool | None
    color: str | None
    since: float | None
    lag_s: float | None


#: Before any Traefik polled (or where nothing is known): every value null.
UNKNOWN_APPLIED: TraefikAppliedDoc = {"applied": None, "color": None, "since": None, "lag_s": None}


class TraefikPollerDoc(TypedDict):
    """One Traefik seen polling ``/traefik`` (``traefik_pollers``)."""

    id: str
    last_poll: float
    applied_version: int | None
    live: bool


class MaintenanceDoc(TypedDict):
    """A service in maintenance (``/status``'s ``maintenance``, the state file, the answer)."""

    message: str
    retry_after: int
    since: float
    actor: str
    reason: str


class BakeDoc(TypedDict):
    """A bake after the flip (``/status``'s ``bake``, the state file, ``POST /bake``):
    ``color`` serves while ``old`` stays warm; ``figures``: the last judged window."""

    color: str
    old: str
    phase: str
    duration: float
    interval: float
    max_error_rate: float
    max_p99_ms: float | None
    min_requests: int
    started: float
    ends: float
    switch_seq: int
    judged: int
    figures: FiguresDoc | None
    ended: float | None
    reason: str | None
    actor: str
    next_decision_at: float | None


class BakeResultDoc(TypedDict):
    """``POST /bake``'s answer: the bake started."""

    service: str
    bake: BakeDoc


class ServiceStatusDoc(TypedDict):
    """``GET /status/{service}``, and each entry of ``/status``'s ``services``."""

    service: str
    active: str
    previous: str | None
    adopted: bool
    colors: dict[str, ColorStatusDoc]
    last_switch: SwitchRecordDoc | None
    marks: MarksDoc
    pending_promotion: PendingDoc | None
    pending_rollback: PendingDoc | None
    errors: list[str]
    warnings: list[str]
    serving_last_good_config: bool
    docker_connected: bool
    canary: CanaryDoc | None
    traefik: TraefikAppliedDoc
    #: ``None``: serving; else the public gets the maintenance page.
    maintenance: MaintenanceDoc | None
    #: The latest bake after a switch (running or ended), or ``None``.
    bake: BakeDoc | None


class DockerDoc(TypedDict):
    """The provider's link to the Docker API (``/status``, ``/readyz``)."""

    connected: bool
    status: str
    error: str | None
    containers: int


class StateFileDoc(TypedDict):
    """Whether the last state write (and the last read of a shared store) succeeded."""

    ok: bool
    error: str | None
    store: str
    version: int
    location: str


class TraefikPollsDoc(TypedDict):
    """``/status``'s ``traefik``: how often and how long ago Traefik polled ``/traefik``."""

    polls: int
    last_poll_at: float | None
    seconds_since_last_poll: float | None


class StatusAllDoc(TypedDict):
    """``GET /status``: every service, and the provider's view of Docker and its state."""

    services: dict[str, ServiceStatusDoc]
    docker: DockerDoc
    synced: bool
    unassigned_errors: list[str]
    state_file: StateFileDoc
    traefik: TraefikPollsDoc
    traefik_pollers: list[TraefikPollerDoc]


# -- the command answers -------------------------------------------------------------


class SwitchResultDoc(TypedDict):
    """``POST /switch`` and ``POST /rollback``."""

    service: str
    active: str
    previous: str | None
    changed: bool
    switch: SwitchRecordDoc | None
    #: With ``"wait": "applied"``: what Traefik applied when the answer was given.
    traefik: NotRequired[TraefikAppliedDoc]


class NotAppliedDoc(TypedDict):
    """504 ``traefik_not_applied``: the switch was made, but Traefik did not apply it in time."""

    error: str
    detail: str
    service: str
    active: str
    previous: str | None
    changed: bool
    switch: SwitchRecordDoc | None
    traefik: TraefikAppliedDoc
    traefik_pollers: list[TraefikPollerDoc]


class RetireResultDoc(TypedDict):
    """``POST /retire``."""

    service: str
    color: str
    active: str
    marks: MarksDoc


class CanaryResultDoc(TypedDict):
    """``POST /canary`` (no ``active``), ``/canary/abort`` and ``/canary/promote``."""

    service: str
    active: NotRequired[str]
    canary: CanaryDoc | None


class MaintenanceResultDoc(TypedDict):
    """``POST /maintenance``: the service's maintenance now, and whether this changed it."""

    service: str
    changed: bool
    maintenance: MaintenanceDoc | None
    record: SwitchRecordDoc | None


class HistoryDoc(TypedDict):
    """``GET /history``."""

    history: list[SwitchRecordDoc]


# -- events ----------------------------------------------------------------------------

#: One event: the ``data:`` of a ``GET /events`` message and a webhook's body.
EventDoc = TypedDict(
    "EventDoc",
    {
        "id": str,
        "event": str,
        "service": str | None,
        "from": str | None,
        "to": str | None,
        "reason": str | None,
        "actor": str | None,
        "at": float,
        "images": dict[str, str | None],
        "detail": dict[str, Any],
    },
)

#: Each documented TypedDict and the ``provider/openapi.yaml`` schema it is.
SCHEMAS: dict[str, type] = {
    "SwitchRecord": SwitchRecordDoc,
    "SwitchResult": SwitchResultDoc,
    "ColorMark": ColorMarkDoc,
    "RetireResult": RetireResultDoc,
    "Container": ContainerDoc,
    "ColorStatus": ColorStatusDoc,
    "Pending": PendingDoc,
    "ServiceStatus": ServiceStatusDoc,
    "StatusAll": StatusAllDoc,
    "Docker": DockerDoc,
    "StateFile": StateFileDoc,
    "TraefikPolls": TraefikPollsDoc,
    "TraefikApplied": TraefikAppliedDoc,
    "TraefikPoller": TraefikPollerDoc,
    "NotApplied": NotAppliedDoc,
    "Canary": CanaryDoc,
    "CanaryStep": CanaryStepDoc,
    "CanaryResult": CanaryResultDoc,
    "Maintenance": MaintenanceDoc,
    "MaintenanceResult": MaintenanceResultDoc,
    "Bake": BakeDoc,
    "BakeResult": BakeResultDoc,
    "Event": EventDoc,
}
