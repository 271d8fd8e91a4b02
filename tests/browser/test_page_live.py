"""The status page's live updates and actions in real Chromium, against a provider that
refuses, is stale or needs a read token.

The provider runs in-process on a thread (real aiohttp, real sockets; its
containers are fed as observations, so no Docker is needed); the browser is
Debian's chromium driven by Playwright. Every wait is Playwright's ``expect``
or a bounded wait on a signal, never a sleep.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from provider.api import CONTROLLER
from provider.events import EventBus
from provider.server import build_app
from tests.hostile_http import TOKEN, ThreadedApp, hostile_settings, observed
from tests.testbed.provider import ApiAnswer, api_request

pytestmark = [pytest.mark.browser]

#: Long enough for a few capped backoff rounds (1, 2, 4, 8 s with jitter).
RECOVERY_MS = 40_000


def serve(tmp_path: Path, **settings: Any) -> ThreadedApp:
    """A synced provider on its own thread, started from another thread: Playwright's sync
    API keeps an event loop running on this one, where asyncio would refuse to start one."""
    app = build_app(hostile_settings(tmp_path, **settings), watch_docker=False)
    running = ThreadedApp(app)
    starter = threading.Thread(target=running.__enter__, name="start-provider")
    starter.start()
    starter.join(timeout=30)
    assert running.port, "the provider did not start"
    running.call(app[CONTROLLER].replace_containers(observed()))
    running.call(app[CONTROLLER].mark_synced())
    return running


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ThreadedApp]:
    """One /events slot, a fast heartbeat (a closed client frees its slot at the next one)."""
    running = serve(tmp_path, events_max_clients=1, events_heartbeat=0.2)
    try:
        yield running
    finally:
        running.__exit__(None, None, None)


def post(server: ThreadedApp, path: str, body: dict[str, Any]) -> ApiAnswer:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = api_request(server.port, "POST", path, body=body, headers=headers)
    assert 200 == answer.status, answer.body
    return answer


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def badge(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('#service-web [data-role="active"]')


def url(server: ThreadedApp) -> str:
    return f"http://127.0.0.1:{server.port}/"


def operator(page: Page) -> None:
    page.locator("#token-input").fill(TOKEN)
    page.locator("#token-input").press("Enter")
    expect(page.locator("#mode")).to_contain_text("Operator mode")


def test_a_refused_stream_says_disconnected_and_recovers_with_the_new_color(
    browser: Browser, provider: ThreadedApp, tmp_path: Path
) -> None:
    """Every /events slot taken (503 too_many_clients): the page says "disconnected" instead
    of a "reconnecting…" that never comes; a switch meanwhile; once a slot frees, the page
    reconnects on its own, shows green, and follows the next switch live."""
    bus: EventBus = provider.app[CONTROLLER].events
    holder = socket.create_connection(("127.0.0.1", provider.port))
    holder.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: bus.clients == 1, "the holder's stream")
    page = browser.new_page()
    try:
        page.goto(url(provider))
        expect(badge(page)).to_have_text("active: blue")
        expect(page.locator("#live-state")).to_contain_text("disconnected", timeout=10_000)
        post(provider, "/switch", {"service": "web", "color": "green"})
        holder.close()
        expect(page.locator("#live-state")).to_have_text("connected", timeout=RECOVERY_MS)
        expect(badge(page)).to_have_text("active: green")
        post(provider, "/switch", {"service": "web", "color": "blue"})
        expect(badge(page)).to_have_text("active: blue", timeout=5000)
        page.screenshot(path=str(tmp_path / "recovered.png"), full_page=True)
    finally:
        holder.close()
        page.close()


def test_a_proxy_502_then_the_provider_back(
    browser: Browser, provider: ThreadedApp, tmp_path: Path
) -> None:
    """A proxy answers /events with 502 (the provider restarting) three times: "disconnected",
    then the page reconnects, resuming after the last event id it saw."""
    seen: list[str] = []
    refused = [0]

    def proxy(route: Route) -> None:
        seen.append(route.request.url)
        if len(seen) >= 2 and refused[0] < 3:
            refused[0] += 1
            route.fulfill(status=502, body="Bad Gateway")
        else:
            route.continue_()

    page = browser.new_page()
    try:
        page.route("**/events*", proxy)
        page.goto(url(provider))
        expect(page.locator("#live-state")).to_have_text("connected", timeout=10_000)
        post(provider, "/switch", {"service": "web", "color": "green"})
        expect(badge(page)).to_have_text("active: green", timeout=5000)
        # The provider ends every stream (as a restart would): the browser reconnects, the
        # proxy refuses, and the page must notice.
        provider.call(_close_streams(provider))
        expect(page.locator("#live-state")).to_contain_text("disconnected", timeout=10_000)
        expect(page.locator("#live-state")).to_have_text("connected", timeout=RECOVERY_MS)
        assert 3 == refused[0]
        resumed = seen[-1]
        switch_id = provider.app[CONTROLLER].events.recent[-1].id
        assert resumed.endswith(f"/events?last_event_id={switch_id}"), seen
    finally:
        page.close()


async def _close_streams(server: ThreadedApp) -> None:
    server.app[CONTROLLER].events.close_all("test")


def test_roll_back_sends_the_color_the_page_shows(browser: Browser, provider: ThreadedApp) -> None:
    """A stale page offers "Roll back web to blue"; another operator has moved web to blue
    meanwhile: the click is refused (409) instead of rolling back to green."""
    post(provider, "/switch", {"service": "web", "color": "green"})
    page = browser.new_page()
    try:
        page.route("**/events*", lambda route: route.abort())  # the page stays stale
        page.route("**/ui/services", lambda route: route.abort())
        page.goto(url(provider))
        operator(page)
        button = page.locator("#rollback-web")
        expect(button).to_have_text("Roll back web to blue")
        post(provider, "/switch", {"service": "web", "color": "blue"})
        button.click()
        expect(page.locator("#notice")).to_contain_text("Refused (409)")
        # The failing background re-reads say so beside the live state, never over the answer.
        expect(page.locator("#refresh-state")).to_contain_text("Could not refresh")
        expect(page.locator("#notice")).to_contain_text("Refused (409)")
        assert "blue" == provider.app[CONTROLLER].active("web").value
    finally:
        page.close()


@pytest.mark.parametrize(
    ("action", "said", "active"),
    [
        ("promote", "web: the green canary was promoted; green is active", "green"),
        ("abort", "web: the green canary was aborted (green rejected); blue is active", "blue"),
    ],
)
def test_canary_buttons_say_what_happened(
    browser: Browser, provider: ThreadedApp, action: str, said: str, active: str
) -> None:
    """Promote or abort a running canary from the page: the notice says what happened, not
    "already serves"."""
    post(provider, "/canary", {"service": "web", "steps": [10, 100], "interval": "600s"})
    page = browser.new_page()
    try:
        page.goto(url(provider))
        operator(page)
        page.locator(f"#canary-{action}-web").click()
        expect(page.locator("#notice")).to_have_text(said)
        expect(badge(page)).to_have_text(f"active: {active}")
    finally:
        page.close()


def test_sign_in_with_the_read_token(browser: Browser, tmp_path: Path) -> None:
    """With --read-token: the page is a sign-in form; the read token typed once gives the
    status, live (the event stream carries the session cookie), and no script sees a cookie."""
    read = "read-token-" + "4e" * 8
    server = serve(tmp_path, read_token=read)
    page = browser.new_page()
    try:
        page.goto(url(server))
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#services")).to_have_count(0)
        page.locator("#login-token").fill("wrong")
        page.locator("#login-token").press("Enter")
        expect(page.locator("#notice")).to_contain_text("Refused")
        page.locator("#login-token").fill(read)
        page.locator("#login-token").press("Enter")
        expect(page.locator("#live-state")).to_have_text("connected", timeout=10_000)
        expect(badge(page)).to_have_text("active: blue")
        assert "" == page.evaluate("document.cookie")
        post(server, "/switch", {"service": "web", "color": "green"})
        expect(badge(page)).to_have_text("active: green", timeout=5000)
    finally:
        page.close()
        server.__exit__(None, None, None)
