"""Test ports come from outside the kernel's ephemeral range (no bind race with clients)."""

from __future__ import annotations

import socket

import pytest

from tests.testbed import ports
from tests.testbed.ports import LOOPBACK, ephemeral_range, free_ports


def test_free_ports_are_outside_the_ephemeral_range_distinct_and_bindable() -> None:
    low, high = ephemeral_range()
    drawn = free_ports(50)
    assert len(set(drawn)) == 50
    assert all(not low <= port <= high for port in drawn)
    for port in drawn[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, port))


def test_a_port_in_use_or_handed_out_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((LOOPBACK, 0))
        taken = held.getsockname()[1]
        one, two = free_ports(2)  # outside the ephemeral range: nobody else takes them
        spans = [range(taken, taken + 1), range(one, one + 1), range(two, two + 1)]
        monkeypatch.setattr(ports, "_candidates", lambda: spans)
        monkeypatch.setattr(ports, "_handed_out", set())
        assert set(free_ports(2)) == {one, two}
        # All three taken or handed out: the kernel's choice, never one of them.
        assert ports.free_port() not in {taken, one, two}


@pytest.mark.parametrize("count", [2, 3])
def test_each_xdist_worker_draws_from_its_own_residue_class(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """Two workers of one run (each a process of its own) never hand out the same port."""
    low, high = ephemeral_range()
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(count))
    for index in range(count):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        monkeypatch.setattr(ports, "_handed_out", set())
        assert (index, count) == ports.worker_share()
        drawn = free_ports(20)
        assert {index} == {port % count for port in drawn}
        assert all(not low <= port <= high for port in drawn)
        spans = ports._candidates()
        assert all(span.step == count and span.start % count == index for span in spans)


def test_outside_xdist_every_port_is_a_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert (0, 1) == ports.worker_share()
    assert all(span.step == 1 for span in ports._candidates())
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "master")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "two")
    assert (0, 1) == ports.worker_share()
