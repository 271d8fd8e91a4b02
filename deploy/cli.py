"""The ``bluegreen`` command: ``serve`` runs the provider; the rest talk to its API.

Operator commands (``status``, ``switch``, ``history``, ``rollback``,
``deploy``) are thin clients of the provider's HTTP API at ``--url`` (env
``BLUEGREEN_URL``, default ``http://127.0.0.1:8080``) with the token from
``--token``, ``BLUEGREEN_TOKEN``, or the file named by ``--token-file`` or
``BLUEGREEN_TOKEN_FILE``. What the environment does not set is read from the
``.env`` beside the compose file (``-f``, ``COMPOSE_FILE``, else the current
directory), which ``bluegreen init`` writes. Exit codes: see ``deploy/errors.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from deploy import envfile, init_env, render_table, signals
from deploy.canary_rollout import CanaryPlan, canary_rollout, parse_ms, parse_percent
from deploy.client import DEFAULT_URL, ProviderClient
from deploy.compose import Compose, find_compose
from deploy.deploy_rollout import DeployPlan, deploy
from deploy.errors import CliError, Interrupted, TokenFileError, UsageError
from deploy.rollback import rollback
from deploy.rollout import DEFAULT_COMPOSE_SERVICE, ComposeApi, Reporter
from deploy.snapshot import parse_service, parse_status
from deploy.swarm_services import SwarmServices
from provider import settings as provider_settings
from provider.core.labels import parse_bool
from provider.errors import SettingsError, StateFileError

EPILOG = """\
exit codes: 0 done; 1 deploy/rollback failed (active color left serving), or init failed;
2 bad usage; 3 provider unreachable; 4 token missing or wrong; 5 unknown service;
6 switch refused; 7 compose problem; 130 interrupted by Ctrl-C, 143 by SIGTERM
(the active color left serving)
"""


#: ``--token`` stays accepted (scripts use it), but other local users can read a
#: command line (``ps``, ``/proc/*/cmdline``) and shells keep it in their history.
TOKEN_FLAG_WARNING = (
    "bluegreen: warning: --token is visible to other users (ps) and kept in shell history; "
    "prefer BLUEGREEN_TOKEN or --token-file"
)


def _seconds(raw: str) -> float:
    """The provider's own seconds parser, with argparse's way of reporting an error."""
    try:
        return provider_settings.parse_seconds(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        help="compose file (repeatable; default: compose's own lookup, or $COMPOSE_FILE)",
    )
    parser.add_argument("-p", "--project-name", default=None, help="compose project name")
    parser.add_argument(
        "--compose-service",
        default=DEFAULT_COMPOSE_SERVICE,
        metavar="TEMPLATE",
        help="compose service of a color (default {service}-{color})",
    )


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

    back = command(
        "rollback",
        "switch back to the previous color, starting its stopped containers first",
    )
    back.add_argument("service")
    back.add_argument("--timeout", type=_seconds, default=120.0, help="seconds (default 120)")
    _compose_args(back, swarm=True)

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
        "--drain",
        type=_seconds,
        default=15.0,
        help="seconds between the switch and stopping the old color (default 15)",
    )
    dep.add_argument("--keep-old", action="store_true", help="leave the old color running")
    _compose_args(dep, swarm=True)
    _canary_commands(command)
    return parser


def _with_env_file(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment, completed from the compose directory's ``.env`` (``bluegreen init``).

    Only the CLI's own settings are taken, each only when the environment lacks it; a
    token given in any form in the environment keeps the file's token out. A relative
    ``BLUEGREEN_TOKEN_FILE`` is relative to the ``.env``.
    """
    merged = dict(environ)
    path = envfile.beside(getattr(args, "compose_file", []) or [], environ)
    found = envfile.read(path)
    if not found:
        return merged
    if "BLUEGREEN_URL" in found and not environ.get("BLUEGREEN_URL"):
        merged["BLUEGREEN_URL"] = found["BLUEGREEN_URL"]
    has_token = args.token or args.token_file
    has_token = has_token or environ.get("BLUEGREEN_TOKEN") or environ.get("BLUEGREEN_TOKEN_FILE")
    if not has_token:
        if found.get("BLUEGREEN_TOKEN_FILE"):
            token_file = Path(found["BLUEGREEN_TOKEN_FILE"])
            merged["BLUEGREEN_TOKEN_FILE"] = str(path.parent / token_file)
        elif found.get("BLUEGREEN_TOKEN"):
            merged["BLUEGREEN_TOKEN"] = found["BLUEGREEN_TOKEN"]
    return merged


def _canary_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
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


def _canary_plan(args: argparse.Namespace) -> CanaryPlan:
    try:
        steps = [int(x) for x in args.steps.split(",") if x.strip()]
        rate = parse_percent(args.max_error_rate) if args.max_error_rate else None
        p99 = parse_ms(args.max_p99) if args.max_p99 else None
    except ValueError as exc:
        raise UsageError(f"bad canary option: {exc}") from exc
    return CanaryPlan(
        service=args.service,
        image=args.image,
        steps=steps,
        interval=args.interval,
        max_error_rate=rate,
        max_p99_ms=p99,
        min_requests=args.min_requests,
        timeout=args.timeout,
        detach=args.detach,
        compose_service=args.compose_service,
    )


def _client(args: argparse.Namespace, environ: Mapping[str, str]) -> ProviderClient:
    url = args.url or environ.get("BLUEGREEN_URL") or DEFAULT_URL
    return ProviderClient(url, _token(args, environ))


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The operator token: given as such, or read from its file (never both)."""
    token, token_source = args.token, "--token"
    if not token and environ.get("BLUEGREEN_TOKEN"):
        token, token_source = environ["BLUEGREEN_TOKEN"], "BLUEGREEN_TOKEN"
    path, path_source = args.token_file, "--token-file"
    if not path and environ.get("BLUEGREEN_TOKEN_FILE"):
        path, path_source = environ["BLUEGREEN_TOKEN_FILE"], "BLUEGREEN_TOKEN_FILE"
    if not path:
        return token or None
    if token:
        raise TokenFileError(f"both {token_source} and {path_source} are given: keep one")
    try:
        return provider_settings.read_token_file(
            path, path_source, "--token-file", "BLUEGREEN_TOKEN_FILE"
        )
    except SettingsError as exc:
        raise TokenFileError(str(exc)) from exc


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True))


def _opener(args: argparse.Namespace, environ: Mapping[str, str]) -> Callable[[], Compose]:
    def open_compose() -> Compose:
        return Compose(find_compose(environ), args.compose_file, args.project_name, environ)

    return open_compose


def _swarm_mode(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """``--swarm``, else ``BLUEGREEN_SWARM`` (the provider's variable); checks what it needs."""
    swarm = getattr(args, "swarm", None)
    if swarm is None:
        raw = environ.get("BLUEGREEN_SWARM", "").strip()
        swarm = parse_bool(raw) if raw else False
        if swarm is None:
            raise UsageError(f"BLUEGREEN_SWARM={raw!r}: expected true or false")
    if not swarm:
        return False
    if args.command not in ("deploy", "rollback"):
        raise UsageError(f"`bluegreen {args.command}` is not available in Swarm mode yet")
    if args.compose_file or args.project_name:
        raise UsageError(
            "Swarm mode finds the colors' services by label: -f/-p (compose) do not apply"
        )
    if args.command == "deploy" and not args.image:
        raise UsageError("Swarm mode needs --image: the new color's service gets that image")
    return True


def _swarm_opener(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> Callable[[], SwarmServices]:
    def open_swarm() -> SwarmServices:
        return SwarmServices.open(
            args.service,
            environ,
            label_prefix=environ.get("BLUEGREEN_LABEL_PREFIX") or "bluegreen",
            compose_service=args.compose_service,
        )

    return open_swarm


def _compose_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """The compose flags as the user gave them, to repeat in hints."""
    flags: list[str] = []
    for file in args.compose_file:
        flags += ["-f", file]
    if args.project_name:
        flags += ["-p", args.project_name]
    if args.compose_service != DEFAULT_COMPOSE_SERVICE:
        flags += ["--compose-service", args.compose_service]
    return tuple(flags)


def _check_template(template: str) -> None:
    try:
        template.format(service="s", color="blue")
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(
            f"--compose-service {template!r} may use only {{service}} and {{color}}"
        ) from exc


def _run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.command == "init":
        result = init_env.init(args.compose_file, environ, force=args.force)
        for line in result.lines():
            print(line)
        return 0
    if args.token:
        print(TOKEN_FLAG_WARNING, file=sys.stderr)
    environ = _with_env_file(args, environ)
    client = _client(args, environ)
    now = time.time()
    if args.command == "status":
        doc = client.status(args.service)
        if args.json:
            _print_json(doc)
        elif args.service:
            print(render_table.service_text(parse_service(doc), now))
        else:
            print(render_table.status_all_text(parse_status(doc), now))
        for line in render_table.canary_lines(doc):
            print(line)
        return 0
    if args.command == "switch":
        doc = client.switch(args.service, args.color, force=args.force, reason=args.reason)
        if args.json:
            _print_json(doc)
        else:
            print(render_table.switch_text(doc))
        return 0
    if args.command in ("canary-abort", "canary-promote"):
        call = client.canary_abort if args.command == "canary-abort" else client.canary_promote
        doc = call(args.service)
        if args.json:
            _print_json(doc)
        else:
            print(render_table.canary_text(args.service, doc.get("canary")))
        return 0
    if args.command == "history":
        records = client.history(args.service)[-max(args.limit, 1) :]
        if args.json:
            _print_json({"history": records})
        else:
            print(render_table.history_text(records))
        return 0
    _check_template(args.compose_service)
    swarm = _swarm_mode(args, environ)
    out = Reporter(sys.stderr if args.json else sys.stdout)
    opener: Callable[[], ComposeApi] = (
        _swarm_opener(args, environ) if swarm else _opener(args, environ)
    )
    if args.command == "canary":
        outcome = canary_rollout(client, _opener(args, environ), _canary_plan(args), out)
    elif args.command == "rollback":
        outcome = rollback(
            client,
            opener,
            args.service,
            out,
            timeout=args.timeout,
            compose_service=args.compose_service,
            swarm=swarm,
        )
    else:
        plan = DeployPlan(
            service=args.service,
            image=args.image,
            timeout=args.timeout,
            drain=args.drain,
            keep_old=args.keep_old,
            compose_service=args.compose_service,
        )
        outcome = deploy(client, opener, plan, out)
        flags = ("--swarm",) if swarm else _compose_flags(args)
        outcome = dataclasses.replace(outcome, compose_args=flags)
    if args.json:
        _print_json(outcome.to_json())
    else:
        print(outcome.summary())
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from provider.server import serve

        try:
            settings = provider_settings.load(args)
            serve(settings)
        except (SettingsError, StateFileError) as exc:
            # One line, whatever the message (a YAML error spans several).
            print(f"bluegreen serve: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        return 0
    env = os.environ if environ is None else environ
    with signals.sigterm_as_interrupt() as received:
        try:
            return _run(args, env)
        except CliError as exc:
            sys.stdout.flush()
            print(f"bluegreen {args.command}: {exc.message}", file=sys.stderr)
            return received.exit_code() if isinstance(exc, Interrupted) else exc.exit_code
        except KeyboardInterrupt:
            print(f"bluegreen {args.command}: interrupted", file=sys.stderr)
            return received.exit_code()


if __name__ == "__main__":
    sys.exit(main())
