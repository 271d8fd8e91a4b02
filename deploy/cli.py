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

from deploy import (
    bake_wait,
    color_layout,
    doctor,
    envfile,
    import_cli,
    maintenance_cli,
    offline_images,
    render_table,
    signals,
)
from deploy.canary_rollout import CanaryPlan, canary_rollout, parse_ms, parse_percent
from deploy.client import DEFAULT_URL, ProviderClient
from deploy.color_layout import Layout
from deploy.compose import Compose, find_compose
from deploy.deploy_rollout import DeployPlan, deploy
from deploy.drain import BlindProbe, DockerProbe
from deploy.errors import CliError, Interrupted, TokenFileError, UsageError
from deploy.parser import build_parser
from deploy.per_color_compose import PerColorCompose
from deploy.release_step import ReleasePlan
from deploy.rollback import rollback
from deploy.rollout import DEFAULT_COMPOSE_SERVICE, ComposeApi, Outcome, Reporter
from deploy.smoke_option import smoke_labels
from deploy.snapshot import parse_service, parse_status
from deploy.swarm_services import SwarmServices
from provider import settings as provider_settings
from provider.core.labels import parse_bool
from provider.errors import SettingsError, StateFileError

#: ``--token`` stays accepted (scripts use it), but other local users can read a
#: command line (``ps``, ``/proc/*/cmdline``) and shells keep it in their history.
TOKEN_FLAG_WARNING = (
    "bluegreen: warning: --token is visible to other users (ps) and kept in shell history; "
    "prefer BLUEGREEN_TOKEN or --token-file"
)


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
    for key in ("BLUEGREEN_URL", "DOCKER_HOST"):  # DOCKER_HOST: for compose, as compose does
        if key in found and not environ.get(key):
            merged[key] = found[key]
    has_token = args.token or args.token_file
    has_token = has_token or environ.get("BLUEGREEN_TOKEN") or environ.get("BLUEGREEN_TOKEN_FILE")
    if not has_token:
        if found.get("BLUEGREEN_TOKEN_FILE"):
            token_file = Path(found["BLUEGREEN_TOKEN_FILE"])
            merged["BLUEGREEN_TOKEN_FILE"] = str(path.parent / token_file)
        elif found.get("BLUEGREEN_TOKEN"):
            merged["BLUEGREEN_TOKEN"] = found["BLUEGREEN_TOKEN"]
    return merged


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


def _opener(
    args: argparse.Namespace, environ: Mapping[str, str], layout: Layout
) -> Callable[[], ComposeApi]:
    """One compose project, or one per color when a file or project template has {color}."""

    def open_compose() -> ComposeApi:
        if layout.per_color:
            return PerColorCompose(find_compose(environ), layout, args.service, environ)
        return Compose(find_compose(environ), layout.files, layout.project, environ)

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
    if args.compose_service not in (None, DEFAULT_COMPOSE_SERVICE):
        flags += ["--compose-service", args.compose_service]
    return tuple(flags)


def _layout(args: argparse.Namespace, environ: Mapping[str, str], swarm: bool) -> Layout:
    """The colors' compose templates (flags, env, .env), checked; Swarm uses the service's."""
    if swarm:
        layout = Layout(compose_service=args.compose_service or DEFAULT_COMPOSE_SERVICE)
    else:
        layout = color_layout.from_settings(
            args.compose_file, args.project_name, args.compose_service, environ
        )
    layout.check(args.service)
    return layout


def _run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.command == "import":
        return import_cli.run(args)
    if args.command == "init":
        lines, result = color_layout.init(
            args.compose_file, args.project_name, args.compose_service, environ, force=args.force
        )
        if args.offline:
            made = offline_images.make_images(args.compose_file, {**environ, **result.engine_env()})
            lines[-1:-1] = made
        print("\n".join(lines))
        return 0
    if args.token:
        print(TOKEN_FLAG_WARNING, file=sys.stderr)
    environ = _with_env_file(args, environ)
    if args.command == "doctor":
        return doctor.run(args, environ, lambda: _token(args, environ))
    client = _client(args, environ)
    api_command = _API_COMMANDS.get(args.command)
    if api_command is not None:
        api_command(client, args)
        return 0
    outcome = _rollout(client, args, environ)
    if args.json:
        _print_json(outcome.to_json())
    else:
        print(outcome.summary())
    return outcome.exit_code


def _status(client: ProviderClient, args: argparse.Namespace) -> None:
    now = time.time()
    doc = client.status(args.service)
    if args.json:
        _print_json(doc)
    elif args.service:
        print(render_table.service_text(parse_service(doc), now))
    else:
        print(render_table.status_all_text(parse_status(doc), now))
    lines = render_table.canary_lines(doc) + maintenance_cli.status_lines(doc)
    for line in lines + bake_wait.status_lines(doc):
        print(line)


def _switch(client: ProviderClient, args: argparse.Namespace) -> None:
    doc = client.switch(args.service, args.color, force=args.force, reason=args.reason)
    if args.json:
        _print_json(doc)
    else:
        print(render_table.switch_text(doc))


def _canary_control(client: ProviderClient, args: argparse.Namespace) -> None:
    """``canary-abort`` and ``canary-promote``: one call, then the canary as it now stands."""
    call = client.canary_abort if args.command == "canary-abort" else client.canary_promote
    doc = call(args.service)
    if args.json:
        _print_json(doc)
    else:
        print(render_table.canary_text(args.service, doc.get("canary")))


def _history(client: ProviderClient, args: argparse.Namespace) -> None:
    records = client.history(args.service)[-max(args.limit, 1) :]
    if args.json:
        _print_json({"history": records})
    else:
        print(render_table.history_text(records))


#: The commands that are one call to the provider's API and need no compose or Swarm.
_API_COMMANDS: dict[str, Callable[[ProviderClient, argparse.Namespace], None]] = {
    "status": _status,
    "switch": _switch,
    "canary-abort": _canary_control,
    "canary-promote": _canary_control,
    "history": _history,
    "maintenance": maintenance_cli.run,
}


def _rollout(
    client: ProviderClient, args: argparse.Namespace, environ: Mapping[str, str]
) -> Outcome:
    """``canary``, ``rollback``, ``deploy``: they drive containers as well as the API."""
    typed = _compose_flags(args)
    swarm = _swarm_mode(args, environ)
    layout = _layout(args, environ, swarm)
    args.compose_service = layout.key_template()  # how the rollouts name a color's service
    out = Reporter(sys.stderr if args.json else sys.stdout)
    opener: Callable[[], ComposeApi] = (
        _swarm_opener(args, environ) if swarm else _opener(args, environ, layout)
    )
    if args.command == "canary":
        return canary_rollout(client, _opener(args, environ, layout), _canary_plan(args), out)
    if args.command == "rollback":
        return rollback(
            client,
            opener,
            args.service,
            out,
            timeout=args.timeout,
            compose_service=args.compose_service,
            swarm=swarm,
            apply_timeout=args.apply_timeout,
        )
    if swarm and args.release:
        raise UsageError("--release runs through compose; it is not available with --swarm yet")
    release = None if swarm else _release_plan(args, environ)
    plan = DeployPlan(
        release=release,
        service=args.service,
        image=args.image,
        timeout=args.timeout,
        drain_timeout=args.drain_timeout,
        apply_timeout=args.apply_timeout,
        keep_old=args.keep_old,
        compose_service=args.compose_service,
        maintenance=_maintenance_plan(args),
        labels=tuple(smoke_labels(args.smoke, args.smoke_host, _prefix(environ)).items()),
        bake=bake_wait.plan_of(args),
    )
    # Swarm tasks may run on other nodes: their TCP tables are out of reach (docs/draining.md).
    probe = BlindProbe() if swarm else DockerProbe(environ)
    outcome = deploy(client, opener, plan, out, probe=probe)
    flags = ("--swarm",) if swarm else typed
    return dataclasses.replace(outcome, compose_args=flags)


def _maintenance_plan(args: argparse.Namespace) -> maintenance_cli.MaintenancePlan | None:
    if not args.maintenance:
        return None
    return maintenance_cli.MaintenancePlan(args.maintenance_message, args.maintenance_retry_after)


def _release_plan(args: argparse.Namespace, environ: Mapping[str, str]) -> ReleasePlan:
    return ReleasePlan(args.release, args.release_timeout, _prefix(environ))


def _prefix(environ: Mapping[str, str]) -> str:
    return environ.get("BLUEGREEN_LABEL_PREFIX") or "bluegreen"


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
