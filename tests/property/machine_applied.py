"""The "applied by Traefik" rules and invariant of the single-host state machine.

A mixin of :class:`tests.property.test_state_machine.BlueGreenMachine`: two
Traefik instances (``a``, ``b``, on two addresses) poll the provider, apply
the body they were served (their health check probes it back with its
version), or fall silent while the machine's other rules switch, deploy,
restart the provider and let time pass.  The promise: the provider says a
service is applied by Traefik only when every Traefik still polling runs a
body that routes it to its active color; never when none polls; and it does
say so once they all do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from provider.core.applied import STALE_AFTER_S, routes_of
from provider.core.model import Color
from provider.traefik_pollers import KEEP_VERSIONS

ADDRESSES = {"a": "10.9.0.1", "b": "10.9.0.2"}


@dataclass
class _Traefik:
    """One Traefik, by the machine's own account."""

    last_poll: float
    #: The body version it runs and, per service, the color that body routes it to.
    version: int | None = None
    routes: dict[str, Color | None] | None = None


class AppliedRules:
    """Rules: a Traefik polls, applies the body, or stays silent (time passes elsewhere)."""

    controller: Any
    clock: Any
    settings: Any

    def _traefiks(self) -> dict[str, _Traefik]:
        """The model, reset when the provider restarted (a new process knows no poller)."""
        model: dict[str, _Traefik] | None = getattr(self, "_applied_model", None)
        if model is None or getattr(self, "_applied_for", None) is not self.controller:
            model = {}
            self._applied_model = model
            self._applied_for = self.controller
        return model

    @rule(traefik=st.sampled_from(sorted(ADDRESSES)))
    def traefik_polls(self, traefik: str) -> None:
        """A Traefik polls ``/traefik`` (and is answered)."""
        pollers = self.controller.pollers
        pollers.arrived(traefik, ADDRESSES[traefik])
        pollers.left(traefik)
        model = self._traefiks()
        known = model.setdefault(traefik, _Traefik(self.clock.now))
        known.last_poll = self.clock.now

    @rule(traefik=st.sampled_from(sorted(ADDRESSES)))
    def traefik_applies_the_body(self, traefik: str) -> None:
        """A Traefik polls, applies the body it got, and its health check probes it back."""
        self.traefik_polls(traefik)
        pollers = self.controller.pollers
        if pollers.version == 0:  # nothing rendered yet: nothing to apply
            return
        assert pollers.probed(ADDRESSES[traefik], pollers.current_probe)
        known = self._traefiks()[traefik]
        known.version = pollers.version
        known.routes = routes_of(json.loads(self.controller.body))
        event("a Traefik applied the body")

    @invariant()
    def applied_only_when_every_live_traefik_routes_there(self) -> None:
        """Applied iff some Traefik still polls and each one polling runs the active color."""
        model = self._traefiks()
        pollers = self.controller.pollers
        live_after = self.settings.hold + STALE_AFTER_S
        live = [t for t in model.values() if self.clock.now - t.last_poll <= live_after]
        for service in sorted(self.controller.state.services):
            active = self.controller.active(service)
            answer = pollers.service(service, active)
            if not model:
                assert answer.applied is None, (service, answer)
                continue
            routed = [t.routes is not None and t.routes.get(service) is active for t in live]
            if answer.applied:
                assert live and all(routed), (service, answer, model)
                assert answer.color is active
            remembered = all(
                t.version is not None and pollers.version - t.version < KEEP_VERSIONS for t in live
            )
            if live and all(routed) and remembered:
                assert answer.applied, (service, answer, model)
