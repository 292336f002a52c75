"""`tcai demo`'s pages on the portal's templates: the index shows every business as a
card under its group, and each business gets a one-page site built from its facts with
the widget on it — under a CSP without inline script or style."""

from __future__ import annotations

import re

import pytest

from tcai.bots.demo import list_demo_sites, provision_demo
from tcai.daemon.app import create_app
from tcai.daemon.portal.sites import contrast, ink, locality
from tests.helpers import make_settings


@pytest.fixture
async def demo(seeded, aiohttp_client, tmp_path):
    engine = seeded.engine()
    provision_demo(engine, [])
    client = await aiohttp_client(
        create_app(make_settings(log_dir=tmp_path / "logs"), engine=engine, demo=True)
    )
    client.engine = engine
    yield client
    engine.dispose()


async def test_the_index_shows_cards_by_group(demo) -> None:
    response = await demo.get("/demo/")
    assert response.status == 200
    text = await response.text()
    assert "<script" not in text and " style=" not in text
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    groups = re.findall(r'<h2 id="group-\d+">([^<]+)</h2>', text)
    assert len(groups) == 5 and "Hair, nails &amp; beauty" in groups
    cards = re.findall(r'<li class="biz-card brand-(demo-[a-z-]+)">', text)
    assert len(cards) == 17 and len(set(cards)) == 17
    assert "Fade Factory" in text and "Barbershop" in text and "Stuart, FL" in text
    assert "barber_template" not in text


async def test_a_business_gets_a_credible_page(demo) -> None:
    response = await demo.get("/demo/demo-barber")
    assert response.status == 200
    text = await response.text()
    assert "<h1>Fade Factory</h1>" in text
    assert "Classic Fade" in text and "$30" in text, "prices from the catalogue"
    assert "Monday–Friday 9 am – 6 pm" in text and "closed Sunday" in text
    assert "21 Colorado Ave, Stuart, FL 34994" in text
    assert 'href="tel:+17725550103"' in text and "(772) 555-0103" in text
    assert 'href="https://squareup.com/appointments/book/fade-factory-demo"' in text
    assert 'rel="noopener noreferrer"' in text
    assert (
        '<script src="/widget/embed.js" data-client="demo-barber" '
        'data-bot="demo-barber_main" async></script>'
    ) in text
    assert text.count("<script") == 1 and " style=" not in text
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert (await demo.get("/demo/demo-nope")).status == 404


async def test_a_business_without_a_booking_link_or_catalogue(demo) -> None:
    text = await (await demo.get("/demo/demo-roofing")).text()
    assert "Summit Roofing Co." in text and "Serving the Treasure Coast, FL" in text
    assert "btn-book" not in text and 'class="prices"' not in text


async def test_each_brand_colour_reads_at_4_5_to_1(demo) -> None:
    css = await (await demo.get("/demo/themes.css")).text()
    inks = re.findall(r"--brand-ink: (#[0-9a-f]{6})", css)
    assert len(inks) == 17
    assert all(contrast(colour, "#ffffff") >= 4.5 for colour in inks)
    for site in list_demo_sites(demo.engine):
        assert f".brand-{site.client_id} " in css
    assert ink("#ffffff") != "#ffffff" and contrast(ink("#00e5cc"), "#ffffff") >= 4.5


@pytest.mark.parametrize(
    ("address", "place"),
    [
        ("21 Colorado Ave, Stuart, FL 34994", "Stuart, FL"),
        ("100 E Ocean Blvd, Suite 300, Stuart, FL 34994", "Stuart, FL"),
        ("Serving Martin County, FL", "Serving Martin County, FL"),
        (None, None),
    ],
)
def test_locality(address, place) -> None:
    assert locality(address) == place


async def test_the_demo_pages_are_only_for_tcai_demo(seeded, aiohttp_client, tmp_path) -> None:
    engine = seeded.engine()
    provision_demo(engine, [])
    client = await aiohttp_client(create_app(make_settings(log_dir=tmp_path), engine=engine))
    for path in ("/demo/", "/demo/demo-barber", "/demo/themes.css"):
        assert (await client.get(path)).status == 404
    engine.dispose()
