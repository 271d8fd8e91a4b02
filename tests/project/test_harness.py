"""The end-to-end harness's own guarantees: the load generator is bounded and
records every answer and every connection error (no Docker, no Traefik)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.testbed.load import BackgroundLoad, LoadGenerator
from tests.testbed.ports import free_port

BodyBox = list[str]


@pytest.fixture
async def color_server() -> AsyncIterator[tuple[str, BodyBox]]:
    """A loopback server answering whatever body the test puts in the box."""
    box: BodyBox = ["blue\n"]

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=box[0])

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/", box
    finally:
        await runner.cleanup()


async def test_load_records_every_answer_and_the_cutover(
    color_server: tuple[str, BodyBox],
) -> None:
    """Every request becomes a sample; the body switch shows as one clean cutover."""
    url, box = color_server
    async with LoadGenerator(url, concurrency=4, max_duration=5.0) as load:
        await asyncio.sleep(0.2)
        box[0] = "green\n"
        await asyncio.sleep(0.2)

    result = load.result
    summary = result.summary()
    assert 0 == summary.failures
    assert summary.total == len(result.samples) > 0
    assert {"blue\n", "green\n"} == set(summary.bodies)
    assert ["blue\n", "green\n"] == result.body_sequence()
    cutover = result.cutover("blue\n", "green\n")
    assert cutover is not None
    assert cutover[0] < cutover[1]


async def test_load_stops_at_max_requests(color_server: tuple[str, BodyBox]) -> None:
    """``max_requests`` bounds the run even with a long ``max_duration``."""
    url, _box = color_server
    result = await LoadGenerator(url, concurrency=3, max_duration=30.0, max_requests=50).run()

    assert 50 == len(result.samples)
    assert all(s.ok for s in result.samples)


def test_background_load_records_connection_errors() -> None:
    """A refused connection is a failed sample with the exception's class name."""
    url = f"http://127.0.0.1:{free_port()}/"
    with BackgroundLoad(url, concurrency=2, max_duration=0.3, max_requests=40) as load:
        load.wait_requests(5, timeout=5.0)

    failures = load.result.failures()
    assert len(failures) == len(load.samples) > 0
    assert {None} == {s.status for s in failures}
    assert {"ClientConnectorError"} == {s.error for s in failures}
