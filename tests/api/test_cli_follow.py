"""The CLI's rollouts follow ``GET /events`` and print exactly what polling printed.

Against an in-process provider on 127.0.0.1 (observations fed in, no Docker):
with a poll interval of a minute, a rollout that finishes within seconds of
a change can only have been woken by the event stream; with ``/events``
unavailable it falls back to polling and prints the same lines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from deploy.client import ProviderClient
from deploy.progress import RolloutTracker, Verdict
from deploy.rollout import Reporter, Rollout
from provider.api import CONTROLLER
from provider.core.model import Health
from tests.api.test_cli import quiet_provider_logs, start_provider, web_blue_green

__all__ = ["quiet_provider_logs"]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
_STAMP = re.compile(r"^\[ *\d+\.\ds\] ")


def lines_of(out: io.StringIO) -> list[str]:
    return [_STAMP.sub("", line) for line in out.getvalue().splitlines()]


async def follow_green_until_ready(
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    poll_interval: float,
    **settings: Any,
) -> tuple[list[str], Verdict]:
    """Green starts `starting`; once the CLI printed that, the provider sees it healthy."""
    provider = await start_provider(
        aiohttp_server, tmp_path, capsys, web_blue_green(green=Health.STARTING), **settings
    )
    controller = provider.app[CONTROLLER]
    green = next(c for c in controller.containers.values() if c.name == "app_web-green_1")
    out = io.StringIO()
    run = Rollout(
        ProviderClient(provider.url), "web", Reporter(out), time.monotonic, time.sleep,
        poll_interval,
    )  # fmt: skip
    tracker = RolloutTracker("green", [green.id])
    holder: aiohttp.ClientResponse | None = None
    if settings.get("events_max_clients") == 1:  # take the only slot: /events answers 503
        session = aiohttp.ClientSession()
        holder = await session.get(f"{provider.url}/events")
    try:
        waiting = asyncio.create_task(
            asyncio.to_thread(run.wait, tracker, time.monotonic() + 30, may_switch=False)
        )
        async with asyncio.timeout(10):
            while not out.getvalue():
                await asyncio.sleep(0.01)
            await controller.update_containers([dataclasses.replace(green, health=Health.HEALTHY)])
            verdict, _ = await waiting
    finally:
        if holder is not None:
            holder.close()
            await session.close()
    return lines_of(out), verdict


EXPECTED = ["green  app_web-green_1  starting", "green  app_web-green_1  starting → healthy"]


async def test_a_rollout_wakes_on_events_not_on_its_poll_interval(
    aiohttp_server: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Polling every 60 s, the rollout still sees green turn healthy within the 10 s bound."""
    lines, verdict = await follow_green_until_ready(
        aiohttp_server, tmp_path, capsys, poll_interval=60
    )
    assert (EXPECTED, Verdict.READY) == (lines, verdict)


async def test_without_events_the_rollout_polls_and_prints_the_same(
    aiohttp_server: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/events refused (its one client slot taken): the rollout polls, same lines."""
    lines, verdict = await follow_green_until_ready(
        aiohttp_server, tmp_path, capsys, poll_interval=0.05, events_max_clients=1
    )
    assert (EXPECTED, Verdict.READY) == (lines, verdict)
