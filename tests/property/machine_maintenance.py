"""Maintenance mode in the single-host state machine: a rule and its invariants.

A mixin of :class:`tests.property.test_state_machine.BlueGreenMachine` (hypothesis
collects rules and invariants from base classes). The rule is ``POST /maintenance``
on or off, any time, between any other events (deploys, canaries, switches, a
failing disk, restarts). The promises: maintenance is exactly what was acknowledged
(a refused or unwritten command changes nothing, a restart keeps it); while it is
on, the service's public router targets the maintenance page and its preview
routers still target the colors; when it is off, nothing of it is in the body; and
a maintenance record never moves traffic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from provider.controller import Controller
from provider.core.maintenance import REASONS, SetMaintenance
from provider.core.model import Color, Maintenance
from provider.core.render import maintenance_name
from provider.errors import BlueGreenError, StateFileError

T = TypeVar("T")
SERVICES = ("shop", "blog")


class MaintenanceRules:
    """``POST /maintenance`` as a rule; the served body and the state as invariants."""

    controller: Controller
    history: list[tuple[str, Color | None, Color, str, str, float]]
    stale: bool
    run: Callable[[Coroutine[Any, Any, Any]], Any]
    _touching: Callable[[str, Callable[[], None]], None]
    _settle: Callable[[], float | None]

    def _maintenance_model(self) -> dict[str, tuple[str, int]]:
        """Each service the operator put in maintenance (acknowledged): message, Retry-After."""
        if not hasattr(self, "maintenance_model"):
            self.maintenance_model: dict[str, tuple[str, int]] = {}
        return self.maintenance_model

    @rule(
        service=st.sampled_from(SERVICES),
        on=st.booleans(),
        message=st.sampled_from(["back soon", "migrating"]),
        retry_after=st.sampled_from([5, 30]),
    )
    def operator_maintenance(self, service: str, on: bool, message: str, retry_after: int) -> None:
        """``POST /maintenance``: on (a page) or off; persisted before it answers."""
        self._touching(service, lambda: self._set_maintenance(service, on, message, retry_after))
        self._settle()

    def _set_maintenance(self, service: str, on: bool, message: str, retry_after: int) -> None:
        model = self._maintenance_model()
        state, known = self.controller.state, len(self.history)
        command = SetMaintenance(service, on, message, retry_after, actor="operator")
        try:
            _, record = self.run(self.controller.set_maintenance(command))
        except (StateFileError, BlueGreenError) as exc:
            assert state == self.controller.state, f"refused ({exc}) but the state changed"
            event(f"maintenance refused ({type(exc).__name__})")
            return
        same = model.get(service) == (message, retry_after) if on else service not in model
        assert (record is None) == same, f"changed={record is not None} but the model {same=}"
        if record is None:
            event("maintenance unchanged")
            return
        assert record.from_color is record.to_color, f"maintenance moved traffic: {record}"
        assert record.reason in REASONS
        records = list(self.controller.state.history)
        if len(records) >= known + 1:
            assert record == records[-1]
            self.history.append(
                (
                    service,
                    record.from_color,
                    record.to_color,
                    record.reason,
                    record.actor,
                    record.at,
                )
            )
        if on:
            model[service] = (message, retry_after)
        else:
            model.pop(service, None)
        event(f"maintenance {'on' if on else 'off'}")

    @invariant()
    def maintenance_is_what_was_acknowledged(self) -> None:
        """The state holds exactly the maintenance the operator was told was done (through
        failed writes, restarts and everything else that happened meanwhile)."""
        held = self.controller.state.maintenance
        model = self._maintenance_model()
        assert model == {name: (m.message, m.retry_after) for name, m in held.items()}
        assert all(isinstance(m, Maintenance) and m.actor == "operator" for m in held.values())

    @invariant()
    def maintenance_page_serves_the_public_and_previews_the_colors(self) -> None:
        """On: the public router targets the page (its middleware last), previews target
        the colors. Off: no router, service or middleware of it is in the body."""
        if not self.controller.synced or self.stale:
            return
        http = json.loads(self.controller.body).get("http", {})
        routers, services = http.get("routers", {}), http.get("services", {})
        middlewares = http.get("middlewares", {})
        model = self._maintenance_model()
        for service in SERVICES:
            page = maintenance_name(service)
            on = service in model and service in routers
            assert on == (page in services) == (page in middlewares), f"{service}: {page}"
            if service not in routers:
                continue
            public = routers[service]
            assert (page if on else service) == public["service"]
            assert on == (page in public.get("middlewares", [])), public
            for color in Color:
                preview = routers.get(f"{service}-preview-{color}")
                if preview is not None:
                    assert f"{service}-{color}" == preview["service"], preview
            if on:
                event("maintenance page served")


class ReplicaMaintenanceRules:
    """Maintenance on Swarm: any replica turns it on or off over the shared Raft store.

    A mixin of :class:`tests.property.test_replica_machine.ReplicaMachine`. Promises:
    every acknowledged change is in the newest history, in order (a conflict decides it
    again on the other replica's state, so "on" twice is one record); the newest state's
    maintenance is what its last maintenance record says; every replica that follows the
    newest version serves the page exactly while it is on.
    """

    replicas: list[Controller]
    run: Callable[[Coroutine[Any, Any, Any]], Any]
    newest: Callable[[], tuple[int, Any]]

    def _maintenance_acknowledged(self) -> list[Any]:
        if not hasattr(self, "maintenance_acknowledged"):
            self.maintenance_acknowledged: list[Any] = []
        return self.maintenance_acknowledged

    @rule(replica=st.integers(min_value=0, max_value=2), on=st.booleans())
    def maintenance(self, replica: int, on: bool) -> None:
        """``POST /maintenance`` through one replica; refusals (no quorum) change nothing."""
        command = SetMaintenance("web", on, "migrating", 10, actor=f"op{replica}")
        try:
            _, record = self.run(self.replicas[replica].set_maintenance(command))
        except BlueGreenError:
            event("maintenance not acknowledged")
            return
        if record is not None:
            self._maintenance_acknowledged().append(record)
            event(f"maintenance {'on' if on else 'off'} acknowledged")

    @invariant()
    def acknowledged_maintenance_is_in_the_history(self) -> None:
        _, latest = self.newest()
        acknowledged = self._maintenance_acknowledged()
        assert [r for r in latest.history if r in acknowledged] == acknowledged
        kept = [r for r in latest.history if r.reason in REASONS]
        if kept:
            on = kept[-1].reason == "maintenance-on"
            assert on == ("web" in latest.maintenance), (kept[-1], latest.maintenance)

    @invariant()
    def replicas_on_the_newest_version_serve_the_page_while_on(self) -> None:
        version, latest = self.newest()
        page = maintenance_name("web")
        for replica in self.replicas:
            if replica.store.version == version and "web" in replica.observation.services:
                routers = json.loads(replica.body).get("http", {}).get("routers", {})
                if "web" in routers:
                    assert ("web" in latest.maintenance) == (routers["web"]["service"] == page)
