"""``bluegreen serve``: wire settings, state, controller, API and watcher together.

The Docker watcher, the automatic switcher and the state-write retry run as
background tasks owned by the application's ``cleanup_ctx``: started before
the server accepts requests, cancelled and awaited on shutdown (``run_app``
handles SIGTERM and SIGINT).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from provider import docker_access, logs, store
from provider.api import CONTROLLER, create_app
from provider.controller import Controller
from provider.core.model import State
from provider.errors import SettingsError
from provider.settings import Settings

log = structlog.get_logger("bluegreen.server")


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for each to finish."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _docker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the Docker watcher and the automatic switcher, side by side.

    Each is one task fed by (and feeding) only the controller, so neither's
    lifetime hangs off the other; both stop on shutdown.
    """
    from provider.auto_switch import AutoSwitcher, policy_from, smoke_settings
    from provider.docker_watch import DockerWatcher
    from provider.smoke import SmokeGates
    from provider.swarm_watch import SwarmWatcher

    controller = app[CONTROLLER]
    watcher: DockerWatcher | SwarmWatcher
    if controller.settings.swarm:
        # Its manager check ran in _swarm_state_ctx, before the state was loaded.
        watcher = SwarmWatcher(controller, controller.settings)
    else:
        watcher = DockerWatcher(controller, controller.settings)
    gates = SmokeGates(controller, smoke_settings(controller.settings), clock=controller.clock)
    switcher = AutoSwitcher(
        controller, policy_from(controller.settings), clock=controller.clock, gates=gates
    )
    tasks = [
        asyncio.create_task(watcher.run(), name="docker-watcher"),
        asyncio.create_task(switcher.run(), name="auto-switch"),
    ]
    yield
    await _cancel_and_wait(tasks)
    await gates.close()
    await watcher.close()


async def _state_writer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the task that retries failed state writes (adoptions) with backoff."""
    task = asyncio.create_task(app[CONTROLLER].keep_state_written(), name="state-writer")
    yield
    await _cancel_and_wait([task])


async def _canary_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the canary and bake drivers and the HTTP session they scrape Traefik's metrics with."""
    from provider.bake_driver import BakeDriver
    from provider.canary_driver import CanaryDriver, http_fetch

    controller = app[CONTROLLER]
    url = controller.settings.traefik_metrics_url
    async with aiohttp.ClientSession() as session:
        fetch = http_fetch(session, url) if url else None
        task = asyncio.create_task(CanaryDriver(controller, fetch=fetch).run(), name="canary")
        baker = asyncio.create_task(BakeDriver(controller, fetch=fetch).run(), name="bake")
        yield
        for each in (task, baker):
            each.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await each


async def _swarm_state_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the newest state from the Swarm before anything is served; then follow it.

    First in ``cleanup_ctx``: the watcher must not adopt services, nor the
    API serve a body, on an empty state while the Swarm holds another one.
    """
    from provider.swarm_state import StateFollower, SwarmStateStore
    from provider.swarm_watch import check_manager

    controller = app[CONTROLLER]
    assert isinstance(controller.store, SwarmStateStore)
    # A daemon that answers but is no manager is a startup error (exit 2), not a wait.
    await check_manager(controller.settings.docker_host)
    follower = StateFollower(controller, controller.store, poll=controller.settings.swarm_poll)
    try:
        await follower.load()
        task = asyncio.create_task(follower.run(), name="state-follower")
        yield
        await _cancel_and_wait([task])
    finally:
        await controller.store.close()


def build_app(settings: Settings, *, watch_docker: bool = True) -> web.Application:
    """Load state (refusing a corrupt file) and build the application.

    In Swarm mode the state is read from the Swarm's configs at startup instead.
    """
    if settings.swarm:
        from provider.swarm_state import SwarmStateStore

        swarm_store = SwarmStateStore(
            settings.docker_host, prefix=settings.label_prefix, keep=settings.swarm_keep
        )
        controller = Controller(settings, State(), store=swarm_store)
        app = create_app(controller)
        app.cleanup_ctx.append(_swarm_state_ctx)
    else:
        store.check_writable(settings.state_file)
        controller = Controller(settings, store.load(settings.state_file))
        app = create_app(controller)
    app.cleanup_ctx.append(_state_writer_ctx)
    app.cleanup_ctx.append(_canary_ctx)
    if watch_docker:
        app.cleanup_ctx.append(_docker_ctx)
    return app


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a bad ``--listen`` is one line that says what to do."""
    where = f"cannot listen on {host}:{port} (--listen / BLUEGREEN_LISTEN)"
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise SettingsError(
            f"{where}: unknown host {host!r}; use an address of this host, or 0.0.0.0 for all"
        ) from exc
    try:
        return socket.create_server(address, family=family)
    except OSError as exc:
        hints = {
            errno.EADDRINUSE: f"port {port} is already in use; stop what uses it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port",
            errno.EACCES: "permission denied: ports below 1024 need root or "
            "CAP_NET_BIND_SERVICE; choose a port from 1024 up",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this host; use one of its "
            "addresses, or 0.0.0.0 for all",
        }
        hint = hints.get(exc.errno or 0, exc.strerror or str(exc))
        raise SettingsError(f"{where}: {hint}") from exc


def serve(settings: Settings) -> None:
    """Run the provider until SIGTERM or SIGINT."""
    logs.configure(settings.log_format, settings.log_level)
    app = build_app(settings)
    sock = listen_socket(settings.listen_host, settings.listen_port)
    # Before serving: a socket proxy that refuses a needed endpoint is a startup error.
    try:
        docker_access.run_check(
            settings.docker_host, swarm=settings.swarm, prefix=settings.label_prefix
        )
    except SettingsError:
        sock.close()
        raise
    state = app[CONTROLLER].state
    log.info(
        "provider_starting",
        listen=f"{settings.listen_host}:{settings.listen_port}",
        services=len(state.services),
        settings=settings.redacted(),
    )
    web.run_app(
        app,
        sock=sock,
        access_log=None,
        print=None,
        shutdown_timeout=5.0,
    )
