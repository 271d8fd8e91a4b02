"""State-file writes that fail: the served body keeps following Docker, adoption retries.

Also the store's own promises: a write is a temp file plus ``os.replace`` (a crash
before the rename leaves the old bytes), the rename is the commit point (a
directory fsync failing after it is a warning, not a failed switch), and a state
file the provider cannot read stops it with a message, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from provider import atomic_file, store
from provider.api import CONTROLLER
from provider.controller import Controller
from provider.core import transitions
from provider.core.model import Color, State
from provider.errors import StateFileError
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container
from tests.testbed.ports import free_port
from tests.waiting import eventually

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]
#: Bound on waiting for the provider's background retry.
WAIT_S = 10.0
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def make_settings(tmp_path: Path) -> Settings:
    return Settings(state_file=tmp_path / "state.json", token=TOKEN)


async def client_for(
    aiohttp_client: ClientFactory, settings: Settings, *, retry_delay: float = 0.01
) -> TestClient[Any, Any]:
    """An API client over a provider with no Docker watcher; state retries run fast."""
    app = build_app(settings, watch_docker=False)
    app[CONTROLLER].state_retry_delays = (retry_delay, retry_delay * 4)
    return await aiohttp_client(app)


def servers(body: bytes, color_service: str) -> list[str]:
    """The server URLs ``/traefik``'s body gives one color's load balancer."""
    config = json.loads(body)
    lb = config["http"]["services"][color_service]["loadBalancer"]
    return [s["url"] for s in lb["servers"]]


class FailingSave:
    """Stands in for ``store.save`` and raises while ``failing`` is set."""

    def __init__(self) -> None:
        self.failing = True
        self.calls = 0
        self._real = store.save

    def __call__(self, path: Path, state: State) -> str | None:
        self.calls += 1
        if self.failing:
            raise StateFileError(f"cannot write state file {path}: No space left on device")
        return self._real(path, state)


@pytest.fixture
def failing_save(monkeypatch: pytest.MonkeyPatch) -> Iterator[FailingSave]:
    fake = FailingSave()
    monkeypatch.setattr(store, "save", fake)
    yield fake


async def test_failed_adoption_write_does_not_freeze_the_body(
    aiohttp_client: ClientFactory, tmp_path: Path, failing_save: FailingSave
) -> None:
    """With every state write failing, the body still follows each new observation
    (first sync and later), /readyz, /status and /metrics say why, and once writes
    work again the retry adopts the service without any Docker event."""
    client = await client_for(aiohttp_client, make_settings(tmp_path))
    controller: Controller = client.app[CONTROLLER]
    blue = make_container("web", "blue", port=8081, created=1.0)
    await controller.replace_containers([blue])
    await controller.mark_synced()

    first = await client.get("/traefik")
    assert 200 == first.status
    assert ["http://127.0.0.1:8081"] == servers(await first.read(), "web-blue")
    assert controller.state_write_error is not None
    assert "No space left" in controller.state_write_error

    replacement = make_container("web", "blue", port=8083, created=2.0)
    await controller.replace_containers([replacement])
    assert ["http://127.0.0.1:8083"] == servers(
        await (await client.get("/traefik")).read(), "web-blue"
    )

    ready = await client.get("/readyz")
    assert 503 == ready.status
    ready_doc = await ready.json()
    assert False is ready_doc["state_file"]["ok"]
    assert "No space left" in ready_doc["state_file"]["error"]
    status = await (await client.get("/status")).json()
    file_doc = status["state_file"]
    assert (False, controller.state_write_error, "file") == (
        file_doc["ok"],
        file_doc["error"],
        file_doc["store"],
    )
    assert False is status["services"]["web"]["adopted"]
    metrics = await (await client.get("/metrics")).text()
    errors_line = next(
        line for line in metrics.splitlines() if line.startswith("bluegreen_state_write_errors")
    )
    assert float(errors_line.split()[1]) >= 1
    assert State() == store.load(tmp_path / "state.json")

    failing_save.failing = False
    await eventually("the retry succeeds", lambda: controller.state_write_error is None, WAIT_S)
    assert Color.BLUE == store.load(tmp_path / "state.json").services["web"].active
    assert 200 == (await client.get("/readyz")).status
    status = await (await client.get("/status")).json()
    assert (True, None) == (status["state_file"]["ok"], status["state_file"]["error"])
    assert True is status["services"]["web"]["adopted"]


async def test_failed_switch_write_changes_nothing_and_is_reported(
    aiohttp_client: ClientFactory, tmp_path: Path, failing_save: FailingSave
) -> None:
    """A switch whose write fails answers 500, serves and remembers the old color, and
    shows in /readyz until a later write succeeds."""
    failing_save.failing = False
    client = await client_for(aiohttp_client, make_settings(tmp_path))
    controller: Controller = client.app[CONTROLLER]
    await controller.replace_containers(
        [
            make_container("web", "blue", port=8081, created=1.0),
            make_container("web", "green", port=8082, created=2.0),
        ]
    )
    await controller.mark_synced()
    body = controller.body
    failing_save.failing = True
    resp = await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    assert 500 == resp.status
    assert "state_write_failed" == (await resp.json())["error"]
    assert body == controller.body
    assert Color.BLUE == controller.state.services["web"].active
    assert Color.BLUE == store.load(tmp_path / "state.json").services["web"].active
    assert 503 == (await client.get("/readyz")).status
    failing_save.failing = False
    await eventually("the retry succeeds", lambda: controller.state_write_error is None, WAIT_S)
    assert 200 == (await client.get("/readyz")).status
    assert Color.BLUE == store.load(tmp_path / "state.json").services["web"].active


async def test_real_rename_failure_keeps_serving_then_adopts(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A real failing write (the state file's path is a non-empty directory, so
    ``os.replace`` fails with EISDIR): the body follows the observations, the old
    path is untouched, and removing the obstacle lets the retry adopt the service."""
    settings = make_settings(tmp_path)
    client = await client_for(aiohttp_client, settings, retry_delay=0.02)
    controller: Controller = client.app[CONTROLLER]
    obstacle = settings.state_file
    obstacle.mkdir()
    (obstacle / "keep").write_text("x")

    await controller.replace_containers([make_container("web", "green", port=8082)])
    await controller.mark_synced()
    assert ["http://127.0.0.1:8082"] == servers(
        await (await client.get("/traefik")).read(), "web-green"
    )
    assert controller.state_write_error is not None
    assert "directory" in controller.state_write_error.lower()
    await controller.replace_containers([make_container("web", "green", port=8084)])
    assert ["http://127.0.0.1:8084"] == servers(controller.body, "web-green")
    assert [] == [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

    (obstacle / "keep").unlink()
    obstacle.rmdir()
    await eventually("the retry succeeds", lambda: controller.state_write_error is None, WAIT_S)
    assert Color.GREEN == store.load(settings.state_file).services["web"].active


def test_save_writes_a_temp_file_and_renames_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between writing and renaming leaves the old file's bytes intact and no
    temp file; the rename is from a sibling temp file onto the state file."""
    path = tmp_path / "state.json"
    old = transitions.adopt(State(), "web", Color.BLUE, 1.0)
    store.save(path, old)
    before = path.read_bytes()
    renames: list[tuple[str, str]] = []

    def crash(src: str, dst: str) -> None:
        renames.append((str(src), str(dst)))
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic_file.os, "replace", crash)
    new, _ = transitions.switch(old, "web", Color.GREEN, reason="m", actor="a", now=2.0)
    with pytest.raises(StateFileError):
        store.save(path, new)
    assert before == path.read_bytes()
    assert 1 == len(renames)
    src, dst = renames[0]
    assert (str(path), str(tmp_path)) == (dst, str(Path(src).parent))
    assert src.endswith(".tmp")
    assert [] == [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def _fail_on_directories(real: Callable[[int], None]) -> Callable[[int], None]:
    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real(fd)

    return fsync


def test_directory_fsync_failure_after_rename_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is the commit point: the new state is in the file, so a failing
    directory fsync is reported (returned) rather than raised as a failed write."""
    path = tmp_path / "state.json"
    state = transitions.adopt(State(), "web", Color.GREEN, 1.0)
    monkeypatch.setattr(atomic_file.os, "fsync", _fail_on_directories(os.fsync))
    warning = store.save(path, state)
    assert warning is not None and "Input/output error" in warning
    assert state == store.load(path)


async def test_directory_fsync_failure_answers_the_switch(
    aiohttp_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A switch whose directory fsync fails is on disk, so it answers 200 and memory
    agrees with the file; the failure is counted and does not mark the file failing."""
    client = await client_for(aiohttp_client, make_settings(tmp_path))
    controller: Controller = client.app[CONTROLLER]
    await controller.replace_containers(
        [make_container("web", "blue", port=8081), make_container("web", "green", port=8082)]
    )
    await controller.mark_synced()
    monkeypatch.setattr(atomic_file.os, "fsync", _fail_on_directories(os.fsync))
    resp = await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    assert 200 == resp.status
    on_disk = store.load(tmp_path / "state.json")
    assert on_disk == controller.state
    assert Color.GREEN == on_disk.services["web"].active
    assert controller.state_write_error is None
    metrics = await (await client.get("/metrics")).text()
    assert "bluegreen_state_dir_fsync_errors_total 1.0" in metrics.splitlines()


@pytest.mark.parametrize(
    "doc",
    [
        '{"version": 1, "seq": 1e999, "services": {}, "history": []}',
        '{"version": 1, "seq": 0, "services": {}, "history": [{"service": "w", "from": null,'
        ' "to": "blue", "reason": "r", "actor": "a", "at": 1, "seq": -1e999}]}',
        "[" * 100_000,
    ],
    ids=["seq-overflow", "history-seq-overflow", "deep-nesting"],
)
def test_unloadable_numbers_are_a_state_file_error(tmp_path: Path, doc: str) -> None:
    """Numbers JSON can hold but an int cannot (1e999), and nesting past the parser's
    stack, are a StateFileError naming the file like any other corrupt file."""
    path = tmp_path / "state.json"
    path.write_text(doc)
    with pytest.raises(StateFileError, match=str(path)):
        store.load(path)


def test_serve_with_overflowing_seq_exits_with_a_message(tmp_path: Path) -> None:
    """`bluegreen serve` on a state file with ``"seq": 1e999`` exits 2 with one clear
    line on stderr and no traceback."""
    path = tmp_path / "state.json"
    path.write_text('{"version": 1, "seq": 1e999, "services": {}, "history": []}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from deploy.cli import main; sys.exit(main())",
            "serve",
            "--state-file",
            str(path),
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert 2 == proc.returncode
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"bluegreen serve: {path}: state file has an unexpected shape")


async def test_retries_back_off_then_adopt(tmp_path: Path, failing_save: FailingSave) -> None:
    """The retry task waits 0.5 s, then doubles up to 30 s between failed writes, and
    adopts the waiting service with the first write that works (delays recorded, not
    slept)."""
    controller = Controller(make_settings(tmp_path), State())
    delays: list[float] = []
    writes_work_after = 8

    async def record(delay: float) -> None:
        delays.append(delay)
        failing_save.failing = len(delays) < writes_work_after
        await asyncio.sleep(0)

    controller.retry_sleep = record
    task = asyncio.create_task(controller.keep_state_written())
    try:
        await controller.replace_containers([make_container("web", "blue")])
        await eventually(
            "the service is adopted", lambda: "web" in controller.state.services, WAIT_S
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0] == delays
    assert controller.state_write_error is None
    assert 1 + writes_work_after == failing_save.calls
    assert Color.BLUE == store.load(tmp_path / "state.json").services["web"].active
