"""Swarm mode of ``bluegreen deploy|rollback``: the command line and the rollback's new tasks.

No Docker here: argument errors are caught before anything is contacted, and the
rollback's Swarm path is driven with the scripted provider and compose of
``tests/test_rollout_core.py`` (the real Swarm calls: ``tests/test_swarm_services.py``).
"""

from __future__ import annotations

import io

import pytest

from deploy.cli import main
from deploy.errors import RolloutFailed
from deploy.rollback import rollback
from deploy.rollout import Reporter
from tests.test_rollout_core import (
    NEW,
    OLD,
    FakeClock,
    FakeCompose,
    FakeProvider,
    container,
    status,
)

SCALED_UP = "c" * 64
ENV = {"BLUEGREEN_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["deploy", "web", "--swarm"], {}, "Swarm mode needs --image"),
        (["deploy", "web"], {"BLUEGREEN_SWARM": "true"}, "Swarm mode needs --image"),
        (["deploy", "web", "--swarm", "--image", "a:1", "-f", "c.yml"], {}, "-f/-p"),
        (["rollback", "web", "--swarm", "-p", "shop"], {}, "-f/-p"),
        (["rollback", "web"], {"BLUEGREEN_SWARM": "maybe"}, "expected true or false"),
        (["canary", "web", "--image", "a:1"], {"BLUEGREEN_SWARM": "1"}, "not available in Swarm"),
    ],
)
def test_swarm_usage_errors_exit_2_before_anything_runs(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Swarm mode's argument errors exit 2 with what to do; no provider is contacted."""
    code = main(argv, {**ENV, **environ})
    assert 2 == code
    assert message in capsys.readouterr().err


def test_swarm_rollback_scales_up_and_follows_the_new_tasks() -> None:
    """The old color has only shut-down tasks: ``start`` (scale up), follow the new one, switch."""
    gone = status("green", green=[container(NEW)], blue=[container(OLD, "exited", "none")])
    gone["previous"] = "blue"
    starting = status(
        "green",
        green=[container(NEW)],
        blue=[container(OLD, "exited", "none"), container(SCALED_UP, health="starting")],
        previous="blue",
    )
    ready = status(
        "green",
        green=[container(NEW)],
        blue=[container(OLD, "exited", "none"), container(SCALED_UP)],
        previous="blue",
    )
    provider = FakeProvider([gone, gone, starting, ready])
    compose = FakeCompose()
    clock = FakeClock()
    out = io.StringIO()
    outcome = rollback(
        provider, lambda: compose, "web", Reporter(out, clock),
        clock=clock, sleep=clock.sleep, swarm=True,
    )  # fmt: skip
    assert [("start", "web-blue")] == compose.calls
    assert ["blue"] == provider.rollback_colors
    assert ("green", "blue") == (outcome.from_color, outcome.to_color)
    assert "scaling blue back up (web-blue)" in out.getvalue()


def test_swarm_rollback_that_never_gets_ready_scales_down_again() -> None:
    """New tasks that fail: the color is scaled to 0 again, nothing is switched (exit 1)."""
    gone = status("green", green=[container(NEW)], blue=[], previous="blue")
    failing = status(
        "green",
        green=[container(NEW)],
        blue=[container(SCALED_UP, health="unhealthy")],
        previous="blue",
    )
    provider = FakeProvider([gone, gone, failing])
    compose = FakeCompose()
    clock = FakeClock()
    with pytest.raises(RolloutFailed, match="blue failed") as caught:
        rollback(
            provider, lambda: compose, "web", Reporter(io.StringIO(), clock),
            clock=clock, sleep=clock.sleep, swarm=True,
        )  # fmt: skip
    assert [("start", "web-blue"), ("stop", "web-blue")] == compose.calls
    assert [] == provider.rollback_colors
    assert 1 == caught.value.exit_code
