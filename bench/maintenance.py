"""Maintenance on and off through the real Traefik, beside a plain switch in the same run.

One private dockerd, a ``bluegreen serve`` subprocess (``--no-auto-promote``) and the
real Traefik polling it (``pollInterval`` 200 ms, throttle 100 ms, as the tests use);
blue and green busybox backends; 4 keep-alive clients through Traefik (127.0.0.1).
Each round, with the load running:

* **switch** (the baseline): ``POST /switch`` to green, then back to blue; the time from
  the answer to the end of the first response from the new color;
* **maintenance on**: ``POST /maintenance`` on; the time to the end of the first 503;
* **maintenance off**: ``POST /maintenance`` off; the time to the end of the first 200,
  and the requests that failed (not 200) among those started after it.

Figures are printed, never asserted (STYLE.md).

    python3 -m bench.maintenance [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.load import BackgroundLoad, Sample
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import Stack, StackFactory, body_of
from tests.testbed.traefik import TraefikFactory

WAIT_S = 20.0


def _first(load: BackgroundLoad, since: float, ok: Callable[[Sample], bool], what: str) -> Sample:
    """The first sample that started after ``since`` and passes ``ok`` (bounded wait)."""
    found: list[Sample] = []

    def check(samples: Sequence[Sample]) -> bool:
        hits = [s for s in samples if s.start >= since and ok(s)]
        if hits:
            found.append(min(hits, key=lambda s: s.end))
        return bool(hits)

    load.wait_for(what, check, timeout=WAIT_S)
    return found[0]


def _timed(stack: Stack, load: BackgroundLoad, path: str, body: dict[str, object],
           ok: Callable[[Sample], bool], what: str) -> float:  # fmt: skip
    """Seconds from the API call's answer to the end of the first request that ``ok``."""
    answer = stack.provider.post(path, body)
    assert answer.status == 200, answer.body
    answered = time.monotonic()
    return _first(load, answered, ok, what).end - answered


def _serves(color: str) -> Callable[[Sample], bool]:
    return lambda s: s.ok and s.body == body_of(color)


def one_round(stack: Stack, load: BackgroundLoad) -> dict[str, float]:
    """One switch there and back, one maintenance on and off; seconds, failures after off."""
    figures: dict[str, float] = {}
    for color in ("green", "blue"):
        figures[f"switch to {color}"] = _timed(
            stack, load, "/switch", {"service": "web", "color": color},
            _serves(color), f"the first {color}",
        )  # fmt: skip
    on = {"service": "web", "on": True, "retry_after": 5}
    figures["maintenance on"] = _timed(
        stack, load, "/maintenance", on, lambda s: s.status == 503, "the first 503"
    )
    load.wait_requests(20, timeout=WAIT_S)
    off = {"service": "web", "on": False}
    answered = time.monotonic()
    figures["maintenance off"] = _timed(
        stack, load, "/maintenance", off, lambda s: s.ok, "the first 200 after off"
    )
    first_ok = _first(load, answered, lambda s: s.ok, "the first 200")
    load.wait_requests(300, timeout=WAIT_S)
    after = [s for s in load.samples if s.start > first_ok.end]
    figures["failed after off"] = float(sum(1 for s in after if not s.ok))
    figures["requests after off"] = float(len(after))
    return figures


def _stack(stacks: StackFactory) -> Stack:
    stack = stacks.start(service="web", extra_args=("--no-auto-promote",))
    stack.provider.wait_ready()
    stack.backend("blue")
    stack.provider.wait_active("web", "blue")
    stack.backend("green")
    stack.provider.wait_routable("web", "green")
    stack.wait_serving("blue")
    return stack


def report(rounds: list[dict[str, float]]) -> None:
    print(f"{len(rounds)} rounds; seconds from the API answer to the first such response")
    for kind in ("switch to green", "switch to blue", "maintenance on", "maintenance off"):
        values = [r[kind] for r in rounds]
        print(
            f"  {kind:16} median {statistics.median(values) * 1000:7.1f} ms  "
            f"min {min(values) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"
        )
    failed = sum(r["failed after off"] for r in rounds)
    total = sum(r["requests after off"] for r in rounds)
    print(f"  after off: {failed:.0f} failed of {total:.0f} requests (after its first 200)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bg-bench-maintenance-"))
    daemon = DockerDaemon.start(work / "dockerd")
    containers = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    providers = ProviderFactory(work / "providers", daemon.host)
    traefiks = TraefikFactory(work / "traefik")
    try:
        stack = _stack(StackFactory(providers, traefiks, containers))
        rounds = []
        with stack.load(concurrency=4, max_duration=600.0, max_requests=2_000_000) as load:
            load.wait_requests(50, timeout=WAIT_S)
            for index in range(args.rounds):
                rounds.append(one_round(stack, load))
                print(f"round {index + 1}: " + ", ".join(
                    f"{k} {v * 1000:.0f} ms" if "after" not in k else f"{k} {v:.0f}"
                    for k, v in rounds[-1].items()
                ), flush=True)  # fmt: skip
        report(rounds)
    finally:
        traefiks.stop_all()
        providers.stop_all()
        containers.cleanup()
        daemon.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
