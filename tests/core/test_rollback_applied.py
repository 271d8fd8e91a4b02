"""``bluegreen rollback`` against a scripted provider: after its switch back it waits, as
``deploy`` does, until Traefik applied it (``deploy/applied.py``), and a switch back that
Traefik never applies fails the rollback (exit 1) naming the cause, the switch staying
made in the provider and both colors running."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest

from deploy.errors import ProviderUnreachable, RolloutFailed
from deploy.parser import build_parser
from deploy.rollback import rollback
from deploy.rollout import Outcome, Reporter
from tests.core.test_rollout_core import NEW, OLD, FakeClock, FakeCompose, FakeProvider, container
from tests.core.test_rollout_core import status as service_status


def before() -> dict[str, Any]:
    """green active, blue (the previous color) still running: the switch back is at once."""
    return service_status("green", green=[container(NEW)], blue=[container(OLD)], previous="blue")


def after(applied: bool | None, color: str | None) -> dict[str, Any]:
    """After the switch back: blue active; what the provider knows Traefik applied."""
    doc = service_status("blue", green=[container(NEW)], blue=[container(OLD)], previous="green")
    doc["traefik"] = {"applied": applied, "color": color, "since": 40.0, "lag_s": 0.42}
    return doc


@dataclass(frozen=True)
class Row:
    #: The provider's answers after the switch back (the last one repeats).
    traefik: tuple[dict[str, Any], ...]
    #: Lines the output has, in this order.
    says: tuple[str, ...] = ()
    #: None: the rollback succeeds; else what the failure's message contains.
    fails: tuple[str, ...] | None = None


ROWS = {
    "Traefik still on green, then on blue: done once applied": Row(
        (after(False, "green"), after(False, "green"), after(True, "blue")),
        says=(
            "switched web: green → blue",
            "waiting until Traefik applied the switch (timeout 5s)",
            "Traefik applied the switch to blue 0.42s after the switch",
        ),
    ),
    "no Traefik ever polled the provider: nothing to wait for, said so": Row(
        (after(None, None),),
        says=(
            "switched web: green → blue",
            "the provider has not seen Traefik poll it: what Traefik routes is unknown",
        ),
    ),
    "Traefik never applies the switch back: exit 1 naming the cause": Row(
        (after(False, "green"),),
        says=("switched web: green → blue",),
        fails=(
            "Traefik did not apply the switch of web to blue within 5s",
            "Traefik stopped polling the provider",
            "The switch back is made in the provider: it serves blue",
            "Traefik may still route web to green",
            "`bluegreen status web`",
        ),
    ),
    "Traefik has applied no color of web: the rollback fails": Row(
        (after(False, None),),
        fails=("Traefik did not apply the switch of web to blue within 5s",),
    ),
}


def run_rollback(provider: FakeProvider) -> tuple[Outcome | RolloutFailed, str, FakeClock]:
    clock = FakeClock()
    out = io.StringIO()
    try:
        result: Outcome | RolloutFailed = rollback(
            provider,
            lambda: FakeCompose(),
            "web",
            Reporter(out, clock),
            clock=clock,
            sleep=clock.sleep,
            apply_timeout=5.0,
        )
    except RolloutFailed as exc:
        result = exc
    return result, out.getvalue(), clock


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_rollback_waits_for_traefik_to_apply_the_switch_back(row: Row) -> None:
    provider = FakeProvider([before(), *row.traefik])
    result, text, clock = run_rollback(provider)
    assert ["web"] == provider.rollbacks  # the switch is made before any wait
    assert ["blue"] == provider.rollback_colors
    lines = text.splitlines()
    found = [next(i for i, line in enumerate(lines) if want in line) for want in row.says]
    assert sorted(found) == found, text
    if row.fails is None:
        assert isinstance(result, Outcome)
        assert ("green", "blue") == (result.from_color, result.to_color)
        assert result.seconds == pytest.approx(clock.now)
    else:
        assert isinstance(result, RolloutFailed)
        for part in row.fails:
            assert part in str(result)
        assert clock.now >= 5.0


def test_the_provider_lost_during_the_wait_is_asked_again() -> None:
    """A status call that fails is retried until the deadline: only a yes ends the wait."""
    gone = ProviderUnreachable("http://127.0.0.1:1", "connection refused")
    provider = FakeProvider([before(), gone, gone, after(True, "blue")])
    result, text, _ = run_rollback(provider)
    assert isinstance(result, Outcome)
    assert "Traefik applied the switch to blue" in text


@pytest.mark.parametrize(
    ("argv", "seconds"),
    [(["rollback", "web"], 30.0), (["rollback", "web", "--apply-timeout", "7s"], 7.0)],
)
def test_rollback_takes_the_apply_timeout_as_deploy_does(argv: list[str], seconds: float) -> None:
    assert seconds == build_parser().parse_args(argv).apply_timeout
