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

    python3 -m bench.handover [--deploys 3] [--quiet 2] [--baseline cb4bf50]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.handover_clients import HOST, STREAM_READ_S, Tally, browser, sse, websocket
from tests.testbed.compose import ComposeProject
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.provider import ProviderProcess
from tests.testbed.refapp_image import build_refapp_images, use_refapp
from tests.testbed.traefik import TraefikProcess

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "cb4bf50"
BROWSERS, SOCKETS, STREAMS = 6, 3, 3
#: Deploy output, every line with its time, for reading the figures afterwards.
LOG = Path("/tmp/bench_handover_deploys.log")


def baseline_cli(work: Path, commit: str = BASELINE_COMMIT) -> Path:
    """The ``deploy`` and ``provider`` packages of the baseline commit, unpacked."""
    target = work / "baseline"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "deploy", "provider"],
        check=True, capture_output=True,
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


@dataclass
class Deploy:
    """One deploy as its CLI told it: seconds in all, after its switch, after Traefik's apply."""

    seconds: float
    code: int
    summary: str
    after_switch: float | None
    after_applied: float | None


async def one_deploy(
    project: ComposeProject, provider: ProviderProcess, image: str, baseline: Path | None
) -> Deploy:
    """Run one ``bluegreen deploy``, timing its lines as they come (unbuffered)."""
    env = project.cli_env(provider.url, provider.token)
    env["PYTHONUNBUFFERED"] = "1"
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
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[tuple[float, str]] = []
    async with asyncio.timeout(600):
        async for raw in proc.stdout:
            lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))
        await proc.wait()
    ended = time.monotonic()
    with LOG.open("a") as log:
        log.writelines(f"{at - started:7.2f} {line}\n" for at, line in lines)
        log.write(f"{ended - started:7.2f} exit {proc.returncode}\n\n")

    def since(words: str) -> float | None:
        at = next((at for at, line in lines if words in line), None)  # after "[ 4.3s] "
        return None if at is None else ended - at

    return Deploy(
        ended - started,
        proc.returncode or 0,
        lines[-1][1] if lines else "",
        since("switched web:"),
        since("Traefik applied the switch"),
    )


async def deploys(
    name: str,
    project: ComposeProject,
    provider: ProviderProcess,
    images: dict[str, str],
    count: int,
    baseline: Path | None,
    first: int,
) -> list[Deploy]:
    """``count`` deploys one after the other, alternating v2 and v1 (new asset hash each)."""
    results = []
    for number in range(first, first + count):
        image = images["v2"] if number % 2 == 0 else images["v1"]
        done = await one_deploy(project, provider, image, baseline)
        print(f"  {name} deploy {number + 1}: {done.seconds:.1f}s exit {done.code}: "
              f"{done.summary}", flush=True)  # fmt: skip
        results.append(done)
        await asyncio.sleep(2.0)
    return results


async def run_mode(
    name: str,
    project: ComposeProject,
    provider: ProviderProcess,
    traefik: TraefikProcess,
    images: dict[str, str],
    count: int,
    quiet: int,
    baseline: Path | None,
) -> dict[str, object]:
    """``count`` deploys under the clients' load, then ``quiet`` ones with no traffic at all."""
    tally = Tally()
    stop = asyncio.Event()
    base = traefik.web_url
    timeout = aiohttp.ClientTimeout(total=120, sock_read=STREAM_READ_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        clients = [
            asyncio.create_task(browser(session, base, tally, stop)) for _ in range(BROWSERS)
        ]
        clients += [
            asyncio.create_task(websocket(session, base, tally, stop)) for _ in range(SOCKETS)
        ]
        clients += [asyncio.create_task(sse(session, base, tally, stop)) for _ in range(STREAMS)]
        await asyncio.sleep(3.0)
        loaded = await deploys(name, project, provider, images, count, baseline, 0)
        stop.set()
        await asyncio.wait(clients, timeout=90)
        for task in clients:
            task.cancel()
    idle = await deploys(f"{name} (no traffic)", project, provider, images, quiet, baseline, count)
    return {"tally": tally.counts, "deploys": loaded, "quiet": idle}


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


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def _sum(tally: Counter[str], prefixes: tuple[str, ...], *words: str) -> int:
    return sum(v for k, v in tally.items() if k.startswith(prefixes) and any(w in k for w in words))


HEADER = [
    "mode",
    "failed page loads",
    "asset 404s (other failures)",
    "streams: completed / closed by server at the stop / cut",
    "stream connects failed",
    "client timeouts",
    "deploy s, median (min-max)",
    "switch → done s",
    "no traffic: switch → done s",
    "no traffic: applied → done s",
    "exit codes",
]


def report(name: str, result: dict[str, object]) -> list[str]:
    """One table row: every count is of requests or streams, never of reconnect attempts."""
    tally: Counter[str] = result["tally"]  # type: ignore[assignment]
    loaded: list[Deploy] = result["deploys"]  # type: ignore[assignment]
    quiet: list[Deploy] = result["quiet"]  # type: ignore[assignment]
    pages = _sum(tally, ("page ",), "")
    page_failed = pages - tally["page ok"] - tally["page client timeout"]
    assets = _sum(tally, ("asset ",), "")
    asset_other = assets - tally["asset ok"] - tally["asset 404"] - tally["asset client timeout"]
    completed = tally["ws completed"] + tally["sse completed"]
    by_server = _sum(tally, ("ws ", "sse "), "by server")
    cut = _sum(tally, ("ws ", "sse "), " cut")
    timeouts = _sum(tally, ("page ", "asset ", "ws ", "sse "), "client timeout")
    streams = completed + by_server + cut + _sum(tally, ("ws ", "sse "), "client timeout")
    codes = Counter(d.code for d in loaded + quiet)
    return [
        name,
        f"{page_failed} / {pages}",
        f"{tally['asset 404']} / {assets} ({asset_other})",
        f"{completed} / {by_server} / {cut} of {streams}",
        str(_sum(tally, ("ws ", "sse "), "connect failed")),
        str(timeouts),
        _spread([d.seconds for d in loaded]),
        _spread([d.after_switch for d in loaded if d.after_switch is not None]),
        _spread([d.after_switch for d in quiet if d.after_switch is not None]),
        _spread([d.after_applied for d in quiet if d.after_applied is not None]),
        ", ".join(f"{c}x{n}" for c, n in sorted(codes.items())),
    ]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deploys", type=int, default=3, help="deploys per mode under load")
    parser.add_argument("--quiet", type=int, default=2, help="deploys per mode with no traffic")
    parser.add_argument(
        "--baseline", default=BASELINE_COMMIT, help="the commit whose CLI is the 'today' mode"
    )
    args = parser.parse_args()
    random.seed(21)
    # vfs storage under load: creating a container can take over compose's 60 s default.
    os.environ.setdefault("COMPOSE_HTTP_TIMEOUT", "300")
    LOG.write_text("")
    with tempfile.TemporaryDirectory(prefix="bgho-") as tmp:
        work = Path(tmp)
        daemon = DockerDaemon.start(work / "dockerd")
        started: list[tuple[ProviderProcess, TraefikProcess, ComposeProject]] = []
        try:
            images = build_refapp_images(daemon, work / "images")
            baseline = baseline_cli(work, args.baseline)
            rows = []
            for label, fallback, old in (("today", False, baseline), ("evidence", True, None)):
                print(f"mode {label}: starting (load average {_load()})", flush=True)
                trio = start_mode(work, daemon, images["v1"], fallback, label)
                started.append(trio)
                result = asyncio.run(
                    run_mode(
                        label, trio[2], trio[0], trio[1], images, args.deploys, args.quiet, old
                    )
                )
                print(f"  {label}: {dict(result['tally'])}", flush=True)  # type: ignore[call-overload]
                print(f"  {label}: done (load average {_load()})", flush=True)
                rows.append(report(label, result))
                trio[2].down()
            print(
                f"\n{args.deploys} deploys per mode under load, then {args.quiet} with no "
                f"traffic; {BROWSERS} browser sessions, {SOCKETS} WebSocket and {STREAMS} SSE "
                f"clients; {os.cpu_count()} CPUs, load average {_load()}; deploy log {LOG}"
            )
            print("| " + " | ".join(HEADER) + " |")
            print("|" + "---|" * len(HEADER))
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
