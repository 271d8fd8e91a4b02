"""Which version is live, and the marks and stages, in the same words on the page and the CLI.

The provider watches two busybox backends (``tests/browser/test_status_page.py``'s
``site``: blue active, green idle). The page shows each container's image and short ID;
a switch's line says the images it moved between; a retired color reads "being stopped"
on the page and in ``bluegreen status``, both from provider/core/words.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from playwright.sync_api import Browser, expect

from provider.core import words
from tests.browser.test_status_page import Site, open_page, site  # noqa: F401 - fixture
from tests.testbed.compose import REPO_ROOT
from tests.testbed.dockerd import DockerDaemon

pytestmark = [pytest.mark.browser, pytest.mark.docker]

TIMEOUT_MS = 10_000


def cli(site: Site, *argv: str) -> str:  # noqa: F811 - the fixture's type
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli", *argv, "--url", site.provider.url],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "BLUEGREEN_TOKEN": site.provider.token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    return result.stdout


def test_the_page_and_the_cli_show_images_and_marks_in_one_vocabulary(
    browser: Browser,
    site: Site,  # noqa: F811
    docker_daemon: DockerDaemon,
    busybox_image: str,
) -> None:
    """Each container shows its image and short ID; a switch line the images it moved
    between; a retired green reads the same words on the page and in `bluegreen status`."""
    inspect = json.loads(docker_daemon.docker("image", "inspect", busybox_image).stdout)[0]
    short_id = inspect["Id"].partition(":")[2][:12]
    page = open_page(browser, site)

    blue = page.locator('#service-web section[data-color="blue"] .image')
    expect(blue).to_have_text(f"{busybox_image} ({short_id})", timeout=TIMEOUT_MS)
    assert 200 == site.provider.switch("web", "green").status
    recent = page.locator("#service-web .recent li").first
    expect(recent).to_contain_text(
        f"blue ({busybox_image}) → green ({busybox_image})", timeout=TIMEOUT_MS
    )
    assert 200 == site.provider.switch("web", "blue").status
    assert 200 == site.provider.post("/retire", {"service": "web", "color": "green"}).status
    page.reload()  # a retire is not a switch: no event announces it
    expect(page.locator('#service-web .mark[data-color="green"]')).to_have_text(
        words.mark_text("green", "retiring"), timeout=TIMEOUT_MS
    )
    overview = cli(site, "status")
    detail = cli(site, "status", "web")
    history = cli(site, "history")
    page.close()

    assert "green being stopped" in overview, overview
    assert f"1/1 routable ({busybox_image})" in overview, overview
    assert "green: being stopped (no automatic switch to it until a new deploy)" in detail
    assert f"{busybox_image} ({short_id})" in detail, detail
    assert f"blue ({busybox_image})" in history and f"green ({busybox_image})" in history
    assert "retiring" not in overview + detail  # the machine name stays in --json
