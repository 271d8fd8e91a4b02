"""How ``bash scripts/test`` shares the suite between its pytest-xdist workers.

Each worker is a process of its own with its own private ``dockerd`` (the session
fixture), so a module is the unit of work: its module-scoped fixtures (a Swarm
cluster, a browser) are made once, on one worker. The modules that build the
provider image from ``deploy/Dockerfile`` (the longest setup of the suite) go
together, so one worker builds it once (``provider_image`` is session-scoped).

Longest first (the classic greedy order for two machines): those modules start at
once and the many short ones of the pure and API tiers fill in beside them, instead
of a long module starting last and running alone (xdist's load-scope scheduler hands
units out by test count, which put the image build at the very end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    from xdist.workermanage import WorkerController

#: Modules that share one unit of work (they use the provider image).
SHARED_UNITS = {
    "tests/engine/test_image.py": "provider image",
    "tests/engine/test_quickstart.py": "provider image",
    "tests/engine/test_offline_quickstart.py": "provider image",
}

#: Start order by tier: units earlier here start first (longest on average first).
TIER_ORDER = (
    "provider image",
    "tests/swarm/",
    "tests/property/",
    "tests/traefik/",
    "tests/engine/",
    "tests/browser/",
)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or the shared unit listed above."""
    path = nodeid.split("::", 1)[0]
    return SHARED_UNITS.get(path, path)


def rank(unit: str) -> int:
    """Position of a unit of work in :data:`TIER_ORDER` (after all of it if not listed)."""
    for index, prefix in enumerate(TIER_ORDER):
        if unit.startswith(prefix):
            return index
    return len(TIER_ORDER)


class LongestFirst(LoadScopeScheduling):
    """xdist's load-scope scheduler with :func:`unit_of` as the scope, handing out the
    waiting unit of the lowest :func:`rank` next (in xdist's order among equals)."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: WorkerController) -> None:
        first = min(self.workqueue, key=rank)
        self.workqueue.move_to_end(first, last=False)
        super()._assign_work_unit(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LongestFirst | None:
    """Use :class:`LongestFirst` for ``--dist loadscope`` (what ``scripts/test`` passes)."""
    if config.getvalue("dist") != "loadscope":
        return None
    return LongestFirst(config, log)
