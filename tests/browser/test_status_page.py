"""The status page in a real browser: Debian's chromium driven by Playwright.

A real ``bluegreen serve`` subprocess watches the private test dockerd, with
two labelled busybox backends (blue active, green idle: ``--no-auto-promote``
keeps it idle). Every wait is Playwright's own (``expect`` with a timeout),
never a sleep. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.testbed.containers import ContainerFactory
from tests.testbed.ports import free_port
from tests.testbed.provider import ProviderFactory, ProviderProcess

pytestmark = [pytest.mark.browser, pytest.mark.docker]

#: "Within a second" of the API's answer, as the issue asks.
LIVE_TIMEOUT_MS = 1000


@dataclass
class Site:
    """The provider and its two containers' names."""

    provider: ProviderProcess
    names: dict[str, str]


@pytest.fixture
def site(provider_factory: ProviderFactory, containers: ContainerFactory) -> Site:
    """`web` with blue active and green idle and healthy, as the provider sees it."""
    prefix = f"ui{containers.owner}"
    provider = provider_factory.start(label_prefix=prefix, extra_args=["--no-auto-promote"])
    provider.wait_ready()
    names: dict[str, str] = {}
    for color in ("blue", "green"):
        port = free_port()
        labels = {f"{prefix}.service": "web", f"{prefix}.color": color, f"{prefix}.port": str(port)}
        container = containers.run(f"web-{color}", labels, port, color)
        names[color] = containers.names[container]
        provider.wait_routable("web", color)
    provider.wait_active("web", "blue")
    return Site(provider, names)


def open_page(browser: Browser, site: Site, width: int = 1100) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(site.provider.url + "/")
    expect(page.locator("#live-state")).to_have_text("connected", timeout=10_000)
    return page


def badge(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('#service-web [data-role="active"]')


def test_page_shows_the_active_color_and_containers(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    """Each color's section names its containers with state and health in words."""
    page = open_page(browser, site)
    expect(badge(page)).to_have_text("active: blue")
    for color in ("blue", "green"):
        section = page.locator(f'#service-web section[data-color="{color}"]')
        expect(section.locator(".name")).to_have_text(site.names[color])
        expect(section.locator(".health")).to_have_text("health: healthy")
        expect(section.locator("h3")).to_contain_text("active" if color == "blue" else "idle")
    expect(page.locator("#docker")).to_contain_text("connected")
    page.screenshot(path=str(tmp_path / "status-page.png"), full_page=True)
    page.close()


def test_a_switch_through_the_api_shows_up_without_a_reload(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    """POST /switch elsewhere: within a second the page says green is active, same document."""
    page = open_page(browser, site)
    page.evaluate("window.__sameDocument = true")
    answer = site.provider.switch("web", "green")
    assert 200 == answer.status, answer.body
    expect(badge(page)).to_have_text("active: green", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator('#service-web section[data-color="green"] h3')).to_contain_text("active")
    assert page.evaluate("window.__sameDocument === true")
    expect(page.locator("#service-web .recent li").first).to_contain_text(
        re.compile(r"blue \(\S+\) → green \(\S+\) \(manual by api\)")  # with each image
    )
    page.screenshot(path=str(tmp_path / "after-switch.png"), full_page=True)
    page.close()


def test_without_a_token_the_page_is_read_only(browser: Browser, site: Site) -> None:
    """No token entered: no action button is shown, and the page says read-only."""
    page = open_page(browser, site)
    expect(page.locator("#mode")).to_contain_text("Read-only")
    expect(page.locator("button[data-action]")).to_have_count(1)  # rendered, hidden
    expect(page.locator("button[data-action]")).to_be_hidden()
    assert "blue" == site.provider.active("web")
    page.close()


def test_the_switch_button_with_the_token_switches(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    """Token typed once (Enter submits), then the switch button, pressed from the keyboard."""
    page = open_page(browser, site)
    page.locator("#token-input").fill(site.provider.token)
    page.locator("#token-input").press("Enter")
    expect(page.locator("#mode")).to_contain_text("Operator mode")
    button = page.locator("#switch-web")
    expect(button).to_be_visible()
    expect(button).to_have_text("Switch web to green")
    button.focus()
    page.keyboard.press("Enter")
    expect(badge(page)).to_have_text("active: green", timeout=5000)
    expect(page.locator("#notice")).to_have_text("web switched: blue → green")
    assert "green" == site.provider.active("web")
    assert "" == page.evaluate("document.cookie")
    # The token stays in this tab's sessionStorage: the rollback button works without re-entry.
    page.locator("#rollback-web").click()
    expect(badge(page)).to_have_text("active: blue", timeout=5000)
    assert ("rollback", "api") == tuple(
        site.provider.history("web")[-1][k] for k in ("reason", "actor")
    )
    page.screenshot(path=str(tmp_path / "operator.png"), full_page=True)
    page.close()


def test_a_wrong_token_is_refused_and_nothing_switches(browser: Browser, site: Site) -> None:
    """A wrong token: the page shows the provider's 401 and the active color stays."""
    page = open_page(browser, site)
    page.locator("#token-input").fill("not-the-token")
    page.locator("#token-use").click()
    page.locator("#switch-web").click()
    expect(page.locator("#notice")).to_contain_text("rejected the token")
    assert "blue" == site.provider.active("web")
    page.close()


def test_375_px_wide_without_horizontal_scrolling(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    """At a phone's 375 px the page fits its width (nothing scrolls sideways)."""
    page = open_page(browser, site, width=375)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    page.close()
