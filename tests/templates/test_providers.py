"""The one booking-URL verdict."""

from __future__ import annotations

import pytest

from tcai.bots.config import BookingSettings, BotConfig, BusinessFacts
from tcai.chat.booking import decide_booking
from tcai.templates.files import load_template_files
from tcai.templates.providers import classify_booking_url


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://squareup.com/appointments/book/abc123/location", "Square Appointments"),
        ("https://www.vagaro.com/fadefactory/book-now", "Vagaro"),
        ("https://booksy.com/en-us/12345_fade-factory#book", "Booksy"),
        ("https://www.opentable.com/r/sunset-diner", "OpenTable"),
        ("https://fadefactory.example.org/book", None),
    ],
)
def test_acceptable_urls(url: str, provider: str | None) -> None:
    verdict = classify_booking_url(url)
    assert verdict.ok, verdict.reason
    assert verdict.provider == provider
    assert not verdict.placeholder


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://squareup.com/appointments/book/abc", "https"),
        ("javascript:alert(1)", "https"),
        ("data:text/html,<script>alert(1)</script>", "https"),
        ("file:///etc/passwd", "https"),
        ("vbscript:msgbox", "https"),
        ("about:blank", "https"),
        ("//evil.example.com/book", "https"),
        ("https://buy.stripe.com/28o5kA", "payment"),
        ("https://www.paypal.com/paypalme/shop", "payment"),
        ("https://shop.example.org/checkout/123", "checkout"),
        ("https://user:pw@squareup.com/book", "password"),
        ("https://localhost/book", "host"),
        ("https://squareup.com:8443/book", "port"),
        ("https://squareup.com/book now", "whitespace"),
        ("", "empty"),
    ],
)
def test_refused_urls(url: str, reason: str) -> None:
    verdict = classify_booking_url(url)
    assert not verdict.ok
    assert reason in verdict.reason


def test_placeholders_are_flagged_not_refused() -> None:
    verdict = classify_booking_url("https://squareup.com/appointments/book/YOUR_BUSINESS_ID/fade")
    assert verdict.ok and verdict.placeholder


# ---- provider domains and look-alikes ---------------------------------------------------

CYRILLIC_O = "\u043e"  # looks like the Latin 'o'


@pytest.mark.parametrize(
    ("url", "claimed", "provider"),
    [
        ("https://booksy.com/x", None, "Booksy"),
        ("https://booksy.com/x", "Booksy", "Booksy"),
        ("https://www.booksy.com/en-us/1_fade", "Booksy", "Booksy"),
        ("https://BOOKSY.COM./x", "Booksy", "Booksy"),
        ("https://booksy.com:443/x", "booksy", "Booksy"),
        ("https://book.squareup.com/appointments/x", "Square Appointments", "Square Appointments"),
        ("https://fade-factory.square.site/", "Square Appointments", "Square Appointments"),
        ("https://glow.as.me/consult", "Acuity", "Acuity"),
        ("https://clients.mindbodyonline.com/ws?studioid=1", None, "Mindbody"),
        ("https://booksy.com.evil.example/x", None, None),
        ("https://booksy-com.example/x", None, None),
        ("https://www.harborview-inn.example/reserve", "Direct Booking", "Direct Booking"),
        ("https://münchen-hotel.example/buchen", "Direct Booking", "Direct Booking"),
    ],
)
def test_links_are_labelled_only_on_their_providers_domain(
    url: str, claimed: str | None, provider: str | None
) -> None:
    verdict = classify_booking_url(url, claimed)
    assert verdict.ok, verdict.reason
    assert verdict.provider == provider


@pytest.mark.parametrize(
    ("url", "claimed", "reason"),
    [
        # Claimed for a provider, on somebody else's host.
        ("https://booksy.com.evil.example/x", "Booksy", "which Booksy does not use"),
        ("https://evilbooksy.com/x", "Booksy", "which Booksy does not use"),
        ("https://booksy-com.example/x", "Booksy", "which Booksy does not use"),
        ("https://squareup.com/appointments/book/x", "Booksy", "must be on booksy.com"),
        ("https://fadefactory.example.org/book", "Vagaro", "must be on vagaro.com"),
        ("https://www.booking.com/hotel/x", "Direct Booking", "name Booking.com as the provider"),
        ("https://booksy.com/x", "Acme Pay", "unknown provider 'Acme Pay'"),
        # Homoglyphs: a Cyrillic 'о', its punycode, a whole-Cyrillic spelling, an accent.
        (f"https://b{CYRILLIC_O}{CYRILLIC_O}ksy.com/x", None, "look-alike"),
        ("https://xn--bksy-55da.com/x", None, "look-alike"),
        (f"https://b{CYRILLIC_O}{CYRILLIC_O}ksy.com/x", "Booksy", "look-alike"),
        ("https://\u0432\u043e\u043e\u043a\u0455\u0443.com/x", None, "looks like booksy.com"),
        ("https://bóoksy.com/x", None, "looks like booksy.com"),
        ("https://www.v\u0430garo.com/x", None, "look-alike"),
        ("https://ｂｏｏｋｓｙ.com/x", None, "look-alike characters"),
        ("https://boo\u00adksy.com/x", None, "invisible"),
        ("https://xn--zz.com/x", None, "not a valid (international) domain"),
        # Ports, credentials, backslashes, encodings, IP addresses, schemes.
        ("https://booksy.com:8443/x", None, "port 8443"),
        ("https://booksy.com\\@evil.example/x", None, "backslash"),
        ("https://user@booksy.com/x", None, "user name"),
        ("https://@booksy.com/x", None, "user name"),
        ("https://evil.example%2F@booksy.com/x", None, "user name"),
        ("user@booksy.com", None, "https"),
        ("https://booksy%2ecom/x", None, "percent-encoded"),
        ("https://booksy.com../x", None, "host"),
        ("http://booksy.com/x", None, "https"),
        ("javascript:alert(1)//booksy.com", None, "https"),
        ("data:text/html,<a%20href=https://booksy.com>", None, "https"),
        ("https://127.0.0.1/book", None, "IP address"),
        ("https://[::1]/book", None, "IP address"),
        ("https://0x7f.1/book", None, "IP address"),
        ("https://192.168.0.10:443/book", None, "IP address"),
        ("https:booksy.com/x", None, "host"),
    ],
)
def test_look_alikes_and_tricks_are_refused(url: str, claimed: str | None, reason: str) -> None:
    verdict = classify_booking_url(url, claimed)
    assert not verdict.ok
    assert reason in verdict.reason
    assert verdict.provider is None


def _external_config(template_key: str, url: str | None, provider: str | None) -> BotConfig:
    template = next(t for t in load_template_files() if t.key == template_key)
    return BotConfig(
        template=template,
        business=BusinessFacts(name="Fade Factory", phone="+17725550100"),
        booking=BookingSettings(url=url, provider=provider),
    )


@pytest.mark.parametrize(
    ("url", "provider", "handling", "label"),
    [
        ("https://booksy.com/en-us/1_fade", "Booksy", "external", "Booksy"),
        ("https://booksy.com/en-us/1_fade", None, "external", "Booksy"),
        # The bug this guards against: a look-alike labelled with the configured provider.
        ("https://booksy.com.evil.example/x", "Booksy", "internal", None),
        (f"https://b{CYRILLIC_O}{CYRILLIC_O}ksy.com/x", "Booksy", "internal", None),
        ("https://fadefactory.example.org/book", "Booksy", "internal", None),
        # Without a claimed provider an unknown host is the business's own site: unlabelled.
        ("https://booksy.com.evil.example/x", None, "external", None),
    ],
)
def test_the_booking_decision_never_labels_a_look_alike(
    url: str, provider: str | None, handling: str, label: str | None
) -> None:
    decision = decide_booking(_external_config("barber", url, provider), "book a haircut")
    assert decision.handling == handling, decision.reason
    assert decision.provider == label
    if handling == "internal":
        assert decision.url is None
