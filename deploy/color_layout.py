"""Where each color lives in compose: its file(s), its project and its service, as templates.

``bluegreen deploy`` started with one compose file holding ``<service>-blue`` and
``<service>-green``. Many bash deploys keep one file and one project per color
instead (``docker-compose -p app-blue -f docker-compose.blue.yaml up -d``), often
with the same service name in both. A :class:`Layout` holds the three templates
(``-f``, ``-p``, ``--compose-service``); ``{color}`` in a file or project template
makes the layout per color, and :mod:`deploy.per_color_compose` drives it.

Each template may use ``{service}`` (the bluegreen service) and ``{color}``
(``blue`` or ``green``); anything else is refused before compose runs, as is a
layout in which both colors would be the same compose service of one project.
Precedence: the flags, then ``BLUEGREEN_COMPOSE_FILE`` / ``BLUEGREEN_PROJECT`` /
``BLUEGREEN_COMPOSE_SERVICE`` from the environment, then from the ``.env`` that
``bluegreen init`` wrote (a relative file there is relative to the ``.env``).
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy import envfile, init_env
from deploy.errors import UsageError
from deploy.rollout import DEFAULT_COMPOSE_SERVICE
from provider.core.model import Color

FILE_ENV = "BLUEGREEN_COMPOSE_FILE"
PROJECT_ENV = "BLUEGREEN_PROJECT"
SERVICE_ENV = "BLUEGREEN_COMPOSE_SERVICE"
PLACEHOLDERS = ("service", "color")


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a template over ``{service}`` and ``{color}``, or ``None``."""
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
        specs = [(spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f]
    except ValueError as exc:
        return f"is not a template ({exc}; write a literal brace as {{{{ or }}}})"
    if any(f not in PLACEHOLDERS for f in fields):
        return "may use only {service} and {color}"
    if any(spec or conv for spec, conv in specs):
        return "formats a placeholder ({color!r}, {service:>8}); write them plain"
    return None


def check(flag: str, template: str) -> None:
    """:class:`UsageError` naming ``flag`` when ``template`` is not a valid template."""
    problem = template_problem(template)
    if problem is not None:
        raise UsageError(f"{flag} {template!r} {problem}")


def _fill(template: str, service: str, color: Color) -> str:
    return template.format(service=service, color=color.value)


@dataclass(frozen=True)
class Layout:
    """The compose side of a service's two colors; every field a template."""

    files: tuple[str, ...] = ()
    project: str | None = None
    compose_service: str = DEFAULT_COMPOSE_SERVICE
    #: ``COMPOSE_PROJECT_NAME`` as compose would read it, to tell two colors apart.
    default_project: str | None = None

    @property
    def per_color(self) -> bool:
        """True when a file or the project differs by color: one compose project per color."""
        return any("{color}" in t for t in (*self.files, self.project or ""))

    def files_of(self, service: str, color: Color) -> tuple[str, ...]:
        return tuple(_fill(f, service, color) for f in self.files)

    def project_of(self, service: str, color: Color) -> str | None:
        return _fill(self.project, service, color) if self.project else None

    def service_of(self, service: str, color: Color) -> str:
        return _fill(self.compose_service, service, color)

    def key_template(self) -> str:
        """A template naming each color's compose service uniquely, for progress lines.

        The compose service itself when it differs by color, else prefixed with the
        project (``app-blue/api``), else with the file (``blue/compose.yml:api``).
        """
        if "{color}" in self.compose_service or not self.per_color:
            return self.compose_service
        if self.project and "{color}" in self.project:
            return f"{self.project}/{self.compose_service}"
        return f"{self.files[0]}:{self.compose_service}"

    def check(self, service: str) -> None:
        """:class:`UsageError` unless each template is valid and the colors stay apart."""
        for file in self.files:
            check("--compose-file", file)
        if self.project is not None:
            check("--project", self.project)
        check("--compose-service", self.compose_service)
        if not self.per_color or "{color}" in self.compose_service:
            return
        blue, green = (self._project_name(service, c) for c in Color)
        if blue == green:
            name = self.service_of(service, Color.BLUE)
            raise UsageError(
                f"both colors would be compose service {name!r} of one project "
                f"({blue or 'the default'}): give each color its own project, e.g. "
                f"--project '{service}-{{color}}', or its own service with --compose-service"
            )

    def _project_name(self, service: str, color: Color) -> str | None:
        """The compose project a color runs as: ``-p``, else the env's, else the directory."""
        if self.project:
            return self.project_of(service, color)
        if self.default_project:
            return self.default_project
        files = self.files_of(service, color)
        return Path(files[0]).resolve().parent.name if files else None

    def flags(self) -> tuple[str, ...]:
        """The flags as a user types them, to repeat in hints (templates unexpanded)."""
        out: list[str] = []
        for file in self.files:
            out += ["-f", file]
        if self.project:
            out += ["-p", self.project]
        if self.compose_service != DEFAULT_COMPOSE_SERVICE:
            out += ["--compose-service", self.compose_service]
        return tuple(out)


def _split_files(raw: str) -> tuple[str, ...]:
    return tuple(f for f in raw.split(os.pathsep) if f.strip())


def from_settings(
    files: Sequence[str],
    project: str | None,
    compose_service: str | None,
    environ: Mapping[str, str],
) -> Layout:
    """The layout from the flags, else the environment, else the ``.env`` beside the files."""
    found = envfile.read(envfile.beside(list(files), environ))
    base = envfile.beside(list(files), environ).parent

    def setting(key: str) -> str:
        return (environ.get(key) or "").strip() or (found.get(key) or "").strip()

    if not files and (raw := setting(FILE_ENV)):
        from_dotenv = not (environ.get(FILE_ENV) or "").strip()
        files = [
            str(base / f) if from_dotenv and not Path(f).is_absolute() else f
            for f in _split_files(raw)
        ]
    return Layout(
        files=tuple(files),
        project=project or setting(PROJECT_ENV) or None,
        compose_service=compose_service or setting(SERVICE_ENV) or DEFAULT_COMPOSE_SERVICE,
        default_project=(environ.get("COMPOSE_PROJECT_NAME") or "").strip()
        or (found.get("COMPOSE_PROJECT_NAME") or "").strip()
        or None,
    )


def env_values(layout: Layout, directory: Path) -> dict[str, str]:
    """What ``bluegreen init`` records in ``.env``: the templates (files relative to it)."""
    values: dict[str, str] = {}
    if layout.files:
        values[FILE_ENV] = os.pathsep.join(_relative(f, directory) for f in layout.files)
    if layout.project:
        values[PROJECT_ENV] = layout.project
    if layout.compose_service != DEFAULT_COMPOSE_SERVICE:
        values[SERVICE_ENV] = layout.compose_service
    return values


def _relative(file: str, directory: Path) -> str:
    try:
        return str(Path(file).resolve().relative_to(directory.resolve()))
    except ValueError:
        return str(Path(file).resolve())


def init(
    files: Sequence[str],
    project: str | None,
    compose_service: str | None,
    environ: Mapping[str, str],
    *,
    force: bool,
) -> tuple[list[str], init_env.InitResult]:
    """``bluegreen init``, plus the layout's templates in ``.env`` when any was given.

    Returns the lines to print and init's result (where the engine is, for ``--offline``).

    A file template is not a file compose can read, so it goes to
    ``BLUEGREEN_COMPOSE_FILE`` (not ``COMPOSE_FILE``), and ``.env`` goes beside
    the blue file.
    """
    layout = Layout(tuple(files), project, compose_service or DEFAULT_COMPOSE_SERVICE)
    templated = any("{" in f for f in files)
    if not templated and not project and not compose_service:
        plain = init_env.init(list(files), environ, force=force)
        return plain.lines(), plain
    layout.check("app")
    if templated:
        blue = layout.files_of("app", Color.BLUE)[0]
        result = init_env.init([], {**environ, "COMPOSE_FILE": blue}, force=force)
    else:
        result = init_env.init(list(files), environ, force=force)
    values = env_values(
        layout if templated else Layout((), project, layout.compose_service), result.env_path.parent
    )
    envfile.update(result.env_path, values)
    lines = result.lines()
    shown = ", ".join(f"{k}={v}" for k, v in values.items())
    return [lines[0], f"recorded the colors' compose layout: {shown}", *lines[1:]], result
