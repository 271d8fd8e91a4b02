"""A deploy that exited 130 "interrupted after the switch" with no Ctrl-C sent (issue 24).

What can raise KeyboardInterrupt in the drain: only a SIGINT (SIGTERM is 143). The CLI's
own process group receives one when anything in it signals its group, and the compose
commands whose output the CLI reads (``config``, ``pull``, and the ``docker compose
version`` probe) used to run in the CLI's group, so a process they leave behind (the
docker CLI's plugin, a wrapper's helper) could interrupt a deploy long after they exited.
Here a compose wrapper (``BLUEGREEN_COMPOSE``) leaves such a helper behind at ``config``:
it waits until the provider has switched, then sends SIGINT to its process group, inside
the drain. The CLI runs every compose command in a group of its own now: the signal stays
there, and the deploy finishes (before: exit 130 "interrupted after the switch").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testbed.compose import find_compose_v1
from tests.traefik.test_deploy import (  # noqa: F401 - fixtures
    App,
    app,
    app_images,
    compose_factory,
    explain,
)

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

#: Polls /status (bounded: 600 x 0.2 s), then signals its own process group once.
HELPER = """
import json, os, signal, sys, time, urllib.request
url = sys.argv[1]
for _ in range(600):
    try:
        with urllib.request.urlopen(url + "/status/web", timeout=2) as answer:
            if json.load(answer)["active"] == "green":
                break
    except OSError:
        pass
    time.sleep(0.2)
else:
    sys.exit(0)
time.sleep(1.0)  # inside the 60 s drain
os.killpg(os.getpgrp(), signal.SIGINT)
"""


def write_wrapper(directory: Path, provider_url: str) -> Path:
    """``docker-compose``, but ``config`` leaves the helper running in the caller's group."""
    helper = directory / "stray_helper.py"
    helper.write_text(HELPER)
    wrapper = directory / "compose-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" config "*)\n'
        f"  {sys.executable} {helper} {provider_url} </dev/null >/dev/null 2>&1 &\n"
        "esac\n"
        f'exec {find_compose_v1()} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def test_a_sigint_a_compose_helper_sends_its_group_does_not_interrupt_the_deploy(
    app: App,  # noqa: F811
    app_images: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    """The helper's SIGINT lands in the drain; the deploy still ends 0, green serving,
    blue stopped."""
    wrapper = write_wrapper(tmp_path, app.stack.provider.url)

    env = app.project.cli_env(
        app.stack.provider.url,
        app.stack.provider.token,
        {"BLUEGREEN_COMPOSE": str(wrapper), "PATH": os.environ["PATH"]},
    )
    argv = ["deploy", "web", *app.project.compose_args(), "--image", app_images["v2"]]
    # A session (and process group) of its own, as a shell gives a command: the helper's
    # signal to "its group" must never reach pytest.
    result = subprocess.run(
        app.project.bluegreen_argv(*argv, "--drain", "60"),
        env=env,
        cwd=app.project.work_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        start_new_session=True,
    )

    assert 0 == result.returncode, explain(result)
    assert "interrupted" not in result.stdout + result.stderr
    assert "deployed web: blue → green" in result.stdout
    assert ["exited"] == app.states("blue")
