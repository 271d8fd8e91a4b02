"""Settings of ``bluegreen serve``: one frozen dataclass, built and validated once.

Precedence, highest first: command-line flag, ``BLUEGREEN_*`` environment
variable, the YAML file named by ``--config`` (or ``BLUEGREEN_CONFIG``), the
built-in default. Every problem is reported with the setting's flag and env
name so the user knows what to change.

Each token can also come from a file (``--token-file``, ``BLUEGREEN_TOKEN_FILE``,
``token_file``: the Docker-secrets ``*_FILE`` convention), because a ``--token``
on a command line is visible to every local user in ``ps``. Giving a token and
its file both is an error, wherever each comes from.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from provider import settings_file, webhook_config
from provider.core.gates import webhook_problem
from provider.core.labels import LabelDefaults, parse_bool
from provider.core.routing import Options
from provider.errors import SettingsError
from provider.logs import redact_url
from provider.setting_numbers import count as _count
from provider.setting_numbers import parse_seconds as parse_seconds  # the CLI uses it
from provider.setting_numbers import period as _period
from provider.setting_numbers import positive_int as _positive_int
from provider.token_files import MAX_TOKEN_FILE as MAX_TOKEN_FILE
from provider.token_files import read_token_file as read_token_file
from provider.token_files import secret as _secret
from provider.webhook_config import Webhook

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
#: Settings holding a URL whose credentials and path the startup log redacts.
_URLS = ("traefik_metrics_url", "docker_host", "maintenance_url", "smoke_url")


@dataclass(frozen=True)
class Settings:
    """Everything the provider is configured with."""

    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    docker_host: str = "unix:///var/run/docker.sock"
    state_file: Path = Path("bluegreen-state.json")
    token: str | None = None
    provider_token: str | None = None
    label_prefix: str = "bluegreen"
    entrypoints: tuple[str, ...] = ("web",)
    preview_header: str = "X-Bluegreen-Color"
    host_address: str = "127.0.0.1"
    log_format: str = "auto"
    log_level: str = "info"
    promote_after: float = 1.0
    rollback_after: float = 5.0
    auto_promote: bool = True
    auto_rollback: bool = True
    resync_interval: float = 30.0
    history_limit: int = 1000
    max_body: int = 65536
    # The operator's window: status page, event stream, webhooks.
    ui: bool = True
    #: Required to read /status, /history, /events and the page (None: open to all).
    read_token: str | None = None
    events_buffer: int = 1000
    events_max_clients: int = 32
    events_heartbeat: float = 15.0
    webhooks: tuple[Webhook, ...] = ()
    webhook_secret: str | None = None
    webhook_timeout: float = 5.0
    webhook_queue: int = 1000
    hold: float = 2.5
    #: Canaries: Traefik's Prometheus endpoint, the sticky cookie's name, extensions per step.
    traefik_metrics_url: str | None = None
    canary_cookie: str = "bluegreen_{service}"
    canary_max_extensions: int = 3
    #: The maintenance page's backend; ``None``: the listen address (wildcard: no page).
    maintenance_url: str | None = None
    #: Gates: Traefik's entrypoint as the provider reaches it, and how long a gate may take.
    smoke_url: str | None = None
    smoke_timeout: float = 30.0
    #: The gate webhook every service asks before a promotion (``bluegreen.gate.url`` wins).
    gate_url: str | None = field(default=None, repr=False)
    gate_timeout: float = 10.0
    #: Swarm mode: watch Swarm services and their tasks, keep the state in Swarm configs.
    swarm: bool = False
    #: Swarm mode: seconds between task listings (Swarm emits no task events).
    swarm_poll: float = 1.0
    #: Swarm mode: state versions kept as Swarm configs (older ones are pruned).
    swarm_keep: int = 10

    @property
    def options(self) -> Options:
        """The part of the settings the pure core needs."""
        return Options(
            labels=LabelDefaults(self.label_prefix, self.entrypoints, self.gate_url),
            host_address=self.host_address,
            preview_header=self.preview_header,
            canary_cookie=self.canary_cookie,
            maintenance_url=self.maintenance_url or self._listen_url(),
        )

    def _listen_url(self) -> str | None:
        """This provider's own URL when it listens on one address (Traefik can use that)."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return None if host in ("", "0.0.0.0", "[::]") else f"http://{host}:{self.listen_port}"

    def redacted(self) -> dict[str, Any]:
        """The settings as loggable values: tokens only say whether they are set."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("token", "provider_token", "read_token"):
                value = "set" if value else "unset"
            elif f.name == "gate_url" and value:
                value = redact_url(value)
            elif f.name in ("webhook_secret", "webhooks"):
                value = webhook_config.redacted_settings(f.name, value)
            elif f.name in _URLS and value:
                value = redact_url(value, path=True)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


def _bool(raw: str) -> bool:
    value = parse_bool(raw)
    if value is None:
        raise ValueError("expected true or false")
    return value


def _names(raw: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in raw.split(",") if x.strip())
    if not items or not all(_NAME.match(x) for x in items):
        raise ValueError("expected a comma list of names, e.g. web,websecure")
    return items


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return raw.lower()

    return parse


def _match(pattern: re.Pattern[str], example: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not pattern.match(raw):
            raise ValueError(f"expected something like {example}")
        return raw

    return parse


#: Schemes aiodocker connects with; ``ssh://`` (a Docker CLI feature) is not one.
_DOCKER_SCHEMES = ("unix", "tcp", "http", "https")


def _docker_host(raw: str) -> str:
    scheme, sep, rest = raw.strip().partition("://")
    if scheme == "ssh":
        raise ValueError(
            "ssh:// is not supported; forward the socket (ssh -L) and use unix:// or tcp://"
        )
    if not sep or scheme not in _DOCKER_SCHEMES or not rest.strip("/"):
        raise ValueError("expected unix:///path/to/docker.sock or tcp://HOST:PORT")
    if scheme == "unix" and not rest.startswith("/"):
        raise ValueError("a unix socket needs an absolute path: unix:///var/run/docker.sock")
    if scheme != "unix":
        host, colon, port = rest.rstrip("/").rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected {scheme}://HOST:PORT, e.g. tcp://127.0.0.1:2375")
    return raw.strip()


#: Secret settings that may come from a file: (setting, its file setting, file flag).
_SECRET_FILES = (
    ("token", "token_file", "--token-file"),
    ("provider_token", "provider_token_file", "--provider-token-file"),
    ("read_token", "read_token_file", "--read-token-file"),
)


_COOKIE = re.compile(r"^[A-Za-z0-9_.-]*(\{service\}[A-Za-z0-9_.-]*)?$")


def _metrics_url(raw: str) -> str | None:
    if raw and not re.match(r"^https?://[^\s/]+(/\S*)?$", raw):
        raise ValueError("expected an http(s) URL, e.g. http://127.0.0.1:8082/metrics")
    return raw or None


def _gate_url(raw: str) -> str | None:
    problem = webhook_problem(raw.strip()) if raw.strip() else None
    if problem:
        raise ValueError(f"the gate webhook {problem}")
    return raw.strip() or None


def _base_url(raw: str) -> str | None:
    if raw and not re.match(r"^https?://[^\s/]+/?$", raw):
        raise ValueError("expected the provider's URL as Traefik reaches it: http://bluegreen:8080")
    return raw.rstrip("/") or None


def _cookie(raw: str) -> str:
    if raw.lower() in ("", "off", "false", "none"):
        return ""
    if not _COOKIE.match(raw) or len(raw) > 64:
        raise ValueError("expected a cookie name (letters, digits, _ . -; {service} allowed)")
    return raw


#: (setting, flag, parser, help). Env var: BLUEGREEN_ + setting upper-cased.
_SPECS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("listen", "--listen", _listen, "HOST:PORT to serve on (default 0.0.0.0:8080)"),
    ("docker_host", "--docker-host", _docker_host, "Docker API address (default $DOCKER_HOST)"),
    ("state_file", "--state-file", Path, "JSON state file (default ./bluegreen-state.json)"),
    ("token", "--token", _secret, "bearer token required by /switch and /rollback"),
    ("token_file", "--token-file", str, "file holding --token (keeps it out of ps)"),
    ("provider_token", "--provider-token", _secret, "bearer token required by /traefik"),
    ("provider_token_file", "--provider-token-file", str, "file holding --provider-token"),
    ("label_prefix", "--label-prefix", _match(_NAME, "bluegreen"), "label prefix"),
    ("entrypoints", "--entrypoints", _names, "default Traefik entrypoints (default web)"),
    ("preview_header", "--preview-header", _match(_HEADER, "X-Bluegreen-Color"), "header"),
    ("host_address", "--host-address", str, "address of host-network containers"),
    ("log_format", "--log-format", _choice("auto", "json", "console"), "auto, json, console"),
    ("log_level", "--log-level", _choice("debug", "info", "warning", "error"), "log level"),
    ("promote_after", "--promote-after", parse_seconds, "seconds a new color must stay ready"),
    ("rollback_after", "--rollback-after", parse_seconds, "seconds of a dead active color"),
    ("auto_promote", "--auto-promote", _bool, "promote ready deploys (default true)"),
    ("auto_rollback", "--auto-rollback", _bool, "roll back dead colors (default true)"),
    ("resync_interval", "--resync-interval", _period, "seconds between full resyncs"),
    ("history_limit", "--history-limit", _positive_int, "switch records kept (default 1000)"),
    ("max_body", "--max-body", _positive_int, "largest request body in bytes"),
    ("ui", "--ui", _bool, "serve the status page at / (on, off; default on)"),
    ("read_token", "--read-token", _secret, "bearer token required by /status, /events, /"),
    ("read_token_file", "--read-token-file", str, "file holding --read-token"),
    ("events_buffer", "--events-buffer", _positive_int, "events kept for resuming /events"),
    ("events_max_clients", "--events-max-clients", _positive_int, "most /events clients"),
    ("events_heartbeat", "--events-heartbeat", _period, "seconds between /events heartbeats"),
    ("webhook_secret", "--webhook-secret", _secret, "HMAC-SHA256 key signing webhook bodies"),
    ("webhook_secret_file", "--webhook-secret-file", Path, "file holding --webhook-secret"),
    ("webhook_timeout", "--webhook-timeout", _period, "seconds per webhook attempt"),
    ("webhook_queue", "--webhook-queue", _positive_int, "undelivered events kept per hook"),
    ("hold", "--hold", parse_seconds, "seconds to hold an unchanged /traefik poll (0: off)"),
    ("traefik_metrics_url", "--traefik-metrics-url", _metrics_url, "Traefik's /metrics URL"),
    ("canary_cookie", "--canary-cookie", _cookie, "canary sticky cookie ('' or off: none)"),
    ("canary_max_extensions", "--canary-max-extensions", _count, "extra intervals a step waits"),
    ("maintenance_url", "--maintenance-url", _base_url, "provider URL Traefik reaches"),
    ("smoke_url", "--smoke-url", _metrics_url, "Traefik entrypoint URL for smoke checks"),
    ("smoke_timeout", "--smoke-timeout", _period, "seconds a gate's smoke checks may take"),
    ("gate_url", "--gate-url", _gate_url, "gate webhook approving each promotion"),
    ("gate_timeout", "--gate-timeout", _period, "seconds the gate webhook may take"),
    ("swarm", "--swarm", _bool, "Swarm mode: services, tasks, state in Swarm configs"),
    ("swarm_poll", "--swarm-poll", _period, "Swarm mode: seconds between task listings"),
    ("swarm_keep", "--swarm-keep", _positive_int, "Swarm mode: state versions kept (default 10)"),
)


#: Settings whose flag takes no value (``--swarm``); BLUEGREEN_SWARM=true and YAML still work.
_SWITCHES = frozenset({"swarm"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every setting as a flag that defaults to 'not given'."""
    parser.add_argument("--config", help="YAML settings file (env BLUEGREEN_CONFIG)")
    for name, flag, _parse, help_text in _SPECS:
        if name in _SWITCHES:  # a bare flag; its env var and YAML key take true/false
            parser.add_argument(flag, dest=name, action="store_const", const="true", help=help_text)
        else:
            parser.add_argument(flag, dest=name, default=None, help=help_text)
    parser.add_argument(
        "--webhook",
        dest="webhooks",
        action="append",
        default=None,
        help="POST events to this URL (repeatable; env BLUEGREEN_WEBHOOKS, space-separated)",
    )
    parser.add_argument(
        "--no-auto-promote",
        dest="auto_promote",
        action="store_const",
        const="false",
        help="never switch on the watcher's own",
    )
    parser.add_argument(
        "--no-auto-rollback",
        dest="auto_rollback",
        action="store_const",
        const="false",
        help="never roll back on the watcher's own",
    )


def load(namespace: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge flags, environment and settings file into validated ``Settings``."""
    env = os.environ if environ is None else environ
    config_path = getattr(namespace, "config", None) or env.get("BLUEGREEN_CONFIG")
    known = {name for name, *_ in _SPECS} | settings_file.STRUCTURED
    from_file = settings_file.read(config_path, known) if config_path else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, flag, parse, _help in _SPECS:
        env_name = f"BLUEGREEN_{name.upper()}"
        raw: str | None = getattr(namespace, name, None)
        source = flag
        if raw is None and env_name in env:
            raw, source = env[env_name], env_name
        if raw is None and name == "docker_host" and env.get("DOCKER_HOST"):
            raw, source = env["DOCKER_HOST"], "DOCKER_HOST"
        if raw is None and name in from_file:
            raw, source = from_file[name], f"{name} in {config_path}"
        if raw is None:
            continue
        sources[name] = source
        try:
            values[name] = parse(str(raw))
        except ValueError as exc:
            shown = "(hidden)" if parse is _secret else repr(str(raw)[:80])
            raise SettingsError(
                f"invalid {source}={shown}: {exc} (flag {flag}, env {env_name})"
            ) from exc
    for secret, file_name, file_flag in _SECRET_FILES:
        path = values.pop(file_name, "")
        if not path:
            continue
        if values.get(secret):
            raise SettingsError(
                f"both {sources[secret]} and {sources[file_name]} are given: keep only the file "
                f"(the token on a command line or in the environment is easier to leak)"
            )
        env_name = f"BLUEGREEN_{file_name.upper()}"
        values[secret] = read_token_file(path, sources[file_name], file_flag, env_name)
    if "listen" in values:
        values["listen_host"], values["listen_port"] = values.pop("listen")
    values.update(webhook_config.settings_values(namespace, env, from_file, config_path, values))
    _check_read_token(values)
    return Settings(**values)


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Convenience for tests and embedding: flags list to ``Settings``."""
    parser = argparse.ArgumentParser(prog="bluegreen serve", exit_on_error=False)
    add_arguments(parser)
    try:
        namespace = parser.parse_args(list(argv))
    except argparse.ArgumentError as exc:
        raise SettingsError(str(exc)) from exc
    return load(namespace, environ)


# -- the operator's window: the read token --------------------------------------


def _check_read_token(values: Mapping[str, Any]) -> None:
    """A read token equal to the operator token would make every reader an operator."""
    if values.get("read_token") and values.get("read_token") == values.get("token"):
        raise SettingsError(
            "the read token (--read-token, BLUEGREEN_READ_TOKEN) equals the operator token "
            "(--token): give readers a different token; the operator token reads anyway"
        )
