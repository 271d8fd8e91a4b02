"""pytest fixtures of the multi-node Swarm (registered by ``tests/conftest.py``).

Forming the cluster takes seconds, so it is module-scoped: the tests of one
module share it, and a module that crashes nodes leaves no damage for the next.
Teardown runs pass or fail and fails the test run if anything is left over.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.testbed.swarm import SwarmCluster

#: Users of these fixtures start three daemons: marked ``docker`` and ``slow``.
SWARM_FIXTURES = ("swarm_cluster",)
SWARM_MARKERS = ("docker", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test using a Swarm fixture (even through another) ``docker`` and ``slow``."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if not names.intersection(SWARM_FIXTURES):
            continue
        present = {mark.name for mark in item.iter_markers()}
        for marker in SWARM_MARKERS:
            if marker not in present:
                item.add_marker(marker)


@pytest.fixture(scope="module")
def swarm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmCluster]:
    """Three managers in their own network namespaces, busybox imported on each; destroyed
    at the end of the module, and checked that nothing of it is left."""
    cluster = SwarmCluster.create(tmp_path_factory.mktemp("swarm"))
    try:
        yield cluster
    finally:
        cluster.destroy()
        left = cluster.leftovers()
        if left:
            raise RuntimeError("swarm teardown left:\n" + "\n".join(left))
