"""Every startup failure a user can cause ends in one line naming the setting and the fix.

Each case starts a real ``bluegreen serve`` process (as a user would) and expects exit 2
and exactly one line on stderr, ``bluegreen serve: ...``, with no traceback. "Not
permitted" cases drop the capabilities that let root ignore them (``setpriv``), so they
hold when the tests run as root.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.testbed.dockerd import DockerDaemon
from tests.testbed.ports import LOOPBACK, free_port
from tests.testbed.provider import REPO_ROOT

TIMEOUT_S = 30.0
#: Root without these behaves like an ordinary user for files and low ports.
DROP_CAPS = "-dac_override,-dac_read_search,-net_bind_service"


def serve(
    tmp_path: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    unprivileged: bool = False,
    listen: str | None = None,
    own_docker_host: bool = True,
) -> tuple[int, list[str]]:
    """Run ``bluegreen serve`` until it exits (bounded); its exit code and stderr lines."""
    argv: Sequence[str] = [
        sys.executable, "-m", "deploy.cli", "serve",
        "--listen", listen or f"{LOOPBACK}:{free_port()}",
        "--log-format", "json",
        *args,
    ]  # fmt: skip
    if own_docker_host and "--docker-host" not in args:
        argv = [*argv, "--docker-host", f"unix://{tmp_path}/no-docker.sock"]
    if "--state-file" not in args:
        argv = [*argv, "--state-file", str(tmp_path / "state" / "state.json")]
    if unprivileged:
        argv = ["setpriv", f"--bounding-set={DROP_CAPS}", f"--inh-caps={DROP_CAPS}", *argv]
    base = {k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN_")}
    base.pop("DOCKER_HOST", None)
    try:
        result = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"bluegreen serve did not stop: {exc.stderr!r}") from exc
    return result.returncode, result.stderr.splitlines()


def one_line(tmp_path: Path, *args: str, **kwargs: object) -> str:
    """The single stderr line of a failed start (exit 2), without the command prefix."""
    code, lines = serve(tmp_path, *args, **kwargs)  # type: ignore[arg-type]
    assert 2 == code, lines
    assert 1 == len(lines), lines
    assert lines[0].startswith("bluegreen serve: "), lines
    return lines[0].removeprefix("bluegreen serve: ")


def test_port_in_use(tmp_path: Path) -> None:
    """A port another process listens on: the setting, the cause and how to find the user."""
    with socket.create_server((LOOPBACK, 0)) as taken:
        port = taken.getsockname()[1]
        line = one_line(tmp_path, listen=f"{LOOPBACK}:{port}")
    assert (
        f"cannot listen on {LOOPBACK}:{port} (--listen / BLUEGREEN_LISTEN): port {port} is "
        f"already in use; stop what uses it (`ss -ltnp 'sport = :{port}'` shows it) or choose "
        "another port"
    ) == line


def test_privileged_port_not_permitted(tmp_path: Path) -> None:
    """A port below 1024 without CAP_NET_BIND_SERVICE: says so and what to choose."""
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert start > 81, "this kernel lets anyone bind port 81; the case cannot happen here"
    line = one_line(tmp_path, listen=f"{LOOPBACK}:81", unprivileged=True)
    assert (
        f"cannot listen on {LOOPBACK}:81 (--listen / BLUEGREEN_LISTEN): permission denied: "
        "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 up"
    ) == line


def test_listen_address_not_of_this_host(tmp_path: Path) -> None:
    """An address this host does not have (binding sends nothing to it)."""
    port = free_port()
    line = one_line(tmp_path, listen=f"192.0.2.1:{port}")
    assert (
        f"cannot listen on 192.0.2.1:{port} (--listen / BLUEGREEN_LISTEN): 192.0.2.1 is not an "
        "address of this host; use one of its addresses, or 0.0.0.0 for all"
    ) == line


def test_state_directory_read_only(tmp_path: Path) -> None:
    """A state directory the provider cannot write: the setting and three ways out."""
    state_dir = tmp_path / "ro"
    state_dir.mkdir(mode=0o555)
    line = one_line(tmp_path, "--state-file", str(state_dir / "state.json"), unprivileged=True)
    assert (
        f"state directory {state_dir} is not writable (--state-file / BLUEGREEN_STATE_FILE): "
        "mount it read-write, give the provider's user write access, or point --state-file "
        "elsewhere"
    ) == line


def test_state_directory_cannot_be_created(tmp_path: Path) -> None:
    """A missing state directory is created; one that cannot be (a file in the way) is named."""
    (tmp_path / "file").write_text("")
    state_dir = tmp_path / "file" / "sub"
    line = one_line(tmp_path, "--state-file", str(state_dir / "state.json"))
    assert (
        f"cannot create state directory {state_dir} (--state-file / BLUEGREEN_STATE_FILE): "
        "Not a directory; create it, or point --state-file at a writable directory"
    ) == line


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--docker-host", "/var/run/docker.sock"],
            {},
            "invalid --docker-host='/var/run/docker.sock': expected unix:///path/to/docker.sock "
            "or tcp://HOST:PORT (flag --docker-host, env BLUEGREEN_DOCKER_HOST)",
        ),
        (
            [],
            {"DOCKER_HOST": "tcp://10.0.0.5"},
            "invalid DOCKER_HOST='tcp://10.0.0.5': expected tcp://HOST:PORT, e.g. "
            "tcp://127.0.0.1:2375 (flag --docker-host, env BLUEGREEN_DOCKER_HOST)",
        ),
        (
            ["--docker-host", "ssh://me@host"],
            {},
            "invalid --docker-host='ssh://me@host': ssh:// is not supported; forward the "
            "socket (ssh -L) and use unix:// or tcp:// (flag --docker-host, env "
            "BLUEGREEN_DOCKER_HOST)",
        ),
        (
            ["--docker-host", "unix://docker.sock"],
            {},
            "invalid --docker-host='unix://docker.sock': a unix socket needs an absolute path: "
            "unix:///var/run/docker.sock (flag --docker-host, env BLUEGREEN_DOCKER_HOST)",
        ),
    ],
    ids=["no-scheme", "env-no-port", "ssh", "relative-unix"],
)
def test_malformed_docker_host(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    """A Docker host URL the watcher cannot use stops startup instead of retrying forever."""
    assert expected == one_line(tmp_path, *args, env=env, own_docker_host=not env)


def test_unreadable_config_file(tmp_path: Path) -> None:
    """A settings file the provider cannot read, or that is not YAML: one line each."""
    locked = tmp_path / "locked.yml"
    locked.write_text("log_level: debug\n")
    locked.chmod(0o000)
    broken = tmp_path / "broken.yml"
    broken.write_text("log_level: [debug\nother: 1\n")

    denied = one_line(tmp_path, "--config", str(locked), unprivileged=True)
    not_yaml = one_line(tmp_path, env={"BLUEGREEN_CONFIG": str(broken)})

    assert (
        f"cannot read settings file {locked} (--config / BLUEGREEN_CONFIG): Permission denied; "
        "fix the path or the file's permissions"
    ) == denied
    assert not_yaml.startswith(f"settings file {broken} is not valid YAML: "), not_yaml


def test_swarm_needs_a_manager(tmp_path: Path, docker_daemon: DockerDaemon) -> None:
    """--swarm against a reachable daemon that is in no swarm: one line, run it on a manager."""
    line = one_line(tmp_path, "--swarm", "--docker-host", docker_daemon.host)
    assert (
        f"--swarm (BLUEGREEN_SWARM): the Docker daemon at {docker_daemon.host} is not in a "
        "Swarm (inactive), and only a Swarm manager lists services and tasks; run the "
        "provider on a manager node (a global service constrained to node.role == manager), "
        "or drop --swarm"
    ) == line


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--swarm-poll", "0"],
            {},
            "invalid --swarm-poll='0': expected seconds between 0.01 and 86400 (0 is not "
            "allowed) (flag --swarm-poll, env BLUEGREEN_SWARM_POLL)",
        ),
        (
            [],
            {"BLUEGREEN_WEBHOOK_TIMEOUT": "0"},
            "invalid BLUEGREEN_WEBHOOK_TIMEOUT='0': expected seconds between 0.01 and 86400 (0 "
            "is not allowed) (flag --webhook-timeout, env BLUEGREEN_WEBHOOK_TIMEOUT)",
        ),
        (
            ["--events-buffer", "99999999999999999999"],
            {},
            "invalid --events-buffer='99999999999999999999': expected a whole number above 0, "
            "at most 1000000000 (flag --events-buffer, env BLUEGREEN_EVENTS_BUFFER)",
        ),
    ],
    ids=["swarm-poll-0", "webhook-timeout-0", "huge-buffer"],
)
def test_numbers_that_would_spin_or_overflow(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    """A zero period (a busy loop), a zero timeout (none at all) or a buffer too big to
    allocate: one line naming the setting, exit 2, before anything starts."""
    assert expected == one_line(tmp_path, *args, env=env)


def test_a_yaml_mapping_where_a_token_belongs(tmp_path: Path) -> None:
    """``token: {a: 1}`` is not the token "{'a': 1}": one line telling to write one value."""
    config = tmp_path / "bg.yml"
    config.write_text("token: {a: 1}\n")
    assert (
        f"settings file {config}: token must be one value, not a mapping; write it on one "
        'line, e.g. token: "..."'
    ) == one_line(tmp_path, "--config", str(config))


def test_the_starting_line_shows_no_url_credentials(tmp_path: Path) -> None:
    """``provider_starting`` logs the settings: the Traefik metrics URL without its password,
    the tokens and the webhook secret only as set, the hook without its path."""
    config = tmp_path / "bg.yml"
    config.write_text("token: 0755\nwebhook_secret: s3cr3t\n")
    argv = [
        sys.executable, "-m", "deploy.cli", "serve",
        "--listen", f"{LOOPBACK}:{free_port()}",
        "--log-format", "json",
        "--config", str(config),
        "--docker-host", f"unix://{tmp_path}/no-docker.sock",
        "--state-file", str(tmp_path / "state.json"),
        "--traefik-metrics-url", "http://prom:hunter2@127.0.0.1:9/metrics",
        "--webhook", "https://hooks.test/services/T0KEN-PATH",
    ]  # fmt: skip
    base = {k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN_")}
    with subprocess.Popen(
        argv, cwd=REPO_ROOT, env=base, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as proc:
        try:
            starting = _first_line_with(proc, '"provider_starting"')
        finally:
            proc.terminate()
            proc.wait(TIMEOUT_S)
    settings = json.loads(starting)["settings"]
    assert (
        "http://***@127.0.0.1:9/metrics",
        ["https://hooks.test/…"],
        "set",
        "set",
    ) == (
        settings["traefik_metrics_url"],
        settings["webhooks"],
        settings["token"],
        settings["webhook_secret"],
    )
    assert [] == [s for s in ("hunter2", "T0KEN", "0755", "s3cr3t") if s in starting]


def _first_line_with(proc: subprocess.Popen[bytes], needle: str) -> str:
    """The first stdout line of ``proc`` holding ``needle`` (bounded by ``TIMEOUT_S``).

    Reads the pipe's descriptor itself: a buffered reader may hold lines ``select`` cannot see.
    """
    assert proc.stdout is not None
    fd, seen = proc.stdout.fileno(), b""
    deadline = time.monotonic() + TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        seen += chunk
        for line in seen.decode(errors="replace").split("\n")[:-1]:  # complete lines only
            if needle in line:
                return line
        if not chunk:
            break  # the process ended
    raise AssertionError(f"no {needle} line in {seen[-2000:]!r}")
