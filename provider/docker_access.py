"""At startup, ask Docker (or the socket proxy in front of it) for each endpoint the provider needs.

Behind a filtering proxy a missing rule would otherwise show as a watcher that
retries a 403 for ever. So ``bluegreen serve`` sends each needed endpoint once
before it serves (:func:`check`), in a form that changes nothing: listings with a
filter, an inspect and a config removal of a name that does not exist (404
means the proxy let it through), a config creation with an invalid body (400),
an event stream bounded by ``until``. A 403 is a refusal: startup stops with one
line naming each refused endpoint and the proxy setting that allows it
(:func:`provider.core.docker_endpoints.refusal_message`). Otherwise one log line
says what it could reach and which writes it needs (none on one host).

A daemon that does not answer at all is not a refusal: the watcher reconnects
with backoff as always, and the line says the check was skipped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass

import aiodocker
import aiohttp
import structlog

from provider.core.docker_endpoints import Endpoint, needed, refusal_message
from provider.errors import SettingsError

log = structlog.get_logger("bluegreen.docker_access")

#: The whole check; a daemon slower than this is left to the watcher.
CHECK_TIMEOUT_S = 10.0
#: A name no container or config has: its inspect and removal answer 404 when allowed.
PROBE_NAME = "bluegreen-access-probe-does-not-exist"
#: Docker's status for a connection that failed (aiodocker's convention).
NO_ANSWER = 900


@dataclass(frozen=True)
class Probe:
    """What :func:`check` sends for one endpoint."""

    path: str
    params: Mapping[str, str] | None = None
    body: str | None = None


def probe_for(endpoint: Endpoint, prefix: str) -> Probe:
    """The harmless request that tells whether ``endpoint`` is allowed."""
    label = json.dumps({"label": [f"{prefix}.service"]})
    probes = {
        "/version": Probe("version"),
        "/_ping": Probe("_ping"),
        "/info": Probe("info"),
        # A closed window in the past: the daemon answers at once, with nothing.
        "/events": Probe("events", {"since": "1", "until": "2"}),
        "/containers/json": Probe("containers/json", {"limit": "1", "filters": label}),
        "/containers/{id}/json": Probe(f"containers/{PROBE_NAME}/json"),
        "/services": Probe("services", {"filters": label}),
        "/tasks": Probe("tasks", {"filters": json.dumps({"service": [PROBE_NAME]})}),
        "/networks": Probe("networks", {"filters": json.dumps({"name": [PROBE_NAME]})}),
        "/configs": Probe("configs", {"filters": json.dumps({"name": [PROBE_NAME]})}),
        # No name: Docker refuses it (400) before anything is stored.
        "/configs/create": Probe("configs/create", body="{}"),
        "/configs/{name}": Probe(f"configs/{PROBE_NAME}"),
    }
    return probes[endpoint.path]


class NoAnswer(Exception):
    """The daemon (or proxy) did not answer: nothing can be told."""


async def _send(docker: aiodocker.Docker, endpoint: Endpoint, prefix: str) -> tuple[int, str]:
    """The status and error text of ``endpoint``'s probe; :class:`NoAnswer` if none came."""
    probe = probe_for(endpoint, prefix)
    try:
        async with docker._query(
            probe.path,
            endpoint.method,
            params=dict(probe.params) if probe.params else None,
            data=probe.body,
            versioned_api=endpoint.path != "/version",
        ) as response:
            await response.read()
            return response.status, ""
    except aiodocker.DockerError as exc:
        if exc.status == NO_ANSWER:
            raise NoAnswer(str(exc.message)) from exc
        return int(exc.status), str(exc.message)
    except (aiohttp.ClientError, OSError) as exc:
        raise NoAnswer(str(exc) or type(exc).__name__) from exc


Answers = dict[Endpoint, tuple[int, str]]


async def probe_all(docker_host: str, *, swarm: bool, prefix: str) -> Answers:
    """Each needed endpoint's answer (status, error text); /version first, as aiodocker asks it.

    If /version itself is refused, nothing else can be asked (aiodocker asks it
    before every versioned call): only its answer is returned.
    """
    endpoints = needed(swarm)
    docker = aiodocker.Docker(url=docker_host)
    try:
        first = await _send(docker, endpoints[0], prefix)
        if first[0] == 403:
            return {endpoints[0]: first}
        rest = await asyncio.gather(*(_send(docker, e, prefix) for e in endpoints[1:]))
        return {endpoints[0]: first, **dict(zip(endpoints[1:], rest, strict=True))}
    finally:
        await docker.close()


async def check(docker_host: str, *, swarm: bool, prefix: str) -> None:
    """Log what Docker lets the provider do; :class:`SettingsError` (exit 2) on a refusal."""
    where = docker_host  # logs.py masks any user:password@ in logged text
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            answers = await probe_all(docker_host, swarm=swarm, prefix=prefix)
    except (NoAnswer, TimeoutError) as exc:
        log.warning(
            "docker_access_unchecked",
            docker_host=where,
            error=str(exc) or "no answer within the check's time",
            note="the watcher keeps retrying; endpoints are checked at the next start",
        )
        return
    refused = [(e, text) for e, (status, text) in answers.items() if status == 403]
    if refused:
        raise SettingsError(refusal_message(where, refused))
    log.info(
        "docker_access",
        docker_host=where,
        reads=[e.name for e in answers if not e.writes],
        writes=[e.name for e in answers if e.writes],
        write_permission=(
            "only Swarm configs (the state commits)" if swarm else "none needed (reads only)"
        ),
    )


def run_check(docker_host: str, *, swarm: bool, prefix: str) -> None:
    """:func:`check` in its own event loop, before the server's starts."""
    asyncio.run(check(docker_host, swarm=swarm, prefix=prefix))
