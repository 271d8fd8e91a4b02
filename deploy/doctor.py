"""``bluegreen doctor``: from the operator's side, check what the provider needs, one line each.

The provider says at its own start what Docker lets it do
(:mod:`provider.docker_access`); this runs the same probes, and the rest of the
chain, from wherever the operator is (the host, or ``docker compose exec
bluegreen bluegreen doctor`` inside the provider's container, behind the proxy):

- ``docker``: the Docker API (or the socket proxy) answers, and allows every endpoint
  the provider sends;
- ``provider``: ``GET /status`` answers;
- ``traefik``: Traefik has polled ``/traefik`` lately (``/status``'s ``traefik`` field);
- ``token``: the operator token is readable, and the provider accepts it (``GET /auth``);
- ``state``: the state file's directory is writable (one host; ``--state-file``).

Each check prints ``ok``, ``FAIL`` or ``skip`` with what it saw; the exit code is 1
if any failed. No check changes anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.client import DEFAULT_URL, ProviderClient
from deploy.errors import CliError
from provider.core.docker_endpoints import refusal_message

#: Traefik polls at least once per hold (2.5 s by default); this much silence is a failure.
POLL_SILENCE_S = 30.0
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok``, ``FAIL`` or ``skip``, and what it saw."""

    name: str
    outcome: str
    detail: str

    def line(self) -> str:
        return f"{self.outcome:<5} {self.name:<9} {self.detail}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The doctor's own flags (``--url``, the token and ``--json`` are the common ones)."""
    parser.add_argument(
        "--docker-host",
        default=None,
        help="the Docker API or socket proxy the provider uses (env BLUEGREEN_DOCKER_HOST, "
        f"then DOCKER_HOST, default {DEFAULT_DOCKER_HOST})",
    )
    parser.add_argument(
        "--swarm",
        action="store_true",
        default=None,
        help="check the endpoints of `serve --swarm` (env BLUEGREEN_SWARM=true)",
    )
    parser.add_argument(
        "--state-file",
        default=None,
        help="the provider's state file, to check its directory is writable "
        "(env BLUEGREEN_STATE_FILE; skipped without one)",
    )
    parser.add_argument(
        "--label-prefix", default=None, help="as the provider's (env BLUEGREEN_LABEL_PREFIX)"
    )


def check_docker(docker_host: str, *, swarm: bool, prefix: str) -> Check:
    """The provider's endpoints, probed as at its start."""
    from provider.docker_access import NoAnswer  # aiodocker: only for this command

    try:
        answers = asyncio.run(_probe(docker_host, swarm=swarm, prefix=prefix))
    except (NoAnswer, TimeoutError) as exc:
        return Check("docker", "FAIL", f"{docker_host} does not answer: {exc or 'timeout'}")
    refused = [(e, text) for e, (status, text) in answers.items() if status == 403]
    if refused:
        return Check("docker", "FAIL", refusal_message(docker_host, refused))
    writes = [e.name for e in answers if e.writes]
    return Check(
        "docker",
        "ok",
        f"{docker_host} allows the provider's {len(answers)} endpoints; "
        + (f"writes: {', '.join(writes)}" if writes else "no write needed"),
    )


async def _probe(docker_host: str, *, swarm: bool, prefix: str) -> Any:
    from provider.docker_access import probe_all

    async with asyncio.timeout(15):
        return await probe_all(docker_host, swarm=swarm, prefix=prefix)


def check_provider(client: ProviderClient) -> tuple[Check, dict[str, Any] | None]:
    """``GET /status``; its body for the Traefik check."""
    try:
        status = client.status()
    except CliError as exc:
        return Check("provider", "FAIL", exc.message), None
    docker = status.get("docker") or {}
    return (
        Check(
            "provider",
            "ok",
            f"{client.url} answers; {len(status.get('services') or {})} service(s), "
            f"Docker {docker.get('status', '?')}",
        ),
        status,
    )


def check_traefik(status: Mapping[str, Any] | None) -> Check:
    """Traefik polled ``/traefik`` within :data:`POLL_SILENCE_S`."""
    if status is None:
        return Check("traefik", "skip", "the provider did not answer")
    polls = status.get("traefik")
    if not isinstance(polls, Mapping):
        return Check("traefik", "skip", "this provider does not report Traefik's polls")
    ago = polls.get("seconds_since_last_poll")
    if ago is None:
        return Check(
            "traefik",
            "FAIL",
            "Traefik never polled /traefik: check its --providers.http.endpoint and the "
            "provider token in its Authorization header",
        )
    if ago > POLL_SILENCE_S:
        return Check("traefik", "FAIL", f"Traefik's last poll was {ago:.0f}s ago")
    return Check("traefik", "ok", f"polled {ago:.1f}s ago ({polls.get('polls', 0)} polls)")


def check_token(read: str | CliError | None, client: ProviderClient) -> Check:
    """The operator token was readable (``read``: it, why not, or none given) and the
    provider accepts it."""
    if isinstance(read, CliError):
        return Check("token", "FAIL", read.message)
    if read is None:
        return Check("token", "skip", "no operator token given (BLUEGREEN_TOKEN_FILE): reads only")
    try:
        client.check_token()
    except CliError as exc:
        return Check("token", "FAIL", exc.message)
    return Check("token", "ok", "readable, and the provider accepts it")


def check_state(state_file: str | None) -> Check:
    """The state file's directory is writable (without writing the state)."""
    if not state_file:
        return Check("state", "skip", "no --state-file / BLUEGREEN_STATE_FILE (Swarm keeps none)")
    directory = Path(state_file).parent
    if not directory.is_dir():
        return Check("state", "FAIL", f"state directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        return Check("state", "FAIL", f"state directory {directory} is not writable")
    return Check("state", "ok", f"state directory {directory} is writable")


def run(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    read_token: Callable[[], str | None],
) -> int:
    """Run every check, print one line each (or JSON); 1 if any failed."""
    docker_host = (
        args.docker_host
        or environ.get("BLUEGREEN_DOCKER_HOST")
        or environ.get("DOCKER_HOST")
        or DEFAULT_DOCKER_HOST
    )
    swarm = args.swarm or environ.get("BLUEGREEN_SWARM", "").lower() in ("1", "true", "yes")
    prefix = args.label_prefix or environ.get("BLUEGREEN_LABEL_PREFIX") or "bluegreen"
    token: str | CliError | None
    try:
        token = read_token()
    except CliError as exc:
        token = exc
    client = ProviderClient(
        args.url or environ.get("BLUEGREEN_URL") or DEFAULT_URL,
        token if isinstance(token, str) else None,  # reads need it behind a read token
    )
    provider, status = check_provider(client)
    checks = [
        check_docker(docker_host, swarm=swarm, prefix=prefix),
        provider,
        check_traefik(status),
        check_token(token, client),
        check_state(args.state_file or environ.get("BLUEGREEN_STATE_FILE")),
    ]
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for check in checks:
            print(check.line())
    return 1 if any(c.outcome == "FAIL" for c in checks) else 0
