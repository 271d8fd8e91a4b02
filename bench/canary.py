"""Canaries through the real Traefik 3.7.15 (Prometheus metrics on) and a real engine.

One private dockerd, one provider reading Traefik's metrics, per round a fresh stack:

1. **share**: at weight 10 (and 50), ``--requests`` cookie-less requests; the green share;
   then 30 cookie-jar clients x 20 requests: how many ever changed color;
2. **abort**: a green answering 500 to 30 % of requests, canary ``[20, 100]`` with a
   2 s step, under load, ``--rounds`` times: the time from the provider's abort
   (``ended`` in ``/status``) to Traefik applying weight 0 (its API) and to the last
   green answer; failed requests that were not green's injected 500s;
3. **promote**: a good green through ``[10, 50, 100]`` (2 s steps) under load: failed requests.

Figures are printed, never asserted (STYLE.md).

    python3 -m bench.canary --rounds 5 --requests 5000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.canary_stack import (
    canary,
    flaky_backend,
    get_with_cookie,
    start_stack,
    wait_canary,
    wait_children,
    weighted_children,
)
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import Stack, body_of
from tests.testbed.traefik import TraefikFactory

ROOT = Path(__file__).resolve().parents[1]


class Stacks:
    def __init__(self, work: Path, daemon: DockerDaemon, containers: ContainerFactory) -> None:
        self.providers = ProviderFactory(work / "providers", daemon.host)
        self.traefiks = TraefikFactory(work / "traefik")
        self.containers = containers

    def fresh(self) -> Stack:
        stack = start_stack(self.providers, self.traefiks, self.containers)
        stack.backend("blue")
        stack.wait_serving("blue")
        return stack

    def close(self, stack: Stack) -> None:
        stack.traefik.stop()
        stack.provider.terminate()
        for backend in stack.containers.list_owned():
            stack.containers.remove(backend)


def share(stacks: Stacks, weight: int, requests: int) -> None:
    stack = stacks.fresh()
    try:
        stack.backend("green", labels={"promote": "manual"})
        canary(stack, color="green", steps=[weight, 100], interval="3600s")
        wait_children(stack, [("web-blue", 100 - weight), ("web-green", weight)])
        with stack.load(concurrency=8, max_duration=300, max_requests=requests) as load:
            load.wait_requests(requests, timeout=300)
        result = load.stop()
        green = sum(1 for s in result.samples if s.body == body_of("green"))
        failed = len(result.failures())
        print(
            f"share at weight {weight}: green {green}/{len(result.samples)} = "
            f"{100 * green / len(result.samples):.2f} % (failed {failed})"
        )
        flipped = 0
        on_green = 0
        for _ in range(30):
            _, first, set_cookie = get_with_cookie(stack, None)
            cookie = (set_cookie or "").split(";")[0]
            seen = {first} | {get_with_cookie(stack, cookie)[1] for _ in range(20)}
            flipped += len(seen) > 1
            on_green += first == body_of("green")
        print(f"  cookie-jar clients: 30 x 21 requests, {on_green} on green, {flipped} changed")
    finally:
        stacks.close(stack)


def abort_round(stacks: Stacks) -> tuple[float, float, int, int, int]:
    stack = stacks.fresh()
    try:
        canary(stack, color="green", steps=[20, 100], interval="2s", min_requests=40,
               await_ready=True)  # fmt: skip
        flaky_backend(stack, "green", 30)
        with stack.load(concurrency=4, max_duration=60, max_requests=50_000) as load:
            done = wait_canary(stack, lambda c: c["phase"] != "running" and c["phase"] != "waiting",
                               "an end")  # fmt: skip
            while weighted_children(stack) != [("web-blue", 1)]:
                time.sleep(0.005)
            applied = time.time()
            time.sleep(1.0)
        result = load.stop()
        ended = float(done["ended"])
        last_green = max((s.wall for s in result.samples if s.body == body_of("green")), default=0)
        injected = sum(1 for s in result.samples if s.status == 500)
        lost = sum(1 for s in result.samples if s.status not in (200, 500))
        return applied - ended, last_green - ended, injected, lost, len(result.samples)
    finally:
        stacks.close(stack)


def promote_round(stacks: Stacks) -> tuple[int, int, str]:
    stack = stacks.fresh()
    try:
        stack.backend("green", labels={"promote": "manual"})
        canary(stack, color="green", steps=[10, 50, 100], interval="2s", min_requests=20)
        with stack.load(concurrency=4, max_duration=90, max_requests=100_000) as load:
            done = wait_canary(stack, lambda c: c["phase"] != "running", "an end")
            stack.wait_serving("green")
        result = load.stop()
        return len(result.failures()), len(result.samples), str(done["phase"])
    finally:
        stacks.close(stack)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bg-bench-canary-"))
    daemon = DockerDaemon.start(work / "dockerd")
    containers = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    stacks = Stacks(work, daemon, containers)
    try:
        for weight in (10, 50):
            share(stacks, weight, args.requests)
        applied, last, lost_total = [], [], 0
        for index in range(args.rounds):
            to_traefik, to_last, injected, lost, total = abort_round(stacks)
            applied.append(to_traefik)
            last.append(to_last)
            lost_total += lost
            print(
                f"abort {index + 1}: abort->Traefik applied {1000 * to_traefik:.0f} ms, "
                f"abort->last green answer {1000 * to_last:.0f} ms; {injected} injected 500s, "
                f"{lost} other failures of {total}"
            )
        print(
            f"abort->Traefik applied: median {1000 * statistics.median(applied):.0f} ms, "
            f"max {1000 * max(applied):.0f} ms; abort->last green answer median "
            f"{1000 * statistics.median(last):.0f} ms, max {1000 * max(last):.0f} ms; "
            f"requests lost (not injected): {lost_total}"
        )
        for index in range(max(1, args.rounds // 2)):
            failed, total, phase = promote_round(stacks)
            print(f"promote {index + 1}: {phase}, {failed} failed of {total} requests")
    finally:
        stacks.traefiks.stop_all()
        stacks.providers.stop_all()
        containers.cleanup()
        daemon.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
