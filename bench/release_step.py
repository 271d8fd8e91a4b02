"""A deploy whose release step fails, beside the same deploy without the step, under load.

One private dockerd, Debian's ``docker-compose`` (v1), a ``bluegreen serve`` subprocess
and the real Traefik; 8 keep-alive clients through Traefik (127.0.0.1) during each
deploy of ``bgtest-app:v2`` (whose backends answer the color, ``green``, once promoted):

* **baseline**: ``bluegreen deploy web --image v2`` (no release step): green takes the
  traffic, so the new image answers a share of the requests;
* **release fails**: the same deploy with ``--release "sh -c 'exit 3'"``: the figures
  to read are the requests the new image answered and the failed requests.

Figures are printed, never asserted (STYLE.md).

    python3 -m bench.release_step [--rounds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.testbed.compose import ComposeFactory, build_app_image
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import StackFactory, body_of
from tests.testbed.traefik import TraefikFactory
from tests.traefik.test_deploy import V2_IMAGE, App, make_app

VERBOSE = False
FAILING_STEP = "sh -c 'echo migrating; exit 3'"


def one_round(
    stacks: StackFactory,
    composes: ComposeFactory,
    containers: ContainerFactory,
    daemon: DockerDaemon,
    release: str | None,
) -> str:
    """One deploy under load; the line of figures."""
    # On a loaded machine one slow healthcheck would take blue out (503s in both kinds of
    # round alike): three misses in a row, at most one a second, say it is down.
    app = make_app(
        stacks, composes, containers, daemon, DEFAULT_IMAGE, health_interval="1s", health_retries=3
    )
    try:
        return _measured(app, release)
    finally:
        # Each round leaves nothing running: the next one starts from a quiet machine.
        composes.down_all()
        app.stack.traefik.stop()
        app.stack.provider.terminate()


def _measured(app: App, release: str | None) -> str:
    extra = ["--release", release] if release else []
    with app.stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=20)
        began = time.monotonic()
        result = app.deploy("--image", V2_IMAGE, "--drain", "1", *extra)
        done = time.monotonic()
        load.wait_for(
            "1 s after the deploy",
            lambda samples: bool(samples) and samples[-1].start > done + 1.0,
            timeout=20,
        )
    samples = load.result.samples
    new = sum(1 for s in samples if s.ok and s.body == body_of("green"))
    failed = len(load.result.failures())
    what = "release fails" if release else "baseline     "
    if failed and VERBOSE:
        print(result.stdout, flush=True)
    return (
        f"{what}: deploy exit {result.returncode}; {len(samples)} requests, "
        f"{new} answered by the new image, {failed} failed "
        f"{dict(sorted(load.result.summary().statuses.items()))}"
        + "".join(
            f"\n    failed at deploy+{s.start - began:.2f}s (deploy took {done - began:.1f}s): "
            f"{s.describe()}"
            for s in load.result.failures()[:3]
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bg-bench-release-"))
    daemon = DockerDaemon.start(work / "dockerd")
    containers = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    build_app_image(daemon, V2_IMAGE, {"APP_VERSION": "v2"})
    providers = ProviderFactory(work / "providers", daemon.host)
    traefiks = TraefikFactory(work / "traefik")
    stacks = StackFactory(providers, traefiks, containers)
    composes = ComposeFactory(daemon, work / "compose")
    try:
        for index in range(args.rounds):
            for release in (None, FAILING_STEP):
                line = one_round(stacks, composes, containers, daemon, release)
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
