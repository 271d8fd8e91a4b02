"""Swarm mode of ``bluegreen deploy|rollback``: the command line and the rollback's new tasks.

No Docker here: argument errors are caught before anything is contacted, and the
rollback's Swarm path is driven with the scripted provider and compose of
``tests/core/test_rollout_core.py`` (the real Swarm calls: ``tests/swarm/test_swarm_services.py``).
"""

from __future__ import annotations

import io

import pytest

from deploy.cli import main
from deploy.compose import Compose, ComposeCommand
from deploy.errors import Interrupted, RolloutFailed
from deploy.rollback import rollback
from deploy.rollout import Reporter
from deploy.swarm_services import SwarmServices
from provider.core.model import Color
from tests.core.test_rollout_core import (
    NEW,
    OLD,
    FakeClock,
    FakeCompose,
    FakeProvider,
    container,
    run_deploy,
    status,
)

SCALED_UP = "c" * 64
ENV = {"BLUEGREEN_URL": "http://127.0.0.1:9"}


def stack_pair() -> SwarmServices:
    """The pair of stack ``app`` as the CLI sees it once listed (no Docker contacted)."""
    api = SwarmServices("web")
    api.seen = {Color.BLUE: "app_web-blue", Color.GREEN: "app_web-green"}
    return api


class FakeSwarm(FakeCompose):
    """The scripted compose of the rollout tests, with the real Swarm hints."""

    def __init__(self, interrupt_on: str | None = None) -> None:
        super().__init__(interrupt_on=interrupt_on)
        self.swarm = stack_pair()

    def describe(self) -> str:
        return self.swarm.describe()

    def hint(self, verb: str, name: str) -> str:
        return self.swarm.hint(verb, name)


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["deploy", "web", "--swarm"], {}, "Swarm mode needs --image"),
        (["deploy", "web"], {"BLUEGREEN_SWARM": "true"}, "Swarm mode needs --image"),
        (["deploy", "web", "--swarm", "--image", "a:1", "-f", "c.yml"], {}, "-f/-p"),
        (["rollback", "web", "--swarm", "-p", "shop"], {}, "-f/-p"),
        (["rollback", "web"], {"BLUEGREEN_SWARM": "maybe"}, "expected true or false"),
        (["canary", "web", "--image", "a:1"], {"BLUEGREEN_SWARM": "1"}, "not available in Swarm"),
        (["deploy", "web", "--swarm", "--image", "a:1", "--release", "m"], {}, "with --swarm"),
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


def test_hints_are_commands_of_each_mode() -> None:
    """Compose hints are the compose command line; Swarm ones scale or read the stack's real
    service (``docker service stop`` does not exist)."""
    compose = Compose(ComposeCommand(("docker-compose",), "v1"), ["my app.yml"], "shop")
    swarm = stack_pair()
    assert [
        "docker-compose -f 'my app.yml' -p shop stop web-blue",
        "docker-compose -f 'my app.yml' -p shop logs web-green",
        "docker service scale app_web-blue=0",
        "docker service scale app_web-green=<replicas>",
        "docker service logs app_web-green",
        "docker service scale web-blue=0",
    ] == [
        compose.hint("stop", "web-blue"),
        compose.hint("logs", "web-green"),
        swarm.hint("stop", "web-blue"),
        swarm.hint("start", "web-green"),
        swarm.hint("logs", "web-green"),
        SwarmServices("web").hint("stop", "web-blue"),
    ]


def test_swarm_deploy_failure_names_the_services_logs() -> None:
    """A Swarm deploy that times out points at ``docker service logs`` of the real service."""
    starting = status(green=[container(NEW, health="starting")])
    with pytest.raises(RolloutFailed) as raised:
        run_deploy(FakeProvider([status(), starting]), FakeSwarm(), timeout=5.0)
    message = raised.value.message
    assert "Next: look at `docker service logs app_web-green`" in message
    assert "docker-compose" not in message


def test_swarm_interrupt_after_the_switch_names_a_scale_command() -> None:
    """Ctrl-C while the old color is stopped: the hint scales the real blue service to 0."""
    switched = status("green", green=[container(NEW)], previous="blue")
    with pytest.raises(Interrupted) as raised:
        run_deploy(FakeProvider([status(), switched]), FakeSwarm(interrupt_on="stop"))
    assert "Stop it with `docker service scale app_web-blue=0`" in raised.value.message
