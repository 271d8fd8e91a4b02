"""Gates before the flip: a release whose ``/`` answers 500, with and without a smoke gate.

One private dockerd, Debian's ``docker-compose`` (v1), a ``bluegreen serve`` subprocess
with ``--smoke-url`` at the real Traefik's entrypoint; 8 keep-alive clients through
Traefik (127.0.0.1) during each ``bluegreen deploy``:

* **baseline**: the failing image (healthy, but ``/`` answers 500) with no
  ``bluegreen.smoke``: the provider promotes it and the public gets its 500s;
* **gated**: the same image with ``bluegreen.smoke=/=200:green``: the figures to read
  are the requests the new image answered (500s) and the deploy's exit code;
* **gated, good**: a good image with the same gate: what the gate costs a deploy that passes
  (its duration beside **good, no gate**);
* **deploy --smoke (bad)**: no label in the file, the checks given to ``bluegreen deploy``;
* **webhook rejects / approves (good)**: the good image with the gate and a gate webhook (an
  aiohttp approver on 127.0.0.1 answering 409 or 204): what asking it costs, and that a
  rejection keeps the public on blue.

Figures are printed, never asserted (STYLE.md).

    python3 -m bench.gates [--rounds 1]
"""

from __future__ import annotations

import argparse
import contextlib
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
from tests.traefik.test_deploy import V2_IMAGE, App
from tests.traefik.test_gate_webhook import SECRET, Approver, approver_running
from tests.traefik.test_gates import FAILING_IMAGE, SMOKE, gated_app, smoke_gate_lines

#: (what, image, the label's checks, --smoke's checks, the approver's status or None).
Kind = tuple[str, str, str | None, str | None, int | None]
KINDS: tuple[Kind, ...] = (
    ("baseline (bad, no gate)", FAILING_IMAGE, None, None, None),
    ("gated (bad)            ", FAILING_IMAGE, SMOKE, None, None),
    ("deploy --smoke (bad)   ", FAILING_IMAGE, None, SMOKE, None),
    ("good, no gate          ", V2_IMAGE, None, None, None),
    ("gated (good)           ", V2_IMAGE, SMOKE, None, None),
    ("webhook rejects (good) ", V2_IMAGE, SMOKE, None, 409),
    ("webhook approves (good)", V2_IMAGE, SMOKE, None, 204),
)


def one_round(
    stacks: StackFactory,
    composes: ComposeFactory,
    containers: ContainerFactory,
    daemon: DockerDaemon,
    kind: Kind,
) -> str:
    """One deploy under load; the line of figures."""
    what, image, smoke, cli_smoke, status = kind
    with contextlib.ExitStack() as approving:
        args: tuple[str, ...] = ()
        if status is not None:
            approver = approving.enter_context(approver_running(Approver(status, "no")))
            args = ("--gate-url", approver.url, "--webhook-secret", SECRET)
        return _measured(
            what, image, cli_smoke,
            gated_app(stacks, composes, containers, daemon, DEFAULT_IMAGE, smoke=smoke,
                      provider_args=args, health_interval="1s", health_retries=3),
            composes,
        )  # fmt: skip


def _measured(
    what: str, image: str, cli_smoke: str | None, app: App, composes: ComposeFactory
) -> str:
    try:
        with app.stack.load(concurrency=8, max_duration=120.0) as load:
            load.wait_requests(50, timeout=20)
            began = time.monotonic()
            extra = ("--smoke", cli_smoke) if cli_smoke else ()
            result = app.project.bluegreen(
                "deploy", "web", *app.project.compose_args(), "--image", image, "--drain", "1",
                *extra, url=app.stack.provider.url, token=app.stack.provider.token,
                extra_env={"BLUEGREEN_LABEL_PREFIX": app.stack.prefix},
            )  # fmt: skip
            done = time.monotonic()
            load.wait_for(
                "1 s after the deploy",
                lambda samples: bool(samples) and samples[-1].start > done + 1.0,
                timeout=20,
            )
        samples = load.result.samples
        new = sum(1 for s in samples if s.body != body_of("blue"))
        statuses = dict(sorted(load.result.summary().statuses.items()))
        gates = [f"{g['passed']} in {g['duration_s']}s" for g in smoke_gate_lines(app)]
        return (
            f"{what}: deploy exit {result.returncode} in {done - began:.1f}s; "
            f"{len(samples)} requests, {new} not answered by blue {statuses}; "
            f"gate passed: {', '.join(gates) or '-'}"
        )
    finally:
        composes.down_all()
        app.stack.traefik.stop()
        app.stack.provider.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bg-bench-gates-"))
    daemon = DockerDaemon.start(work / "dockerd")
    containers = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    build_app_image(daemon, V2_IMAGE, {"APP_VERSION": "v2"})
    build_app_image(daemon, FAILING_IMAGE, {"APP_VERSION": "fail", "APP_FAIL": "1"})
    providers = ProviderFactory(work / "providers", daemon.host)
    traefiks = TraefikFactory(work / "traefik")
    stacks = StackFactory(providers, traefiks, containers)
    composes = ComposeFactory(daemon, work / "compose")
    try:
        for index in range(args.rounds):
            for kind in KINDS:
                line = one_round(stacks, composes, containers, daemon, kind)
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
