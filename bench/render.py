"""Render time and /traefik throughput for a large synthetic fleet.

    python3 -m bench.render [--services 500] [--seconds 5] [--concurrency 32]

Prints (no assertions; the machine is shared and noisy):
- the time to group + render + serialize 500 services x 2 colors x 2 replicas;
- requests/s of GET /traefik (the cached, pre-serialized body) next to two
  baselines measured in the same run against the same server process: a
  handler that renders on every request, and the tiny /healthz.
The server runs in a child process so the load client does not share its core,
with the held poll off (``hold=0``): the load client re-polls on keep-alive
connections, which the provider would otherwise hold for ``--hold`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from provider import logs
from provider.api import CONTROLLER, create_app
from provider.controller import Controller
from provider.core.model import Color, Container, Health, State
from provider.core.render import render, serialize
from provider.core.routing import observe
from provider.settings import Settings


def fleet(services: int, replicas: int = 2) -> list[Container]:
    """Synthetic observations: every service has both colors, ``replicas`` each."""
    out = []
    n = 0
    for s in range(services):
        for color in Color:
            for r in range(replicas):
                n += 1
                out.append(
                    Container(
                        id=f"{n:064x}",
                        name=f"svc{s}-{color}-{r}",
                        state="running",
                        health=Health.HEALTHY,
                        labels={
                            "bluegreen.service": f"svc{s}",
                            "bluegreen.color": str(color),
                            "bluegreen.port": str(10000 + n % 50000),
                            "bluegreen.rule": f"Host(`svc{s}.example.com`)",
                            "bluegreen.replicas": str(replicas),
                        },
                        created=float(n),
                        network_mode="host",
                    )
                )
    return out


def time_render(containers: list[Container], rounds: int = 20) -> tuple[float, float, int]:
    """Median seconds of observe+render+serialize, and of serialize alone; body size."""
    options = Settings().options
    full: list[float] = []
    ser: list[float] = []
    body = b""
    for _ in range(rounds):
        t0 = time.perf_counter()
        views = observe(containers, options).services
        config = render(views, {name: Color.BLUE for name in views}, options)
        t1 = time.perf_counter()
        body = serialize(config)
        t2 = time.perf_counter()
        full.append(t2 - t0)
        ser.append(t2 - t1)
    return statistics.median(full), statistics.median(ser), len(body)


def _serve(port: int, services: int, ready: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        tmp = tempfile.mkdtemp()
        # hold=0: a keep-alive poll that was already sent this body would be held
        # (provider/long_poll.py), and the figure would count holds, not serving.
        settings = Settings(state_file=Path(tmp) / "state.json", hold=0.0)
        controller = Controller(settings, State())
        app = create_app(controller)
        await controller.replace_containers(fleet(services))
        await controller.mark_synced()

        async def uncached(request: web.Request) -> web.Response:
            c = request.app[CONTROLLER]
            views = c.effective_views()
            body = serialize(render(views, {n: c.active(n) for n in views}, c.options))
            return web.Response(body=body, content_type="application/json")

        app.router.add_get("/traefik-uncached", uncached)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def measure(url: str, seconds: float, concurrency: int, max_requests: int) -> float:
    """Requests/s over a fixed window, bounded in count too."""
    done = 0
    failures = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            nonlocal done, failures
            while time.monotonic() < deadline and done < max_requests:
                async with s.get(url) as resp:
                    await resp.read()
                    done += 1
                    failures += resp.status != 200

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
    if failures:
        print(f"  ({failures} non-200 answers from {url})")
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    logs.configure("json", "warning")

    containers = fleet(args.services)
    full, ser, size = time_render(containers)
    print(f"fleet: {args.services} services x 2 colors x 2 replicas = {len(containers)} containers")
    print(f"render (group + render + serialize): {full * 1000:.1f} ms median of 20")
    print(f"  of which serialize: {ser * 1000:.1f} ms; body {size / 1024:.0f} KiB")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port, args.services, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(60):
            raise SystemExit("server did not start")
        base = f"http://127.0.0.1:{port}"
        cap = 1_000_000
        rates = {}
        for path in ("/traefik", "/traefik-uncached", "/healthz"):
            rates[path] = asyncio.run(measure(base + path, args.seconds, args.concurrency, cap))
        print(f"GET /traefik (cached body):      {rates['/traefik']:8.0f} req/s")
        print(f"GET render-per-request baseline: {rates['/traefik-uncached']:8.0f} req/s")
        print(f"GET /healthz (tiny body):        {rates['/healthz']:8.0f} req/s")
        print(f"cached / render-per-request: {rates['/traefik'] / rates['/traefik-uncached']:.1f}x")
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    main()
