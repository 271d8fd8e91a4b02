"""Fixtures for the integration tier: a private Docker daemon, the busybox image,
test containers and Traefik processes, all cleaned up even when a test fails.

The daemon is session-scoped because starting one takes seconds; containers and
Traefik processes are per test so no test sees another's leftovers.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest
from hypothesis import settings

from tests.reports import REPORTS_KEY, failed
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.traefik import TraefikFactory

pytest_plugins = [
    "tests.testbed.browser",
    "tests.testbed.fixtures",
    "tests.testbed.swarm_fixtures",
    "tests.xdist_order",
]

#: Fixtures that start real processes: a test using one (directly or through another
#: fixture) gets the marker, so ``-m "not docker and not traefik"`` leaves the pure and
#: API tiers. Modules made only of such tests also say so with ``pytestmark``.
TIER_FIXTURES = {"docker_daemon": "docker", "traefik_factory": "traefik"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report, so fixtures can print logs after a failure (``failed``)."""
    report = yield
    item.stash.setdefault(REPORTS_KEY, []).append(report)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the tiers its fixtures start (see ``TIER_FIXTURES``)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in TIER_FIXTURES.items():
            if fixture in names and marker not in {m.name for m in item.iter_markers()}:
                item.add_marker(marker)


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A private dockerd for the whole session; stopped and its dirs removed at the end."""
    daemon = DockerDaemon.start(tmp_path_factory.mktemp("dockerd"))
    try:
        yield daemon
    finally:
        daemon.destroy()


@pytest.fixture(scope="session")
def busybox_image(docker_daemon: DockerDaemon) -> str:
    """Name of the locally imported busybox image (built once per session)."""
    return build_busybox_image(docker_daemon, DEFAULT_IMAGE)


@pytest.fixture
def containers(docker_daemon: DockerDaemon, busybox_image: str) -> Iterator[ContainerFactory]:
    """Factory for labelled test containers; removes them all at teardown, pass or fail."""
    factory = ContainerFactory(docker_daemon, busybox_image)
    try:
        yield factory
    finally:
        errors = factory.cleanup()
        if errors:
            raise RuntimeError("container cleanup failed:\n" + "\n".join(errors))


@pytest.fixture
def traefik_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TraefikFactory]:
    """Starts real Traefik processes on loopback; stops them all at teardown.

    On a failed test, each process's log tail is printed (pytest shows it with the failure).
    """
    factory = TraefikFactory(tmp_path_factory.mktemp("traefik"))
    try:
        yield factory
    finally:
        if failed(request.node):
            for process in factory.started:
                print(f"--- {process.log_path} (tail) ---\n{process.log_text()[-3000:]}")
        factory.stop_all()


# Hypothesis profiles: "ci" (the default) keeps the stateful machine well under a minute
# on 2 shared cores; "long" hunts for minutes: `pytest --hypothesis-profile long
# tests/property/test_state_machine.py --hypothesis-show-statistics`.
settings.register_profile("ci", max_examples=300, stateful_step_count=30, deadline=None)
settings.register_profile("long", max_examples=5000, stateful_step_count=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
