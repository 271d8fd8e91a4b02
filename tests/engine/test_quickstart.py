"""The compose quickstart exactly as README tells it, on the real engine, under load.

From a clean directory holding only ``docker-compose.example.yml``: ``bluegreen init -f
docker-compose.example.yml``, then, with no ``-f`` (``COMPOSE_FILE`` is in ``.env``),
``docker-compose up -d``, ``bluegreen deploy``, a second ``up -d``, ``bluegreen
rollback``, ``down``. Every command runs in a
bare environment: nothing bluegreen or compose related is exported, only the machine's
``DOCKER_HOST`` (the private test daemon), so whatever the steps need comes from the
``.env`` that ``init`` wrote. A bounded load runs through the published Traefik port on
127.0.0.1 the whole time; no request may fail, and after each step the live color runs
the expected image.

No registry is reachable here, so the images the example names are made locally first:
``traefik:v3.7`` from the real Traefik binary on the busybox image,
``traefik-bluegreen:local`` from ``deploy/Dockerfile`` (test_image.py's offline build),
``busybox:1.36`` and ``busybox:1.37`` from the local busybox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.test_image import provider_image, python_base  # noqa: F401 - fixtures
from tests.testbed.compose import REPO_ROOT, build_app_image, find_compose_v1
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.load import BackgroundLoad
from tests.testbed.ports import LOOPBACK, free_ports
from tests.testbed.socket_proxy import build_proxy_image
from tests.testbed.traefik import find_traefik

#: Builds images and runs the whole compose quickstart: 6-8 minutes on a loaded machine.
pytestmark = [pytest.mark.docker, pytest.mark.slow]

HOST = "web.localhost"
EXAMPLE = "docker-compose.example.yml"
NEW_IMAGE = "busybox:1.37"
OLD_IMAGE = "busybox:1.36"
STEP_TIMEOUT_S = 240.0
WAIT_S = 90.0


def body(color: str) -> str:
    return f"hello from {color} (BusyBox v"


@pytest.fixture(scope="module")
def quickstart_images(
    docker_daemon: DockerDaemon,
    busybox_image: str,
    provider_image: str,  # noqa: F811 - the fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The images docker-compose.example.yml names, made without a registry."""
    traefik = find_traefik()
    assert traefik is not None, "the traefik binary is part of the test environment"
    context = tmp_path_factory.mktemp("traefik-image")
    shutil.copy(traefik, context / "traefik")
    (context / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY traefik /bin/traefik\n")
    built = subprocess.run(
        [docker_daemon.docker_cli, "build", "-q", "-t", "traefik:v3.7", str(context)],
        env={**docker_daemon.env(), "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert 0 == built.returncode, built.stderr[-2000:]
    docker_daemon.docker("tag", provider_image, "traefik-bluegreen:local")
    build_proxy_image(docker_daemon)
    docker_daemon.docker("tag", busybox_image, OLD_IMAGE)
    build_app_image(docker_daemon, NEW_IMAGE, {"APP_VERSION": "1.37"})


def wait_served(port: int, color: str) -> None:
    """Poll the published Traefik port (loopback) until ``color`` answers; bounded."""
    deadline = time.monotonic() + WAIT_S
    last = ""
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"http://{LOOPBACK}:{port}/", headers={"Host": HOST})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                last = answer.read().decode(errors="replace")
        except OSError as exc:
            last = str(exc)
        if last.startswith(body(color)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"Traefik did not serve {color} within {WAIT_S}s; last: {last!r}")


class Quickstart:
    """The user's directory and shell: every command in a bare environment."""

    def __init__(self, directory: Path, daemon: DockerDaemon) -> None:
        self.directory = directory
        self.daemon = daemon
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(directory.parent),
            "DOCKER_HOST": daemon.host,
            "DOCKER_CONFIG": str(daemon.config_dir),
            "PYTHONPATH": str(REPO_ROOT),  # the CLI from this checkout, as `pip install .`
        }
        self.log: list[str] = []

    def run(self, *argv: str, extra: dict[str, str] | None = None) -> str:
        """Run a command as the user types it; its stdout then stderr (fails the test if it
        fails)."""
        result = subprocess.run(
            list(argv),
            cwd=self.directory,
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
        shown = " ".join(a if a != sys.executable else "python" for a in argv)
        self.log.append(f"$ {shown}\n{result.stdout}{result.stderr}")
        assert 0 == result.returncode, "\n".join(self.log[-3:])
        return result.stdout + result.stderr

    def compose(self, *args: str) -> str:
        return self.run(find_compose_v1(), *args)

    def bluegreen(self, *args: str, extra: dict[str, str] | None = None) -> str:
        return self.run(sys.executable, "-m", "deploy.cli", *args, extra=extra)

    def env_file(self) -> dict[str, str]:
        from deploy import envfile

        return envfile.read(self.directory / ".env")

    def status(self) -> dict[str, Any]:
        url = self.env_file()["BLUEGREEN_URL"]
        with urllib.request.urlopen(f"{url}/status/web", timeout=5) as answer:
            doc: dict[str, Any] = json.loads(answer.read())
        return doc

    def live(self) -> tuple[str, str]:
        """The active color and the image its running container was created from."""
        doc = self.status()
        active = str(doc["active"])
        running = [c for c in doc["colors"][active]["containers"] if c["state"] == "running"]
        assert 1 == len(running), doc
        inspect = json.loads(self.daemon.docker("inspect", running[0]["id"]).stdout)[0]
        return active, str(inspect["Config"]["Image"])

    def wait_live(self, color: str) -> None:
        deadline = time.monotonic() + WAIT_S
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = self.status()
                if last["active"] == color:  # type: ignore[index]
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.25)
        logs = subprocess.run(
            [find_compose_v1(), "logs", "--tail", "30", "bluegreen"],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        raise TimeoutError(
            f"{color} not live within {WAIT_S}s; last: {last!r}\n"
            + "\n".join(self.log[-3:])
            + f"\n--- provider log ---\n{logs}"
        )


def inspect_service(quickstart: Quickstart, service: str) -> dict[str, Any]:
    """``docker inspect`` of the one running container of a compose service."""
    (cid,) = quickstart.compose("ps", "-q", service).split()
    inspected: dict[str, Any] = json.loads(quickstart.daemon.docker("inspect", cid).stdout)[0]
    return inspected


#: What the provider may call through the proxy, from inside its own container.
PROXY_PROBE = """import urllib.request, urllib.error
def status(method, path):
    request = urllib.request.Request("http://socket-proxy:2375" + path, method=method,
                                     data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
print(status("GET", "/containers/json"), status("POST", "/containers/create"))
"""


def assert_locked_down(quickstart: Quickstart) -> None:
    """The running provider's HostConfig is the example's lockdown; it has no socket, reads
    Docker through the proxy, and the proxy refuses it a container create."""
    provider = inspect_service(quickstart, "bluegreen")
    host = provider["HostConfig"]
    assert "10001:10001" == provider["Config"]["User"]
    assert (True, ["ALL"], None, ["no-new-privileges:true"], False) == (
        host["ReadonlyRootfs"], host["CapDrop"], host["CapAdd"], host["SecurityOpt"],
        host["Privileged"],
    )  # fmt: skip
    assert not host.get("Tmpfs"), host.get("Tmpfs")
    assert not host.get("GroupAdd"), host["GroupAdd"]
    writable = sorted(m["Destination"] for m in provider["Mounts"] if m["RW"])
    assert ["/var/lib/bluegreen"] == writable, provider["Mounts"]
    assert [] == [m for m in provider["Mounts"] if "docker.sock" in json.dumps(m)]
    assert "BLUEGREEN_DOCKER_HOST=tcp://socket-proxy:2375" in provider["Config"]["Env"]
    proxy = inspect_service(quickstart, "socket-proxy")
    assert (True, ["ALL"], ["no-new-privileges:true"], "65534:65534") == (
        proxy["HostConfig"]["ReadonlyRootfs"], proxy["HostConfig"]["CapDrop"],
        proxy["HostConfig"]["SecurityOpt"], proxy["Config"]["User"],
    )  # fmt: skip
    answers = quickstart.daemon.docker(
        "exec", provider["Id"], "/opt/bluegreen/bin/python", "-c", PROXY_PROBE
    ).stdout.split()
    assert ["200", "403"] == answers
    logs = quickstart.compose("logs", "--no-color", "bluegreen")
    access = [json.loads(line.split("| ", 1)[1]) for line in logs.splitlines()
              if '"docker_access"' in line]  # fmt: skip
    assert 1 == len(access), logs[-3000:]
    assert ([], "none needed (reads only)") == (access[0]["writes"], access[0]["write_permission"])


@pytest.fixture
def quickstart(
    docker_daemon: DockerDaemon, quickstart_images: None, tmp_path: Path
) -> Iterator[Quickstart]:
    """A clean directory with the example; `down -v` at the end."""
    directory = tmp_path / "bluegreen-demo"
    directory.mkdir()
    shutil.copy(REPO_ROOT / EXAMPLE, directory / EXAMPLE)
    user = Quickstart(directory, docker_daemon)
    try:
        yield user
    finally:
        subprocess.run(
            [find_compose_v1(), "-f", EXAMPLE, "down", "-v", "-t", "1"],
            cwd=directory,
            env=user.env,
            capture_output=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )


def test_the_compose_quickstart_under_load(quickstart: Quickstart) -> None:
    """init, up -d, deploy, up -d again, rollback, down: 0 failed requests, and the live
    color's image is right after every step; nothing but .env carries the settings."""
    http_port, api_port = free_ports(2)
    quickstart.bluegreen(
        "init",
        "-f",
        EXAMPLE,
        extra={
            "BLUEGREEN_HTTP_PUBLISH": f"{LOOPBACK}:{http_port}",
            "BLUEGREEN_API_PUBLISH": f"{LOOPBACK}:{api_port}",
        },
    )
    assert f"http://{LOOPBACK}:{api_port}" == quickstart.env_file()["BLUEGREEN_URL"]

    quickstart.compose("up", "-d")
    quickstart.wait_live("blue")
    assert ("blue", OLD_IMAGE) == quickstart.live()
    assert_locked_down(quickstart)
    # README's `curl` step: Traefik routes web.localhost once it polled the provider.
    wait_served(http_port, "blue")

    load = BackgroundLoad(
        f"http://{LOOPBACK}:{http_port}/", host=HOST, concurrency=4, max_duration=600.0
    )
    with load:
        load.wait_requests(50, timeout=WAIT_S)
        steps: list[tuple[str, tuple[str, str]]] = []

        quickstart.bluegreen("deploy", "web", "--image", NEW_IMAGE, "--drain-timeout", "3")
        steps.append(("deploy", quickstart.live()))

        again = quickstart.compose("up", "-d")
        steps.append(("up -d again", quickstart.live()))

        status = quickstart.bluegreen("status")  # a new shell: only .env
        quickstart.compose("ps")

        quickstart.bluegreen("rollback", "web")
        quickstart.wait_live("blue")
        rolled_back = time.monotonic()
        load.wait_for(
            "2 s of traffic after the rollback",
            lambda samples: bool(samples) and samples[-1].start > rolled_back + 2.0,
            WAIT_S,
        )
        steps.append(("rollback", quickstart.live()))
    quickstart.compose("down")
    print("\n".join(quickstart.log))  # the transcript README shows (pytest -s)

    summary = load.result.summary()
    failures = load.result.failures()
    assert [] == [s.describe() for s in failures[:20]], summary.format()
    assert [
        ("deploy", ("green", NEW_IMAGE)),
        ("up -d again", ("green", NEW_IMAGE)),
        ("rollback", ("blue", OLD_IMAGE)),
    ] == steps
    assert "Recreating" not in again
    assert "web      green" in status
    served = {
        next((c for c in ("blue", "green") if s.body.startswith(body(c))), s.body)
        for s in load.result.samples
    }
    assert {"blue", "green"} == served
    assert "" == quickstart.compose("ps", "-q").strip()
