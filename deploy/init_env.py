"""``bluegreen init``: prepare the directory of a compose file for ``compose up -d``.

It writes what a new shell must not have to remember into ``.env`` (mode 0600),
which compose reads by itself and the CLI reads for what the environment does
not set:

- ``DOCKER_SOCKET``: the engine's unix socket, from ``DOCKER_HOST`` or the
  default (``/var/run/docker.sock``, else rootless Docker's
  ``$XDG_RUNTIME_DIR/docker.sock``); the compose file bind-mounts it;
- ``DOCKER_HOST``: the same socket as compose and the CLI reach it, when it is
  not the default one (a new shell would look at ``/var/run/docker.sock``);
- ``DOCKER_GID``: the group the provider needs to read that socket, from the
  socket itself, or ``0`` for rootless Docker (whose containers see the
  socket's owner as root);
- ``BLUEGREEN_TOKEN_FILE`` and ``BLUEGREEN_URL`` for the CLI;
- ``COMPOSE_FILE`` when given with ``-f``, so ``docker-compose up -d`` and the CLI in
  that directory need no ``-f``;
- ``BLUEGREEN_HTTP_PUBLISH`` / ``BLUEGREEN_API_PUBLISH`` (where compose publishes
  Traefik's port 80 and the provider's API) and ``BLUEGREEN_BASE_IMAGE`` (the
  provider image's base) when given in init's environment; the URL follows the API's.

The tokens themselves go into ``secrets/`` (a 0700 directory; the compose file
hands them to the containers as Docker secrets), generated once: existing
tokens are kept unless ``--force``, because the running provider and Traefik
use them. Run as root, each token file is 0600 and belongs to the provider
image's user (10001), who reads it through the bind mount. No symbolic link is
followed there: a linked ``secrets/`` or token file is refused
(``deploy/safe_files.py``), so a project directory others can write cannot turn
a root ``init`` against a file of their choice.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy import envfile, safe_files
from deploy.errors import InitError

DEFAULT_SOCKET = Path("/var/run/docker.sock")
SECRETS_DIR = "secrets"
TOKEN_NAMES = ("bluegreen_token", "bluegreen_provider_token")
DEFAULT_URL = "http://127.0.0.1:8080"
#: Taken from init's environment into ``.env`` when set there. ``BLUEGREEN_BASE_IMAGE``
#: (the provider image's base, for a build without a registry) is a build argument: given
#: to one ``up -d`` only, it changes compose's config hash, and the next plain ``up -d``
#: recreates the provider and Traefik.
PUBLISH_KEYS = ("BLUEGREEN_HTTP_PUBLISH", "BLUEGREEN_API_PUBLISH", "BLUEGREEN_BASE_IMAGE")
INFO_TIMEOUT_S = 5.0
HEADER = """\
Written by `bluegreen init`; compose reads it, and so does the bluegreen CLI for
what the environment does not set. The tokens are in ./secrets (keep both private)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=INFO_TIMEOUT_S)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(INFO_TIMEOUT_S)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def socket_path(environ: Mapping[str, str]) -> Path:
    """The engine's socket: ``DOCKER_HOST`` (unix only), else the system or rootless default."""
    host = environ.get("DOCKER_HOST", "").strip()
    if host:
        scheme, _, rest = host.partition("://")
        if scheme != "unix" or not rest.startswith("/"):
            raise InitError(
                f"DOCKER_HOST={host!r} is not a unix socket; the provider container mounts "
                "the engine's socket, so run init on the Docker host with DOCKER_HOST unset "
                "or set to unix:///path/to/docker.sock"
            )
        return Path(rest)
    runtime = environ.get("XDG_RUNTIME_DIR", "").strip()
    if not DEFAULT_SOCKET.exists() and runtime and (Path(runtime) / "docker.sock").exists():
        return Path(runtime) / "docker.sock"
    return DEFAULT_SOCKET


def engine_info(path: Path) -> dict[str, Any]:
    """``GET /info`` through the socket: proves an engine answers there."""
    conn = _UnixConnection(str(path))
    try:
        conn.request("GET", "/info")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise InitError(f"the Docker engine at {path} answered GET /info {response.status}")
        doc: dict[str, Any] = json.loads(body)
        return doc
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InitError(
            f"no Docker engine answers at {path} ({reason}); start Docker, or set DOCKER_HOST="
            "unix:///path/to/docker.sock (rootless: unix://$XDG_RUNTIME_DIR/docker.sock)"
        ) from exc
    finally:
        conn.close()


def docker_gid(socket_gid: int, info: Mapping[str, Any]) -> int:
    """The group to add to the provider: the socket's, or root's under rootless Docker."""
    options = info.get("SecurityOptions") or []
    if any("name=rootless" in str(option) for option in options):
        return 0
    return socket_gid


@dataclass(frozen=True)
class InitResult:
    """What init wrote, for the summary it prints."""

    env_path: Path
    values: dict[str, str]
    created: list[str]

    def engine_env(self) -> dict[str, str]:
        """``DOCKER_HOST`` of the engine init found, for what runs next."""
        return {"DOCKER_HOST": f"unix://{self.values['DOCKER_SOCKET']}"}

    def lines(self) -> list[str]:
        shown = ", ".join(f"{k}={v}" for k, v in self.values.items())
        tokens = (
            f"made new tokens in {self.env_path.parent / SECRETS_DIR}: {', '.join(self.created)}"
            if self.created
            else f"kept the tokens in {self.env_path.parent / SECRETS_DIR} (--force makes new "
            "ones; then recreate the provider and Traefik)"
        )
        where = self.env_path.parent
        place = "" if where == Path(".") else f"cd {shlex.quote(str(where))} && "
        return [
            f"wrote {self.env_path} ({shown})",
            tokens,
            f"next: {place}docker-compose up -d   (or: docker compose up -d)",
        ]


def _relative(file: str, directory: Path) -> str:
    """``file`` as compose reads COMPOSE_FILE from ``.env``: relative to its directory."""
    try:
        return str(Path(file).resolve().relative_to(directory.resolve()))
    except ValueError:
        return str(Path(file).resolve())


def write_tokens(secrets_dir: Path, *, force: bool) -> list[str]:
    """Make the missing (or, ``force``, all) token files; the names made.

    :class:`~deploy.errors.UnsafeFile` if ``secrets_dir`` or a token file is a link.
    """
    created: list[str] = []
    try:
        with safe_files.private_directory(secrets_dir) as directory:
            for name in TOKEN_NAMES:
                existing = safe_files.read_token(directory, name, secrets_dir / name)
                if force or not (existing or "").strip():
                    safe_files.write_token(directory, name, secrets.token_hex(24) + "\n")
                    created.append(name)
    except OSError as exc:
        raise InitError(f"cannot write the tokens in {secrets_dir}: {exc.strerror}") from exc
    return created


def init(compose_files: list[str], environ: Mapping[str, str], *, force: bool) -> InitResult:
    """Write ``.env`` and the token files beside the compose file."""
    env_path = envfile.beside(compose_files, environ)
    directory = env_path.parent
    if not directory.is_dir():
        raise InitError(f"{directory} is not a directory (the compose file's)")
    path = socket_path(environ)
    try:
        socket_gid = path.stat().st_gid
    except OSError as exc:
        raise InitError(
            f"no Docker socket at {path} ({exc.strerror}); start Docker, or set DOCKER_HOST="
            "unix:///path/to/docker.sock (rootless: unix://$XDG_RUNTIME_DIR/docker.sock)"
        ) from exc
    gid = docker_gid(socket_gid, engine_info(path))
    created = write_tokens(directory / SECRETS_DIR, force=force)
    before = envfile.read(env_path)
    values = {"DOCKER_SOCKET": str(path), "DOCKER_GID": str(gid)}
    if path != DEFAULT_SOCKET:
        # Compose (v1 and v2) and the CLI read DOCKER_HOST from .env: a new shell finds
        # the engine without an export.
        values["DOCKER_HOST"] = f"unix://{path}"
    if compose_files:
        values["COMPOSE_FILE"] = os.pathsep.join(_relative(f, directory) for f in compose_files)
    for key in PUBLISH_KEYS:
        if environ.get(key, "").strip():
            values[key] = environ[key].strip()
    # The user's own choices stay; only what is missing gets the default.
    values["BLUEGREEN_URL"] = before.get("BLUEGREEN_URL") or DEFAULT_URL
    if api := values.get("BLUEGREEN_API_PUBLISH"):
        values["BLUEGREEN_URL"] = f"http://{api if ':' in api else f'127.0.0.1:{api}'}"
    values["BLUEGREEN_TOKEN_FILE"] = (
        before.get("BLUEGREEN_TOKEN_FILE") or f"{SECRETS_DIR}/{TOKEN_NAMES[0]}"
    )
    envfile.update(env_path, values, header=HEADER)
    return InitResult(env_path, values, created)
