"""The widget in a real headless Chromium (Debian's), against the real daemon.

A host page on another origin, with a strict CSP, embeds the widget: it loads, chats
(quick reply, typed message, streamed answer), shows the booking button, keeps the
conversation across a reload; a host page on a disallowed origin gets no chat.
Screenshots land in test-artifacts/ for people to look at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from tcai.daemon.app import create_app
from tests.conftest import provision
from tests.helpers import REPO, console_problems, make_settings

ARTIFACTS = REPO / "test-artifacts"
BOT = "fade-factory_main"


@dataclass
class Site:
    daemon: str
    allowed_page: str
    blocked_page: str
    app: web.Application
    database: Any


def host_app(daemon: str) -> web.Application:
    csp = (
        f"default-src 'none'; script-src {daemon}; frame-src {daemon}; connect-src {daemon}; "
        "style-src 'none'; img-src 'none'"
    )

    async def page(_request: web.Request) -> web.Response:
        html = (
            "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'><title>Fade Factory</title></head>"
            "<body><h1>Fade Factory</h1><p>Best fades in town.</p>"
            f"<script src='{daemon}/widget/embed.js' data-client='fade-factory' data-bot='{BOT}' "
            "async></script></body></html>"
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Content-Security-Policy": csp}
        )

    app = web.Application()
    app.router.add_get("/", page)
    return app


@pytest.fixture
async def site(seeded, tmp_path) -> AsyncIterator[Site]:
    daemon_server = TestServer(
        create_app(make_settings(log_dir=tmp_path / "logs"), engine=seeded.engine()),
        host="127.0.0.1",
    )
    await daemon_server.start_server()
    daemon = f"http://127.0.0.1:{daemon_server.port}"
    allowed = TestServer(host_app(daemon), host="127.0.0.3")
    blocked = TestServer(host_app(daemon), host="127.0.0.2")
    await allowed.start_server()
    await blocked.start_server()
    provision(
        seeded,
        allowed_origins=[f"http://127.0.0.3:{allowed.port}"],
        booking_url="https://booksy.com/en-us/123_fade-factory",
    )
    yield Site(
        daemon,
        f"http://127.0.0.3:{allowed.port}/",
        f"http://127.0.0.2:{blocked.port}/",
        daemon_server.app,
        seeded,
    )
    for server in (allowed, blocked, daemon_server):
        await server.close()


watch_console = console_problems


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.wait_for_timeout(400)  # let the panel's open animation finish
    await page.screenshot(path=str(ARTIFACTS / f"widget-{name}.png"))


async def test_widget_chats_on_a_strict_csp_page(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    problems = watch_console(page)
    await page.goto(site.allowed_page)
    frame_element = page.locator(f"iframe#tcai-frame-{BOT}")
    await frame_element.wait_for(state="visible", timeout=10_000)
    frame = page.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    await frame.locator(".tcai-panel").wait_for(state="visible")
    await shot(page, "open")

    await frame.locator("button.tcai-quick", has_text="Walk-Ins?").click()
    bot_bubbles = frame.locator(".tcai-msg.tcai-msg-bot")
    await frame.locator(".tcai-msg.tcai-msg-user", has_text="Do you take walk-ins?").wait_for()
    await page.wait_for_function("1", timeout=100)
    await bot_bubbles.filter(has_text="walk").first.wait_for(timeout=10_000)

    await frame.locator("textarea.tcai-input").fill("I'd like to book a fade, I'm Ana 772-555-0142")
    await frame.locator("button.tcai-send").click()
    booking = frame.locator("a.tcai-booking")
    await booking.wait_for(timeout=10_000)
    assert await booking.get_attribute("href") == "https://booksy.com/en-us/123_fade-factory"
    assert "noopener" in (await booking.get_attribute("rel") or "")
    await shot(page, "booking")
    assert problems == [], problems


async def test_conversation_survives_a_reload(site: Site, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(site.allowed_page)
    frame = page.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    await frame.locator("textarea.tcai-input").fill("do you take walk-ins?")
    await frame.locator("button.tcai-send").click()
    await frame.locator(".tcai-msg.tcai-msg-bot", has_text="walk").first.wait_for(timeout=10_000)
    await page.reload()
    frame = page.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    await frame.locator(".tcai-msg.tcai-msg-user", has_text="do you take walk-ins?").wait_for(
        timeout=10_000
    )
    await shot(page, "after-reload")


async def test_mobile_layout(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    await page.goto(site.allowed_page)
    frame = page.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    await frame.locator(".tcai-panel").wait_for(state="visible")
    box = await page.locator(f"iframe#tcai-frame-{BOT}").bounding_box()
    assert box is not None and box["width"] >= 380 and box["height"] >= 800
    await shot(page, "mobile")


async def test_a_disallowed_site_gets_no_chat(site: Site, browser: Browser) -> None:
    page = await browser.new_page()
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    await page.goto(site.blocked_page)
    await page.wait_for_timeout(1500)
    assert await page.locator("iframe.tcai-frame").count() == 0
    assert any("tcai" in w.lower() for w in warnings), warnings
    await shot(page, "blocked")


async def test_the_host_page_survives_a_dead_daemon(browser: Browser) -> None:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    app = host_app("http://127.0.0.1:9")
    server = TestServer(app, host="127.0.0.3")
    await server.start_server()
    try:
        await page.goto(f"http://127.0.0.3:{server.port}/")
        assert await page.locator("h1").inner_text() == "Fade Factory"
        await page.wait_for_timeout(500)
        assert await page.locator("iframe.tcai-frame").count() == 0
        assert errors == []
    finally:
        await server.close()


async def test_trimming_a_long_message_never_splits_an_emoji(site: Site, browser: Browser) -> None:
    from sqlmodel import Session, select

    from tcai.db.models import Message

    page = await browser.new_page()
    await page.goto(site.allowed_page)
    frame = page.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    # 1,999 letters, then an emoji (two UTF-16 units) that straddles the 2,000 limit.
    await frame.locator("textarea.tcai-input").fill("a" * 1999 + "\U0001f600 more")
    await frame.locator("button.tcai-send").click()
    engine = site.database.engine()
    stored: list[str] = []
    try:
        for _ in range(100):  # the turn is stored a moment after the send
            with Session(engine) as session:
                stored = [m.text for m in session.exec(select(Message)) if m.role == "user"]
            if stored:
                break
            await page.wait_for_timeout(100)
    finally:
        engine.dispose()
    assert stored == ["a" * 1999]  # trimmed before the emoji, not through it


async def test_an_error_offers_the_business_phone(site: Site, browser: Browser) -> None:
    from tcai.daemon.keys import CHAT

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    site.app[CHAT].handle = broken  # type: ignore[method-assign]
    page = await browser.new_page()
    await page.goto(site.allowed_page)
    frame = page.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    await frame.locator("textarea.tcai-input").fill("hello?")
    await frame.locator("button.tcai-send").click()
    error = frame.locator(".tcai-error")
    await error.first.wait_for(timeout=10_000)
    text = await error.first.inner_text()
    assert "went wrong" in text and "(772) 555-0100" in text
