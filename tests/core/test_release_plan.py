"""Which release step a deploy runs: its flags win over the idle color's labels."""

from __future__ import annotations

import pytest

from deploy.errors import RolloutFailed
from deploy.release_step import DEFAULT_TIMEOUT_S, ReleasePlan, ReleaseResult, resolve

MIGRATE = {"release": "migrate", "release.timeout": "90s"}


@pytest.mark.parametrize(
    ("plan", "labels", "expected"),
    [
        (ReleasePlan(), {}, None),  # no flag, no label: no step
        (ReleasePlan(), {"release": "  "}, None),
        (ReleasePlan(), MIGRATE, ("migrate", 90.0)),
        (ReleasePlan(), {"release": "migrate"}, ("migrate", DEFAULT_TIMEOUT_S)),
        (ReleasePlan("seed", 5.0), MIGRATE, ("seed", 5.0)),  # the flags win
        (ReleasePlan("seed"), MIGRATE, ("seed", 90.0)),
        (ReleasePlan(""), MIGRATE, None),  # --release "" turns the label's step off
    ],
)
def test_resolve(plan: ReleasePlan, labels: dict[str, str], expected: object) -> None:
    """The flag's command and timeout, else the label's, else none (timeout 600 s)."""
    assert expected == resolve(plan, labels)


def test_a_bad_timeout_label_refuses_the_deploy() -> None:
    """A timeout label that is no number stops the deploy before anything starts."""
    with pytest.raises(RolloutFailed, match="is not a number of seconds"):
        resolve(ReleasePlan(), {"release": "migrate", "release.timeout": "soon"})


@pytest.mark.parametrize(
    ("code", "timed_out", "ok"), [(0, False, True), (1, False, False), (None, True, False)]
)
def test_a_step_passes_only_on_exit_0_in_time(code: int | None, timed_out: bool, ok: bool) -> None:
    """Exit 0 within the timeout passes; anything else fails the deploy."""
    assert ok == ReleaseResult("migrate", code, 1.0, (), timed_out).ok
