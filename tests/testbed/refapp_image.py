"""Images of the reference app (tests/testbed/refapp/), built with no registry.

The base is the debootstrap Python image of ``tests/engine/test_image.py``; aiohttp
and its dependencies come as wheels downloaded on the host (a build has no
network). One image per version: ``bgtest-refapp:v1``, ``bgtest-refapp:v2``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.engine.test_image import build_python_base
from tests.testbed.compose import ComposeProject
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import image_exists

HERE = Path(__file__).resolve().parent / "refapp"
IMAGE = "bgtest-refapp"
#: What the app imports; the versions pip picks for CPython 3.11 (the base's Python).
WHEELS = ("aiohttp",)


def build_refapp_images(
    daemon: DockerDaemon, workdir: Path, versions: tuple[str, ...] = ("v1", "v2")
) -> dict[str, str]:
    """``{version: image}``, each built once per daemon."""
    wanted = {v: f"{IMAGE}:{v}" for v in versions}
    if all(image_exists(daemon, name) for name in wanted.values()):
        return wanted
    base = build_python_base(daemon, workdir / "base")
    context = workdir / "refapp"
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "app.py", context / "app.py")
    subprocess.run(
        ["python3", "-m", "pip", "download", "-q", "--only-binary=:all:",
         "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
         "-d", str(context / "wheels"), *WHEELS],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    for version, name in wanted.items():
        built = subprocess.run(
            [daemon.docker_cli, "build", "-q", "--build-arg", f"BASE={base}",
             "--build-arg", f"VERSION={version}", "-f", str(HERE / "Dockerfile"),
             "-t", name, str(context)],
            env={**daemon.env(), "DOCKER_BUILDKIT": "0"},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert 0 == built.returncode, built.stderr[-3000:]
    return wanted


#: The healthcheck: the base has no wget or curl, so Python asks /health.
HEALTH = (
    "import os, urllib.request; "
    "urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['APP_PORT'], timeout=2)"
)


def use_refapp(project: ComposeProject) -> None:
    """Turn a project's busybox colors (``add_app``) into the reference app's: its own CMD
    and a Python healthcheck every second; then rewrite the compose file.

    A start period of 60 s: under load the app can take longer than one check to
    listen, and with one retry its first refused check made the color unhealthy
    (a failed deploy in the handover bench); a passing check still counts at once.
    """
    for service in project.services.values():
        service["command"] = ["/venv/bin/python", "/app/app.py"]
        service["healthcheck"]["test"] = ["CMD", "/venv/bin/python", "-c", HEALTH]
        service["healthcheck"]["interval"] = "1s"
        service["healthcheck"]["start_period"] = "60s"
    project.write()
