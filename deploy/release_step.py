"""The release step of ``bluegreen deploy``: a one-off container before the new color starts.

Migrations and the like must run once, from the new image, before any container of it
takes traffic (Heroku's release phase, Fly's ``release_command``). ``deploy --release
CMD`` (or the idle color's ``bluegreen.release`` label, so the command is not retyped)
runs ``compose run --rm --no-deps -T <idle color's service> CMD`` with the new image:
the one-off container has that color's environment, networks, volumes and secrets.

Compose marks it ``com.docker.compose.oneoff=True``; the provider ignores such
containers, so although it carries the color's labels it never joins a load balancer.
A non-zero exit or ``--release-timeout`` stops the deploy before the new color starts:
the live color is untouched, and the step's last output lines are shown.
"""

from __future__ import annotations

import collections
import contextlib
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import yaml

from deploy.compose import IMAGE_ENV, QUERY_TIMEOUT_S, Compose, image_variable, stream_lines
from deploy.compose_output import OUTPUT_INDENT
from deploy.errors import CliError, ComposeError, RolloutFailed, UsageError
from deploy.per_color_compose import PerColorCompose
from provider.core.model import Color

#: The label of a color's compose service naming its default release command.
RELEASE_LABEL = "release"
#: The label holding that command's default timeout (seconds).
TIMEOUT_LABEL = "release.timeout"
DEFAULT_TIMEOUT_S = 600.0
#: How many of the step's last output lines a failure shows and the provider records.
TAIL_LINES = 20
#: After the child exited, how long its output may take to drain.
DRAIN_OUTPUT_S = 5.0


@dataclass(frozen=True)
class ReleasePlan:
    """What the deploy was asked to run first; ``command`` empty means: the label's, if any."""

    command: str | None = None
    timeout: float | None = None
    label_prefix: str = "bluegreen"


@dataclass(frozen=True)
class ReleaseResult:
    """One release step that ran: its command, how it ended, how long it took, its tail."""

    command: str
    exit_code: int | None
    seconds: float
    tail: tuple[str, ...]
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_json(self) -> dict[str, object]:
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "duration_s": round(self.seconds, 3),
            "timed_out": self.timed_out,
            "output_tail": list(self.tail),
        }


def configured(compose: Compose, service: str, prefix: str) -> Mapping[str, str]:
    """The release labels of compose service ``service`` (as ``compose config`` resolves them)."""
    out = compose.resolved_config()
    try:
        doc = yaml.safe_load(out)
    except yaml.YAMLError as exc:
        raise ComposeError(f"`{compose.describe()} config` printed no YAML: {exc}") from exc
    services = doc.get("services") if isinstance(doc, dict) else None
    definition = services.get(service) if isinstance(services, dict) else None
    labels = (definition or {}).get("labels") or {}
    if isinstance(labels, list):  # compose v1 may keep the list form
        labels = dict(str(item).partition("=")[::2] for item in labels)
    wanted = {f"{prefix}.{RELEASE_LABEL}", f"{prefix}.{TIMEOUT_LABEL}"}
    return {str(k)[len(prefix) + 1 :]: str(v) for k, v in labels.items() if k in wanted}


def resolve(plan: ReleasePlan, labels: Mapping[str, str]) -> tuple[str, float] | None:
    """The command and timeout to run: the flags win over the labels; ``None``: no step."""
    command = plan.command if plan.command is not None else labels.get(RELEASE_LABEL, "")
    if not command.strip():
        return None
    timeout = plan.timeout
    if timeout is None:
        raw = labels.get(TIMEOUT_LABEL, "")
        try:
            timeout = float(raw.rstrip("s")) if raw else DEFAULT_TIMEOUT_S
        except ValueError as exc:
            raise RolloutFailed(
                f"label {TIMEOUT_LABEL}={raw!r} is not a number of seconds; nothing was deployed"
            ) from exc
    return command, timeout


def run_release(
    compose: Compose,
    compose_service: str,
    image: str | None,
    command: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> ReleaseResult:
    """``compose run --rm`` the command in a one-off container of ``compose_service``.

    The container gets a name of ours, so a timeout or Ctrl-C can remove it: killing
    the compose client alone would leave it running.
    """
    name = f"{compose_service}-release-{secrets.token_hex(4)}"
    env = {IMAGE_ENV: image, image_variable(compose_service): image} if image else {}
    argv = compose.argv_of(
        "run", "--rm", "--no-deps", "-T", "--name", name, compose_service, *shlex.split(command)
    )  # fmt: skip
    environ = {**compose.environ, **env}
    started = clock()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        code = _stream(argv, environ, timeout, tail)
    except subprocess.TimeoutExpired:
        _remove(compose, name)
        return ReleaseResult(command, None, clock() - started, tuple(tail), timed_out=True)
    except KeyboardInterrupt:
        _remove(compose, name)
        raise
    except FileNotFoundError as exc:
        raise ComposeError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    return ReleaseResult(command, code, clock() - started, tuple(tail))


def _stream(
    argv: Sequence[str], environ: Mapping[str, str], timeout: float, tail: collections.deque[str]
) -> int:
    """Run ``argv``, copying its output indented to stderr and keeping its last lines."""

    def line(text: str) -> None:
        if text.strip():
            tail.append(text.rstrip())
            sys.stderr.write(OUTPUT_INDENT + text.rstrip() + "\n")
            sys.stderr.flush()

    return stream_lines(argv, environ, timeout, line)


def _remove(compose: Compose, name: str) -> None:
    """Remove the one-off container by name (best effort: it may be gone already)."""
    docker = shutil.which("docker", path=compose.environ.get("PATH"))
    if docker is None:
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [docker, "rm", "-f", name],
            env=compose.environ,
            capture_output=True,
            timeout=QUERY_TIMEOUT_S,
            check=False,
        )


@runtime_checkable
class ReleaseReports(Protocol):
    """What the release step tells the provider (``ProviderClient.release``)."""

    def release(self, service: str, body: dict[str, Any]) -> dict[str, Any]: ...


def before_new_color(
    compose: object,
    plan: ReleasePlan | None,
    service: str,
    compose_service: str,
    target: Color,
    image: str | None,
    out: Callable[[str], None],
    provider: object,
) -> ReleaseResult | None:
    """The deploy's hook: run the release step, if any, before ``target`` starts.

    Raises :class:`RolloutFailed` (exit 1) when it fails: nothing of the new color was
    started, so the live color is untouched. The outcome is reported to the provider
    (an event), whichever it is; a provider that cannot take it costs only a warning.
    """
    if plan is None:
        return None
    if isinstance(compose, PerColorCompose):  # one project per color: that color's
        compose, compose_service = compose.one_compose(compose_service)
    if not isinstance(compose, Compose):
        if plan.command:
            raise UsageError("--release runs through compose; it is not available with --swarm")
        return None
    found = resolve(plan, configured(compose, compose_service, plan.label_prefix))
    if found is None:
        return None
    command, timeout = found
    # The idle color's old containers are replaced next anyway; stopped first because
    # compose links a one-off to its service's running containers, which Docker refuses
    # on the host network ("host type networking can't be used with links").
    out(f"stopping the idle {target} ({compose_service}) before the release step")
    compose.stop(compose_service)
    out(f"release step: {command} (in a one-off {compose_service}, timeout {timeout:g}s)")
    result = run_release(compose, compose_service, image, command, timeout)
    _report(provider, service, target, image, result, out)
    if result.ok:
        out(f"release step done in {result.seconds:.1f}s")
        return result
    why = (
        f"did not finish within {timeout:g}s (its container was removed)"
        if result.timed_out
        else f"exited {result.exit_code}"
    )
    shown = "\n".join(OUTPUT_INDENT + line for line in result.tail) or "    (no output)"
    raise RolloutFailed(
        f"deploy of {service} to {target} stopped: the release step `{command}` {why} after "
        f"{result.seconds:.1f}s; its last output lines:\n{shown}\n"
        f"Nothing of the new {target} was started (its old containers are stopped); the live "
        "color keeps serving. Fix the "
        f"step and run `bluegreen deploy {service}` again."
    )


def _report(
    provider: object,
    service: str,
    target: Color,
    image: str | None,
    result: ReleaseResult,
    out: Callable[[str], None],
) -> None:
    if not isinstance(provider, ReleaseReports):
        return
    body = {"color": target.value, "image": image, **result.to_json()}
    try:
        provider.release(service, body)
    except CliError as exc:
        out(f"warning: the provider did not record the release step: {exc.message}")
