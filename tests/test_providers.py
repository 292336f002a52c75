"""The one booking-URL verdict."""

from __future__ import annotations

import pytest

from tcai.providers import classify_booking_url


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
