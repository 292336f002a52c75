"""Helpers shared by tests across the package's parts (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from tcai.bots.service import change_bot
from tcai.config import Settings, load_settings, new_secret

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (apt-get install chromium chromium-driver); no test downloads one."""
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ALLOWED = "https://fadefactory.example.org"
CHAT_PATH = "/api/chat/fade-factory/fade-factory_main"
CONFIG_PATH = "/api/widget/config/fade-factory/fade-factory_main"


def rows(database: Any, model: Any, *where: Any) -> list[Any]:
    """Every row of `model` (matching `where`) in the test database."""
    engine = database.engine()
    try:
        with Session(engine) as session:
            return list(session.exec(select(model).where(*where)))
    finally:
        engine.dispose()


def count(database: Any, model: Any) -> int:
    return len(rows(database, model))


def set_bot(
    database: Any, *assignments: str, patch: Any = None, bot: str = "fade-factory_main"
) -> None:
    """`tcai bots set` through the core: audited, version bumped, signal raised."""
    engine = database.engine()
    try:
        change_bot(engine, bot, assignments=list(assignments), patch=patch)
    finally:
        engine.dispose()


def make_settings(**overrides: Any) -> Settings:
    """This test's settings with a fresh widget secret (and `overrides`)."""
    settings = load_settings().model_copy(update={"widget_secret": SecretStr(new_secret())})
    return settings.model_copy(update=overrides) if overrides else settings


async def token_for(client: Any, origin: str = ALLOWED) -> str:
    """A widget token, fetched as the widget does."""
    response = await client.get(CONFIG_PATH, headers={"Origin": origin})
    assert response.status == 200, await response.text()
    return str((await response.json())["token"])


def console_problems(page: Any) -> list[str]:
    """Collect a page's console errors, CSP violations and uncaught exceptions."""
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


STRICT = os.environ.get("TCAI_CI_STRICT") == "1"
"""Set by .ci/run, which installs every tool the tests use: there a missing one fails."""


def require(available: bool, what: str) -> None:
    """Skip a test whose machine tool is missing on a developer's machine; under .ci/run
    (`TCAI_CI_STRICT=1`) fail instead, so a skip never hides a broken CI machine."""
    if available:
        return
    if STRICT:
        pytest.fail(f"{what}; .ci/run installs it, so its absence is a CI fault")
    pytest.skip(what)
