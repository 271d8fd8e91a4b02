"""``bluegreen serve`` as a real subprocess, so tests can SIGKILL and restart it.

Each :class:`ProviderProcess` owns a port on 127.0.0.1 and a state file in its
own directory; :meth:`ProviderProcess.restart` brings it back on the same port
(Traefik keeps polling the same URL) with the same state file.  Signals go to
the PID we started, never by name.  Its JSON log goes to ``provider.log``.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.testbed.ports import LOOPBACK, free_port
from tests.testbed.process import LoggedProcess

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ApiAnswer:
    """One answer of the provider's API; ``json`` is ``None`` for a non-JSON body."""

    status: int
    body: str
    json: Any


def api_request(
    port: int,
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> ApiAnswer:
    """One HTTP request to ``127.0.0.1:port``; any status is an answer, not an exception."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        sent = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        text = response.read().decode("utf-8", errors="replace")
    finally:
        conn.close()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return ApiAnswer(response.status, text, parsed)


class ProviderProcess(LoggedProcess):
    """One ``bluegreen serve`` subprocess bound to ``127.0.0.1:port``."""

    label = "provider"
    poll_interval_s = POLL_INTERVAL_S

    def __init__(
        self,
        work_dir: Path,
        *,
        docker_host: str,
        label_prefix: str = "bluegreen",
        token: str | None = None,
        provider_token: str | None = None,
        promote_after: float = 0.5,
        extra_args: Sequence[str] = (),
        token_file: Path | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.docker_host = docker_host
        self.label_prefix = label_prefix
        #: With ``token_file`` the process gets ``--token-file`` (the token stays off its argv).
        self.token_file = token_file
        if token_file is not None:
            token = token_file.read_text().strip()
        self.token = token if token is not None else secrets.token_hex(16)
        self.provider_token = provider_token
        self.promote_after = promote_after
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.state_file = work_dir / "state.json"
        self.log_path = work_dir / "provider.log"
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses --------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def traefik_endpoint(self) -> str:
        """What Traefik's ``--providers.http.endpoint`` points at."""
        return f"{self.url}/traefik"

    def argv(self) -> list[str]:
        args = [
            sys.executable, "-m", "deploy.cli", "serve",
            "--listen", f"{LOOPBACK}:{self.port}",
            "--state-file", str(self.state_file),
            "--docker-host", self.docker_host,
            "--label-prefix", self.label_prefix,
            *(
                ["--token-file", str(self.token_file)]
                if self.token_file is not None
                else ["--token", self.token]
            ),
            "--promote-after", str(self.promote_after),
            "--log-format", "json",
            "--log-level", "info",
        ]  # fmt: skip
        if self.provider_token is not None:
            args += ["--provider-token", self.provider_token]
        return args + self.extra_args

    # -- lifecycle --------------------------------------------------------------

    def start(self, *, wait: bool = True, timeout: float = START_TIMEOUT_S) -> None:
        """Launch the process; with ``wait``, return once ``/healthz`` answers 200."""
        if self.pid is not None:
            raise RuntimeError("provider already running")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN_")}
        env.pop("DOCKER_HOST", None)
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "ab") as log:
            log.write(f"--- start #{self.starts + 1} ---\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv(),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        if wait:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        """``GET /healthz`` answers 200 (the process serves HTTP)."""
        self.wait_for(
            "GET /healthz", lambda: self.get("/healthz", timeout=1).status == 200, timeout
        )

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """``GET /readyz`` answers 200 (the first Docker sync is done)."""
        self.wait_for("GET /readyz", lambda: self.get("/readyz", timeout=1).status == 200, timeout)

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM by PID, wait, SIGKILL fallback; return the exit code. Idempotent."""
        return super().terminate(timeout)

    def restart(self, *, kill: bool = False, wait: bool = True) -> None:
        """Stop (SIGKILL if ``kill``, else SIGTERM) and start again: same port, same state file."""
        if kill:
            self.kill()
        else:
            self.terminate()
        self.start(wait=wait)

    # -- API ----------------------------------------------------------------------

    def get(
        self, path: str, *, timeout: float = 5.0, headers: Mapping[str, str] | None = None
    ) -> ApiAnswer:
        return api_request(self.port, "GET", path, headers=headers, timeout=timeout)

    def post(self, path: str, body: Mapping[str, Any], *, token: str | None = None) -> ApiAnswer:
        """POST JSON with ``Authorization: Bearer <token>`` (default: the provider's token)."""
        auth = {"Authorization": f"Bearer {token or self.token}"}
        return api_request(self.port, "POST", path, body=body, headers=auth)

    def switch(self, service: str, color: str | None = None, *, force: bool = False) -> ApiAnswer:
        body: dict[str, Any] = {"service": service, "force": force}
        if color is not None:
            body["color"] = color
        return self.post("/switch", body)

    def rollback(self, service: str) -> ApiAnswer:
        return self.post("/rollback", {"service": service})

    def status(self, service: str) -> dict[str, Any]:
        answer = self.get(f"/status/{service}")
        if answer.status != 200:
            raise RuntimeError(f"/status/{service}: {answer.status} {answer.body[:300]}")
        data: dict[str, Any] = answer.json
        return data

    def history(self, service: str | None = None) -> list[dict[str, Any]]:
        path = "/history" + (f"?service={service}" if service else "")
        answer = self.get(path)
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status} {answer.body[:300]}")
        records: list[dict[str, Any]] = answer.json["history"]
        return records

    def active(self, service: str) -> str | None:
        """The active color per ``/status``, or ``None`` if the service is not known yet."""
        answer = self.get(f"/status/{service}")
        if answer.status != 200:
            return None
        active: str | None = answer.json.get("active")
        return active

    def routable(self, service: str, color: str) -> int:
        """How many routable ``color`` containers the provider sees (0 if unknown)."""
        answer = self.get(f"/status/{service}")
        if answer.status != 200:
            return 0
        count: int = answer.json["colors"][color]["routable"]
        return count

    def wait_routable(
        self, service: str, color: str, count: int = 1, timeout: float = 15.0
    ) -> None:
        """Poll until the provider sees at least ``count`` routable ``color`` containers."""
        self.wait_for(
            f"{service} {color} routable>={count}",
            lambda: self.routable(service, color) >= count,
            timeout,
        )

    def wait_active(self, service: str, color: str, timeout: float = 15.0) -> None:
        """Poll ``/status/<service>`` until its active color is ``color``."""
        self.wait_for(f"{service} active={color}", lambda: self.active(service) == color, timeout)


class ProviderFactory:
    """Starts providers in their own directories; stops every one at teardown."""

    def __init__(self, base_dir: Path, docker_host: str) -> None:
        self.base_dir = base_dir
        self.docker_host = docker_host
        self.started: list[ProviderProcess] = []

    def create(self, **options: Any) -> ProviderProcess:
        """A provider, not started yet (options as :class:`ProviderProcess`)."""
        options.setdefault("docker_host", self.docker_host)
        process = ProviderProcess(self.base_dir / f"provider-{len(self.started)}", **options)
        self.started.append(process)
        return process

    def start(self, **options: Any) -> ProviderProcess:
        """Create and start a provider; returns once ``/healthz`` answers."""
        process = self.create(**options)
        process.start()
        return process

    def stop_all(self) -> None:
        """SIGTERM (then SIGKILL) every provider started here."""
        for process in self.started:
            process.terminate()
