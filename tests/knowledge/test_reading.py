"""The pure parts of the import: hours, prices, similarity and registrable domains."""

from __future__ import annotations

import pytest

from tcai.knowledge.extract import price_text
from tcai.knowledge.hours import hours_from_lines, hours_from_opening_hours, span_of
from tcai.knowledge.merge import jaccard
from tcai.knowledge.site import registrable_domain, same_site


@pytest.mark.parametrize(
    ("start", "end", "span"),
    [
        ("9am", "5pm", "09:00-17:00"),
        ("11:30", "9 PM", "11:30-21:00"),
        ("10", "4", "10:00-16:00"),
        ("Noon", "midnight", "12:00-24:00"),
        ("09:00", "17:30", "09:00-17:30"),
        ("5pm", "9am", None),
        ("25", "26", None),
    ],
)
def test_spans(start: str, end: str, span: str | None) -> None:
    assert span_of(start, end) == span


def test_hours_from_text_lines() -> None:
    hours = hours_from_lines(["Mon–Fri: 9am – 7pm", "Sat 10-4", "Sun closed"])
    assert hours["wed"] == ["09:00-19:00"] and hours["sat"] == ["10:00-16:00"]
    assert hours["sun"] == []
    # one passing mention of a day is no timetable; "we" is not Wednesday
    assert hours_from_lines(["We can meet on Monday 9-5 to talk"]) == {}


def test_hours_from_schema_opening_hours() -> None:
    hours = hours_from_opening_hours(["Mo-Fr 09:00-18:00", "Sa 09:00-14:00"])
    assert hours["fri"] == ["09:00-18:00"] and hours["sat"] == ["09:00-14:00"]
    assert hours["sun"] == []


@pytest.mark.parametrize(
    ("price", "currency", "minimum", "text"),
    [
        ("30.00", "USD", False, "$30"),
        (35, None, False, "$35"),
        ("12.5", "EUR", True, "from €12.50"),
    ],
)
def test_prices(price: object, currency: str | None, minimum: bool, text: str) -> None:
    assert price_text(price, currency, minimum) == text


def test_the_similarity_thresholds_of_the_issue() -> None:
    assert jaccard("Do you cut kids' hair?", "Do you cut kids hair") == 1.0
    assert (
        jaccard("What forms of payment do you take?", "What forms of payment do you accept?")
        == 0.75
    )
    assert jaccard("Can I ask for a specific barber?", "Can I request a specific barber?") == 0.625


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("www.barber.test", "barber.test"),
        ("shop.example.co.uk", "example.co.uk"),
        ("fadefactory.github.io", "fadefactory.github.io"),  # a private suffix: its own site
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_registrable_domains(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


def test_same_site() -> None:
    assert same_site("https://www.barber.test/faq", "barber.test")
    assert not same_site("https://barber.test.evil.test/", "barber.test")
    assert not same_site("ftp://barber.test/", "barber.test")
