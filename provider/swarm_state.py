"""The state in Swarm's Raft store: one immutable Swarm config per state version.

Version ``n`` of the state is the config ``<prefix>-state-<n>`` (labels: the
version, and a random id per commit), holding the state file's JSON.
Committing ``n`` is creating that config: a name that exists is refused with
409, so of the replicas that read ``n - 1`` one commits ``n``; the others get
:class:`StateConflict` with what won and compute their change again on it.
Pruning (the newest ``keep`` are kept, removed in the background by the
replica that commits: ``bench/swarm_switch.py``) frees old names, so after
each create the versions are listed: a higher version with a lower Raft
index means ours re-created a pruned name; it is removed and answered as a
conflict (:func:`provider.core.state_versions.superseded`). A create whose
answer is lost is sent again: "created" or "exists with our id" is ours,
"exists with another id" a conflict, no answer :class:`CommitOutcomeUnknown`
(503; the controller announces the switch if a later state holds it).

Chosen over one config whose labels carry the state because a config's data
is immutable and every version stays readable until pruned, which the
follower needs (``docs/swarm-findings.md``). Without a Raft quorum the
managers answer with an error: nothing is committed, the switch is refused
with 503, and the replica keeps serving its last state.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiodocker
import aiohttp
import structlog
from aiodocker.events import DockerEvents

from provider import store
from provider.controller import Controller
from provider.core import state_json
from provider.core.model import State
from provider.core.state_versions import by_version as versions_of
from provider.core.state_versions import config_name, describe, superseded, to_prune
from provider.errors import StateFileError, StateStoreUnavailable
from provider.state_store import CommitOutcomeUnknown, StateConflict

log = structlog.get_logger("bluegreen.swarm_state")

#: Swarm refuses config data of 1,024,000 bytes or more (measured: "config data must be
#: larger than 0 and less than 1024000 bytes").
MAX_CONFIG_BYTES = 1_024_000
#: Seconds of the daemon's event log replayed on (re)subscribing.
EVENT_SLACK_S = 2.0
#: Reloads after a conflict before giving up (each one means another replica progressed).
RELOAD_ATTEMPTS = 5
#: A manager without quorum answers within seconds; a hung one must not hold the lock longer.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=2)
#: Pauses before each new create of a commit whose answer was lost, and each one's limit
#: (a healthy manager answers in milliseconds; a 503 must not wait 3 x 5 s).
RESOLVE_DELAYS = (0.1, 0.5)
RESOLVE_TIMEOUT_S = 2.0
Failure = (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True)
class Stored:
    """One state version as read from the Swarm."""

    version: int
    state: State


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiodocker.DockerError):
        message = exc.message if isinstance(exc.message, str) else str(exc.message)
        return f"{exc.status}: {message}"[:300]
    return (str(exc) or type(exc).__name__)[:300]


def _answered(exc: BaseException) -> bool:
    """The manager refused the create itself: nothing was, or will be, committed.

    A 4xx, or "does not have a leader" (no Raft proposal was made; measured in
    ``docs/swarm-findings.md``). "lost leader status" and ``DeadlineExceeded``
    come after a proposal: it may still be committed.
    """
    if not isinstance(exc, aiodocker.DockerError):
        return False
    if isinstance(exc.__context__, aiohttp.ClientConnectorError):
        return True  # aiodocker's 900: no connection, so no request was sent
    return 400 <= exc.status < 500 or "does not have a leader" in _describe(exc)


class SwarmStateStore:
    """Commits and reads state versions as Swarm configs, through one manager's API.

    The Docker client is made on first use, inside the running event loop.
    Only :meth:`_list`, :meth:`_create` and :meth:`_remove` talk to Docker.
    """

    kind = "swarm"

    def __init__(self, docker_host: str, *, prefix: str = "bluegreen", keep: int = 10) -> None:
        self.docker_host = docker_host
        self._docker: aiodocker.Docker | None = None
        self.prefix = prefix
        self.keep = max(2, keep)
        self.version = 0
        self.label = f"{prefix}.state-version"
        #: A random id per commit, so a commit whose answer was lost can tell itself apart.
        self.commit_label = f"{prefix}.state-commit"
        self._pruning: set[asyncio.Task[None]] = set()
        self.resolve_delays = RESOLVE_DELAYS

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.docker_host, timeout=REQUEST_TIMEOUT)
        return self._docker

    async def close(self) -> None:
        for task in list(self._pruning):
            task.cancel()
        if self._pruning:
            await asyncio.wait(list(self._pruning))
        docker, self._docker = self._docker, None
        if docker is not None:
            await docker.close()

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "location": f"swarm configs {config_name(self.prefix, self.version)}",
        }

    # -- the Docker API ----------------------------------------------------------

    async def _list(self) -> list[Mapping[str, Any]]:
        """Every config carrying the version label, data included (one call)."""
        configs = await self.docker._query_json(
            "configs", params={"filters": json.dumps({"label": [self.label]})}
        )
        return list(configs or [])

    async def _create(self, body: Mapping[str, Any]) -> None:
        await self.docker._query_json("configs/create", "POST", data=json.dumps(body))

    async def _remove(self, name: str) -> None:
        await self.docker._query_json(f"configs/{name}", "DELETE")

    # -- reading ----------------------------------------------------------------

    async def _versions(self) -> dict[int, Mapping[str, Any]]:
        """Every state version's config, by version."""
        return versions_of(self.prefix, await self._list())

    def _decode(self, version: int, config: Mapping[str, Any]) -> State:
        """The state a config holds. ``StateFileError`` if it holds none: never guess."""
        name = config_name(self.prefix, version)
        try:
            raw = base64.b64decode(config["Spec"]["Data"], validate=True)
            doc = json.loads(raw)
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise StateFileError(f"swarm config {name} does not hold a state: {exc}") from exc
        try:
            return store.from_json(doc)
        except StateFileError as exc:
            raise StateFileError(f"swarm config {name}: {exc}") from exc

    async def latest(self) -> Stored:
        """The newest committed version (version 0, an empty state, when there is none).

        Raises ``StateStoreUnavailable`` when the managers cannot answer (no
        quorum), ``StateFileError`` when the newest version cannot be parsed:
        as with a corrupt state file, guessing would flip services back.
        """
        try:
            versions = await self._versions()
        except Failure as exc:
            raise StateStoreUnavailable(
                f"cannot read the state from the Swarm: {_describe(exc)}"
            ) from exc
        if not versions:
            return Stored(0, State())
        newest = max(versions)
        return Stored(newest, self._decode(newest, versions[newest]))

    # -- committing --------------------------------------------------------------

    async def commit(self, state: State) -> str | None:
        """Create ``<prefix>-state-<version + 1>``; see :class:`StateStore`.

        Then list the versions: if a higher version was created before ours
        (a lower Raft index), ours re-created a pruned name and extends a
        state that is not the newest. It is removed again and answered as a
        conflict with the newest, so the change is computed again on top of it.
        """
        data = state_json.encode_compact(state)  # the state file's JSON, compact
        version = self.version + 1
        if len(data) >= MAX_CONFIG_BYTES:
            raise StateFileError(
                f"the state is {len(data)} bytes, over Swarm's config limit of "
                f"{MAX_CONFIG_BYTES - 1}; lower --history-limit"
            )
        commit = uuid.uuid4().hex
        body = {
            "Name": config_name(self.prefix, version),
            "Labels": {self.label: str(version), self.commit_label: commit},
            "Data": base64.b64encode(data).decode(),
        }
        try:
            await self._create(body)
        except aiodocker.DockerError as exc:
            if exc.status == 409:
                raise await self._conflict(version) from exc
            if _answered(exc):
                raise StateStoreUnavailable(
                    f"cannot commit state version {version} to the Swarm: {_describe(exc)}"
                ) from exc
            await self._resolve(body, version, commit, exc)
        except Failure as exc:
            await self._resolve(body, version, commit, exc)
        try:
            versions = await self._versions()
        except Failure as exc:  # ours is there; whether it is the newest cannot be told
            raise self._unknown(version, "the check", exc) from exc
        await self._check_newest(version, commit, versions)
        self.version = version
        # Off the switch's path: removing a config is a second Raft write, and the
        # controller answers (and serves) only once commit returns.
        if stale := to_prune(versions, self.keep):
            task = asyncio.create_task(self._prune(stale), name="state-prune")
            self._pruning.add(task)
            task.add_done_callback(self._pruning.discard)
        return None

    def _unknown(self, version: int, what: str, exc: BaseException) -> CommitOutcomeUnknown:
        return CommitOutcomeUnknown(
            f"the answer to {what} of state version {version} was lost ({_describe(exc)}): "
            "it may have been committed, or still be; the switch may take effect"
        )

    async def _resolve(
        self, body: Mapping[str, Any], version: int, commit: str, failure: BaseException
    ) -> None:
        """The create's answer was lost: create the same config again until someone answers.

        Created now: ours. Refused as existing: whoever holds the name has
        the version; the commit id tells whether it is ours (the first create
        landed) or another replica's (a conflict). No answer after every try:
        :class:`CommitOutcomeUnknown`. An in-flight first create cannot land
        after a later one did: the name is taken.
        """
        for delay in self.resolve_delays:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                    await self._create(body)
                return
            except Failure as exc:
                failure = exc
                if not isinstance(exc, aiodocker.DockerError) or exc.status != 409:
                    continue
            try:
                found = describe(await self._versions(), self.commit_label).get(version)
            except Failure as exc:
                failure = exc
                continue
            if found is not None and found.commit == commit:
                log.info("state_commit_resolved", version=version, outcome="landed")
                return
            raise await self._conflict(version)
        log.warning("state_commit_unresolved", version=version, error=_describe(failure))
        raise self._unknown(version, "the commit", failure)

    async def _check_newest(
        self, version: int, commit: str, versions: Mapping[int, Mapping[str, Any]]
    ) -> None:
        """Raise :class:`StateConflict` (after removing ours) if a newer version came first."""
        if not versions:  # ours too is gone: nothing to tell from
            raise self._unknown(version, "the check", StateStoreUnavailable("no version listed"))
        listed = describe(versions, self.commit_label)
        ours = listed.get(version)
        newer = None if ours is None else superseded(ours, listed.values())
        if ours is not None and ours.commit == commit and newer is None:
            return
        # Gone already (pruned: ``keep`` newer versions exist) or superseded: not the newest.
        log.warning("state_commit_superseded", version=version, newest=max(versions))
        if ours is not None and ours.commit == commit:
            try:
                await self._remove(config_name(self.prefix, version))
            except Failure as exc:  # never the newest, and pruned by a later commit anyway
                log.debug("state_prune_failed", version=version, error=_describe(exc))
        newest = max(versions)
        self.version = newest
        raise StateConflict(self._decode(newest, versions[newest]), newest)

    async def _conflict(self, version: int) -> StateConflict:
        """Another replica committed ``version``: read what won (at least that version)."""
        for _ in range(RELOAD_ATTEMPTS):
            latest = await self.latest()
            if latest.version >= version:
                self.version = latest.version
                return StateConflict(latest.state, latest.version)
        raise StateStoreUnavailable(
            f"state version {version} exists in the Swarm but could not be read back"
        )

    async def _prune(self, versions: list[int]) -> None:
        """Remove old versions; best effort (another replica may be removing them too)."""
        for version in versions:
            try:
                await self._remove(config_name(self.prefix, version))
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    log.debug("state_prune_failed", version=version, error=_describe(exc))
            except Failure as exc:
                log.debug("state_prune_failed", version=version, error=_describe(exc))


class StateFollower:
    """Keeps this replica on the newest committed state; the server's ``cleanup_ctx`` owns it.

    Level-triggered like the watchers: a ``config`` event (another replica
    committed) only wakes it; it reads the newest version and hands it to
    :meth:`provider.controller.Controller.follow`, which ignores what it has.
    A read every ``poll`` seconds heals a missed event or a broken stream.
    While the managers cannot answer (no quorum) it keeps the last state,
    and ``/readyz`` says why.
    """

    def __init__(self, controller: Controller, store: SwarmStateStore, *, poll: float) -> None:
        self.controller = controller
        self.store = store
        self.poll = max(0.05, poll)

    async def load(self) -> None:
        """The first read, before anything is served: retried until the managers answer."""
        delay = 0.1
        while True:
            try:
                latest = await self.store.latest()
            except StateStoreUnavailable as exc:
                log.warning("state_load_waiting", error=exc.detail, retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            await self.controller.follow(latest.state, latest.version)
            log.info("state_loaded", version=latest.version, services=len(latest.state.services))
            return

    async def run(self) -> None:
        """Follow until cancelled."""
        while True:
            events = DockerEvents(self.store.docker)  # type: ignore[no-untyped-call]
            subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
            # Replay a little of the daemon's event log: a commit between the first
            # read below and the stream's start must still wake us.
            since = f"{time.time() - EVENT_SLACK_S:.6f}"
            stream = asyncio.create_task(
                events.run(filters={"type": ["config"], "event": ["create"]}, since=since),
                name="state-events",
            )
            try:
                await self._follow(subscriber)
            finally:
                stream.cancel()
                await asyncio.wait([stream])
                if not stream.cancelled() and (failure := stream.exception()) is not None:
                    log.debug("state_events_ended", error=_describe(failure))

    async def _follow(self, subscriber: Any) -> None:
        """Read on every config event and every ``poll`` seconds; return when the stream ends."""
        while True:
            await self.read()
            try:
                async with asyncio.timeout(self.poll):
                    if await subscriber.get() is None:
                        await asyncio.sleep(self.poll)  # the stream ended: resubscribe soon
                        return
            except TimeoutError:
                pass

    async def read(self) -> None:
        """One read of the newest version; its outcome goes to the controller."""
        try:
            latest = await self.store.latest()
        except StateFileError as exc:
            await self.controller.set_store_error(exc.detail)
            return
        await self.controller.set_store_error(None)
        await self.controller.follow(latest.state, latest.version)
