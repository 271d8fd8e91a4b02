"""``bluegreen serve``: wire settings, state, controller, API and watcher together.

The Docker watcher, the automatic switcher and the state-write retry run as
background tasks owned by the application's ``cleanup_ctx``: started before
the server accepts requests, cancelled and awaited on shutdown (``run_app``
handles SIGTERM and SIGINT).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from provider import logs, store
from provider.api import CONTROLLER, create_app
from provider.controller import Controller
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
    from provider.auto_switch import AutoSwitcher, policy_from
    from provider.docker_watch import DockerWatcher

    controller = app[CONTROLLER]
    watcher = DockerWatcher(controller, controller.settings)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=controller.clock)
    tasks = [
        asyncio.create_task(watcher.run(), name="docker-watcher"),
        asyncio.create_task(switcher.run(), name="auto-switch"),
    ]
    yield
    await _cancel_and_wait(tasks)
    await watcher.close()


async def _state_writer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the task that retries failed state writes (adoptions) with backoff."""
    task = asyncio.create_task(app[CONTROLLER].keep_state_written(), name="state-writer")
    yield
    await _cancel_and_wait([task])


async def _canary_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the canary driver and the HTTP session it scrapes Traefik's metrics with."""
    from provider.canary_driver import CanaryDriver, http_fetch

    controller = app[CONTROLLER]
    url = controller.settings.traefik_metrics_url
    async with aiohttp.ClientSession() as session:
        fetch = http_fetch(session, url) if url else None
        task = asyncio.create_task(CanaryDriver(controller, fetch=fetch).run(), name="canary")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def build_app(settings: Settings, *, watch_docker: bool = True) -> web.Application:
    """Load state (refusing a corrupt file) and build the application."""
    store.check_writable(settings.state_file)
    state = store.load(settings.state_file)
    controller = Controller(settings, state)
    app = create_app(controller)
    app.cleanup_ctx.append(_state_writer_ctx)
    app.cleanup_ctx.append(_canary_ctx)
    if watch_docker:
        app.cleanup_ctx.append(_docker_ctx)
    return app


def serve(settings: Settings) -> None:
    """Run the provider until SIGTERM or SIGINT."""
    logs.configure(settings.log_format, settings.log_level)
    app = build_app(settings)
    state = app[CONTROLLER].state
    log.info(
        "provider_starting",
        listen=f"{settings.listen_host}:{settings.listen_port}",
        services=len(state.services),
        settings=settings.redacted(),
    )
    web.run_app(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        access_log=None,
        print=None,
        shutdown_timeout=5.0,
    )
