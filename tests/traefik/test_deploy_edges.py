"""``bluegreen deploy`` where the quickstart used to stumble (issue 24's rough edges).

An image that exists nowhere, compose pointed at no engine, and the commands a hint
prints: each against the real provider, Traefik and Debian's ``docker-compose``, with
``web`` served by blue and green idle (``tests/traefik/test_deploy.py``'s ``app``).
"""

from __future__ import annotations

import pytest

from tests.testbed.stack import body_of
from tests.traefik.test_deploy import (  # noqa: F401 - fixtures
    App,
    app,
    app_images,
    compose_factory,
    explain,
)

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

NOWHERE = "bgtest-app:nowhere"
NO_ENGINE = "unix:///nonexistent/docker.sock"


def green_state(app: App) -> tuple[list[str], list[str]]:  # noqa: F811 - names the fixture
    return app.project.container_ids("web-green"), app.states("green")


def test_deploy_of_an_image_that_exists_nowhere_changes_nothing(app: App) -> None:  # noqa: F811
    """The image is neither local nor pullable: exit 7 before anything is touched, saying
    so in one line; the idle green keeps its running container, blue keeps serving."""
    before = green_state(app)

    result = app.deploy("--image", NOWHERE)

    assert 7 == result.returncode, explain(result)
    assert f"image {NOWHERE} is not on this Docker host and pulling it failed" in result.stderr, (
        explain(result)
    )
    assert "nothing was changed" in result.stderr
    assert before == green_state(app)
    assert ["running"] == before[1]
    assert body_of("blue") == app.served()


def test_deploy_where_compose_reaches_no_engine_says_so_in_one_line(app: App) -> None:  # noqa: F811
    """Compose finds no engine at DOCKER_HOST: no traceback, one line saying where it looked
    and what to set, and the truth about the new color (none was created)."""
    before = green_state(app)

    result = app.project.bluegreen(
        "deploy",
        "web",
        *app.project.compose_args(),
        url=app.stack.provider.url,
        token=app.stack.provider.token,
        extra_env={"DOCKER_HOST": NO_ENGINE},
    )

    output = result.stdout + result.stderr
    assert 1 == result.returncode, explain(result)
    assert "Traceback" not in output
    assert f"compose cannot reach the Docker engine at DOCKER_HOST={NO_ENGINE}" in result.stderr
    assert "the new green containers were never created" in result.stderr, explain(result)
    assert "left running" not in output
    assert before == green_state(app)
    assert body_of("blue") == app.served()


def test_deploy_image_check_reaches_no_engine_in_one_line(app: App) -> None:  # noqa: F811
    """With --image the check comes first: exit 7 and the same single line, nothing run."""
    result = app.project.bluegreen(
        "deploy",
        "web",
        *app.project.compose_args(),
        "--image",
        NOWHERE,
        url=app.stack.provider.url,
        token=app.stack.provider.token,
        extra_env={"DOCKER_HOST": NO_ENGINE},
    )

    assert 7 == result.returncode, explain(result)
    assert "Traceback" not in result.stdout + result.stderr
    assert [
        f"bluegreen deploy: compose cannot reach the Docker engine at DOCKER_HOST={NO_ENGINE}"
    ] == [line.split(": start Docker")[0] for line in result.stderr.strip().splitlines()]


def test_a_failed_deploy_hints_the_command_the_user_types(
    app: App,  # noqa: F811
    app_images: dict[str, str],  # noqa: F811
) -> None:
    """The hints name `docker-compose`, as typed, not /usr/bin/docker-compose."""
    result = app.deploy("--image", app_images["broken"], "--timeout", "20")

    assert 1 == result.returncode, explain(result)
    assert "/usr/bin/docker-compose" not in result.stdout + result.stderr
    assert f"Next: look at `docker-compose -f {app.project.file}" in result.stderr
    assert "(docker-compose -f " in result.stdout
