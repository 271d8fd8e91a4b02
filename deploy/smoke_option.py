"""``bluegreen deploy --smoke``: the gate's checks, as a label of the new color's containers.

Why a label, not an API call registering the checks: the provider already gates
every generation whose containers carry ``bluegreen.smoke`` (``provider/smoke.py``),
from the moment they exist, after a provider restart, and on every Swarm
replica, with nothing new to persist or replicate. Registering the checks
through the API would need a record keyed by a generation the CLI does not know
before ``up`` creates it, kept in the state file, shared by Swarm replicas, and
a rule for when it lapses. A label rides on the containers it gates: no window
in which the new color runs ungated, and nothing to clean up.

How it gets there, without touching the user's files:

- compose (one file or per-color files): one more ``-f`` file for that one
  ``up``, a temporary override holding only the new color's labels. Compose
  merges labels by key, so ``--smoke`` replaces that color's ``bluegreen.smoke``
  label for this deploy and keeps every other one. Without ``-f`` the files are
  the ones compose itself would read (``COMPOSE_FILE``, else the default names
  from the current directory upwards, with their ``.override`` file), since a
  ``-f`` makes compose read only the files named;
- Swarm: the labels are set on the color's service spec in the same update that
  gives it the new image (a deploy that fails restores the spec as it was).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from deploy.errors import ComposeFileProblem, UsageError
from provider.core.gates import host_problem, parse_smoke

#: The names compose looks for, in its order of preference (v2; v1 prefers docker-compose.*).
_DEFAULT_V2 = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_DEFAULT_V1 = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml")


def smoke_labels(smoke: str | None, smoke_host: str | None, prefix: str) -> dict[str, str]:
    """The labels ``--smoke`` and ``--smoke-host`` add to the new color, checked as the
    provider checks ``bluegreen.smoke`` (the same parser), or :class:`UsageError`."""
    if smoke is None:
        if smoke_host is not None:
            raise UsageError("--smoke-host names the Host of the --smoke checks: give --smoke too")
        return {}
    checks = parse_smoke(smoke)
    if isinstance(checks, str):
        raise UsageError(f"--smoke {checks}")
    labels = {f"{prefix}.smoke": ",".join(part.strip() for part in smoke.split(",") if part)}
    if smoke_host is not None:
        problem = host_problem(smoke_host.strip())
        if problem:
            raise UsageError(f"--smoke-host: {problem}")
        labels[f"{prefix}.smoke-host"] = smoke_host.strip()
    return labels


def override_yaml(compose_service: str, labels: Mapping[str, str]) -> str:
    """A compose file adding ``labels`` to ``compose_service`` (merged over the project's)."""
    doc = {"services": {compose_service: {"labels": dict(sorted(labels.items()))}}}
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=True)


def project_files(
    files: Sequence[str], environ: Mapping[str, str], generation: str, cwd: Path | None = None
) -> tuple[str, ...]:
    """The files compose reads for this project: ``-f``, else ``COMPOSE_FILE``, else its
    default file found from ``cwd`` upwards and the ``.override`` file beside it."""
    if files:
        return tuple(files)
    separator = environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
    listed = [f for f in environ.get("COMPOSE_FILE", "").split(separator) if f.strip()]
    if listed:
        return tuple(listed)
    names = _DEFAULT_V1 if generation == "v1" else _DEFAULT_V2
    here = (cwd or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        for name in names:
            found = directory / name
            if found.is_file():
                stem = name.rpartition(".")[0]
                extra = [directory / f"{stem}.override.{e}" for e in ("yaml", "yml")]
                return (str(found), *[str(p) for p in extra if p.is_file()][:1])
    raise ComposeFileProblem(
        f"no compose file in {here} or above ({', '.join(names)}): pass -f so --smoke can "
        "label the new color"
    )


def service_labels(config: str, service: str) -> Mapping[str, object]:
    """``service``'s labels in ``compose config``'s output (either form compose prints)."""
    try:
        doc = yaml.safe_load(config)
    except yaml.YAMLError as exc:
        raise ComposeFileProblem(f"compose config printed no YAML: {exc}") from exc
    services = doc.get("services") if isinstance(doc, dict) else None
    definition = services.get(service) if isinstance(services, dict) else None
    labels = (definition if isinstance(definition, dict) else {}).get("labels") or {}
    if isinstance(labels, list):
        return dict(str(item).partition("=")[::2] for item in labels)
    return labels if isinstance(labels, dict) else {}


def check_prefix(service: str, has: Mapping[str, object], adding: Mapping[str, str]) -> None:
    """:class:`ComposeFileProblem` unless ``service`` already has a label under the prefix of
    the labels ``adding``: else the CLI's ``BLUEGREEN_LABEL_PREFIX`` is not the provider's
    ``--label-prefix``, and the provider would never see the checks (an ungated deploy)."""
    prefix = next((k.removesuffix(".smoke") for k in adding if k.endswith(".smoke")), None)
    if prefix is None or any(str(key).startswith(f"{prefix}.") for key in has):
        return
    raise ComposeFileProblem(
        f"--smoke: compose service {service} has no {prefix}.* label, so the provider's label "
        f"prefix is not {prefix!r}: set BLUEGREEN_LABEL_PREFIX to its --label-prefix (else "
        "the provider would not see the checks); nothing was started"
    )
