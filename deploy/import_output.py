"""What ``bluegreen import traefik-file`` prints: labels or a compose override, and the flags.

Pure rendering of an :class:`~deploy.import_traefik.Import`. A color's labels go to
the compose service its server URL names (``http://web-blue:3000``: Docker's DNS name
of service ``web-blue``), or to the name a ``--compose-service`` template gives; a URL
that names an address (``127.0.0.1:8081``) names no service, so the override needs the
template and the labels say which URL they stand for. Notes say what the labels do not
carry over; the Traefik flags close the output as comments, so a compose override
written with ``>`` stays valid YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from deploy.import_traefik import Backend, Import, Imported, Server

DEFAULT_ENDPOINT = "http://bluegreen:8080/traefik"


class NeedsTemplate(Exception):
    """A server URL names an address, and a compose override needs service names."""


@dataclass(frozen=True)
class Target:
    """The labels of one compose service (``key``), or of the containers behind ``servers``."""

    key: str | None
    color_name: str
    servers: tuple[Server, ...]
    labels: dict[str, str]


def _labels(svc: Imported, backend: Backend, server: Server, prefix: str) -> dict[str, str]:
    labels = {
        f"{prefix}.service": svc.name,
        f"{prefix}.color": backend.color.value,
        f"{prefix}.port": str(server.port),
        f"{prefix}.rule": svc.rule,
    }
    if svc.entrypoints:
        labels[f"{prefix}.entrypoints"] = ",".join(svc.entrypoints)
    if svc.middlewares:
        labels[f"{prefix}.middlewares"] = ",".join(svc.middlewares)
    if svc.tls:
        labels[f"{prefix}.tls"] = "true"
    if svc.certresolver:
        labels[f"{prefix}.tls.certresolver"] = svc.certresolver
    return labels


def targets(svc: Imported, prefix: str, template: str | None) -> list[Target]:
    """Each compose service (or group of servers) of ``svc`` and its labels."""
    out: list[Target] = []
    for backend in svc.backends:
        color = backend.color.value
        if template is not None:
            named = template.format(service=svc.name, color=color)
            out.append(Target(named, color, backend.servers,
                              _labels(svc, backend, backend.servers[0], prefix)))  # fmt: skip
            continue
        for server in backend.servers:
            key = None if server.is_address else server.host
            if key is not None and any(t.key == key for t in out):
                continue  # one service, several URLs of it
            out.append(Target(key, color, (server,), _labels(svc, backend, server, prefix)))
    return out


def notes(result: Import, template: str | None) -> list[str]:
    """What a user must know or do beyond pasting the labels."""
    lines: list[str] = []
    for svc in result.services:
        lines.append(f"{svc.name}: {svc.live} is live now (router {svc.router})")
        if svc.live.value == "green":
            lines.append(
                f"{svc.name}: the provider adopts blue when it first sees both colors ready: "
                f"once it runs, `bluegreen switch {svc.name} green` keeps green live"
            )
        lines += list(svc.notes)
        many = max(len(b.servers) for b in svc.backends)
        if many > 1:
            lines.append(
                f"{svc.name}: {many} servers per color: each container gets its color's labels; "
                f"add bluegreen.replicas={many} if a color needs all {many} before it takes traffic"
            )
        for target in targets(svc, "x", template):
            if target.key is None or any(s.is_address for s in target.servers):
                url = target.servers[0].url
                lines.append(
                    f"{svc.name} {target.color_name}: {url} is an address, not a container: "
                    f"bluegreen.port={target.servers[0].port} holds on the host network "
                    "(network_mode: host); if compose publishes that port, set bluegreen.port "
                    "to the port inside the container"
                )
    lines += [f"left to the file provider: {k}" for k in result.kept]
    return lines


def labels_text(result: Import, prefix: str, template: str | None) -> str:
    """``key=value`` blocks, one per compose service, headed by where they go."""
    blocks: list[str] = []
    for svc in result.services:
        for target in targets(svc, prefix, template):
            urls = ", ".join(s.url for s in target.servers)
            where = f"compose service {target.key}" if target.key else "the container(s)"
            head = f"# {svc.name} {target.color_name}: {where} (now {urls})"
            body = [f"{k}={v}" for k, v in sorted(target.labels.items())]
            blocks.append("\n".join([head, *body]))
    return "\n\n".join(blocks) + "\n"


def override_yaml(result: Import, prefix: str, template: str | None) -> str:
    """A compose override file adding the labels to each color's compose service."""
    services: dict[str, dict[str, dict[str, str]]] = {}
    for svc in result.services:
        for target in targets(svc, prefix, template):
            if target.key is None:
                url = target.servers[0].url
                raise NeedsTemplate(
                    f"{svc.name} {target.color_name}: {url} names an address, not a compose "
                    "service: pass --compose-service (e.g. '{service}-{color}') to name them"
                )
            services.setdefault(target.key, {"labels": {}})["labels"].update(target.labels)
    head = "# Written by `bluegreen import traefik-file`: the colors' bluegreen labels.\n"
    return head + yaml.safe_dump({"services": services}, sort_keys=True, allow_unicode=True)


def traefik_flags(result: Import, endpoint: str, source: str) -> list[str]:
    """Traefik's static flags: the http provider instead of (or beside) the file provider."""
    keep = bool(result.kept)
    lines = [
        "Traefik's static configuration (flags; TRAEFIK_PROVIDERS_* in the environment alike):",
        f"  add     --providers.http.endpoint={endpoint}",
        "          --providers.http.pollInterval=200ms",
        "          --providers.http.pollTimeout=5s",
        "          --providers.http.headers.Authorization=Bearer <provider token> "
        "(when `bluegreen serve` has one)",
    ]
    if keep:
        lines.append(
            f"  keep    --providers.file.* for what stays in {source} (listed above), after "
            "deleting the imported routers and services from it; the script stops rewriting it"
        )
    else:
        lines.append("  remove  --providers.file.filename and --providers.file.watch")
    lines.append("  then restart Traefik once (static configuration is read at start)")
    return lines


def commented(lines: Sequence[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)
