"""A bad release with and without a bake, under load through the real Traefik (issue 22).

One private dockerd, Debian's ``docker-compose`` (v1), a ``bluegreen serve`` subprocess
reading the real Traefik's Prometheus metrics, and Traefik; 4 keep-alive clients
through Traefik (127.0.0.1) during each deploy of ``bgtest-app:fail20``, whose ``/``
answers 500 to about 20 % of requests (healthy all the same):

* **no bake**: ``bluegreen deploy web --image fail20``: the bad version takes the
  traffic and keeps it; blue is drained and stopped;
* **bake**: the same deploy with ``--bake 25s --bake-interval 3s``: the provider
  switches back to the warm blue once a window breaches.

Per round: the requests the bad version answered and its 500s within 30 s of the
switch (the same horizon for both kinds), and for the bake how long the bad version
was public (first to last answer from it at the client) split into switch -> revert
(the provider's history) and revert -> last bad answer (Traefik's apply), beside the
analysis interval. Figures are printed, never asserted (STYLE.md).

    python3 -m bench.bake [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.canary_stack import start_stack
from tests.testbed.compose import ComposeFactory, build_app_image
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.load import Sample
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import body_of
from tests.testbed.traefik import TraefikFactory

FLAKY_IMAGE = "bgtest-app:fail20"
HORIZON_S = 30.0
BAKE = ("--bake", "25s", "--bake-interval", "3s", "--bake-min-requests", "20")
INTERVAL_S = 3.0


def _bad(sample: Sample) -> bool:
    """Answered by the new (bad) version: its color's body, or its 500."""
    return sample.status == 500 or (sample.ok and sample.body == body_of("green"))


def one_round(
    providers: ProviderFactory,
    traefiks: TraefikFactory,
    containers: ContainerFactory,
    composes: ComposeFactory,
    bake: bool,
) -> str:
    """One deploy of the bad release under load; the line of figures."""
    stack = start_stack(providers, traefiks, containers)
    try:
        project = composes.create()
        project.add_app(
            prefix=stack.prefix,
            service="web",
            default_image=DEFAULT_IMAGE,
            owner=containers.owner,
            health_interval="1s",
            health_retries=3,
        )
        stack.provider.wait_ready()
        project.up("web-blue")
        stack.provider.wait_active("web", "blue")
        stack.wait_serving("blue")
        with stack.load(concurrency=4, max_duration=150.0, max_requests=200_000) as load:
            load.wait_requests(50, timeout=20)
            result = project.bluegreen(
                "deploy",
                "web",
                "--image",
                FLAKY_IMAGE,
                "--drain-timeout",
                "2",
                *(BAKE if bake else ()),
                *project.compose_args(),
                url=stack.provider.url,
                token=stack.provider.token,
                timeout=150.0,
            )
            history = stack.provider.history("web")
            baked = stack.provider.status("web").get("bake") or {}
            switched = next(h for h in history if h["to"] == "green")
            until = float(switched["at"]) + HORIZON_S
            while time.time() < until + 0.5:
                time.sleep(0.25)
        started = baked.get("started")
        return _figures(load.result.samples, history, switched, result.returncode, started)
    finally:
        composes.down_all()
        stack.traefik.stop()
        stack.provider.terminate()


def _figures(
    samples: list[Sample],
    history: list[dict[str, Any]],
    switched: dict[str, Any],
    code: int,
    bake_started: float | None,
) -> str:
    at = float(switched["at"])
    seen = [s for s in samples if at - 5.0 <= s.wall <= at + HORIZON_S]
    bad = [s for s in seen if _bad(s)]
    errors = sum(1 for s in bad if s.status == 500)
    others = sum(1 for s in seen if not s.ok and s.status != 500)
    bake = bake_started is not None
    line = (
        f"{'bake   ' if bake else 'no bake'}: exit {code}; {len(seen)} requests in the "
        f"{HORIZON_S:g} s after the switch, {len(bad)} answered by the bad version, "
        f"{errors} of them 500 ({others} other failures)"
    )
    reverts = [h for h in history if h["reason"] == "bake-revert"]
    if bake_started is not None and reverts and bad:
        revert_at = float(reverts[-1]["at"])
        public = bad[-1].wall - bad[0].wall
        line += (
            f"; bad version public {public:.2f} s (first to last bad answer): switch->first bad "
            f"answer {bad[0].wall - at:.2f} s, switch->bake start {bake_started - at:.2f} s "
            f"(the CLI waits for Traefik's apply), bake start->revert "
            f"{revert_at - bake_started:.2f} s (interval {INTERVAL_S:g} s), revert->last bad "
            f"answer {bad[-1].wall - revert_at:.2f} s (Traefik's apply)"
        )
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bg-bench-bake-"))
    daemon = DockerDaemon.start(work / "dockerd")
    containers = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    build_app_image(daemon, FLAKY_IMAGE, {"APP_VERSION": "fail20", "APP_FAIL_PERCENT": "20"})
    providers = ProviderFactory(work / "providers", daemon.host)
    traefiks = TraefikFactory(work / "traefik")
    composes = ComposeFactory(daemon, work / "compose")
    try:
        for index in range(args.rounds):
            for bake in (False, True):
                line = one_round(providers, traefiks, containers, composes, bake)
                print(f"round {index + 1} {line}", flush=True)
    finally:
        composes.down_all()
        traefiks.stop_all()
        providers.stop_all()
        containers.cleanup()
        daemon.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
