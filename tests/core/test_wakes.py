"""When the background loops look again (issue 19, defect 1): a past wake is never re-armed."""

from __future__ import annotations

import pytest

from provider.core.wakes import next_wake, wake_timeout


@pytest.mark.parametrize(
    ("wakes", "now", "expected"),
    [
        ([], 10.0, None),
        ([None], 10.0, None),
        ([5.0], 10.0, None),
        ([10.0], 10.0, None),
        ([5.0, 12.0], 10.0, 12.0),
        ([14.0, None, 12.0], 10.0, 12.0),
    ],
)
def test_next_wake_is_ahead_or_none(
    wakes: list[float | None], now: float, expected: float | None
) -> None:
    """A wake that has passed is dropped: the loop waits for a change instead."""
    assert expected == next_wake(wakes, now)


@pytest.mark.parametrize(
    ("wake_at", "began", "now", "expected"),
    [
        (None, 10.0, 10.0, None),
        (9.0, 10.0, 10.0, None),
        (10.0, 10.0, 10.0, None),
        (12.0, 10.0, 10.5, 1.5),
        (10.2, 10.0, 10.5, 0.0),  # ahead when asked, passed while evaluating: once
    ],
)
def test_wake_timeout_never_rearms_a_past_wake(
    wake_at: float | None, began: float, now: float, expected: float | None
) -> None:
    assert expected == wake_timeout(wake_at, began, now)
