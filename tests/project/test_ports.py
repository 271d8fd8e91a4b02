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
