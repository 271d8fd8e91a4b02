"""Driving a blue/green pair of Docker Swarm services: the Swarm side of ``ComposeApi``.

On Swarm a color is a replicated *service*, found by its service labels
(``deploy.labels`` in a stack file): ``bluegreen.service=<name>`` and
``bluegreen.color=blue|green``, never by its name (``docker stack deploy``
prefixes names with the stack's). The rollouts stay the same; only these
steps differ from compose:

- ``up``: the idle color's spec gets the new image and its replica count, and
  ``TaskTemplate.ForceUpdate`` is bumped so Swarm always starts new tasks (as
  compose's ``--force-recreate`` always makes new containers);
- ``stop``: scale to 0. The spec stays, and the count it had is kept in the
  service label ``bluegreen.replicas``, so ``start`` (rollback) and a later
  ``up`` restore it (default 1). A ``stop`` of the color this object ``up``-ed
  is a failed deploy's cleanup: it writes back the spec read before that ``up``
  (image included), so a later rollback to the color starts what ran before,
  never the image that failed. Not Swarm's own ``rollback=previous``: the
  engine (20.10) swaps ``Spec`` and ``PreviousSpec``, so a retried rollback
  re-applies the failed image, and it restores the replica count too;
- ``record_image``: nothing to record; the service spec is the record;
- ``check_image``: the image must be on *this* node. The CLI talks to one
  manager and cannot see the others; a missing image there is caught before
  anything changes. Every node that may run a task needs the image too, or
  access to a registry (Swarm then pulls it): that stays the operator's job.

Every update sends the spec with the ``Version.Index`` it was read at; a
concurrent writer makes Swarm answer "update out of sequence", and the update
is re-read and retried. No registry is ever asked: no ``X-Registry-Auth`` is
sent, and from API 1.30 on the daemon does not resolve image digests itself
(the docker CLI does, unless ``--no-resolve-image``). aiodocker is used through
its low-level request method because its ``services.update`` cannot set labels.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError

from deploy.errors import ComposeError, ComposeFileProblem
from deploy.rollout import DEFAULT_COMPOSE_SERVICE
from provider.core.model import Color

#: Label kept on a scaled-down service: the replica count to restore.
REPLICAS_LABEL = "replicas"
DEFAULT_REPLICAS = 1
#: Re-read and retry an update this many times when another writer got in first.
UPDATE_ATTEMPTS = 8
OUT_OF_SEQUENCE = "update out of sequence"
REQUEST_TIMEOUT_S = 60.0
#: The status aiodocker gives a failed connection (no HTTP answer at all).
UNREACHABLE = 900

T = TypeVar("T")
Spec = dict[str, Any]


class SwarmError(ComposeError):
    """The Docker API failed or is unreachable (exit 7, like a failing compose command)."""


class SwarmSetupProblem(ComposeFileProblem):
    """No Swarm manager here, or no usable service pair: nothing was changed (exit 7)."""


class SwarmServices:
    """The two Swarm services of one bluegreen service, as ``deploy.rollout.ComposeApi``.

    ``names`` are what the rollouts pass (``--compose-service``'s template,
    ``web-green`` by default); each stands for one color, and the service of that
    color is looked up by label on every call, so a concurrent ``docker stack
    deploy`` that replaced a service is followed.
    """

    noun = "swarm"

    #: ``start`` and ``up`` make new tasks (new ids): rollback follows those, not the old ones.
    replaces_containers = True

    def __init__(
        self,
        service: str,
        *,
        docker_host: str | None = None,
        label_prefix: str = "bluegreen",
        compose_service: str = DEFAULT_COMPOSE_SERVICE,
    ) -> None:
        self.service = service
        self.docker_host = docker_host
        self.prefix = label_prefix
        self.names = {compose_service.format(service=service, color=c): c for c in Color}
        #: Real Swarm names of the pair once seen, for hints (a stack prefixes them).
        self.seen: dict[Color, str] = {}
        #: Updates sent, including those refused as out of sequence (for tests and logs).
        self.attempts = 0
        #: The spec each color had before this object's ``up``: what a failed deploy restores.
        self._before_up: dict[Color, Spec] = {}
        self._docker: aiodocker.Docker | None = None

    @classmethod
    def open(cls, service: str, environ: Mapping[str, str], **kwargs: Any) -> SwarmServices:
        """Connect through ``DOCKER_HOST`` (default socket) and check this is a manager."""
        api = cls(service, docker_host=environ.get("DOCKER_HOST") or None, **kwargs)
        api.require_manager()
        return api

    # -- ComposeApi ---------------------------------------------------------------------

    def describe(self) -> str:
        return "docker service"

    def hint(self, verb: str, name: str) -> str:
        """The docker command that does ``verb`` (stop, start, logs) to ``name``'s color."""
        real = self.seen.get(self.names[name], name) if name in self.names else name
        if verb == "stop":
            return f"docker service scale {real}=0"
        if verb == "start":
            return f"docker service scale {real}=<replicas>"
        return f"docker service {verb} {real}"

    def require_services(self, *names: str) -> None:
        """:class:`SwarmSetupProblem` unless both colors' services exist and are replicated."""
        self._run(self._pair)
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise SwarmSetupProblem(f"{', '.join(unknown)} is not a color of {self.service}")

    def check_image(self, service: str, image: str) -> bool:
        """Raise unless the pair exists and ``image`` is on this node; False: nothing to pin."""
        self._color(service)
        self._run(lambda: self._require_image(image))
        return False

    def env_file(self) -> Path:
        raise SwarmError("Swarm mode keeps no .env: the service spec is the record")

    def record_image(self, service: str, image: str) -> str:
        return f"nothing: the Swarm service spec of {service} is the record of {image}"

    def up(self, service: str, image: str | None, labels: Mapping[str, str] | None = None) -> None:
        """Give ``service``'s color ``image``, ``labels`` (``--smoke``: service labels, as the
        provider reads them) and its replica count; Swarm starts new tasks."""
        color = self._color(service)

        def change(spec: Spec) -> None:
            self._before_up[color] = copy.deepcopy(spec)
            if image:
                spec["TaskTemplate"]["ContainerSpec"]["Image"] = image
            spec.setdefault("Labels", {}).update(labels or {})
            spec["TaskTemplate"]["ForceUpdate"] = spec["TaskTemplate"].get("ForceUpdate", 0) + 1
            _set_replicas(spec, self._wanted(spec))

        self._run(lambda: self._update(color, change))

    def stop(self, service: str, containers: Sequence[str] = ()) -> None:
        """Scale to 0, keeping the count in a label (the spec stays for a rollback);
        ``containers`` (a single host's ids) are not Swarm's business.

        After this object's ``up`` of the same color (the rollouts stop a color they
        brought up only to undo a deploy), the spec from before that ``up`` is written
        back first: the service is left as the deploy found it, at 0 replicas.
        """
        color = self._color(service)
        before = self._before_up.get(color)

        def change(spec: Spec) -> None:
            if before is not None:
                spec.clear()
                spec.update(copy.deepcopy(before))
            replicas = _replicas(spec)
            if replicas > 0:
                spec.setdefault("Labels", {})[self._label(REPLICAS_LABEL)] = str(replicas)
            _set_replicas(spec, 0)

        self._run(lambda: self._update(color, change))
        self._before_up.pop(color, None)

    def start(self, service: str) -> None:
        """Scale back to the recorded count (default 1) and return; no new image."""
        color = self._color(service)
        self._run(lambda: self._update(color, lambda spec: _set_replicas(spec, self._wanted(spec))))

    # -- what Swarm says --------------------------------------------------------------------

    def require_manager(self) -> None:
        """:class:`SwarmSetupProblem` unless the daemon is a Swarm manager."""
        info = self._run(lambda: self._query("info"))
        swarm = info.get("Swarm") or {}
        state = swarm.get("LocalNodeState", "inactive")
        if state != "active":
            raise SwarmSetupProblem(
                f"the Docker daemon is not part of a Swarm (state {state or 'inactive'}): run "
                "`docker swarm init` on it, point DOCKER_HOST at a manager, or leave out --swarm"
            )
        if not swarm.get("ControlAvailable"):
            raise SwarmSetupProblem(
                "the Docker daemon is a Swarm worker, and only managers can update services: "
                "run the command on a manager (`docker node ls` lists them) or point DOCKER_HOST "
                "at one"
            )

    def service_spec(self, color: Color) -> dict[str, Any]:
        """The whole service object (``GET /services/{id}``) of ``color``; for tests too."""
        return self._run(lambda: self._read(color))

    # -- internals ------------------------------------------------------------------------

    def _label(self, key: str) -> str:
        return f"{self.prefix}.{key}"

    def _color(self, name: str) -> Color:
        try:
            return self.names[name]
        except KeyError:
            known = ", ".join(sorted(self.names))
            raise SwarmSetupProblem(
                f"{name} is not a color of {self.service} (expected one of {known})"
            ) from None

    def _wanted(self, spec: Spec) -> int:
        """The count a color should run: its current one, else the recorded one, else 1."""
        current = _replicas(spec)
        if current > 0:
            return current
        recorded = (spec.get("Labels") or {}).get(self._label(REPLICAS_LABEL), "")
        return int(recorded) if recorded.isdigit() and int(recorded) > 0 else DEFAULT_REPLICAS

    def _run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` with one client: the CLI makes a few calls per rollout, minutes apart."""
        where = self.docker_host or "the default Docker socket"

        async def connected() -> T:
            try:
                self._docker = aiodocker.Docker(
                    url=self.docker_host, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
                )
            except (ValueError, OSError) as exc:
                raise SwarmError(f"cannot reach the Docker daemon at {where}: {exc}") from exc
            try:
                return await work()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise SwarmError(f"cannot reach the Docker daemon at {where}: {exc}") from exc
            except DockerError as exc:
                raise SwarmError(f"the Docker API at {where} failed: {exc.message}") from exc
            finally:
                await self._docker.close()
                self._docker = None

        return asyncio.run(connected())

    async def _query(
        self, path: str, method: str = "GET", *, params: Any = None, data: Any = None
    ) -> Any:
        """One API call; 503 (not a manager, no quorum) is a setup problem."""
        assert self._docker is not None, "inside _run only"
        try:
            return await self._docker._query_json(path, method, params=params, data=data)
        except DockerError as exc:
            if exc.status == UNREACHABLE:
                where = self.docker_host or "the default Docker socket"
                raise SwarmError(
                    f"cannot reach the Docker daemon at {where}: {exc.message}"
                ) from exc
            if exc.status == 503:
                raise SwarmSetupProblem(
                    f"the Docker daemon cannot serve Swarm requests: {exc.message}"
                ) from exc
            raise

    async def _pair(self) -> dict[Color, dict[str, Any]]:
        """The services labelled ``<prefix>.service=<service>``, one per color, else raise."""
        filters = f'{{"label": ["{self._label("service")}={self.service}"]}}'
        try:
            found = await self._query("services", params={"filters": filters})
        except DockerError as exc:
            raise SwarmError(f"listing Swarm services failed: {exc.message}") from exc
        by_color: dict[Color, list[dict[str, Any]]] = {c: [] for c in Color}
        for svc in found:
            labels = svc.get("Spec", {}).get("Labels") or {}
            raw = labels.get(self._label("color"), "")
            if raw in (Color.BLUE, Color.GREEN):
                by_color[Color(raw)].append(svc)
        problems: list[str] = []
        for color, services in by_color.items():
            names = [s["Spec"]["Name"] for s in services]
            if not services:
                problems.append(f"none has {self._label('color')}={color}")
            elif len(services) > 1:
                problems.append(f"{len(services)} are {color}: {', '.join(sorted(names))}")
            elif "Replicated" not in (services[0]["Spec"].get("Mode") or {}):
                problems.append(f"{names[0]} ({color}) is not replicated, so it cannot scale")
        if problems:
            raise SwarmSetupProblem(
                f"no usable blue/green pair of Swarm services for {self.service} "
                f"(service labels {self._label('service')}={self.service} and "
                f"{self._label('color')}=blue|green, in deploy.labels): {'; '.join(problems)}"
            )
        pair = {color: services[0] for color, services in by_color.items()}
        self.seen = {color: svc["Spec"]["Name"] for color, svc in pair.items()}
        return pair

    async def _read(self, color: Color) -> dict[str, Any]:
        service_id = (await self._pair())[color]["ID"]
        try:
            found: dict[str, Any] = await self._query(f"services/{service_id}")
        except DockerError as exc:
            raise SwarmError(f"reading Swarm service {service_id} failed: {exc.message}") from exc
        return found

    async def _update(self, color: Color, change: Callable[[Spec], None]) -> None:
        """Read, change, write with the version read; re-read on "update out of sequence"."""
        for _ in range(UPDATE_ATTEMPTS):
            current = await self._read(color)
            spec = copy.deepcopy(current["Spec"])
            change(spec)
            self.attempts += 1
            try:
                await self._query(
                    f"services/{current['ID']}/update",
                    "POST",
                    params={"version": str(current["Version"]["Index"])},
                    data=spec,
                )
                return
            except DockerError as exc:
                if OUT_OF_SEQUENCE in exc.message:
                    continue
                name = current["Spec"]["Name"]
                raise SwarmError(f"updating Swarm service {name} failed: {exc.message}") from exc
        raise SwarmError(
            f"updating the {color} service of {self.service} lost {UPDATE_ATTEMPTS} races "
            "with other writers (update out of sequence); try again"
        )

    async def _require_image(self, image: str) -> None:
        try:
            await self._query(f"images/{image}/json")
        except DockerError as exc:
            if exc.status != 404:
                raise SwarmError(f"inspecting image {image} failed: {exc.message}") from exc
            raise SwarmSetupProblem(
                f"image {image} is not on this node; nothing was changed. Swarm starts tasks "
                "from images present on each node or pulled from a registry: push it to a "
                f"registry and `docker pull {image}` here, or load it on every node"
            ) from exc


def _replicas(spec: Spec) -> int:
    return int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0) or 0)


def _set_replicas(spec: Spec, replicas: int) -> None:
    spec.setdefault("Mode", {}).setdefault("Replicated", {})["Replicas"] = replicas
