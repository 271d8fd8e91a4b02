"""``bluegreen maintenance SERVICE on|off`` and ``deploy --maintenance``.

Maintenance is the provider's state (``POST /maintenance``): the public gets a
503 page with ``Retry-After`` while the preview header still reaches the
colors. The command is one API call. ``deploy --maintenance`` turns it on
before the release step and off right after the switch (unless it was on before:
then it is the operator's, and stays on). If the deploy fails or
is interrupted before the switch, maintenance is left **on**: the live color
was never touched, but the release step (a migration) may have changed the
data it reads, so only the operator can say the old code may serve again; the
deploy says so and prints the command that ends it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from deploy.errors import UnknownServiceError
from provider.core.maintenance import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER


class MaintenanceApi(Protocol):
    """The calls this needs (``deploy.client.ProviderClient``)."""

    def status(self, service: str | None = None) -> dict[str, Any]: ...

    def maintenance(self, service: str, body: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MaintenancePlan:
    """The page ``deploy --maintenance`` (or the command) puts up."""

    message: str | None = None
    retry_after: int = DEFAULT_RETRY_AFTER


def _retry_after(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_RETRY_AFTER:
        raise argparse.ArgumentTypeError(f"expected whole seconds, 1..{MAX_RETRY_AFTER}")
    return value


def page_arguments(parser: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """``--message`` and ``--retry-after`` (``--maintenance-…`` on ``deploy``)."""
    parser.add_argument(
        f"--{prefix}message",
        default=None,
        metavar="TEXT",
        help="the page's text (default: a generic one)",
    )
    parser.add_argument(
        f"--{prefix}retry-after",
        type=_retry_after,
        default=DEFAULT_RETRY_AFTER,
        metavar="SECONDS",
        help=f"the 503's Retry-After (default {DEFAULT_RETRY_AFTER})",
    )


def add_arguments(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Declare ``maintenance SERVICE on|off``."""
    cmd = command("maintenance", "the public gets a 503 page; the preview header still gets in")
    cmd.add_argument("service")
    cmd.add_argument("state", choices=("on", "off"))
    page_arguments(cmd)
    cmd.add_argument("--reason", default=None, help="kept in the history and the event")


def body(on: bool, plan: MaintenancePlan, reason: str | None) -> dict[str, Any]:
    """The ``POST /maintenance`` body (what is left out takes the provider's default)."""
    doc: dict[str, Any] = {"on": on}
    if on:
        doc["retry_after"] = plan.retry_after
        if plan.message:
            doc["message"] = plan.message
    if reason:
        doc["reason"] = reason
    return doc


def describe(service: str, doc: dict[str, Any]) -> str:
    """One line for a person: what the public of ``service`` gets now."""
    window = doc.get("maintenance")
    unchanged = "" if doc.get("changed") else " (unchanged)"
    if not isinstance(window, dict):
        return f"maintenance of {service} is off: the public reaches the active color{unchanged}"
    return (
        f"maintenance of {service} is on: the public gets 503, Retry-After "
        f"{window.get('retry_after')}s, {json.dumps(window.get('message'))}; "
        f"the preview header reaches the colors{unchanged}"
    )


def status_lines(doc: Any) -> list[str]:
    """``bluegreen status``: one line per service in maintenance (``/status`` or one service)."""
    if not isinstance(doc, dict):
        return []
    services = doc.get("services")
    docs = services if isinstance(services, dict) else {str(doc.get("service")): doc}
    return [
        describe(name, {"maintenance": svc["maintenance"], "changed": True})
        for name, svc in sorted(docs.items())
        if isinstance(svc, dict) and isinstance(svc.get("maintenance"), dict)
    ]


def run(client: MaintenanceApi, args: argparse.Namespace) -> None:
    """``bluegreen maintenance SERVICE on|off``: one call, then one line (or the JSON)."""
    plan = MaintenancePlan(args.message, args.retry_after)
    doc = client.maintenance(args.service, body(args.state == "on", plan, args.reason))
    print(json.dumps(doc, indent=2, sort_keys=True) if args.json else describe(args.service, doc))


class DeployWindow:
    """Maintenance around a deploy's release step and switch (``deploy --maintenance``).

    A window an operator opened before the deploy is theirs: the deploy keeps its page,
    does not end it, and says so.
    """

    def __init__(
        self,
        client: MaintenanceApi,
        service: str,
        plan: MaintenancePlan | None,
        out: Callable[[str], None],
    ) -> None:
        self.client = client
        self.service = service
        self.plan = plan
        self.out = out
        self.on = False

    def _call(self, on: bool) -> None:
        assert self.plan is not None
        doc = self.client.maintenance(self.service, body(on, self.plan, "deploy"))
        self.on = on
        self.out(describe(self.service, doc))

    def start(self) -> None:
        """Before the release step: the public gets the page from now on."""
        if self.plan is None:
            return
        try:
            before = self.client.status(self.service).get("maintenance")
        except UnknownServiceError:  # a first deploy: nothing was on
            before = None
        if before is not None:
            self.out(
                f"maintenance of {self.service} is already on (since before this deploy): "
                "its page stays, and it stays on after the switch"
            )
            return
        self._call(True)

    def end(self) -> None:
        """Right after the switch: the public reaches the new color."""
        if self.on:
            self._call(False)

    def left_on(self) -> None:
        """The deploy failed or was stopped before it ended maintenance: say so, once."""
        if self.on:
            self.out(
                f"maintenance of {self.service} is still ON (the public gets 503): the release "
                "step may have changed the data the live color reads; when it may serve "
                f"again, run: bluegreen maintenance {self.service} off"
            )
