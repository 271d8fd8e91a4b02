"""The colors' compose templates: validation, per-color names, settings precedence, hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.color_layout import Layout, from_settings, template_problem
from deploy.compose import ComposeCommand
from deploy.errors import ComposeFileProblem, UsageError
from deploy.per_color_compose import PerColorCompose
from provider.core.model import Color

V1 = ComposeCommand(("docker-compose",), "v1")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("docker-compose.{color}.yaml", None),
        ("{service}-{color}", None),
        ("app", None),
        ("app-{colour}", "may use only {service} and {color}"),
        ("app-{0}", "may use only {service} and {color}"),
        ("app-{}", "may use only {service} and {color}"),
        ("app-{color", "is not a template (expected '}' before end of string; write a "
         "literal brace as {{ or }})"),
        ("app-{color!r}", "formats a placeholder ({color!r}, {service:>8}); write them plain"),
        ("app-{{literal}}-{color}", None),
    ],
)  # fmt: skip
def test_template_problems(template: str, problem: str | None) -> None:
    """Only plain {service} and {color}; anything else is named before compose runs."""
    assert problem == template_problem(template)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (Layout(("docker-compose.{color}.yaml",), "app-{color}", "api"), None),
        (Layout(("docker-compose.{color}.yaml",), None, "{service}-{color}"), None),
        (Layout(("{color}/docker-compose.yml",), None, "api"), None),
        (Layout((), "app-{color}", "api"), None),
        (Layout(("docker-compose.yml",), "app", "{service}-{color}"), None),
        (
            Layout(("docker-compose.{color}.yaml",), None, "api"),
            "both colors would be compose service 'api' of one project (deploy): give each "
            "color its own project, e.g. --project 'web-{color}', or its own service with "
            "--compose-service",
        ),
        (
            Layout(("{color}/docker-compose.yml",), None, "api", default_project="shop"),
            "both colors would be compose service 'api' of one project (shop): give each "
            "color its own project, e.g. --project 'web-{color}', or its own service with "
            "--compose-service",
        ),
        (Layout(("x.{colour}.yaml",)), "--compose-file 'x.{colour}.yaml' may use only "
         "{service} and {color}"),
        (Layout((), "app-{nope}"), "--project 'app-{nope}' may use only {service} and {color}"),
    ],
)  # fmt: skip
def test_layout_check(layout: Layout, message: str | None, tmp_path: Path) -> None:
    """A layout is refused when a template is bad or both colors would be one service."""
    layout = Layout(
        tuple(str(tmp_path / "deploy" / f) for f in layout.files),
        layout.project,
        layout.compose_service,
        layout.default_project,
    )
    if message is None:
        layout.check("web")
        return
    with pytest.raises(UsageError) as raised:
        layout.check("web")
    assert message == raised.value.message.replace(str(tmp_path / "deploy") + "/", "")


def test_per_color_names_and_keys() -> None:
    """Each color gets its own files, project and a unique key; the service may be shared."""
    layout = Layout(("base.yml", "docker-compose.{color}.yaml"), "app-{color}", "api")
    assert layout.per_color
    assert ("base.yml", "docker-compose.green.yaml") == layout.files_of("web", Color.GREEN)
    assert "app-green" == layout.project_of("web", Color.GREEN)
    assert "api" == layout.service_of("web", Color.GREEN)
    assert "app-{color}/api" == layout.key_template()
    assert "{service}-{color}" == Layout(("x.{color}.yml",)).key_template()
    assert "{service}-{color}" == Layout(("x.yml",), "app").key_template()
    assert not Layout(("x.yml",), "app").per_color


def test_per_color_compose_sends_each_color_to_its_project(tmp_path: Path) -> None:
    """Hints name the color's own file, project and service; the image variable its color."""
    layout = Layout(("docker-compose.{color}.yaml",), "app-{color}", "api")
    compose = PerColorCompose(V1, layout, "web", {})
    assert "docker-compose -f docker-compose.green.yaml -p app-green stop api" == compose.hint(
        "stop", "app-green/api"
    )
    assert (
        "docker-compose -f 'docker-compose.{color}.yaml' -p 'app-{color}' --compose-service api"
        == compose.describe()
    )
    assert (
        "docker-compose -f 'docker-compose.{color}.yaml' -p 'app-{color}' --compose-service api "
        "stop '(none)'" == compose.hint("stop", "(none)")
    )
    with pytest.raises(ComposeFileProblem) as raised:
        compose.stop("api")
    assert "no color's compose service is 'api' (known: app-blue/api, app-green/api)" == str(
        raised.value
    )
    blue = compose._targets["app-blue/api"].compose
    assert "API_BLUE_IMAGE" == blue.image_variable_of("api")
    green, name = compose.one_compose("app-green/api")  # the release step's one-off runs there
    assert ("api", ("docker-compose.green.yaml",)) == (name, green.files)
    distinct = PerColorCompose(V1, Layout(("x.{color}.yml",)), "web", {})
    assert "WEB_GREEN_IMAGE" == distinct._targets["web-green"].compose.image_variable_of(
        "web-green"
    )


def test_settings_precedence(tmp_path: Path) -> None:
    """Flags win over the environment, which wins over .env (whose files are relative to it)."""
    (tmp_path / ".env").write_text(
        "BLUEGREEN_COMPOSE_FILE=docker-compose.{color}.yaml\n"
        "BLUEGREEN_PROJECT=app-{color}\nBLUEGREEN_COMPOSE_SERVICE=api\n"
    )
    env = {"COMPOSE_FILE": str(tmp_path / "docker-compose.yml")}
    from_env_file = from_settings([], None, None, env)
    assert (
        (str(tmp_path / "docker-compose.{color}.yaml"),),
        "app-{color}",
        "api",
    ) == (from_env_file.files, from_env_file.project, from_env_file.compose_service)
    from_environ = from_settings([], None, None, {**env, "BLUEGREEN_PROJECT": "shop-{color}"})
    assert "shop-{color}" == from_environ.project
    flagged = from_settings(
        [str(tmp_path / "x.{color}.yml")], "p-{color}", "svc", {**env, "BLUEGREEN_PROJECT": "z"}
    )
    assert ((str(tmp_path / "x.{color}.yml"),), "p-{color}", "svc") == (
        flagged.files,
        flagged.project,
        flagged.compose_service,
    )
