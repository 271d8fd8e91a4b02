"""``bluegreen deploy``'s drain against a fake provider, compose and connection probe.

Pins the order (Traefik-applied hook, drain, retire, stop), that an idle old
color is stopped without waiting the timeout, and that a stream cut at the stop
is reported (summary warning, exit code 8), never passed off as clean.
"""

from __future__ import annotations

import io
from typing import Any
from unittest import mock

import pytest

from deploy import old_color
from deploy.applied import AppliedResult
from deploy.deploy_rollout import DeployPlan, deploy
from deploy.parser import DRAIN_DEPRECATED, build_parser
from deploy.rollout import STREAMS_CUT_EXIT, Reporter
from tests.core.test_rollout_core import NEW, OLD, FakeClock, FakeCompose, Recorded, container
from tests.core.test_rollout_core import status as status_doc


class Probe:
    """Connection counts by look (the last repeats); which containers were killed."""

    def __init__(self, counts: list[int | None], killed: list[str], log: list[Any]) -> None:
        self.counts = counts
        self.looks = 0
        self._killed = killed
        self.log = log

    def connections(self, container_ids: Any, ports: Any) -> int | None:
        self.log.append(("look", tuple(container_ids)))
        assert {1} == ports  # the port of the containers' server URL
        count = self.counts[min(self.looks, len(self.counts) - 1)]
        self.looks += 1
        return count

    def peers(self, container_ids: Any, ports: Any) -> frozenset[tuple[str, int, int]] | None:
        """The counted connections as lasting ones, the same at every look."""
        count = self.connections(container_ids, ports)
        return None if count is None else frozenset(("127.0.0.1", n, 1) for n in range(count))

    def killed(self, container_ids: Any) -> list[str]:
        self.log.append(("killed?", tuple(container_ids)))
        return self._killed


def _deploy(probe_counts: list[int | None], killed: list[str]) -> tuple[Any, list[Any], str]:
    switch = {"reason": "auto-promote", "actor": "watcher"}
    promoted = status_doc(
        "green",
        green=[container(NEW)],
        blue=[container(OLD)],
        previous="blue",
        last_switch=switch,
    )
    provider = Recorded([status_doc(blue=[container(OLD)]), promoted])
    compose = provider.compose = FakeCompose()
    probe = Probe(probe_counts, killed, compose.calls)  # one log for the order
    clock = FakeClock()
    out = io.StringIO()

    def applied(client: Any, service: str, color: Any, timeout: float, **_: Any) -> Any:
        """The wait for Traefik's apply (deploy/applied.py), recorded where it runs."""
        compose.calls.append(("applied?", f"{service}:{color}"))
        return AppliedResult(True, str(color), 0.0, 0.1, 0.0)

    with mock.patch.object(old_color, "wait_applied", applied):
        outcome = deploy(
            provider,
            lambda: compose,
            DeployPlan("web", image="app:2", drain_timeout=30.0),
            Reporter(out, clock),
            clock=clock,
            sleep=clock.sleep,
            probe=probe,
        )
    return outcome, compose.calls, out.getvalue()


def test_an_idle_old_color_is_stopped_without_waiting_the_timeout() -> None:
    """No connection open: the Traefik hook, a few looks, retire, stop; done in under 1 s."""
    outcome, calls, text = _deploy([0], [])
    names = [c[0] for c in calls if c[0] != "look"]  # the stop watch looks from a thread
    assert ["up", "applied?", "retire", "stop"] == names
    assert ("applied?", "web:green") == calls[1]
    assert ["look"] * 4 == [c[0] for c in calls[2:6]]  # 0, 0.2, 0.4, 0.5 s: then idle
    assert ("look", (OLD[:12],)) == calls[2]
    assert "drained 0.5s (idle; 0 connection(s) open)" in text  # looks at 0, 0.2, 0.4, 0.5 s
    assert 0 == outcome.exit_code
    assert "drained 0.5s (idle; 0 connection(s) open)" in outcome.summary()
    assert "WARNING" not in outcome.summary()


def test_a_stream_closed_by_the_app_on_sigterm_is_not_a_cut() -> None:
    """Open until the timeout, but the app exited by itself at the stop: a clean deploy."""
    outcome, calls, text = _deploy([1], [])
    assert "drained 30.0s (--drain-timeout passed; 1 connection(s) open)" in text
    assert ("killed?", (OLD[:12],)) == calls[-1]
    assert (0, ()) == (outcome.exit_code, outcome.cut)


def test_a_stream_cut_at_the_stop_is_reported_and_exits_8() -> None:
    """Open at the stop and the container was killed: warning line, summary, exit code 8."""
    outcome, _calls, text = _deploy([0, 2], [OLD[:12]])
    assert "with 2 connection(s) open: streams were cut" in text
    assert STREAMS_CUT_EXIT == outcome.exit_code == 8
    assert "WARNING: 1 old container(s) were killed with connections open" in outcome.summary()
    assert [OLD[:12]] == outcome.to_json()["cut"]


def test_drain_timeout_defaults_to_30s_and_drain_is_its_deprecated_alias(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--drain-timeout`` defaults to 30 s; ``--drain 5`` sets it to 5 and warns once."""
    parser = build_parser()
    assert 30.0 == parser.parse_args(["deploy", "web"]).drain_timeout
    assert 12.0 == parser.parse_args(["deploy", "web", "--drain-timeout", "12s"]).drain_timeout
    assert "" == capsys.readouterr().err
    assert 5.0 == parser.parse_args(["deploy", "web", "--drain", "5"]).drain_timeout
    assert DRAIN_DEPRECATED + "\n" == capsys.readouterr().err
