"""The owner portal in a real headless Chromium (Debian's), against the real daemon.

An owner signs in, sees the chart, marks a lead contacted, exports the leads, pauses the
assistant and sees the widget on the business's page refuse to chat, resumes it and
signs out — without the portal sending a line of JavaScript. Screenshots land in
test-artifacts/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from tcai.daemon.app import create_app
from tcai.db.models import Bot, Lead
from tests.conftest import provision
from tests.daemon.portal_support import OWN, make_visit, strong_password
from tests.helpers import REPO, console_problems, make_settings, rows

ARTIFACTS = REPO / "test-artifacts"
BOT = f"{OWN}_main"
EMAIL = "owner@fade-factory.shop"


@dataclass
class Site:
    daemon: str
    shop: str
    password: str
    database: object


def shop_app(daemon: str) -> web.Application:
    async def page(_request: web.Request) -> web.Response:
        html = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Fade Factory</title></head>"
            "<body><h1>Fade Factory</h1>"
            f"<script src='{daemon}/widget/embed.js' data-client='{OWN}' data-bot='{BOT}' async>"
            "</script></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return app


@pytest.fixture
async def site(seeded, tmp_path) -> AsyncIterator[Site]:
    from tcai.access.users import create_user

    settings = make_settings(log_dir=tmp_path / "logs")
    engine = seeded.engine()
    daemon = TestServer(create_app(settings, engine=engine), host="127.0.0.1")
    await daemon.start_server()
    base = f"http://127.0.0.1:{daemon.port}"
    shop = TestServer(shop_app(base), host="127.0.0.3")
    await shop.start_server()
    provision(
        seeded,
        allowed_origins=[f"http://127.0.0.3:{shop.port}"],
        booking_url="https://booksy.com/en-us/123_fade-factory",
    )
    provision(seeded, template="auto", slug="joes-garage", name="Joe's Garage & Tire")
    await make_visit(settings, seeded, tmp_path)
    password = strong_password()
    create_user(engine, EMAIL, password, workspace=OWN, role="owner")
    yield Site(base, f"http://127.0.0.3:{shop.port}/", password, seeded)
    await shop.close()
    await daemon.close()
    engine.dispose()


watch = console_problems


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)


async def test_an_owner_runs_the_assistant_from_the_portal(
    site: Site, browser: Browser, tmp_path
) -> None:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False, accept_downloads=True
    )
    page = await context.new_page()
    problems = watch(page)

    # Sign in: / leads to the login page; the form works without JavaScript.
    await page.goto(site.daemon + "/")
    assert page.url == site.daemon + "/portal/login"
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(site.daemon + "/portal/")
    await page.get_by_role("link", name="Fade Factory").click()

    # The dashboard and its chart: 30 days, two bars a day, today's conversation counted.
    chart = page.locator("svg.chart-svg")
    await chart.wait_for()
    assert await page.locator("svg.chart-svg rect.bar").count() == 60
    assert "1 conversations and 1 leads" in (await page.locator("svg desc").text_content() or "")
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 600
    await shot(page, "dashboard")

    # Mark the lead contacted.
    await page.get_by_role("link", name="Leads", exact=True).click()
    row = page.locator("table.leads tbody tr").first
    await row.get_by_role("combobox").select_option("contacted")
    await row.get_by_role("button", name="Save").click()
    await page.get_by_role("status").filter(has_text="status was saved").wait_for()
    assert await page.locator("table.leads tbody tr select").first.input_value() == "contacted"
    assert [lead.status for lead in rows(site.database, Lead) if lead.workspace_id == 1] == [
        "contacted"
    ]
    await shot(page, "leads")

    # Export them.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export these leads (CSV)").click()
    download = await download_info.value
    target = tmp_path / "leads.csv"
    await download.save_as(target)
    exported = target.read_text(encoding="utf-8")
    assert exported.startswith("lead_id,") and "Ana" in exported and "contacted" in exported
    assert download.suggested_filename.startswith("leads-fade-factory-")

    # The business's page with its widget, open and chatting.
    shop = await browser.new_page(viewport={"width": 1280, "height": 800})
    await shop.goto(site.shop)
    frame = shop.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    await frame.locator("textarea.tcai-input").fill("do you take walk-ins?")
    await frame.locator("button.tcai-send").click()
    await frame.locator(".tcai-msg.tcai-msg-bot", has_text="walk").first.wait_for(timeout=10_000)

    # Pause: the reason is required, and the widget refuses the next message.
    await page.get_by_role("link", name="Assistant").click()
    await page.get_by_label("Why pause it?").fill("Closed for the holiday")
    await page.get_by_role("button", name="Pause the assistant").click()
    await page.get_by_role("status").filter(has_text="is paused").wait_for()
    assert rows(site.database, Bot, Bot.bot_id == BOT)[0].paused_by == EMAIL
    await asyncio.sleep(0.5)  # the change signal reaches the daemon's cache within 2 s
    await frame.locator("textarea.tcai-input").fill("are you open tomorrow?")
    await frame.locator("button.tcai-send").click()
    paused = frame.locator(".tcai-paused")
    await paused.wait_for(state="visible", timeout=10_000)
    assert "taking a short break" in (await paused.text_content() or "")
    await shop.screenshot(path=str(ARTIFACTS / "portal-widget-paused.png"))

    # Resume: the widget answers again after a reload.
    await page.get_by_role("button", name="Resume the assistant").click()
    await page.get_by_role("status").filter(has_text="answering visitors again").wait_for()
    await asyncio.sleep(0.5)
    await shop.reload()
    frame = shop.frame_locator(f"iframe#tcai-frame-{BOT}")
    await frame.locator("button.tcai-launcher").click()
    await frame.locator("textarea.tcai-input").fill("what are your hours?")
    await frame.locator("button.tcai-send").click()
    await frame.locator(".tcai-msg.tcai-msg-bot").last.wait_for(timeout=10_000)
    assert await frame.locator(".tcai-paused").is_hidden()

    # Sign out: the session is over, the portal sends us back to the login page.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(site.daemon + "/portal/login")
    await page.goto(site.daemon + f"/portal/w/{OWN}/leads")
    assert page.url.startswith(site.daemon + "/portal/login")
    assert problems == [], problems


CONTRAST = """() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("svg, .visually-hidden, .skip, option")) continue;
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join("");
    if (!text || el.getClientRects().length === 0) continue;
    const fg = lum(rgb(getComputedStyle(el).color).slice(0, 3));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) problems.push(`${el.tagName}.${el.className} "${text.slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return problems;
}"""


async def test_every_text_reads_at_4_5_to_1(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(site.daemon + "/portal/login?done=welcome")
    assert await page.evaluate(CONTRAST) == []
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(site.daemon + "/portal/")
    for path in ("/portal/", "/", "/leads?done=updated", "/conversations", "/bot", "/users"):
        url = path if path.startswith("/portal") else f"/portal/w/{OWN}{path}"
        await page.goto(site.daemon + url)
        assert await page.evaluate(CONTRAST) == [], url
    await page.goto(site.daemon + f"/portal/w/{OWN}/conversations")
    await page.locator("table a").first.click()
    assert await page.evaluate(CONTRAST) == [], "a transcript"
    # The check can fail: a faint line of text is caught.
    await page.evaluate(
        "() => { const p = document.createElement('p'); p.textContent = 'faint';"
        " p.style.color = '#bbbbbb'; document.querySelector('main').append(p); }"
    )
    assert [line for line in await page.evaluate(CONTRAST) if '"faint"' in line]


async def test_the_demo_sites_read_at_4_5_to_1(seeded, browser: Browser, tmp_path) -> None:
    from tcai.bots.demo import provision_demo

    engine = seeded.engine()
    provision_demo(engine, [])
    server = TestServer(
        create_app(make_settings(log_dir=tmp_path / "logs"), engine=engine, demo=True),
        host="127.0.0.1",
    )
    await server.start_server()
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        problems = watch(page)
        base = f"http://127.0.0.1:{server.port}"
        await page.goto(base + "/demo/")
        assert await page.evaluate(CONTRAST) == []
        assert await page.locator(".biz-card").count() == 17
        for slug in ("demo-barber", "demo-restaurant", "demo-sober-living", "demo-nails"):
            await page.goto(f"{base}/demo/{slug}")
            await page.locator(f"iframe#tcai-frame-{slug}_main").wait_for(timeout=10_000)
            assert await page.evaluate(CONTRAST) == [], slug
        await shot(page, "demo-site")
        assert problems == [], problems
    finally:
        await server.close()
        engine.dispose()


async def test_the_portal_on_a_phone(site: Site, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    problems = watch(page)
    await page.goto(site.daemon + "/portal/login")
    await page.keyboard.press("Tab")  # the skip link comes first
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(site.password)
    await page.keyboard.press("Enter")
    await page.wait_for_url(site.daemon + "/portal/")
    await page.goto(site.daemon + f"/portal/w/{OWN}/")
    await page.locator("svg.chart-svg").wait_for()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing overflows sideways on a phone"
    await shot(page, "mobile")
    assert problems == [], problems
