"""Switch latency with and without a hung webhook receiver, side by side in one run.

A ``bluegreen serve``-equivalent app runs in-process on 127.0.0.1 (observed
containers fed in; no Docker needed) three ways: no webhook; a webhook to a
receiver that answers at once; a webhook to a receiver that never answers
(each delivery runs into ``--webhook-timeout``). For each, ``--switches``
``POST /switch`` calls alternate blue and green over one keep-alive
connection, and the time of each answer is measured. The three run side by
side, taking turns switch by switch, so the machine's load hits each alike.
Figures are printed, never asserted (STYLE.md).

    python3 -m bench.webhook_switch_latency --switches 300
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from provider.api import CONTROLLER
from provider.server import build_app
from provider.settings import Settings
from provider.webhook_config import Webhook
from tests.factories import make_container

TOKEN = "bench-token"


async def receiver(hang: bool) -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if hang:
            await asyncio.sleep(3600)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/hook"


async def start(label: str, hook: str | None, switches: int, workdir: Path) -> Any:
    settings = Settings(
        listen_host="127.0.0.1",
        state_file=workdir / f"{label.replace(' ', '-')}.json",
        token=TOKEN,
        webhooks=(Webhook(hook),) if hook else (),
        webhook_timeout=2.0,
        webhook_queue=switches * 2,
    )
    app = build_app(settings, watch_docker=False)
    await app[CONTROLLER].replace_containers(
        [make_container("web", "blue", port=8081), make_container("web", "green", port=8082)]
    )
    await app[CONTROLLER].mark_synced()
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return app, runner, f"http://127.0.0.1:{port}/switch"


async def switch_once(session: aiohttp.ClientSession, url: str, n: int) -> float:
    body = {"service": "web", "color": "green" if n % 2 == 0 else "blue"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.perf_counter()
    async with session.post(url, json=body, headers=headers) as resp:
        await resp.read()
        assert resp.status == 200, resp.status
    return time.perf_counter() - started


def summary(label: str, took: list[float], base: float | None) -> str:
    ms = sorted(t * 1000 for t in took)
    p50, p99 = statistics.median(ms), ms[int(len(ms) * 0.99) - 1]
    ratio = f"{p50 / base:5.2f}x" if base else "  1.00x"
    return f"{label:<18} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {ms[-1]:7.2f} ms  {ratio}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=300)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    fast_runner, fast_url = await receiver(hang=False)
    hung_runner, hung_url = await receiver(hang=True)
    labels = {"no webhook": None, "webhook, answers": fast_url, "webhook, hung": hung_url}
    results: dict[str, list[float]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory() as tmp:
        apps = {
            label: await start(label, url, args.switches, Path(tmp))
            for label, url in labels.items()
        }
        async with aiohttp.ClientSession() as session:
            for n in range(args.switches):
                for label, (_app, _runner, url) in apps.items():
                    results[label].append(await switch_once(session, url, n))
        for label, (app, runner, _url) in apps.items():
            outcomes = dict(app[CONTROLLER].metrics.webhook_deliveries)
            print(f"  {label}: webhook outcomes at the end {outcomes or '-'}")
            await runner.cleanup()
    await fast_runner.cleanup()
    await hung_runner.cleanup()
    print(f"\nPOST /switch latency over {args.switches} switches each (state file fsync included):")
    base = statistics.median(results["no webhook"]) * 1000
    for label, took in results.items():
        print(summary(label, took, None if label == "no webhook" else base))


if __name__ == "__main__":
    asyncio.run(main())
