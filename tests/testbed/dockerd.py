"""A private Docker daemon for the integration tests.

Integration tests create, stop and kill containers and restart the engine, so
they get a ``dockerd`` of their own instead of the machine's: nothing they do
can touch a developer's containers, and a leftover from a crashed run dies with
the daemon.  Several daemons run side by side with distinct directories.

The exec-root and the socket live under a short ``/tmp/bgd-*`` directory
because unix socket paths are limited to about 108 bytes, and containerd and
libnetwork put their sockets under the exec-root.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.waiting import wait_until

from .process import terminate
from .tools import missing_tool, which

SBIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin")
DOCKER_HINT = "apt-get install docker.io busybox-static"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.1
LOG_TAIL_BYTES = 4000


class DockerDaemonError(RuntimeError):
    """The private daemon did not start, or died; carries its log tail."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- dockerd log tail ---\n{log_tail}")
        self.log_tail = log_tail


class DockerCommandError(subprocess.CalledProcessError):
    """A ``docker`` CLI call failed; ``str()`` shows the command and its stderr."""

    def __str__(self) -> str:
        cmd = " ".join(str(part) for part in self.cmd)
        err = (self.stderr or "").strip() if isinstance(self.stderr, str) else ""
        out = (self.output or "").strip() if isinstance(self.output, str) else ""
        return f"`{cmd}` exited {self.returncode}: {err or out or '(no output)'}"


def find_dockerd() -> str | None:
    """Path of the ``dockerd`` binary, looking in sbin too (not always on PATH)."""
    return which("dockerd", *SBIN_DIRS)


def find_docker_cli() -> str | None:
    """Path of the ``docker`` CLI."""
    return which("docker", *SBIN_DIRS)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, enough for ``GET /_ping`` without extra packages."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path
        self._timeout_s = timeout

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout_s)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def ping(socket_path: str, timeout: float = 2.0) -> bool:
    """True when the daemon behind ``socket_path`` answers ``GET /_ping`` with 200."""
    conn = _UnixHTTPConnection(socket_path, timeout)
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _mounts_under(path: Path) -> list[tuple[str, str]]:
    """(mount point, fs type) at or below ``path``, so we never rmtree into a live mount."""
    prefix = str(path.resolve())
    found: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            if " - " not in line or len(fields) < 5:
                continue
            mount_point = fields[4]
            fs_type = line.split(" - ", 1)[1].split()[0]
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append((mount_point, fs_type))
    return found


def unmount_all(path: Path) -> None:
    """Unmount everything at or below ``path``, deepest first (``umount -l`` if busy).

    A daemon killed with SIGKILL leaves its shm tmpfs, nsfs and data-root bind
    mounts behind; they are ours and must go before the directory can.
    """
    for mount_point, _ in sorted(_mounts_under(path), key=lambda m: m[0], reverse=True):
        done = subprocess.run(["umount", mount_point], capture_output=True, timeout=10, check=False)
        if done.returncode != 0:
            subprocess.run(
                ["umount", "-l", mount_point], capture_output=True, timeout=10, check=False
            )


def _unmount_netns(path: Path) -> None:
    """Unmount the nsfs bind mounts (``netns/default``) dockerd leaves in its exec-root.

    dockerd does not undo them at shutdown; they are ours, and harmless to drop.
    """
    for mount_point, fs_type in reversed(_mounts_under(path)):
        if fs_type == "nsfs":
            subprocess.run(["umount", mount_point], capture_output=True, timeout=10, check=False)


def processes_under(exec_root: Path) -> list[int]:
    """PIDs of the containerd and shims of ``exec_root``, then their children (containers).

    Found by command line (they name the exec-root's containerd socket or config),
    so only processes of this daemon are ever returned.
    """
    needle = str(exec_root).encode()
    owned: list[int] = []
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if needle in cmdline:
            owned.append(pid)
    children = [pid for pid, ppid in parents.items() if ppid in owned and pid not in owned]
    return owned + children


def kill_processes(pids: list[int]) -> None:
    """SIGKILL each PID (those still there) and wait, bounded, until they are gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in pids):
            return
        time.sleep(POLL_INTERVAL_S)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _process_alive(pid: int, name_part: str) -> bool:
    """True if ``pid`` runs and its command line mentions ``name_part`` (guards PID reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return name_part.encode() in cmdline


class DockerDaemon:
    """One private ``dockerd``: start, stop, restart with the same state, run the CLI.

    Build it with :meth:`start`.  ``socket_path``, ``host`` (for ``DOCKER_HOST``)
    and ``pid`` describe the running daemon; ``pid`` is ``None`` once stopped.
    With ``netns`` (a path such as ``/var/run/netns/NAME``) the daemon runs in that
    network namespace, entered with ``nsenter --net`` (``ip netns exec`` remounts
    /sys and dockerd then fails with "Devices cgroup isn't mounted"); with
    ``hostname`` it also gets its own UTS namespace, so Swarm nodes differ by name.
    """

    def __init__(
        self,
        base_dir: Path,
        dockerd: str,
        docker_cli: str,
        *,
        netns: str | None = None,
        hostname: str | None = None,
        short_prefix: str = "bgd-",
    ) -> None:
        self.base_dir = base_dir
        self.dockerd = dockerd
        self.docker_cli = docker_cli
        self.data_root = base_dir / "data"
        self.config_dir = base_dir / "docker-config"
        self.log_path = base_dir / "dockerd.log"
        self.netns = netns
        self.hostname = hostname
        self.short_dir = Path(tempfile.mkdtemp(prefix=short_prefix, dir="/tmp"))
        self.exec_root = self.short_dir / "x"
        self.socket_path = str(self.short_dir / "sock")
        self.pidfile = self.short_dir / "pid"
        self.host = f"unix://{self.socket_path}"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        base_dir: Path,
        *,
        timeout: float = START_TIMEOUT_S,
        netns: str | None = None,
        hostname: str | None = None,
        short_prefix: str = "bgd-",
    ) -> DockerDaemon:
        """Start a private daemon keeping its state under ``base_dir``; wait until it answers."""
        dockerd = find_dockerd()
        docker_cli = find_docker_cli()
        if dockerd is None:
            missing_tool("dockerd", DOCKER_HINT)
        if docker_cli is None:
            missing_tool("docker", DOCKER_HINT)
        base_dir.mkdir(parents=True, exist_ok=True)
        daemon = cls(
            base_dir, dockerd, docker_cli, netns=netns, hostname=hostname, short_prefix=short_prefix
        )
        daemon._launch(timeout)
        return daemon

    @property
    def pid(self) -> int | None:
        """PID of the running daemon, ``None`` when stopped."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def _argv(self) -> list[str]:
        # nsenter and unshare exec (no fork without --fork/--pid), so the PID we
        # hold is dockerd's own.
        prefix: list[str] = []
        if self.netns is not None:
            prefix += ["nsenter", f"--net={self.netns}", "--"]
        if self.hostname is not None:
            prefix += [
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                'hostname "$0" && exec "$@"',
                self.hostname,
            ]
        return [
            *prefix,
            self.dockerd,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--storage-driver", "vfs",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--host", self.host,
            "--pidfile", str(self.pidfile),
        ]  # fmt: skip

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
                return log.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def _launch(self, timeout: float) -> None:
        """Spawn dockerd and poll ``/_ping`` until it answers, bounded in time and count."""
        self.spawn()
        self.wait_answering(timeout)

    def spawn(self) -> None:
        """Start the dockerd process and return at once (see :meth:`wait_answering`).

        Several daemons (a Swarm's nodes) are spawned first and awaited after.
        """
        if self.pid is not None:
            raise DockerDaemonError("daemon already running", self._log_tail())
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C in the terminal reaches pytest, whose
            # fixture teardown then stops the daemon in order.
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_answering(self, timeout: float) -> None:
        """Poll ``/_ping`` until the spawned daemon answers; stop it and raise if it does not."""
        proc = self._proc
        if proc is None:
            raise DockerDaemonError("daemon not started", self._log_tail())

        def answering() -> bool:
            if proc.poll() is not None:
                self._proc = None
                raise DockerDaemonError(f"dockerd exited with {proc.returncode}", self._log_tail())
            return ping(self.socket_path)

        def fail(_: str) -> DockerDaemonError:
            self.stop()
            return DockerDaemonError(
                f"dockerd did not answer /_ping within {timeout}s", self._log_tail()
            )

        wait_until("dockerd /_ping", answering, timeout, interval=POLL_INTERVAL_S, fail=fail)

    def _containerd_pid(self) -> int | None:
        pidfile = self.exec_root / "containerd" / "containerd.pid"
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the daemon by PID, wait, SIGKILL if it hangs; idempotent."""
        proc = self._proc
        if proc is None:
            return
        containerd_pid = self._containerd_pid()
        terminate(proc, timeout)
        self._proc = None
        self._reap_containerd(containerd_pid)

    def kill(self) -> None:
        """SIGKILL dockerd by PID, as a crash would; its containerd goes too (not the shims,
        whose containers the next start cleans up). Idempotent."""
        proc = self._proc
        if proc is None:
            return
        containerd_pid = self._containerd_pid()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None
        self._reap_containerd(containerd_pid)
        # A dead containerd can linger as a zombie until init reaps it; the next
        # dockerd would take it for a live one ("containerd is still running") and
        # time out waiting for its socket.
        (self.exec_root / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def kill_all(self) -> None:
        """SIGKILL dockerd, its containerd, shims and containers, by PID: the fast teardown."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None
        kill_processes(processes_under(self.exec_root))

    def _reap_containerd(
        self, containerd_pid: int | None
    ) -> None:  # dockerd started this containerd; after a SIGKILL it can outlive it.
        if containerd_pid is not None:
            for _ in range(50):
                if not _process_alive(containerd_pid, str(self.exec_root)):
                    break
                time.sleep(POLL_INTERVAL_S)
            else:
                os.kill(containerd_pid, signal.SIGKILL)

    def restart(self, timeout: float = START_TIMEOUT_S) -> None:
        """Stop, then start again with the same dirs and socket: images and containers persist."""
        self.stop()
        self._launch(timeout)

    def destroy(self) -> None:
        """Stop and delete the daemon's directories, unless something is still mounted there."""
        self.stop()
        kill_processes(processes_under(self.exec_root))
        _unmount_netns(self.short_dir)
        for path in (self.short_dir, self.base_dir):
            if path.exists() and not _mounts_under(path):
                shutil.rmtree(path, ignore_errors=True)

    def env(self) -> dict[str, str]:
        """Environment for a docker client aimed at this daemon only."""
        env = dict(os.environ)
        env.pop("DOCKER_CONTEXT", None)
        env.pop("DOCKER_TLS_VERIFY", None)
        env.pop("DOCKER_CERT_PATH", None)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.config_dir)
        return env

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: bytes | str | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` against this daemon; :class:`DockerCommandError` if ``check``."""
        data = input.encode() if isinstance(input, str) else input
        cmd = [self.docker_cli, *args]
        raw = subprocess.run(
            cmd, input=data, capture_output=True, env=self.env(), timeout=timeout, check=False
        )
        result = subprocess.CompletedProcess(
            cmd,
            raw.returncode,
            raw.stdout.decode("utf-8", errors="replace"),
            raw.stderr.decode("utf-8", errors="replace"),
        )
        if check and result.returncode != 0:
            raise DockerCommandError(result.returncode, cmd, result.stdout, result.stderr)
        return result
