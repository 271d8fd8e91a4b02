"""``bluegreen init`` against the real engine, and the CLI reading the ``.env`` it writes.

``init`` runs as a subprocess (as a user runs it) with ``DOCKER_HOST`` on the private
test daemon; ``docker-compose config`` then shows that compose itself picks the
values up from ``.env`` with nothing exported.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import envfile
from deploy.init_env import docker_gid
from tests.testbed.compose import REPO_ROOT, find_compose_v1
from tests.testbed.dockerd import DockerDaemon

TIMEOUT_S = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without anything bluegreen, compose or Docker would read."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BLUEGREEN_", "COMPOSE_", "DOCKER_"))
    }
    env.update(extra)
    return env


def bluegreen(cwd: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *argv],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding a copy of the example compose file."""
    directory = tmp_path / "project"
    directory.mkdir()
    shutil.copy(REPO_ROOT / "docker-compose.example.yml", directory / "docker-compose.yml")
    return directory


def test_init_writes_env_and_tokens_and_keeps_them_on_a_rerun(
    project: Path, tmp_path: Path, docker_daemon: DockerDaemon
) -> None:
    """.env (0600) gets the socket from DOCKER_HOST and its group; tokens go to secrets/
    (0700 dir); a rerun keeps the tokens, --force replaces them."""
    env = clean_env(DOCKER_HOST=docker_daemon.host)
    compose_file = str(project / "docker-compose.yml")

    first = bluegreen(tmp_path, "init", "-f", compose_file, env=env)
    tokens = {p.name: p.read_text() for p in (project / "secrets").iterdir()}
    again = bluegreen(tmp_path, "init", "-f", compose_file, env=env)
    kept = {p.name: p.read_text() for p in (project / "secrets").iterdir()}
    forced = bluegreen(tmp_path, "init", "-f", compose_file, "--force", env=env)
    replaced = {p.name: p.read_text() for p in (project / "secrets").iterdir()}

    assert (0, 0, 0) == (first.returncode, again.returncode, forced.returncode), first.stderr
    values = envfile.read(project / ".env")
    assert {
        "DOCKER_SOCKET": docker_daemon.socket_path,
        "DOCKER_HOST": docker_daemon.host,
        "DOCKER_GID": str(os.stat(docker_daemon.socket_path).st_gid),
        "BLUEGREEN_URL": "http://127.0.0.1:8080",
        "BLUEGREEN_TOKEN_FILE": "secrets/bluegreen_token",
        "COMPOSE_FILE": "docker-compose.yml",
    } == values
    assert 0o600 == stat.S_IMODE((project / ".env").stat().st_mode)
    assert 0o700 == stat.S_IMODE((project / "secrets").stat().st_mode)
    assert {"bluegreen_token", "bluegreen_provider_token"} == set(tokens)
    assert all(len(t.strip()) == 48 and t.endswith("\n") for t in tokens.values())
    assert tokens == kept
    assert all(replaced[name] != tokens[name] for name in tokens)
    assert "made new tokens" in first.stdout and "kept the tokens" in again.stdout
    assert (
        f"next: cd {project} && docker-compose up -d   (or: docker compose up -d)\n"
    ) in first.stdout


def test_compose_reads_what_init_wrote_with_nothing_exported(
    project: Path, tmp_path: Path, docker_daemon: DockerDaemon
) -> None:
    """After init, `docker-compose config` in a bare environment resolves the socket bind,
    the group and the secrets from .env: no export block needed in a new shell."""
    init = bluegreen(
        project, "init", env=clean_env(DOCKER_HOST=docker_daemon.host)
    )  # no -f: the current directory
    assert 0 == init.returncode, init.stderr

    result = subprocess.run(
        [find_compose_v1(), "config"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    proxy = config["services"]["socket-proxy"]  # the one service with the socket
    socket_mount = [v for v in proxy["volumes"] if v.get("target") == "/var/run/docker.sock"]
    assert [docker_daemon.socket_path] == [v["source"] for v in socket_mount]
    assert [str(os.stat(docker_daemon.socket_path).st_gid)] == [str(g) for g in proxy["group_add"]]
    assert (
        str(project / "secrets" / "bluegreen_token") == config["secrets"]["bluegreen_token"]["file"]
    )


def test_a_new_shell_runs_compose_on_a_non_default_socket(
    project: Path, docker_daemon: DockerDaemon
) -> None:
    """init records DOCKER_HOST (the test daemon's socket is not /var/run/docker.sock), so
    `docker-compose ps` in a shell that exports nothing reaches the engine (before: a
    60-line traceback ending in "Error while fetching server API version")."""
    init = bluegreen(project, "init", env=clean_env(DOCKER_HOST=docker_daemon.host))
    assert 0 == init.returncode, init.stderr

    result = subprocess.run(
        [find_compose_v1(), "ps"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )

    assert 0 == result.returncode, result.stderr[-500:]
    assert "Traceback" not in result.stderr
    assert docker_daemon.host == envfile.read(project / ".env")["DOCKER_HOST"]


def test_init_records_the_provider_base_image(project: Path, docker_daemon: DockerDaemon) -> None:
    """BLUEGREEN_BASE_IMAGE given to init goes to .env: a later plain `up -d` builds (and
    hashes) the provider's definition with it, so nothing is recreated for its lack."""
    env = clean_env(DOCKER_HOST=docker_daemon.host, BLUEGREEN_BASE_IMAGE="my-python:3.11")
    init = bluegreen(project, "init", env=env)
    assert 0 == init.returncode, init.stderr

    result = subprocess.run(
        [find_compose_v1(), "config"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )

    assert 0 == result.returncode, result.stderr[-500:]
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    assert "my-python:3.11" == config["services"]["bluegreen"]["build"]["args"]["BASE"]


@pytest.mark.parametrize(
    ("docker_host", "message"),
    [
        ("unix://{tmp}/nothing.sock", "no Docker socket at {tmp}/nothing.sock"),
        ("tcp://127.0.0.1:2375", "DOCKER_HOST='tcp://127.0.0.1:2375' is not a unix socket"),
    ],
    ids=["no-socket", "tcp"],
)
def test_init_without_a_usable_engine_says_what_to_do(
    project: Path, tmp_path: Path, docker_host: str, message: str
) -> None:
    """No socket, or a TCP engine: exit 1, one line naming DOCKER_HOST; nothing written."""
    env = clean_env(DOCKER_HOST=docker_host.format(tmp=tmp_path))

    result = bluegreen(project, "init", env=env)

    assert 1 == result.returncode
    assert 1 == len(result.stderr.splitlines()), result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("bluegreen init: " + message.format(tmp=tmp_path)), line
    assert "DOCKER_HOST" in line
    assert not (project / ".env").exists()


def test_init_refuses_a_socket_no_engine_answers(
    project: Path, tmp_path: Path, docker_daemon: DockerDaemon
) -> None:
    """A socket file no engine listens on: exit 1 before anything is written."""
    import socket

    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: connect is refused
        result = bluegreen(project, "init", env=clean_env(DOCKER_HOST=f"unix://{path}"))

    assert 1 == result.returncode
    assert f"bluegreen init: no Docker engine answers at {path}" in result.stderr
    assert not (project / ".env").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["name=seccomp,profile=builtin"], 994),
        (["name=seccomp,profile=builtin", "name=rootless", "name=cgroupns"], 0),
        ([], 994),
    ],
    ids=["rootful", "rootless", "no-options"],
)
def test_docker_gid_is_root_under_rootless_docker(options: list[str], expected: int) -> None:
    """Rootless Docker maps the socket's owner to root in containers, so the group is 0."""
    assert expected == docker_gid(994, {"SecurityOptions": options})


def test_env_file_update_keeps_other_lines_and_parses_quotes(tmp_path: Path) -> None:
    """update() replaces its keys in place, keeps comments and other keys, quotes when needed;
    the file's mode (0644 from write_text) loses only its bits for others."""
    path = tmp_path / ".env"
    path.write_text("# mine\nFOO=1\nDOCKER_GID=5\nexport BAR='a b'\nDOCKER_GID=6\n")

    envfile.update(path, {"DOCKER_GID": "994", "NEW": 'x "y"'})

    assert '# mine\nFOO=1\nDOCKER_GID=994\nexport BAR=\'a b\'\nNEW="x \\"y\\""\n' == (
        path.read_text()
    )
    assert {"FOO": "1", "DOCKER_GID": "994", "BAR": "a b", "NEW": 'x "y"'} == envfile.read(path)
    assert 0o640 == stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_a_bare_up_after_the_offline_build_recreates_nothing(
    project: Path, docker_daemon: DockerDaemon, busybox_image: str
) -> None:
    """The provider built offline as the guide types it (BLUEGREEN_BASE_IMAGE on the
    command line of the first `up -d`), then a bare `up -d` in a new shell: with the base
    recorded in .env by init, compose's config hash is the same and the provider container
    is not recreated (same id). Before, the build argument fell back to python:3.11-slim
    and the second `up -d` recreated the provider (and with it Traefik)."""
    from tests.testbed.images import find_busybox, rootfs_tar
    from tests.testbed.socket_proxy import PROXY_IMAGE

    busybox = find_busybox()
    assert busybox is not None
    # Stand-ins compose finds, so it builds nothing here: the provider, and the socket
    # proxy it depends on (its real image is test_socket_proxy.py's and the quickstart's).
    for stand_in in ("traefik-bluegreen:local", PROXY_IMAGE):
        docker_daemon.docker(
            "import", "--change", 'CMD ["sleep", "3600"]', "--change", "ENV PATH=/bin",
            "-", stand_in, input=rootfs_tar(busybox),
        )  # fmt: skip
    base = "my-python:3.11"
    init = bluegreen(
        project, "init", env=clean_env(DOCKER_HOST=docker_daemon.host, BLUEGREEN_BASE_IMAGE=base)
    )
    assert 0 == init.returncode, init.stderr

    def compose(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [find_compose_v1(), *args],
            cwd=project,
            env=clean_env(**extra),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S * 3,
            check=False,
        )

    try:
        first = compose("up", "-d", "bluegreen", BLUEGREEN_BASE_IMAGE=base)
        before = compose("ps", "-q", "bluegreen").stdout.strip()
        again = compose("up", "-d", "bluegreen")
        after = compose("ps", "-q", "bluegreen").stdout.strip()
    finally:
        compose("down", "-v", "-t", "1")
        docker_daemon.docker("rmi", "-f", "traefik-bluegreen:local", PROXY_IMAGE, check=False)

    assert (0, 0) == (first.returncode, again.returncode), first.stderr + again.stderr
    assert before and before == after, again.stderr
    assert "Recreating" not in again.stderr
