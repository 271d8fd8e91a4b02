"""pytest fixtures of the end-to-end harness (registered by ``tests/conftest.py``).

They build on the integration fixtures of ``tests/conftest.py`` (``docker_daemon``,
``containers``, ``traefik_factory``), so every provider, Traefik process and
container is stopped or removed at teardown, pass or fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reports import failed
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.traefik import TraefikFactory

from .provider import ProviderFactory
from .stack import Stack, StackFactory


@pytest.fixture
def provider_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    docker_daemon: DockerDaemon,
) -> Iterator[ProviderFactory]:
    """Starts ``bluegreen serve`` subprocesses against the private daemon; stops them all.

    On a failed test each provider's log tail is printed with the failure.
    """
    factory = ProviderFactory(tmp_path_factory.mktemp("provider"), docker_daemon.host)
    try:
        yield factory
    finally:
        factory.stop_all()
        if failed(request.node):
            for process in factory.started:
                print(f"--- {process.log_path} (tail) ---\n{process.log_text()[-4000:]}")


@pytest.fixture
def stack_factory(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    containers: ContainerFactory,
) -> StackFactory:
    """Builds provider + Traefik stacks; see :meth:`StackFactory.start` for the options."""
    return StackFactory(provider_factory, traefik_factory, containers)


@pytest.fixture
def stack(stack_factory: StackFactory) -> Stack:
    """A provider (auto-promote after 0.5 s) and a Traefik polling it every 200 ms."""
    return stack_factory.start()
