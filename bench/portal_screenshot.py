"""The README's picture of the owner portal, made by the code rather than by hand.

Provisions a demo workspace in a throw-away SQLite database (templates seeded, one barber
shop, an owner account), has 60 visitors chat with its assistant through the real
pipeline (facts mode, offline), spreads those conversations and leads over the last 30
days, starts a real daemon (`tcai demo`, so the demo pages are there too), signs in with Debian's headless Chromium and writes
docs/portal-dashboard.png.

    .venv/bin/python bench/portal_screenshot.py [--out docs/portal-dashboard.png] [--extra DIR]

`--extra DIR` also saves the leads, conversation and assistant pages and two demo pages
there (for reviewing the templates; not committed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.served import free_port  # noqa: E402
from tcai.access.users import create_user  # noqa: E402
from tcai.bots.provisioning import ClientRequest, create_client  # noqa: E402
from tcai.bots.service import change_bot  # noqa: E402
from tcai.chat.pipeline import ChatEngine, ChatRequest  # noqa: E402
from tcai.config import load_settings  # noqa: E402
from tcai.db.engine import make_engine  # noqa: E402
from tcai.db.migrate import upgrade  # noqa: E402
from tcai.templates.files import load_template_files  # noqa: E402
from tcai.templates.store import seed_templates  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
EMAIL = "owner@fadefactory.co"
NAMES = ["Ana", "Marcus", "Priya", "Devon", "Lucía", "Sam", "Keisha", "Tom", "Nadia", "Omar"]
QUESTIONS = [
    "what are your hours?",
    "how much is a classic fade?",
    "do you take walk-ins?",
    "where are you located?",
    "I'd like to book a beard trim",
]


def prepare(url: str, password: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    seed_templates(engine, load_template_files())
    made = create_client(
        engine,
        ClientRequest(
            template="barber",
            slug="fade-factory",
            name="Fade Factory",
            phone="+1 772 555 0100",
            address="21 Colorado Ave, Stuart, FL 34994",
            booking_url="https://squareup.com/appointments/book/fade-factory-demo",
            plan="enterprise",
        ),
        actor="bench",
    )
    days = ["mon", "tue", "wed", "thu", "fri"]
    change_bot(
        engine,
        made.bot_id,
        assignments=[*(f"hours.{d}=09:00-18:00" for d in days), "hours.sat=10:00-15:00"],
        actor="bench",
    )
    create_user(engine, EMAIL, password, workspace="fade-factory", role="owner", actor="bench")
    asyncio.run(chats(url))
    spread_over_a_month(engine)
    engine.dispose()


async def chats(url: str) -> None:
    engine = make_engine(url)
    chat = ChatEngine(load_settings(), engine, None, spool_path=Path(tempfile.mkdtemp()) / "s")
    rng = random.Random(11)
    try:
        for visitor in range(60):
            session = f"bench-visitor-{visitor:03d}"
            for question in rng.sample(QUESTIONS, rng.randint(1, 3)):
                await chat.handle(
                    ChatRequest("fade-factory", "fade-factory_main", question, session, "b")
                )
            if rng.random() < 0.45:
                name = rng.choice(NAMES)
                phone = f"772-555-01{visitor:02d}"
                await chat.handle(
                    ChatRequest(
                        "fade-factory",
                        "fade-factory_main",
                        f"I'm {name}, call me at {phone}",
                        session,
                        "b",
                    )
                )
    finally:
        chat.close()
        engine.dispose()


def spread_over_a_month(engine: object) -> None:
    """Chats made a second ago, moved back over 30 days (more lately: a growing shop)."""
    from sqlmodel import Session, select

    from tcai.db.models import Conversation, Lead, Message
    from tcai.db.types import utcnow

    rng = random.Random(7)
    now = utcnow()
    with Session(engine) as session:  # type: ignore[arg-type]
        for conversation in session.exec(select(Conversation)):
            back = timedelta(days=int(rng.triangular(0, 29.99, 3)), hours=rng.randint(0, 8))
            conversation.started_at = now - back
            conversation.last_activity_at = now - back + timedelta(minutes=3)
            session.add(conversation)
            for message in session.exec(
                select(Message).where(Message.conversation_id == conversation.id)
            ):
                message.created_at = now - back + timedelta(minutes=1)
                session.add(message)
            if conversation.lead_id:
                lead = session.get(Lead, conversation.lead_id)
                if lead is not None:
                    lead.created_at = lead.updated_at = now - back + timedelta(minutes=2)
                    lead.status = rng.choice(["new", "new", "contacted", "converted", "lost"])
                    session.add(lead)
        session.commit()


async def shoot(base: str, password: str, out: Path, extra: Path | None) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
            ],
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{base}/portal/login")
        await page.fill("#email", EMAIL)
        await page.fill("#password", password)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/portal/")
        await page.goto(f"{base}/portal/w/fade-factory/")
        await page.locator("svg.chart-svg").wait_for()
        out.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(out), full_page=True)
        print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
        if extra is not None:
            extra.mkdir(parents=True, exist_ok=True)
            pages = {
                "leads": "/portal/w/fade-factory/leads",
                "conversations": "/portal/w/fade-factory/conversations",
                "bot": "/portal/w/fade-factory/bot",
                "login": "/portal/login",
            }
            for name, path in pages.items():
                await page.goto(base + path)
                await page.screenshot(path=str(extra / f"portal-{name}.png"), full_page=True)
            await page.goto(base + "/portal/w/fade-factory/conversations")
            await page.locator("table a").first.click()
            await page.screenshot(path=str(extra / "portal-conversation.png"), full_page=True)
            mobile = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            await mobile.context.add_cookies(await page.context.cookies())
            await mobile.goto(base + "/portal/w/fade-factory/")
            await mobile.screenshot(path=str(extra / "portal-mobile.png"), full_page=True)
            for name, path in {"demo-index": "/demo/", "demo-barber": "/demo/demo-barber"}.items():
                await page.goto(base + path)
                await page.wait_for_timeout(800)
                await page.screenshot(path=str(extra / f"{name}.png"), full_page=True)
            print(f"wrote the other pages to {extra}")
        await browser.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "portal-dashboard.png")
    parser.add_argument("--extra", type=Path, default=None)
    args = parser.parse_args()
    password = "bench " + secrets.token_urlsafe(12)
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite:///{work}/portal.db"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "LOG_DIR": f"{work}/logs",
            "TCAI_ENV": "development",
        }
        os.environ.update({"DATABASE_URL": url, "LOG_DIR": f"{work}/logs"})
        await asyncio.to_thread(prepare, url, password)
        port = free_port()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "tcai", "demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_for_health(base)
            await shoot(base, password, args.out.resolve(), args.extra)
        finally:
            daemon.terminate()
            daemon.wait(60)


async def wait_for_health(base: str) -> None:
    async with aiohttp.ClientSession() as client:
        for _ in range(600):
            try:
                async with client.get(base + "/api/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the daemon did not start")


if __name__ == "__main__":
    asyncio.run(main())
