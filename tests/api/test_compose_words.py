"""What the CLI prints of compose: commands as typed, and compose's crash as one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deploy.compose import Compose, ComposeCommand, as_typed
from deploy.compose_output import OUTPUT_INDENT, ComposeOutput, engine_unreachable

V1_CRASH = """Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/docker/api/client.py", line 214, in _retrieve_server_version
    return self.version(api_version=False)["ApiVersion"]
docker.errors.DockerException: Error while fetching server API version: ('Connection aborted.', \
FileNotFoundError(2, 'No such file or directory'))
"""


def test_a_hint_names_compose_as_typed(tmp_path: Path) -> None:
    """A program PATH finds by its name is printed by its name; a path PATH does not give
    back stays a path (the user could not type the short name)."""
    program = tmp_path / "docker-compose"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    found = shutil.which("docker-compose", path=str(tmp_path))
    assert found == str(program)
    compose = Compose(ComposeCommand((str(program),), "v1"), ["a.yml"], "app", {})

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(tmp_path))
        typed = compose.hint("logs", "web-green")
    elsewhere = compose.hint("logs", "web-green")

    assert "docker-compose -f a.yml -p app logs web-green" == typed
    assert f"{program} -f a.yml -p app logs web-green" == elsewhere
    assert ["docker", "compose"] == as_typed(["docker", "compose"])


def test_compose_output_holds_a_traceback_back_and_passes_the_rest() -> None:
    """Progress lines are written at once, indented; a traceback waits, and is recognised
    as "no engine" (then reported in one line) or flushed as it was."""
    written: list[str] = []
    output = ComposeOutput(written.append)
    output.feed("Recreating app_web-green_1 ...\n")
    for line in V1_CRASH.splitlines():
        output.feed(line + "\n")

    assert [f"{OUTPUT_INDENT}Recreating app_web-green_1 ...\n"] == written
    assert engine_unreachable(output.text())
    output.flush_held()
    assert 1 + len(V1_CRASH.splitlines()) == len(written)
    assert not engine_unreachable("ERROR: for web-green  manifest unknown")
