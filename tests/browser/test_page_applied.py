"""The status page says whether Traefik applied each service's switch, and since when.

A real ``bluegreen serve`` and a real Traefik polling it (Traefik's health
check reports what it applied); the page in Debian's chromium through
Playwright.  Waits are Playwright's ``expect`` with a timeout, never a sleep.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_status_page import Site, open_page, site
from tests.testbed.traefik import TraefikFactory
from tests.waiting import wait_until

__all__ = ["site"]  # the fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.traefik]

#: Traefik applies a switch and probes it back within a few seconds on a loaded machine.
APPLIED_TIMEOUT_MS = 20_000


def test_page_says_unknown_without_traefik(browser: Browser, site: Site) -> None:
    """No Traefik polls the provider: the page says applied by Traefik is unknown."""
    page = open_page(browser, site)
    line = page.locator('#service-web [data-role="traefik"]')
    expect(line).to_have_attribute("data-applied", "unknown")
    expect(line).to_contain_text("Applied by Traefik: unknown")
    page.close()


def test_page_follows_traefik_applying_a_switch(
    browser: Browser, site: Site, traefik_factory: TraefikFactory, tmp_path: Path
) -> None:
    """With Traefik polling: "yes, blue since ..."; after a switch, "yes, green" without
    a reload once Traefik applied it."""
    traefik_factory.start(http_endpoint=site.provider.traefik_endpoint, log_level="INFO")
    wait_until(
        "Traefik applied blue",
        lambda: site.provider.status("web")["traefik"]["applied"],
        APPLIED_TIMEOUT_MS / 1000,
    )
    page = open_page(browser, site)
    line = page.locator('#service-web [data-role="traefik"]')
    expect(line).to_have_attribute("data-applied", "yes")
    expect(line).to_contain_text("Applied by Traefik: yes, blue since ")
    page.evaluate("window.__sameDocument = true")
    assert 200 == site.provider.switch("web", "green").status
    expect(line).to_contain_text("yes, green since ", timeout=APPLIED_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument === true")
    page.screenshot(path=str(tmp_path / "applied.png"), full_page=True)
    page.close()
