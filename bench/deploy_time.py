"""Time of a full ``bluegreen deploy`` next to the seeds' ``deploy.sh`` approach.

Both approaches deploy the same new image to the idle color of the same
busybox backends (host network, Docker HEALTHCHECK every ``--health-interval``),
driven by Debian's ``docker-compose`` against a private ``dockerd``:

* **bluegreen**: ``bluegreen deploy web --image ...`` as a subprocess, with
  the provider auto-promoting (product default ``--promote-after 1``); timed
  with ``--drain 0`` (the mechanics) and the default ``--drain 15``.
* **seeds**: what the blog posts' scripts do (``shared/seeds``): ``compose up``
  of the idle color, a fixed ``sleep 10``, then a health poll every 10 s
  (``docker ps --filter health=healthy``), then the switch (here ``POST
  /switch`` to a provider with auto-promotion off; the scripts rewrite an
  nginx/Traefik file), then ``compose stop`` of the old color.

With ``--swarm`` the seeds are left out and the same ``bluegreen deploy``
also runs on a private single-node Swarm (``tests/testbed/swarm_single.py``):
the colors are two replicated services of the same busybox backend and
HEALTHCHECK (on an overlay network instead of the host's), watched by
``bluegreen serve --swarm`` (product defaults: ``--promote-after 1``,
``--swarm-poll 1``), deployed with ``bluegreen deploy web --swarm --image``;
both hosts' figures are measured in the same run and printed side by side.

Each round reports "switched" (start to the moment the provider's switch
record says traffic moved) and "total" (start to exit). Prints figures and
ratios; asserts nothing.

    python3 -m bench.deploy_time [--rounds 3] [--health-interval 1s] [--swarm]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.testbed.compose import APP_SCRIPT, ComposeProject, build_app_image
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.provider import ProviderProcess
from tests.testbed.swarm_single import SingleNodeSwarm

ROOT = Path(__file__).resolve().parents[1]

SERVICE = "web"
IMAGES = ("bgbench-app:v2", "bgbench-app:v3")
SEED_SLEEP_S = 10.0
SEED_POLL_S = 10.0
SEED_TRIES = 12
VERBOSE = False
SWARM_NETWORK = "bench_web"
SWARM_PORT = 80


@dataclass(frozen=True)
class Round:
    """One deploy: seconds from start to the switch, and to the end."""

    switched: float
    total: float


def _project(
    daemon: DockerDaemon, work: Path, provider: ProviderProcess, interval: str
) -> ComposeProject:
    project = ComposeProject(daemon, work)
    project.add_app(
        prefix=provider.label_prefix,
        service=SERVICE,
        default_image=DEFAULT_IMAGE,
        owner="bench",
        health_interval=interval,
    )
    return project


def _start_blue(project: ComposeProject, provider: ProviderProcess) -> None:
    project.up(f"{SERVICE}-blue")
    provider.wait_routable(SERVICE, "blue", timeout=60)
    provider.wait_active(SERVICE, "blue", timeout=60)


def _switch_time(provider: ProviderProcess, after_seq: int, started_wall: float) -> float:
    records = [r for r in provider.history(SERVICE) if int(r["seq"]) > after_seq]
    if not records:
        raise RuntimeError("no switch was recorded")
    return float(records[0]["at"]) - started_wall


def _last_seq(provider: ProviderProcess) -> int:
    history = provider.history(SERVICE)
    return int(history[-1]["seq"]) if history else 0


def bluegreen_round(
    project: ComposeProject, provider: ProviderProcess, image: str, drain: float
) -> Round:
    seq = _last_seq(provider)
    wall, start = time.time(), time.monotonic()
    result = project.bluegreen(
        "deploy", SERVICE, *project.compose_args(), "--image", image,
        "--drain-timeout", f"{drain:g}",
        url=provider.url, token=provider.token, timeout=300,
    )  # fmt: skip
    total = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"bluegreen deploy failed:\n{result.stdout}\n{result.stderr}")
    if VERBOSE:
        print(result.stdout, flush=True)
    return Round(_switch_time(provider, seq, wall), total)


def seeds_round(project: ComposeProject, provider: ProviderProcess, image: str) -> Round:
    """The seeds' deploy.sh, step for step, against the same backends."""
    seq = _last_seq(provider)
    wall, start = time.time(), time.monotonic()
    active = provider.active(SERVICE)
    target = "green" if active == "blue" else "blue"
    project.run(
        "up", "-d", "--no-deps", "--force-recreate", f"{SERVICE}-{target}",
        env={"BLUEGREEN_IMAGE": image},
    )  # fmt: skip
    up_done = time.monotonic() - start
    time.sleep(SEED_SLEEP_S)  # "안정화 시간" (settling time)
    healthy = 0
    for _ in range(SEED_TRIES):
        ps = project.daemon.docker(
            "ps", "--filter", f"name={project.name}_{SERVICE}-{target}",
            "--filter", "health=healthy", "--format", "{{.Names}}",
        )  # fmt: skip
        healthy = len(ps.stdout.split())
        if healthy > 0:
            break
        time.sleep(SEED_POLL_S)
    if healthy == 0:
        raise RuntimeError("seeds approach: the new color never became healthy")
    answer = provider.switch(SERVICE, target)
    if answer.status != 200:
        raise RuntimeError(f"switch failed: {answer.status} {answer.body}")
    project.run("stop", f"{SERVICE}-{active}")
    total = time.monotonic() - start
    if VERBOSE:
        print(f"seeds: active was {active}; compose up took {up_done:.2f}s", flush=True)
    return Round(_switch_time(provider, seq, wall), total)


def _start_swarm_blue(swarm: SingleNodeSwarm, provider: ProviderProcess, interval: str) -> None:
    """The pair as a stack would make it: blue runs 1 task, green is scaled to 0.

    Same backend script and HEALTHCHECK as the compose file's, except that httpd
    listens on every address of the task (its overlay IP is what Traefik would use).
    """
    swarm.docker("network", "create", "--driver", "overlay", "--attachable", SWARM_NETWORK)
    script = APP_SCRIPT.replace("$$", "$").replace("127.0.0.1:$APP_PORT", "$APP_PORT")
    for color, replicas in (("blue", 1), ("green", 0)):
        labels = {
            "service": SERVICE, "color": color, "port": str(SWARM_PORT),
            "network": SWARM_NETWORK, "replicas": "1",
        }  # fmt: skip
        swarm.create_service(
            f"bench_{SERVICE}-{color}",
            labels={f"{provider.label_prefix}.{k}": v for k, v in labels.items()},
            replicas=replicas,
            networks=[SWARM_NETWORK],
            command=["sh", "-c", script],
            options=[
                "--init", "--stop-grace-period", "2s",
                "--env", f"COLOR={color}", "--env", f"APP_PORT={SWARM_PORT}",
                "--health-cmd", f"wget -q -O- http://127.0.0.1:{SWARM_PORT}/health",
                "--health-interval", interval, "--health-timeout", "2s", "--health-retries", "1",
            ],
        )  # fmt: skip
    provider.wait_routable(SERVICE, "blue", timeout=120)
    provider.wait_active(SERVICE, "blue", timeout=60)


def swarm_round(
    swarm: SingleNodeSwarm, provider: ProviderProcess, image: str, drain: float
) -> Round:
    """``bluegreen deploy --swarm`` against the manager, timed like :func:`bluegreen_round`."""
    seq = _last_seq(provider)
    env = {k: v for k, v in swarm.daemon.env().items() if not k.startswith("BLUEGREEN_")}
    env.update(BLUEGREEN_URL=provider.url, BLUEGREEN_TOKEN=provider.token, DOCKER_HOST=swarm.host)
    argv = ["deploy", SERVICE, "--swarm", "--image", image, "--drain-timeout", f"{drain:g}"]
    wall, start = time.time(), time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli", *argv],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    total = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"bluegreen deploy --swarm failed:\n{result.stdout}\n{result.stderr}")
    if VERBOSE:
        print(result.stdout, flush=True)
    return Round(_switch_time(provider, seq, wall), total)


def _measure(name: str, rounds: int, run: Callable[[str], Round]) -> list[Round]:
    out = []
    for index in range(rounds):
        image = IMAGES[index % len(IMAGES)]
        result = run(image)
        print(f"  {name:<28} round {index + 1}: switched {result.switched:6.2f}s  "
              f"total {result.total:6.2f}s", flush=True)  # fmt: skip
        out.append(result)
    return out


def _median(rounds: list[Round]) -> Round:
    return Round(
        statistics.median(r.switched for r in rounds), statistics.median(r.total for r in rounds)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--health-interval", default="1s", help="backends' HEALTHCHECK interval")
    parser.add_argument("--verbose", action="store_true", help="print the CLI's progress lines")
    parser.add_argument(
        "--swarm", action="store_true", help="one host beside a single-node Swarm (no seeds)"
    )
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose

    with tempfile.TemporaryDirectory(prefix="bgbench-") as tmp:
        work = Path(tmp)
        daemon = DockerDaemon.start(work / "dockerd")
        swarm: SingleNodeSwarm | None = None
        providers: list[ProviderProcess] = []
        projects: list[ComposeProject] = []
        try:
            build_busybox_image(daemon, DEFAULT_IMAGE)
            for number, image in enumerate(IMAGES, start=2):
                build_app_image(daemon, image, {"APP_VERSION": f"v{number}"})

            auto = ProviderProcess(
                work / "provider-auto", docker_host=daemon.host, label_prefix="bgbenchauto",
                promote_after=1.0,
            )  # fmt: skip
            providers.append(auto)
            manual: ProviderProcess | None = None
            on_swarm: ProviderProcess | None = None
            if args.swarm:
                swarm = SingleNodeSwarm.start(work / "swarm")
                for number, image in enumerate(IMAGES, start=2):
                    build_app_image(swarm.daemon, image, {"APP_VERSION": f"v{number}"})
                on_swarm = ProviderProcess(
                    work / "provider-swarm", docker_host=swarm.host, promote_after=1.0,
                    extra_args=["--swarm"],
                )  # fmt: skip
                providers.append(on_swarm)
            else:
                manual = ProviderProcess(
                    work / "provider-seeds", docker_host=daemon.host, label_prefix="bgbenchseeds",
                    promote_after=1.0, extra_args=["--no-auto-promote"],
                )  # fmt: skip
                providers.append(manual)
            for provider in providers:
                provider.start()
                provider.wait_ready()
            ours = _project(daemon, work / "app-auto", auto, args.health_interval)
            projects.append(ours)
            _start_blue(ours, auto)
            seeds: ComposeProject | None = None
            if manual is not None:
                seeds = _project(daemon, work / "app-seeds", manual, args.health_interval)
                projects.append(seeds)
                _start_blue(seeds, manual)
            if swarm is not None and on_swarm is not None:
                _start_swarm_blue(swarm, on_swarm, args.health_interval)

            print(f"backends: busybox httpd, HEALTHCHECK interval {args.health_interval}, "
                  f"compose: {ours.compose} (v1); provider --promote-after 1")  # fmt: skip
            fast = _measure(
                "bluegreen deploy --drain 0", args.rounds,
                lambda image: bluegreen_round(ours, auto, image, 0.0),
            )  # fmt: skip
            default = _measure(
                "bluegreen deploy (drain 15)", args.rounds,
                lambda image: bluegreen_round(ours, auto, image, 15.0),
            )  # fmt: skip
            if swarm is not None and on_swarm is not None:
                node, watched = swarm, on_swarm
                swarm_fast = _measure(
                    "swarm deploy --drain 0", args.rounds,
                    lambda image: swarm_round(node, watched, image, 0.0),
                )  # fmt: skip
                swarm_default = _measure(
                    "swarm deploy (drain 15)", args.rounds,
                    lambda image: swarm_round(node, watched, image, 15.0),
                )  # fmt: skip
                _print_swarm(args.rounds, fast, default, swarm_fast, swarm_default)
            elif seeds is not None and manual is not None:
                project, seeds_provider = seeds, manual
                seed = _measure(
                    "seeds deploy.sh", args.rounds,
                    lambda image: seeds_round(project, seeds_provider, image),
                )  # fmt: skip
                _print_seeds(args.rounds, fast, default, seed)
        finally:
            for project in projects:
                project.down()
            for provider in providers:
                provider.terminate()
            if swarm is not None:
                swarm.destroy()
            daemon.destroy()


def _print_seeds(rounds: int, fast: list[Round], default: list[Round], seed: list[Round]) -> None:
    print()
    print(f"{'median of ' + str(rounds):<30} {'switched':>9} {'total':>9}")
    rows = [
        ("bluegreen deploy --drain 0", _median(fast)),
        ("bluegreen deploy (drain 15)", _median(default)),
        ("seeds (sleep 10 + 10 s poll)", _median(seed)),
    ]
    for label, r in rows:
        print(f"{label:<30} {r.switched:8.2f}s {r.total:8.2f}s")
    s, f, d = _median(seed), _median(fast), _median(default)
    print()
    print(f"time to switch: seeds / bluegreen = {s.switched / f.switched:.1f}x")
    print(f"total, drain 0:  seeds / bluegreen = {s.total / f.total:.1f}x")
    print(f"total, drain 15: seeds / bluegreen = {s.total / d.total:.2f}x "
          "(the seeds never drain in-flight requests)")  # fmt: skip


def _print_swarm(
    rounds: int,
    fast: list[Round],
    default: list[Round],
    swarm_fast: list[Round],
    swarm_default: list[Round],
) -> None:
    print()
    print(f"{'median of ' + str(rounds):<30} {'switched':>9} {'total':>9}")
    rows = [
        ("one host, --drain 0", _median(fast)),
        ("one host, drain 15", _median(default)),
        ("swarm, --drain 0", _median(swarm_fast)),
        ("swarm, drain 15", _median(swarm_default)),
    ]
    for label, r in rows:
        print(f"{label:<30} {r.switched:8.2f}s {r.total:8.2f}s")
    f, sf = _median(fast), _median(swarm_fast)
    print()
    print(f"time to switch: swarm / one host = {sf.switched / f.switched:.2f}x")
    print(f"total, drain 0: swarm / one host = {sf.total / f.total:.2f}x")


if __name__ == "__main__":
    main()
