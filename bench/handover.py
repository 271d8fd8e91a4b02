"""What users see during ``bluegreen deploy``s: page loads, old assets, open streams.

The reference app (tests/testbed/refapp/: aiohttp on the debootstrap Python base)
runs as ``web-blue``/``web-green`` behind real Traefik, polled from a real
``bluegreen serve``, on a private ``dockerd``. While ``--deploys`` deploys run one
after the other (alternating the v2 and v1 images, so every deploy changes the
asset's content hash), clients run through Traefik:

* browser-like sessions: ``GET /``, a think time of 0.2-3 s, then the page's asset;
* WebSocket clients: a session of 3-15 s sending a ping every 0.5 s, then closing;
* SSE clients: streams of 15-60 events (3-12 s), read to their end.

Two modes, measured in the same run, each with its own provider, Traefik and
compose project:

* **today** (the baseline): the CLI of commit cb4bf50 (``git archive``), which
  sleeps a fixed ``--drain 15`` before stopping the old color; no fallback label;
* **evidence**: this checkout's CLI (drain until idle, ``--drain-timeout 30``) and
  ``bluegreen.fallback=/assets/``.

Reported per mode: failed page loads, asset 404s (and other asset failures),
streams ended by the server (with a close frame or the SSE's last event) before
their own end, streams cut (no close frame, or a broken read), deploy durations,
exit codes. Prints figures; asserts nothing.

    python3 -m bench.handover [--deploys 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from tests.testbed.compose import ComposeProject
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.provider import ProviderProcess
from tests.testbed.refapp_image import build_refapp_images, use_refapp
from tests.testbed.traefik import TraefikProcess

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "cb4bf50"
HOST = "web.test"
BROWSERS, SOCKETS, STREAMS = 6, 3, 3


class Tally:
    """Counts of what the clients saw."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, what: str) -> None:
        self.counts[what] += 1


async def browser(
    session: aiohttp.ClientSession, base: str, tally: Tally, stop: asyncio.Event
) -> None:
    """Page, think, asset: a user whose page was loaded from one version."""
    while not stop.is_set():
        try:
            async with session.get(base + "/", headers={"Host": HOST}) as answer:
                page = await answer.text()
                ok = answer.status == 200
        except aiohttp.ClientError:
            ok, page = False, ""
        tally.add("page ok" if ok else "page failed")
        found = re.findall(r"/assets/app\.[0-9a-f]+\.js", page)
        await asyncio.sleep(random.uniform(0.2, 3.0))
        if not found:
            continue
        try:
            async with session.get(base + found[0], headers={"Host": HOST}) as answer:
                await answer.read()
                status = answer.status
        except aiohttp.ClientError:
            status = 0
        tally.add("asset ok" if status == 200 else "asset 404" if status == 404 else "asset failed")


async def websocket(
    session: aiohttp.ClientSession, base: str, tally: Tally, stop: asyncio.Event
) -> None:
    """Sessions of 3-15 s; how each ended."""
    while not stop.is_set():
        until = time.monotonic() + random.uniform(3.0, 15.0)
        try:
            ws = await session.ws_connect(base + "/ws", headers={"Host": HOST}, autoping=False)
        except aiohttp.ClientError:
            tally.add("ws connect failed")
            await asyncio.sleep(0.5)
            continue
        outcome = "ws completed"
        while time.monotonic() < until:
            try:
                await ws.send_str("ping")
                message = await ws.receive(timeout=10)
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                outcome = "ws cut"
                break
            if message.type is aiohttp.WSMsgType.CLOSE:
                outcome = f"ws closed by server ({message.data})"
                break
            if message.type is not aiohttp.WSMsgType.TEXT:
                outcome = "ws cut"  # CLOSED/ERROR: the connection ended without a close frame
                break
            await asyncio.sleep(0.5)
        tally.add(outcome)
        with contextlib.suppress(Exception):
            await ws.close()


async def sse(session: aiohttp.ClientSession, base: str, tally: Tally, stop: asyncio.Event) -> None:
    """Streams of 15-60 events; complete, ended by the server's last event, or cut."""
    while not stop.is_set():
        wanted = random.randint(15, 60)
        try:
            async with session.get(f"{base}/sse?n={wanted}", headers={"Host": HOST}) as answer:
                body = await answer.read()
        except (aiohttp.ClientError, ConnectionError):
            tally.add("sse cut")
            continue
        if b"event: bye" in body:
            tally.add("sse ended by server (last event)")
        elif body.count(b"data: ") >= wanted:
            tally.add("sse completed")
        else:
            tally.add("sse cut")


def baseline_cli(work: Path) -> Path:
    """The ``deploy`` and ``provider`` packages of the baseline commit, unpacked."""
    target = work / "baseline"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "deploy", "provider"],
        check=True, capture_output=True,
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


async def one_deploy(
    project: ComposeProject, provider: ProviderProcess, image: str, baseline: Path | None
) -> tuple[float, int, str]:
    env = project.cli_env(provider.url, provider.token)
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline)
        drain = ["--drain", "15"]
    else:
        drain = ["--drain-timeout", "30"]
    argv = project.bluegreen_argv(
        "deploy", "web", *project.compose_args(), "--image", image, *drain
    )
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=project.work_dir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    summary = out.decode().strip().splitlines()[-1] if out.strip() else ""
    return time.monotonic() - started, proc.returncode or 0, summary


async def run_mode(
    name: str,
    project: ComposeProject,
    provider: ProviderProcess,
    traefik: TraefikProcess,
    images: dict[str, str],
    deploys: int,
    baseline: Path | None,
) -> dict[str, object]:
    tally = Tally()
    stop = asyncio.Event()
    base = traefik.web_url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        clients = [
            asyncio.create_task(browser(session, base, tally, stop)) for _ in range(BROWSERS)
        ]
        clients += [
            asyncio.create_task(websocket(session, base, tally, stop)) for _ in range(SOCKETS)
        ]
        clients += [asyncio.create_task(sse(session, base, tally, stop)) for _ in range(STREAMS)]
        await asyncio.sleep(3.0)
        results = []
        for number in range(deploys):
            image = images["v2"] if number % 2 == 0 else images["v1"]
            seconds, code, summary = await one_deploy(project, provider, image, baseline)
            print(
                f"  {name} deploy {number + 1}: {seconds:.1f}s exit {code}: {summary}", flush=True
            )
            results.append((seconds, code))
            await asyncio.sleep(2.0)
        stop.set()
        await asyncio.wait(clients, timeout=90)
        for task in clients:
            task.cancel()
    return {"tally": tally.counts, "deploys": results}


def start_mode(
    work: Path, daemon: DockerDaemon, image: str, fallback: bool, label: str
) -> tuple[ProviderProcess, TraefikProcess, ComposeProject]:
    provider = ProviderProcess(
        work / f"provider-{label}",
        docker_host=daemon.host,
        label_prefix=f"bgho{label}",
        promote_after=1.0,
    )
    provider.start()
    provider.wait_ready()
    traefik = TraefikProcess(work / f"traefik-{label}")
    traefik.start(http_endpoint=provider.traefik_endpoint, log_level="INFO", access_log=False)
    traefik.wait_ready()
    project = ComposeProject(daemon, work / f"app-{label}")
    labels = {f"{provider.label_prefix}.fallback": "/assets/"} if fallback else {}
    project.add_app(
        prefix=provider.label_prefix,
        service="web",
        default_image=image,
        owner="bench",
        extra_labels=labels,
        stop_grace_period="10s",
    )
    use_refapp(project)
    project.up("web-blue")
    provider.wait_active("web", "blue", timeout=120)
    traefik.wait_response(host=HOST, timeout=120)
    return provider, traefik, project


def report(name: str, result: dict[str, object]) -> list[str]:
    tally: Counter[str] = result["tally"]  # type: ignore[assignment]
    deploys: list[tuple[float, int]] = result["deploys"]  # type: ignore[assignment]
    pages = tally["page ok"] + tally["page failed"]
    assets = tally["asset ok"] + tally["asset 404"] + tally["asset failed"]
    server_ended = sum(v for k, v in tally.items() if "by server" in k)
    cut = tally["ws cut"] + tally["sse cut"]
    streams = sum(
        v for k, v in tally.items() if k.startswith(("ws ", "sse ")) and "connect" not in k
    )
    durations = [s for s, _ in deploys]
    codes = Counter(c for _, c in deploys)
    return [
        name,
        f"{tally['page failed']} / {pages}",
        f"{tally['asset 404']} / {assets}"
        + (f" (+{tally['asset failed']} failed)" if tally["asset failed"] else ""),
        f"{server_ended} / {streams}",
        f"{cut} / {streams}",
        f"{statistics.median(durations):.1f} ({min(durations):.1f}-{max(durations):.1f})"
        if durations
        else "-",
        ", ".join(f"{c}x{n}" for c, n in sorted(codes.items())),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deploys", type=int, default=3, help="deploys per mode (default 3)")
    args = parser.parse_args()
    random.seed(21)
    with tempfile.TemporaryDirectory(prefix="bgho-") as tmp:
        work = Path(tmp)
        daemon = DockerDaemon.start(work / "dockerd")
        started: list[tuple[ProviderProcess, TraefikProcess, ComposeProject]] = []
        try:
            images = build_refapp_images(daemon, work / "images")
            baseline = baseline_cli(work)
            rows = []
            for label, fallback, old in (("today", False, baseline), ("evidence", True, None)):
                print(f"mode {label}: starting", flush=True)
                trio = start_mode(work, daemon, images["v1"], fallback, label)
                started.append(trio)
                result = asyncio.run(
                    run_mode(label, trio[2], trio[0], trio[1], images, args.deploys, old)
                )
                print(f"  {label}: {dict(result['tally'])}", flush=True)  # type: ignore[call-overload]
                rows.append(report(label, result))
                trio[2].down()
            header = [
                "mode",
                "failed page loads",
                "asset 404s",
                "streams ended by server (clean)",
                "streams cut",
                "deploy s, median (min-max)",
                "exit codes",
            ]
            print(
                f"\n{args.deploys} deploys per mode; {BROWSERS} browser sessions, "
                f"{SOCKETS} WebSocket and {STREAMS} SSE clients"
            )
            print("| " + " | ".join(header) + " |")
            print("|" + "---|" * len(header))
            for row in rows:
                print("| " + " | ".join(row) + " |")
        finally:
            for provider, traefik, project in started:
                project.down()
                traefik.stop()
                provider.terminate(10.0)
            daemon.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
