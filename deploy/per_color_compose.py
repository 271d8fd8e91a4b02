"""One compose project per color, driven as the rollouts drive one (``ComposeApi``).

The rollouts name a color's compose service by a template (``DeployPlan.compose_name``);
in a per-color layout that name is :meth:`Layout.key_template`'s (``app-blue/api``),
unique per color, and this class sends each call to that color's own
:class:`~deploy.compose.Compose` (its files, its project, its service). So
``docker-compose -p app-blue -f docker-compose.blue.yaml`` and the green twin keep
working unchanged apart from the labels.

Each color's image variable names its color even when both files call the service
``api`` (``API_BLUE_IMAGE``): both files usually share one ``.env``, and one
``API_IMAGE`` there would give the next ``up -d`` of the old color the new image.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.color_layout import Layout
from deploy.compose import Compose, ComposeCommand, image_variable
from deploy.errors import ComposeFileProblem
from provider.core.model import Color


@dataclass(frozen=True)
class _Target:
    color: Color
    compose: Compose
    name: str


class PerColorCompose:
    """The two colors' compose projects of one service, behind one ``ComposeApi``."""

    noun = "compose"

    def __init__(
        self,
        command: ComposeCommand,
        layout: Layout,
        service: str,
        environ: Mapping[str, str],
    ) -> None:
        self.command = command
        self.layout = layout
        names = {c: layout.service_of(service, c) for c in Color}
        shared = names[Color.BLUE] == names[Color.GREEN]
        self._targets: dict[str, _Target] = {}
        for color in Color:
            name = names[color]

            def variable(compose_service: str, color: Color = color) -> str:
                own = f"{compose_service}-{color.value}" if shared else compose_service
                return image_variable(own)

            compose = Compose(
                command,
                layout.files_of(service, color),
                layout.project_of(service, color),
                environ,
                image_variable_of=variable,
            )
            key = layout.key_template().format(service=service, color=color.value)
            self._targets[key] = _Target(color, compose, name)
        self._last = self._targets[next(iter(self._targets))]

    def _target(self, key: str) -> _Target:
        try:
            target = self._targets[key]
        except KeyError:
            known = ", ".join(sorted(self._targets))
            raise ComposeFileProblem(
                f"no color's compose service is {key!r} (known: {known})"
            ) from None
        self._last = target
        return target

    def describe(self) -> str:
        """The command with the templates, e.g. ``docker compose -f 'x.{color}.yml' ...``."""
        return shlex.join([*self.command.argv, *self.layout.flags()])

    def hint(self, verb: str, name: str) -> str:
        """The color's own command; for a name of no color (``(none)``), the templates'."""
        target = self._targets.get(name)
        if target is None:
            return shlex.join([*self.command.argv, *self.layout.flags(), verb, name])
        return target.compose.hint(verb, target.name)

    def require_services(self, *names: str) -> None:
        for key in names:
            target = self._target(key)
            target.compose.require_services(target.name)

    def one_compose(self, service: str) -> tuple[Compose, str]:
        """The compose project of ``service``'s color, and its name there (the release step)."""
        target = self._target(service)
        return target.compose, target.name

    def check_image(self, service: str, image: str) -> bool:
        target = self._target(service)
        return target.compose.check_image(target.name, image)

    def env_file(self) -> Path:
        """The ``.env`` of the color last acted on (both colors' when they share a directory)."""
        return self._last.compose.env_file()

    def record_image(self, service: str, image: str) -> str:
        target = self._target(service)
        return target.compose.record_image(target.name, image)

    def up(self, service: str, image: str | None, labels: Mapping[str, str] | None = None) -> None:
        target = self._target(service)
        target.compose.up(target.name, image, labels)

    def stop(self, service: str, containers: Sequence[str] = ()) -> None:
        target = self._target(service)
        target.compose.stop(target.name, containers)

    def start(self, service: str) -> None:
        target = self._target(service)
        target.compose.start(target.name)
