"""Is ``deploy --image``'s image on this Docker host? Asked before anything is changed.

A deploy whose image exists neither here nor in a registry used to fail late:
``compose up`` stopped the idle color's containers, then failed to pull. The
local half is one ``GET /images/{name}/json`` to the engine compose talks to
(``DOCKER_HOST``, else the default socket); an image that is not here is then
pulled through compose itself (``deploy/compose.py``), with the user's registry
credentials, before anything is stopped. Swarm mode asks the same of its
manager (``deploy/swarm_services.py``).
"""

from __future__ import annotations

import http.client
import socket
import urllib.parse
from collections.abc import Mapping

from deploy.compose_output import unreachable_message
from deploy.errors import EngineUnreachable

DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT_S = 10.0


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the engine's unix socket."""

    def __init__(self, path: str, timeout: float = TIMEOUT_S) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _connection(docker_host: str, timeout: float = TIMEOUT_S) -> http.client.HTTPConnection | None:
    """A connection to the engine at ``docker_host``; ``None`` for one we cannot open
    ourselves (ssh://, or TLS: compose has what those need)."""
    scheme, _, rest = docker_host.partition("://")
    if scheme == "unix" and rest.startswith("/"):
        return UnixConnection(rest, timeout)
    if scheme == "tcp" and rest:
        parts = urllib.parse.urlsplit(f"http://{rest}")
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    return None


def connection(
    environ: Mapping[str, str], timeout: float = TIMEOUT_S
) -> http.client.HTTPConnection:
    """A connection to the engine compose uses; :class:`EngineUnreachable` if not one we open."""
    conn = _connection(environ.get("DOCKER_HOST", "").strip() or DEFAULT_HOST, timeout)
    if conn is None:
        raise EngineUnreachable(
            f"DOCKER_HOST={environ.get('DOCKER_HOST')} is not a socket the CLI opens itself"
        )
    return conn


def image_present(environ: Mapping[str, str], image: str) -> bool | None:
    """Whether the engine compose uses has ``image``; ``None``: cannot tell from here.

    :class:`EngineUnreachable` when nothing answers there: compose would fail too.
    """
    if environ.get("DOCKER_TLS_VERIFY") or environ.get("DOCKER_CONTEXT"):
        return None
    conn = _connection(environ.get("DOCKER_HOST", "").strip() or DEFAULT_HOST)
    if conn is None:
        return None
    try:
        conn.request("GET", f"/images/{urllib.parse.quote(image, safe='')}/json")
        response = conn.getresponse()
        body = response.read()
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise EngineUnreachable(unreachable_message(environ)) from exc
    except OSError:
        return None
    finally:
        conn.close()
    if response.status == 200:
        return True
    if response.status == 404 and body:
        return False
    return None  # anything else (a proxy in between?): let compose decide
