"""``bluegreen deploy --smoke`` (deploy/smoke_option.py): the checks become the new color's
labels, checked by the provider's own parser; compose gets them from an override file over
exactly the files it would read anyway."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy import cli
from deploy.errors import ComposeFileProblem, UsageError
from deploy.smoke_option import (
    check_prefix,
    override_yaml,
    project_files,
    service_labels,
    smoke_labels,
)
from tests.core.test_rollout_core import NEW as NEW_ID
from tests.core.test_rollout_core import FakeCompose, FakeProvider, container, run_deploy, status


@pytest.mark.parametrize(
    ("smoke", "host", "expected"),
    [
        (None, None, {}),
        ("/healthz", None, {"bg.smoke": "/healthz"}),
        (" /healthz , /api/ping=204 ", None, {"bg.smoke": "/healthz,/api/ping=204"}),
        ("/=200:Welcome", "app.test", {"bg.smoke": "/=200:Welcome", "bg.smoke-host": "app.test"}),
    ],
)
def test_smoke_labels(smoke: str | None, host: str | None, expected: dict[str, str]) -> None:
    assert expected == smoke_labels(smoke, host, "bg")


@pytest.mark.parametrize(
    ("smoke", "host", "message"),
    [
        ("healthz", None, "--smoke item 'healthz': 'healthz' is not a path"),
        ("/a=99", None, "--smoke item '/a=99': status '99' is not 100-599"),
        ("", None, "--smoke is empty"),
        ("/a", "bad host!", "--smoke-host: 'bad host!' is not a host name"),
        (None, "app.test", "--smoke-host names the Host of the --smoke checks: give --smoke too"),
    ],
)
def test_smoke_labels_refused_as_the_label_is(
    smoke: str | None, host: str | None, message: str
) -> None:
    """The provider's parser refuses what the label would refuse, before anything runs."""
    with pytest.raises(UsageError) as raised:
        smoke_labels(smoke, host, "bluegreen")
    assert raised.value.message.startswith(message), raised.value.message


def test_the_override_adds_only_labels_to_the_one_service() -> None:
    text = override_yaml("web-green", {"bluegreen.smoke": "/healthz,/=200:ok"})
    expected = {"services": {"web-green": {"labels": {"bluegreen.smoke": "/healthz,/=200:ok"}}}}
    assert expected == yaml.safe_load(text)


def test_project_files_are_the_ones_compose_reads(tmp_path: Path) -> None:
    """-f wins, then COMPOSE_FILE, then the default name from the directory upwards with its
    override file (a -f makes compose read only the files named)."""
    assert ("a.yml", "b.yml") == project_files(["a.yml", "b.yml"], {}, "v1", tmp_path)
    env = {"COMPOSE_FILE": "x.yml:y.yml", "COMPOSE_PATH_SEPARATOR": ":"}
    assert ("x.yml", "y.yml") == project_files([], env, "v2", tmp_path)
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    (tmp_path / "docker-compose.override.yml").write_text("services: {}\n")
    below = tmp_path / "sub" / "dir"
    below.mkdir(parents=True)
    found = project_files([], {}, "v1", below)
    assert (
        str(tmp_path.resolve() / "docker-compose.yml"),
        str(tmp_path.resolve() / "docker-compose.override.yml"),
    ) == found
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    assert str(tmp_path.resolve() / "compose.yaml") == project_files([], {}, "v2", below)[0]


def test_no_compose_file_is_a_compose_file_problem(tmp_path: Path) -> None:
    with pytest.raises(ComposeFileProblem, match="pass -f so --smoke can label the new color"):
        project_files([], {}, "v2", tmp_path)


def test_deploy_gives_the_labels_to_the_new_color_only() -> None:
    """The labels reach ``up`` of the new color, never another compose call."""
    switch = {"reason": "auto-promote", "actor": "watcher"}
    provider = FakeProvider(
        [status(), status("green", green=[container(NEW_ID)], previous="blue", last_switch=switch)]
    )
    compose = FakeCompose()
    labels = (("bluegreen.smoke", "/healthz"),)
    run_deploy(provider, compose, labels=labels)
    assert {"web-green": {"bluegreen.smoke": "/healthz"}} == compose.labels


def test_a_label_prefix_the_service_does_not_use_is_refused() -> None:
    """The CLI's BLUEGREEN_LABEL_PREFIX differs from the provider's: the checks would be
    ignored and the deploy ungated; refused before anything starts."""
    check_prefix("web-green", {"bg.color": "green"}, {"bg.smoke": "/"})
    check_prefix("web-green", {"com.x.bg.color": "green"}, {"com.x.bg.smoke": "/"})
    with pytest.raises(ComposeFileProblem, match="set BLUEGREEN_LABEL_PREFIX to its"):
        check_prefix("web-green", {"bg.color": "green"}, {"bluegreen.smoke": "/"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--smoke", "healthz"], "--smoke item 'healthz': 'healthz' is not a path"),
        (["--smoke", "/a=700"], "--smoke item '/a=700': status '700' is not 100-599"),
        (["--smoke-host", "x.test"], "--smoke-host names the Host of the --smoke checks"),
    ],
)
def test_a_bad_smoke_option_exits_2_before_anything_is_asked(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused as a bad command line (exit 2), before the provider (unreachable here, which
    would be exit 3) or compose is asked anything."""
    code = cli.main(["deploy", "web", *argv, "--url", "http://127.0.0.1:1"], {})
    assert (2, True) == (code, message in capsys.readouterr().err)


@pytest.mark.parametrize(
    ("config", "labels"),
    [
        ("services:\n  web-green:\n    labels:\n      bg.color: green\n", {"bg.color": "green"}),
        ("services:\n  web-green:\n    labels:\n    - bg.color=green\n", {"bg.color": "green"}),
        ("services:\n  web-green:\n    image: x\n", {}),
        ("services:\n  web-blue: {}\n", {}),
    ],
)
def test_the_service_labels_compose_config_prints(config: str, labels: dict[str, str]) -> None:
    """Both forms compose prints (a mapping; v1 may keep a list), or none."""
    assert labels == service_labels(config, "web-green")
