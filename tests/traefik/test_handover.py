"""The handover a real app survives, through real Traefik and the real engine.

The reference app (tests/testbed/refapp/) serves blue (v1); a WebSocket and an SSE
stream are open to it through Traefik, and a v1 page was loaded. Then
``bluegreen deploy --image v2``: the v1 page's content-hashed asset is still
served after the switch (the asset fallback), the streams stay open through the
drain (it waits on them until ``--drain-timeout``), and at the stop the app
closes them itself on SIGTERM: a WebSocket close frame (1001) and the SSE's last
event. The deploy reports what was open and exits 0 (nothing was cut); the
fallback is gone once blue has stopped.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import aiohttp
import pytest

from tests.testbed.compose import ComposeFactory, ComposeProject
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.refapp_image import build_refapp_images, use_refapp
from tests.testbed.stack import Stack, StackFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.slow]

DRAIN_TIMEOUT_S = 8.0
DRAINED = r"drained ([0-9.]+)s \(--drain-timeout passed; (\d+) connection"


@pytest.fixture(scope="module")
def refapp(docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The reference app's v1 and v2 images."""
    return build_refapp_images(docker_daemon, tmp_path_factory.mktemp("refapp"))


@pytest.fixture
def compose_factory(
    docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeFactory]:
    """Compose projects, each taken down at teardown."""
    factory = ComposeFactory(docker_daemon, tmp_path_factory.mktemp("compose"))
    try:
        yield factory
    finally:
        errors = factory.down_all()
        if errors:
            raise RuntimeError("\n".join(errors))


def refapp_project(
    stack: Stack, compose_factory: ComposeFactory, owner: str, image: str, fallback: bool
) -> ComposeProject:
    """``web-blue`` and ``web-green`` running the reference app (its own CMD, a Python
    healthcheck, 10 s to stop), with ``bluegreen.fallback=/assets/`` when asked."""
    project = compose_factory.create()
    labels = {f"{stack.prefix}.fallback": "/assets/"} if fallback else {}
    project.add_app(
        prefix=stack.prefix,
        service="web",
        default_image=image,
        owner=owner,
        extra_labels=labels,
        stop_grace_period="10s",
    )
    use_refapp(project)
    return project


async def _get(session: aiohttp.ClientSession, base: str, host: str, path: str) -> tuple[int, str]:
    async with session.get(base + path, headers={"Host": host}) as answer:
        return answer.status, await answer.text()


async def _deploy(project: ComposeProject, stack: Stack, image: str) -> tuple[int, str, str]:
    env = project.cli_env(stack.provider.url, stack.provider.token)
    argv = project.bluegreen_argv(
        "deploy", "web", *project.compose_args(), "--image", image,
        "--drain-timeout", f"{DRAIN_TIMEOUT_S:g}",
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=project.work_dir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 300)
    finally:
        if proc.returncode is None:
            proc.kill()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_streams_survive_the_deploy_and_old_assets_are_served_after_it(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    refapp: dict[str, str],
) -> None:
    """Through real Traefik: old asset served after the switch, streams closed by the app
    (WebSocket close frame 1001, SSE last event) only at the stop, deploy exit 0."""
    stack = stack_factory.start(service="web")
    project = refapp_project(stack, compose_factory, containers.owner, refapp["v1"], True)
    stack.provider.wait_ready()
    project.up("web-blue")
    stack.provider.wait_active("web", "blue")
    base, host = stack.traefik.web_url, stack.host
    page = stack.traefik.wait_response(host=host, timeout=60).body
    (old_asset,) = re.findall(r"/assets/app\.[0-9a-f]+\.js", page)

    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(base + "/ws", headers={"Host": host}, autoping=False)
        sse = await session.get(base + "/sse", headers={"Host": host})
        assert b"data: v1 0\n" == await sse.content.readline()
        deploy = asyncio.create_task(_deploy(project, stack, refapp["v2"]))

        async def serving_v2() -> bool:
            return (await _get(session, base, host, "/version"))[1] == "v2\n"

        for _ in range(600):  # bounded: 600 x 0.5 s
            if await serving_v2() or deploy.done():
                break
            await asyncio.sleep(0.5)
        # After the switch: the v1 page's asset, which v2 does not have, still loads.
        status, body = await _get(session, base, host, old_asset)
        assert 200 == status and "'v1'" in body, body
        # The WebSocket still answers from v1 during the drain.
        await ws.send_str("ping")
        echo = await ws.receive(timeout=30)
        assert "v1:ping" == echo.data
        # Then the stop: the app closes both streams itself.
        closing = await ws.receive(timeout=120)
        tail = await asyncio.wait_for(sse.content.read(), 120)
        code, out, err = await deploy
        assert aiohttp.WSMsgType.CLOSE == closing.type, closing
        assert 1001 == closing.data, closing  # going away: a close frame, not a cut (1006)
        assert tail.endswith(b"event: bye\ndata: shutting down\n\n"), tail[-200:]
        assert 0 == code, f"{out}\n{err}"
        summary = out.strip().splitlines()[-1]
        drained = re.search(
            r"drained ([0-9.]+)s \(--drain-timeout passed; (\d+) connection", summary
        )
        assert drained is not None, summary
        assert float(drained.group(1)) >= DRAIN_TIMEOUT_S - 0.5  # the streams held it open
        assert int(drained.group(2)) >= 2, summary  # the WebSocket and the SSE stream
        assert "WARNING" not in summary

        # Blue is stopped: the fallback is gone, the v1 asset is a 404 of v2's.
        def gone() -> bool:
            return stack.traefik.request(old_asset, host=host).status == 404

        await asyncio.to_thread(wait_until, "the fallback to go", gone, 30)
