"""Wait until Traefik applied a switch, before anything is drained or stopped behind it.

Why: stopping the old color is only safe once Traefik routes to the new one.
A Traefik that cannot reach the provider, or is stuck, still routes to the old
color however long the CLI sleeps.  The provider knows what each Traefik
instance applied (``/status``'s ``traefik``, see docs/applied-and-drain.md);
this asks it until the answer is yes, or until ``timeout``, and then raises
:class:`TraefikNotApplied` naming the likely cause.

The provider answers ``applied: null`` when it has never seen a Traefik poll
(no Traefik in front, or in Swarm mode one polling another replica): nothing
can be known, so that is returned, not waited for; the caller says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from deploy.errors import CliError, RolloutFailed
from deploy.rollout_api import Clock, ProviderApi, Sleep
from provider.core.model import Color

#: How often the provider is asked (its answer changes on Traefik's next request).
POLL_S = 0.1
#: A poller silent this long is named as having stopped polling (a held poll is
#: answered within the provider's --hold, 2.5 s, and the next one follows at once).
OVERDUE_S = 5.0
#: Default seconds to wait for Traefik (deploy's --apply-timeout).
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AppliedResult:
    """What the provider said last: ``applied`` None means no Traefik was ever seen polling."""

    applied: bool | None
    #: The color Traefik is known to route the service to (None: unknown or split).
    color: str | None
    since: float | None
    lag_s: float | None
    waited_s: float

    def describe(self) -> str:
        if self.applied is None:
            return "the provider has not seen Traefik poll it: what Traefik routes is unknown"
        lag = f" {self.lag_s:.2f}s after the switch" if self.lag_s is not None else ""
        return f"Traefik applied the switch to {self.color}{lag}"


class TraefikNotApplied(RolloutFailed):
    """Traefik did not apply the switch in time: the old color must keep running."""

    def __init__(self, message: str, result: AppliedResult) -> None:
        super().__init__(message)
        self.result = result


class SwitchedAway(RolloutFailed):
    """The provider made another color active while the CLI waited for Traefik's apply
    (a bake's revert, an operator): the apply awaited will not come."""

    def __init__(self, message: str, active: str) -> None:
        super().__init__(message)
        self.active = active


def _result(doc: dict[str, Any], waited: float) -> AppliedResult:
    traefik = doc.get("traefik") or {}
    return AppliedResult(
        traefik.get("applied"),
        traefik.get("color"),
        traefik.get("since"),
        traefik.get("lag_s"),
        waited,
    )


def likely_cause(service: str, color: Color, last: AppliedResult, status: dict[str, Any]) -> str:
    """Why Traefik did not apply, from ``/status``'s pollers, in words a user can act on."""
    pollers = status.get("traefik_pollers") or []
    live = [p for p in pollers if p.get("live") and _age(p) <= OVERDUE_S]
    stale = [p for p in pollers if p not in live]
    if not live:
        seen = ", ".join(f"{p['id']} (last poll {_ago(status, p)})" for p in stale)
        return (
            f"Traefik stopped polling the provider ({seen or 'none seen'}): it cannot reach "
            "the provider (network, firewall, --providers.http.endpoint) or it is stuck"
        )
    routes = f"still routes {service} to {last.color}" if last.color else "has not applied it"
    ids = ", ".join(str(p["id"]) for p in live)
    return (
        f"Traefik ({ids}) polls the provider but {routes}: its health check of the "
        "provider's probe did not report the switch (a long providersThrottleDuration, "
        "a config it rejected, or no route back to the provider: see Traefik's log)"
        if last.color != str(color)
        else f"not every Traefik ({ids}) applied the switch to {color} yet"
    )


def _age(poller: dict[str, Any]) -> float:
    """Seconds since the poller's last request (a held one counts as polling now)."""
    last = poller.get("last_poll")
    if not isinstance(last, (int, float)):
        return float("inf")
    return max(0.0, time.time() - last)


def _ago(status: dict[str, Any], poller: dict[str, Any]) -> str:
    age = _age(poller)
    return "never" if age == float("inf") else f"{age:.0f}s ago"


def wait_applied(
    client: ProviderApi,
    service: str,
    color: Color,
    timeout: float = DEFAULT_TIMEOUT_S,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> AppliedResult:
    """Until Traefik applied ``color`` for ``service``; raises TraefikNotApplied after timeout.

    Returns at once when the provider never saw Traefik (``applied`` None).
    A provider that cannot be asked for a moment is asked again until the
    deadline: only a yes ends the wait early.
    """
    started = clock()
    deadline = started + timeout
    last = AppliedResult(False, None, None, None, 0.0)
    while True:
        try:
            doc = client.status(service)
            last = _result(doc, clock() - started)
        except CliError:
            if clock() >= deadline:
                raise
        else:
            if last.applied is None or (last.applied and last.color == str(color)):
                return last
            active = doc.get("active")
            if active is not None and active != str(color):
                raise SwitchedAway(
                    f"the provider made {active} active while waiting for Traefik to apply {color}",
                    str(active),
                )
        if clock() >= deadline:
            break
        sleep(min(POLL_S, max(0.0, deadline - clock())))
    try:
        status = client.status()
    except CliError:
        status = {}
    cause = likely_cause(service, color, last, status)
    raise TraefikNotApplied(
        f"Traefik did not apply the switch of {service} to {color} within {timeout:g}s: {cause}",
        last,
    )
