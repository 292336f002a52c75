"""Fixtures for the daemon's tests (the portal's live in portal_support.py)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.daemon.portal_support import portal  # noqa: F401
from tests.helpers import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium, started with the flags this machine needs."""
    assert Path(CHROMIUM).exists(), (
        "Debian's chromium is missing: apt-get install -y chromium chromium-driver"
    )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        yield launched
        await launched.close()
