"""Driving Docker Compose: ``docker compose`` (v2) when present, else ``docker-compose`` (v1).

Only the handful of commands a blue/green rollout needs, each spelled the same
in v1 and v2: ``config --services``, ``up -d --no-deps --force-recreate``,
``ps -a -q``, ``stop`` and ``start``. The new image reaches the compose file
through an environment variable: the color's own, ``<SERVICE>_<COLOR>_IMAGE``
(the compose service's name upper-cased, e.g. ``WEB_GREEN_IMAGE`` for
``web-green``: the file says ``image: ${WEB_GREEN_IMAGE:-myapp:1.0}``), or the
shared ``BLUEGREEN_IMAGE``. A deploy records the color's own variable in the
``.env`` beside the compose file, so a later plain ``up -d`` finds every color's
definition unchanged and recreates nothing.

``BLUEGREEN_COMPOSE`` overrides the detection with a command line, e.g.
``BLUEGREEN_COMPOSE="docker-compose"`` or ``"docker compose"``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from deploy import compose_output, envfile, fast_stop, image_check, signals, smoke_option
from deploy.errors import (
    ComposeError,
    ComposeFileProblem,
    ComposeNotFound,
    EngineUnreachable,
    ImageUnavailable,
)

IMAGE_ENV = "BLUEGREEN_IMAGE"
COMPOSE_ENV = "BLUEGREEN_COMPOSE"
DETECT_TIMEOUT_S = 20.0
#: ``up`` may pull an image; ``stop`` waits for the containers' stop grace period.
COMMAND_TIMEOUT_S = 900.0
QUERY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ComposeCommand:
    """How to invoke compose here, and which generation it is (``v1`` or ``v2``)."""

    argv: tuple[str, ...]
    generation: str

    def __str__(self) -> str:
        return " ".join(self.argv)


def find_compose(environ: Mapping[str, str] | None = None) -> ComposeCommand:
    """The compose command to use, or :class:`ComposeNotFound` with an install hint."""
    env = os.environ if environ is None else environ
    path = env.get("PATH", os.defpath)
    override = env.get(COMPOSE_ENV, "").strip()
    if override:
        argv = tuple(shlex.split(override))
        if not argv or shutil.which(argv[0], path=path) is None:
            raise ComposeNotFound(
                f"{COMPOSE_ENV}={override!r} names no program on PATH; "
                'set it to "docker compose" or "docker-compose", or unset it'
            )
        return ComposeCommand(argv, "v1" if argv[-1].endswith("docker-compose") else "v2")
    docker = shutil.which("docker", path=path)
    if docker is not None:
        try:
            probe = subprocess.run(
                [docker, "compose", "version"],
                capture_output=True,
                timeout=DETECT_TIMEOUT_S,
                env=dict(env),
                check=False,
                process_group=0,  # see Compose._run: nothing it leaves may signal us
            )
        except (OSError, subprocess.SubprocessError):
            probe = None
        if probe is not None and probe.returncode == 0:
            return ComposeCommand((docker, "compose"), "v2")
    legacy = shutil.which("docker-compose", path=path)
    if legacy is not None:
        return ComposeCommand((legacy,), "v1")
    raise ComposeNotFound(
        "Docker Compose not found: neither `docker compose` (v2 plugin) nor `docker-compose` "
        "(v1) is on PATH. Install one: Debian and Ubuntu `apt-get install docker-compose` "
        "(Ubuntu also has docker-compose-v2); with Docker's own apt repository "
        f"`apt-get install docker-compose-plugin`. Or name the command in {COMPOSE_ENV}."
    )


def image_variable(service: str) -> str:
    """The per-color image variable of a compose service: ``web-green`` → ``WEB_GREEN_IMAGE``."""
    return re.sub(r"[^A-Za-z0-9]", "_", service).upper() + "_IMAGE"


def as_typed(argv: Sequence[str]) -> list[str]:
    """``argv`` as the user types it: ``docker-compose``, not ``/usr/bin/docker-compose``.

    The program's base name, when PATH finds that same program by it; else the path.
    """
    if not argv:
        return []
    program = argv[0]
    name = os.path.basename(program)
    if name != program and shutil.which(name) == program:
        program = name
    return [program, *argv[1:]]


#: After compose exited, how long its output may take to drain before we stop copying it.
DRAIN_OUTPUT_S = 10.0
#: The same after an interrupt: compose was signalled; what is left of its output can go.
DRAIN_AFTER_INTERRUPT_S = 1.0


def stream_lines(
    argv: Sequence[str], environ: Mapping[str, str], timeout: float, on_line: Callable[[str], None]
) -> int:
    """Run ``argv``, handing each line of its output (stdout and stderr) to ``on_line``.

    The child leads its own process group: a SIGTERM or Ctrl-C that interrupts the
    wait is forwarded to that group (``deploy/signals.py``), so compose stops now
    instead of finishing its ``up`` after our cleanup; then the interrupt goes on.
    A timeout kills the group and raises ``subprocess.TimeoutExpired``. Shared by
    compose's own commands and the release step's one-off (``deploy/release_step.py``).
    """
    with signals.HeldInterrupts() as held:
        proc = subprocess.Popen(
            list(argv),
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            process_group=0,
        )
        assert proc.stdout is not None
        stream = proc.stdout

        def copy() -> None:
            with contextlib.suppress(ValueError, OSError):  # closed under us at exit
                for line in stream:
                    on_line(line)

        reader = threading.Thread(target=copy, name="compose-output", daemon=True)
        reader.start()
        drain = DRAIN_OUTPUT_S
        try:
            held.release()  # an interrupt that came while compose started is raised here
            return proc.wait(timeout=timeout)
        except KeyboardInterrupt as interrupt:
            drain = DRAIN_AFTER_INTERRUPT_S
            signals.stop_child(proc, signals.signal_of(interrupt))
            raise
        except subprocess.TimeoutExpired:
            drain = DRAIN_AFTER_INTERRUPT_S
            signals.stop_child(proc, signal.SIGKILL)
            raise
        finally:
            # A grandchild may still hold the pipe: never block on the reader (nor close
            # the stream under it, which waits for its lock); a daemon thread dies with us.
            reader.join(timeout=drain)
            if not reader.is_alive():
                stream.close()


def _streamed(
    argv: Sequence[str], environ: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``, copying its output line by line, indented, to our stderr."""
    output = compose_output.ComposeOutput(_write_stderr)
    code = stream_lines(argv, environ, timeout, output.feed)
    text = output.text()
    if code != 0 and compose_output.engine_unreachable(text):
        raise EngineUnreachable(compose_output.unreachable_message(environ))
    output.flush_held()
    return subprocess.CompletedProcess(list(argv), code, "", "")


def _write_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


class Compose:
    """One compose project: its files (``-f``) and name (``-p``), both optional."""

    noun = "compose"

    def __init__(
        self,
        command: ComposeCommand,
        files: Sequence[str] = (),
        project: str | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        image_variable_of: Callable[[str], str] = image_variable,
    ) -> None:
        self.command = command
        #: A service's own image variable (``deploy/per_color_compose.py`` adds the color).
        self.image_variable_of = image_variable_of
        self.files = tuple(files)
        self.project = project
        self.environ = dict(os.environ if environ is None else environ)

    def describe(self) -> str:
        """``docker-compose -f x.yml -p app``: what the user would type."""
        return shlex.join(as_typed(self._argv()))

    def hint(self, verb: str, name: str) -> str:
        """``docker-compose -p app stop web-blue``: ``verb`` of ``name``, ready to paste."""
        return shlex.join(as_typed(self._argv(verb, name)))

    def _argv(self, *args: str, files: Sequence[str] | None = None) -> list[str]:
        argv = list(self.command.argv)
        for file in self.files if files is None else files:
            argv += ["-f", file]
        if self.project:
            argv += ["-p", self.project]
        return argv + list(args)

    def _run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        capture: bool,
        timeout: float,
        files: Sequence[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = self._argv(*args, files=files)
        environ = {**self.environ, **(env or {})}
        try:
            if capture:
                # A group of its own, as for `up`: a process compose leaves behind (the
                # docker CLI's plugin, a wrapper's helper) that signals "its group" later
                # must not interrupt this command (a SIGINT in the drain read as Ctrl-C).
                result = subprocess.run(
                    argv, env=environ, capture_output=True, text=True, timeout=timeout,
                    check=False, process_group=0,
                )  # fmt: skip
            else:
                # Compose's own progress goes to our stderr, so stdout stays clean for --json.
                sys.stderr.flush()
                result = _streamed(argv, environ, timeout)
        except FileNotFoundError as exc:
            raise ComposeNotFound(f"cannot run {argv[0]}: {exc.strerror}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(f"`{shlex.join(argv)}` did not finish within {timeout:g}s") from exc
        if result.returncode != 0:
            if capture and compose_output.engine_unreachable(result.stderr or ""):
                raise EngineUnreachable(compose_output.unreachable_message(environ))
            tail = (result.stderr or "").strip()[-1500:] if capture else ""
            raise ComposeError(
                f"`{shlex.join(argv)}` exited {result.returncode}"
                + (f": {tail}" if tail else " (its output is above)")
            )
        return result

    def services(self) -> list[str]:
        """Service names in the compose file(s)."""
        out = self._run("config", "--services", capture=True, timeout=QUERY_TIMEOUT_S)
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]

    def require_services(self, *names: str) -> None:
        """:class:`ComposeError` naming what exists when one of ``names`` is not defined."""
        known = self.services()
        missing = [n for n in names if n not in known]
        if missing:
            where = ", ".join(self.files) or "the default compose file"
            raise ComposeFileProblem(
                f"{where} has no service {', '.join(missing)} (it has: "
                f"{', '.join(known) or 'none'}). Name the colors <service>-blue and "
                "<service>-green, or pass --compose-service, -f or -p."
            )

    def _resolved_image(self, service: str, env: Mapping[str, str]) -> str | None:
        out = self._run("config", env=env, capture=True, timeout=QUERY_TIMEOUT_S).stdout
        try:
            doc = yaml.safe_load(out)
        except yaml.YAMLError as exc:
            raise ComposeError(f"`{self.describe()} config` printed no YAML: {exc}") from exc
        services = doc.get("services") if isinstance(doc, dict) else None
        if not isinstance(services, dict) or service not in services:
            self.require_services(service)
            return None
        resolved = (services[service] or {}).get("image")
        return str(resolved) if resolved else None

    def check_image(self, service: str, image: str) -> bool:
        """:class:`ComposeError` unless ``service`` runs ``image`` when its variable is set.

        Catches a compose file that hard-codes its image: ``--image`` would be ignored
        and the deploy would silently roll out the old version. True when the file
        uses the color's own variable, so recording it in ``.env`` pins the image.
        """
        variable = self.image_variable_of(service)
        if self._resolved_image(service, {variable: image}) == image:
            self._require_image(service, image)
            return True
        resolved = self._resolved_image(service, {IMAGE_ENV: image})
        if resolved != image:
            raise ComposeFileProblem(
                f"service {service} would run {resolved or 'a built image'!s}, not {image}: "
                f"its compose definition must say image: ${{{variable}:-...}} (or "
                f"${{{IMAGE_ENV}:-...}}) for --image to take effect"
            )
        self._require_image(service, image)
        return False

    def env_file(self) -> Path:
        """The ``.env`` compose reads for this project: beside the first compose file."""
        return envfile.beside(list(self.files), self.environ)

    def record_image(self, service: str, image: str) -> str:
        """Write ``<SERVICE>_<COLOR>_IMAGE=image`` to the project's ``.env``; the line written."""
        variable = self.image_variable_of(service)
        envfile.update(self.env_file(), {variable: image})
        return f"{variable}={image}"

    def up(self, service: str, image: str | None, labels: Mapping[str, str] | None = None) -> None:
        """Create ``service`` anew (``--force-recreate``, ``--no-deps``), detached; ``labels``
        (``deploy --smoke``) come from a temporary override file (``deploy/smoke_option.py``)."""
        env = {IMAGE_ENV: image, self.image_variable_of(service): image} if image else None
        with tempfile.TemporaryDirectory(prefix="bluegreen-") as tmp:
            files = None
            if labels:
                base = smoke_option.project_files(self.files, self.environ, self.command.generation)
                has = smoke_option.service_labels(self.resolved_config(), service)
                smoke_option.check_prefix(service, has, labels)
                override = Path(tmp) / "labels.override.yml"
                override.write_text(smoke_option.override_yaml(service, labels), encoding="utf-8")
                files = [*base, str(override)]
            self._run(
                "up", "-d", "--no-deps", "--force-recreate", service,
                env=env, capture=False, timeout=COMMAND_TIMEOUT_S, files=files,
            )  # fmt: skip

    def stop(self, service: str, containers: Sequence[str] = ()) -> None:
        """``stop`` (never ``rm``): the containers stay for a fast rollback. ``containers``
        the provider listed are stopped by ``docker stop`` (``deploy/fast_stop.py``)."""
        if fast_stop.stop_containers(self.environ, containers, COMMAND_TIMEOUT_S):
            return
        self._run("stop", service, capture=False, timeout=COMMAND_TIMEOUT_S)

    def start(self, service: str) -> None:
        """Start ``service``'s existing, stopped containers."""
        self._run("start", service, capture=False, timeout=COMMAND_TIMEOUT_S)

    def argv_of(self, *args: str) -> list[str]:
        """The full command line of compose ``args`` for this project (``-f``, ``-p``)."""
        return self._argv(*args)

    def resolved_config(self) -> str:
        """``config``: the project as compose resolves it (interpolated, merged), as YAML."""
        return self._run("config", capture=True, timeout=QUERY_TIMEOUT_S).stdout

    def _require_image(self, service: str, image: str) -> None:
        """``image`` is on this host, or compose pulls it now: else refuse, nothing changed.

        Pulled through ``compose pull`` so the user's registry credentials apply.
        """
        if image_check.image_present(self.environ, image) is not False:
            return
        env = {IMAGE_ENV: image, image_variable(service): image}
        try:
            self._run("pull", service, env=env, capture=True, timeout=COMMAND_TIMEOUT_S)
        except EngineUnreachable:
            raise
        except ComposeError as exc:
            lines = [line for line in exc.message.splitlines() if line.strip()]
            raise ImageUnavailable(
                f"image {image} is not on this Docker host and pulling it failed "
                f"({lines[-1].strip() if lines else 'no reason given'}); nothing was changed. "
                f"Build or `docker load` it here, or push it to a registry this host reaches"
            ) from exc
