"""Debian's ``haproxy`` running the shipped socket-proxy configuration on loopback.

The example's proxy and the tests' proxy read the same file,
``deploy/socket-proxy/haproxy.cfg``; only its environment differs (where it
listens, which socket it forwards to). Here it listens on a free 127.0.0.1 port
and forwards to the private dockerd's socket. A test that needs a proxy missing
one rule passes :func:`without_rule` of the shipped file.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.testbed.dockerd import DockerDaemon
from tests.testbed.ports import LOOPBACK, free_port
from tests.testbed.process import LoggedProcess
from tests.testbed.tools import require

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "deploy" / "socket-proxy" / "haproxy.cfg"
HAPROXY_HINT = "apt-get install haproxy"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def find_haproxy() -> str:
    """Path of Debian's haproxy (in /usr/sbin, often not on PATH), or fail with the hint."""
    return require("haproxy", "/usr/sbin", hint=HAPROXY_HINT)


def without_rule(rule: str, target: Path) -> Path:
    """The shipped configuration minus the ``http-request allow`` line under ``# rule RULE``."""
    lines = CONFIG.read_text().splitlines(keepends=True)
    marker = next(i for i, line in enumerate(lines) if line.strip().startswith(f"# rule {rule}:"))
    assert lines[marker + 1].strip().startswith("http-request allow"), lines[marker + 1]
    target.write_text("".join(lines[: marker + 1] + lines[marker + 2 :]))
    return target


def proxy_request(port: int, method: str, path: str, body: str | None = None) -> tuple[int, str]:
    """One request through the proxy: its status and body (any status is an answer)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


class SocketProxy(LoggedProcess):
    """One haproxy process in front of ``daemon``'s socket, on ``127.0.0.1:port``."""

    label = "haproxy"

    def __init__(
        self, daemon: DockerDaemon, work_dir: Path, *, config: Path = CONFIG, swarm: bool = False
    ) -> None:
        self.daemon = daemon
        self.config = config
        self.swarm = swarm
        self.port = free_port()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = work_dir / "haproxy.log"

    @property
    def docker_host(self) -> str:
        """What the provider's ``--docker-host`` is set to."""
        return f"tcp://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BLUEGREEN_PROXY_LISTEN": f"{LOOPBACK}:{self.port}",
            "BLUEGREEN_PROXY_SOCKET": self.daemon.socket_path,
            "BLUEGREEN_PROXY_SWARM": "1" if self.swarm else "0",
        }
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [find_haproxy(), "-db", "-f", str(self.config)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for(
            "GET /_ping through haproxy",
            lambda: proxy_request(self.port, "GET", "/_ping")[0] == 200,
            START_TIMEOUT_S,
        )

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        return proxy_request(self.port, method, path, body)

    def stop(self) -> None:
        self.terminate(STOP_TIMEOUT_S)


def started_proxy(
    daemon: DockerDaemon, work_dir: Path, *, config: Path = CONFIG, swarm: bool = False
) -> Iterator[SocketProxy]:
    """A started proxy, stopped (by PID) when the generator closes."""
    proxy = SocketProxy(daemon, work_dir, config=config, swarm=swarm)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()


#: The example's proxy image and the base it builds FROM (docker-compose.example.yml).
PROXY_IMAGE = "traefik-bluegreen-socket-proxy:local"
PROXY_BASE = "haproxy:2.6"
_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)$")


def shared_libraries(binary: str) -> list[str]:
    """The absolute paths ``ldd`` resolves for ``binary``, its loader included."""
    listed = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    found = []
    for line in listed.stdout.splitlines():
        if match := _LDD_PATH.search(line.strip()):
            found.append(match.group(1))
    return found


def haproxy_rootfs_tar() -> bytes:
    """A root file system holding only Debian's haproxy (as /usr/local/sbin/haproxy, where
    the official image has it) and the libraries it links, at their own paths."""
    buffer = io.BytesIO()
    files = [(find_haproxy(), "usr/local/sbin/haproxy")]
    files += [(lib, lib.lstrip("/")) for lib in shared_libraries(find_haproxy())]
    # Every directory explicitly and world-readable, parents first: the engine makes a
    # missing parent 0700, which the proxy's user (nobody) cannot pass ("stat haproxy:
    # permission denied").
    wanted = {"tmp", "usr/local/etc/haproxy", "var/run", *(str(Path(n).parent) for _, n in files)}
    directories = {str(p) for d in wanted for p in (Path(d), *Path(d).parents) if str(p) != "."}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for source, name in files:
            data = Path(source).read_bytes()  # through symlinks: the file itself
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_proxy_image(daemon: DockerDaemon) -> str:
    """deploy/socket-proxy/Dockerfile built FROM a local ``haproxy:2.6`` (no registry here)."""
    if daemon.docker("image", "inspect", PROXY_BASE, check=False).returncode != 0:
        daemon.docker(
            "import", "--change", "ENV PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            "-", PROXY_BASE, input=haproxy_rootfs_tar(),
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bgtest-proxy-") as context:
        # The example's context is the repository root; only these two files are used.
        target = Path(context) / "deploy" / "socket-proxy"
        target.mkdir(parents=True)
        for name in ("Dockerfile", "haproxy.cfg"):
            shutil.copy(CONFIG.parent / name, target / name)
        built = subprocess.run(
            [daemon.docker_cli, "build", "-q", "--build-arg", f"BASE={PROXY_BASE}",
             "-f", str(target / "Dockerfile"), "-t", PROXY_IMAGE, context],
            env={**daemon.env(), "DOCKER_BUILDKIT": "0"},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert 0 == built.returncode, built.stderr[-2000:]
    return PROXY_IMAGE
