"""SIGKILL the provider at random moments while it switches: the state survives every time.

A real ``bluegreen serve`` (forked from a zygote, see ``tests/forked_provider.py``)
watches two containers on the private Docker daemon while the test switches
its service back and forth as fast as the API answers. A timer SIGKILLs the
process at a random instant, at least 200 times. After each restart:

- the state file parses (a torn write would stop the server with an error);
- it holds the last acknowledged state, or the one switch that was in flight
  when the process died (persisted, then killed before it could answer);
- ``/status`` and the config served on ``/traefik`` both show that color;
- the persisted history is gap-free and agrees with every acknowledged switch.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import random
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provider import store
from tests.forked_provider import ForkedProvider, Zygote
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.ports import free_port
from tests.testbed.provider import api_request

pytestmark = [pytest.mark.docker, pytest.mark.slow]

KILLS = 200
#: The kill lands uniformly within this many seconds of the first switch.
KILL_WINDOW_S = 0.12
MAX_SWITCHES_PER_LIFE = 2000
TOKEN = "crash-" + secrets.token_hex(8)
SERVICE = "web"


@dataclass
class Ledger:
    """What the client knows: acknowledged switches, and the one in flight at the kill."""

    acked: dict[int, str] = field(default_factory=dict)
    last_seq: int = 0
    last_color: str | None = None
    in_flight: str | None = None
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    started = Zygote()
    try:
        yield started
    finally:
        started.close()


def switch(port: int, color: str) -> tuple[int, dict[str, object]] | None:
    """POST /switch; ``None`` when the process died before answering."""
    try:
        answer = api_request(
            port,
            "POST",
            "/switch",
            body={"service": SERVICE, "color": color, "force": True},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
    except (OSError, http.client.HTTPException):
        return None
    return answer.status, answer.json


def check_restart(provider: ForkedProvider, state_file: Path, ledger: Ledger) -> None:
    """After a restart: file, served color and history agree with what was acknowledged."""
    state = store.load(state_file)  # raises on a torn or corrupt file
    active = state.services[SERVICE].active.value
    if ledger.last_color is not None:
        if state.seq == ledger.last_seq:
            assert ledger.last_color == active, "lost an acknowledged switch"
            ledger.outcomes["old state (in-flight switch not persisted)"] += 1
        else:
            assert ledger.in_flight is not None, f"seq {state.seq} but nothing was in flight"
            assert (ledger.last_seq + 1, ledger.in_flight) == (state.seq, active)
            ledger.outcomes["new state (persisted, killed before answering)"] += 1
    status = json.loads(provider.get(f"/status/{SERVICE}").body)
    assert active == status["active"]
    served = json.loads(provider.get("/traefik").body)
    weighted = served["http"]["services"][SERVICE]["weighted"]["services"]
    assert [{"name": f"{SERVICE}-{active}", "weight": 1}] == weighted
    seqs = [record.seq for record in state.history]
    assert list(range(state.seq - len(seqs) + 1, state.seq + 1)) == seqs
    if state.history:
        assert active == state.history[-1].to_color.value
    for record in state.history:
        if record.seq in ledger.acked:
            assert ledger.acked[record.seq] == record.to_color.value
    assert min(ledger.acked, default=1) >= 1
    ledger.last_seq, ledger.last_color, ledger.in_flight = state.seq, active, None


def switch_until_killed(provider: ForkedProvider, ledger: Ledger, delay: float) -> None:
    """Switch back and forth until a timer SIGKILLs the process ``delay`` s in."""
    pid = provider.pid
    assert pid is not None
    killer = threading.Timer(delay, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        color = ledger.last_color or "blue"
        deadline = time.monotonic() + delay + 10
        for _ in range(MAX_SWITCHES_PER_LIFE):
            if time.monotonic() > deadline:
                raise AssertionError("the provider was not killed in time")
            color = "green" if color == "blue" else "blue"
            ledger.in_flight = color
            answer = switch(provider.port, color)
            if answer is None:
                break
            status, body = answer
            assert 200 == status, body
            record = body["switch"]
            assert isinstance(record, dict)
            seq = int(record["seq"])
            ledger.acked[seq] = color
            ledger.last_seq, ledger.last_color, ledger.in_flight = seq, color, None
    finally:
        killer.join()
        provider.kill()


def test_sigkill_while_switching_never_loses_or_tears_state(
    tmp_path: Path, docker_daemon: DockerDaemon, containers: ContainerFactory, zygote: Zygote
) -> None:
    """200+ SIGKILLs at random instants: state parses, is old-or-new, and is what is served."""
    prefix = f"bgcrash{secrets.token_hex(3)}"
    for color in ("blue", "green"):
        port = free_port()
        labels = {
            f"{prefix}.service": SERVICE,
            f"{prefix}.color": color,
            f"{prefix}.port": str(port),
            f"{prefix}.rule": f"Host(`{SERVICE}.test`)",
        }
        containers.run(f"crash-{color}", labels, port, color, healthcheck=False)
    state_file = tmp_path / "state.json"
    port = free_port()
    argv = [
        "serve",
        "--listen", f"127.0.0.1:{port}",
        "--state-file", str(state_file),
        "--docker-host", docker_daemon.host,
        "--label-prefix", prefix,
        "--token", TOKEN,
        "--no-auto-promote",
        "--no-auto-rollback",
        "--log-format", "json",
        "--log-level", "warning",
    ]  # fmt: skip
    provider = ForkedProvider(zygote, argv, port, tmp_path / "provider.log")
    ledger = Ledger()
    rng = random.Random(20261123)
    started = time.monotonic()
    for _ in range(KILLS):
        provider.start()
        provider.wait_ready()
        check_restart(provider, state_file, ledger)
        switch_until_killed(provider, ledger, rng.uniform(0.0, KILL_WINDOW_S))
    provider.start()
    provider.wait_ready()
    check_restart(provider, state_file, ledger)
    provider.kill()
    elapsed = time.monotonic() - started
    assert KILLS + 1 == provider.starts
    assert len(ledger.acked) > KILLS, "most lives should acknowledge some switches"
    print(
        f"{KILLS} kills in {elapsed:.1f}s, {len(ledger.acked)} acknowledged switches, "
        f"restarts found: {dict(ledger.outcomes)}"
    )
