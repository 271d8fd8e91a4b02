"""The asset fallback's rule and invariant, mixed into ``BlueGreenMachine``.

Rule: deploys from now on carry ``bluegreen.fallback=/assets/`` (or stop carrying it),
so the machine walks switches, stops, crashes and rollbacks with the fallback on.
Invariant: a rendered fallback always points at the color that is *not* active, and
at servers of containers the controller was told are running: never at a stopped
color, one with no servers, or the active color itself (a loop).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

FALLBACK_LABELS = {"bluegreen.fallback": "/assets/"}


class FallbackRules:
    """Mixin: needs the machine's ``docker`` (with ``extra_labels``), ``controller``, ``seen``."""

    docker: Any
    controller: Any
    seen: dict[str, Any]

    @rule(on=st.booleans())
    def fallback_label(self, on: bool) -> None:
        """The app's next deploys ask for the asset fallback (or no longer do)."""
        self.docker.extra_labels = dict(FALLBACK_LABELS) if on else {}

    @invariant()
    def fallback_points_at_a_running_previous_color(self) -> None:
        """Every fallback middleware aims at the non-active color's servers, all running."""
        http = json.loads(self.controller.body or b"{}").get("http", {})
        services = http.get("services", {})
        running = {
            f"http://{ip}:"
            for c in self.seen.values()
            if c.state == "running"
            for ip in c.networks.values()
            if ip
        }
        for name, middleware in http.get("middlewares", {}).items():
            if "errors" not in middleware:  # a maintenance page's middlewares
                continue
            service = name.removesuffix("-fallback")
            assert service not in self.controller.state.maintenance, (
                f"{name}: an asset fallback would let assets past {service}'s maintenance page"
            )
            target = middleware["errors"]["service"]
            live = [s["name"] for s in services[service]["weighted"]["services"]]
            assert target not in live, f"{name} falls back to the active color {target}"
            servers = services[target]["loadBalancer"]["servers"]
            assert servers, f"{name} falls back to {target}, which has no server"
            for server in servers:
                assert any(server["url"].startswith(p) for p in running), (
                    f"{name} falls back to {server['url']}, not a running container"
                )
            assert name in http["routers"], f"{name}: a middleware without its router"
