"""The colors' compose templates on the command line: refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import cli

#: Nothing listens there: a refusal must come before the CLI talks to the provider.
NO_PROVIDER = {"BLUEGREEN_URL": "http://127.0.0.1:9", "PATH": "/nonexistent"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deploy", "web", "-p", "app-{nope}"], "--project 'app-{nope}' may use only {service} "
         "and {color}"),
        (["rollback", "web", "-f", "x.{colour}.yml"], "--compose-file 'x.{colour}.yml' may use "
         "only {service} and {color}"),
        (["canary", "web", "--project", "a-{color}", "--compose-service", "{color!r}"],
         "--compose-service '{color!r}' formats a placeholder ({color!r}, {service:>8}); "
         "write them plain"),
        (["deploy", "web", "--swarm", "-p", "app-{color}"], "Swarm mode finds the colors' "
         "services by label: -f/-p (compose) do not apply"),
    ],
)  # fmt: skip
def test_bad_templates_exit_2_before_the_provider_is_asked(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A bad template is a usage error (exit 2) naming the flag, with no provider reached."""
    code = cli.main(argv, NO_PROVIDER)
    assert (2, f"bluegreen {argv[0]}: {message}\n") == (code, capsys.readouterr().err)


def test_templates_from_dotenv_are_checked_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """BLUEGREEN_PROJECT read from .env is held to the same rules as -p."""
    (tmp_path / ".env").write_text("BLUEGREEN_PROJECT=app-{colour}\n")
    env = {**NO_PROVIDER, "COMPOSE_FILE": str(tmp_path / "docker-compose.yml")}
    code = cli.main(["deploy", "web"], env)
    expected = "bluegreen deploy: --project 'app-{colour}' may use only {service} and {color}\n"
    assert (2, expected) == (code, capsys.readouterr().err)
