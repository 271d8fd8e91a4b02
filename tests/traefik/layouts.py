"""What the migration tests (``test_migrate_*``, ``test_two_compose_files``) share."""

from __future__ import annotations

from typing import Any

#: Three failed checks of up to 5 s each before a color is unhealthy: on a machine whose
#: load average reached 37 (two cores, parallel suites), one slow ``wget`` of the testbed's
#: default check (one retry, 2 s) took a live color out and failed requests by chance.
TOLERANT_HEALTH = {"retries": 3, "timeout": "5s"}


def tolerant(definition: dict[str, Any]) -> dict[str, Any]:
    """``definition`` (a compose service) with :data:`TOLERANT_HEALTH`; returned for chaining."""
    definition["healthcheck"].update(TOLERANT_HEALTH)
    return definition
