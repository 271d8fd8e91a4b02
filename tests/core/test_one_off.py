"""A ``compose run`` container (a deploy's release step) is never a backend."""

from __future__ import annotations

from typing import Any

import pytest

from provider.core.docker_normalize import one_off


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"com.docker.compose.oneoff": "True"}, True),  # compose v1 and v2 write "True"
        ({"com.docker.compose.oneoff": "true"}, True),
        ({"com.docker.compose.oneoff": "False"}, False),  # a service's own container
        ({"bluegreen.service": "web"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_one_off_reads_composes_mark(labels: Any, expected: bool) -> None:
    """Only compose's one-off mark set to true makes a container a one-off."""
    assert expected == one_off(labels)
