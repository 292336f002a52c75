"""The shipped templates carry the facts docs/templates.md names, per industry."""

from __future__ import annotations

import pytest

from tcai.templates.files import load_template_files
from tcai.templates.policy import load_policy
from tcai.templates.schema import Template
from tcai.templates.validation import validate_files

# key: (template_id, mode, primary CTA, providers)
EXPECTED_FACTS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "sober_living": ("sober_living_template", "internal", "tour", ()),
    "restaurant": (
        "restaurant_template",
        "external",
        "reserve",
        ("OpenTable", "Resy", "Yelp Reservations", "SevenRooms"),
    ),
    "barber": (
        "barber_template",
        "external",
        "book",
        ("Square Appointments", "Booksy", "Vagaro", "StyleSeat", "Schedulicity"),
    ),
    "auto": ("auto_shop_template", "internal", "estimate", ()),
    "home_services": ("home_services_template", "internal", "estimate", ()),
    "gym": (
        "gym_template",
        "external",
        "tour",
        ("Mindbody", "WellnessLiving", "Club OS", "Zen Planner"),
    ),
    "real_estate": ("real_estate_template", "internal", "tour", ()),
    "med_spa": (
        "med_spa_template",
        "external",
        "consult",
        ("PatientPop", "Acuity", "Jane App", "Boulevard"),
    ),
    "tattoo": ("tattoo_template", "internal", "consult", ()),
    "law_firm": ("law_firm_template", "internal", "consult", ()),
    "dental": (
        "dental_template",
        "external",
        "book",
        ("Dentrix", "Open Dental", "Weave", "NexHealth"),
    ),
    "hotel": (
        "hotel_template",
        "external",
        "reserve",
        ("Booking.com", "Cloudbeds", "Little Hotelier", "Direct Booking"),
    ),
    "roofing": ("roofing_template", "internal", "estimate", ()),
    "wedding": ("wedding_template", "internal", "tour", ()),
    "pet_grooming": (
        "pet_grooming_template",
        "external",
        "book",
        ("Gingr", "DaySmart", "PetExec", "Groomer.io"),
    ),
    "salon": (
        "salon_template",
        "external",
        "book",
        ("Square Appointments", "Vagaro", "StyleSeat", "Fresha", "Boulevard"),
    ),
    "nails": (
        "nails_template",
        "external",
        "book",
        ("Square Appointments", "Vagaro", "Fresha", "Schedulicity", "Booksy"),
    ),
}


@pytest.fixture(scope="module")
def templates() -> dict[str, Template]:
    return {t.key: t for t in load_template_files()}


def test_exactly_the_17_industries_ship(templates: dict[str, Template]) -> None:
    assert set(templates) == set(EXPECTED_FACTS)
    assert [i.key for i in load_policy().industries] == list(EXPECTED_FACTS)


@pytest.mark.parametrize("key", list(EXPECTED_FACTS))
def test_booking_facts_match_the_spec(templates: dict[str, Template], key: str) -> None:
    template_id, mode, primary, providers = EXPECTED_FACTS[key]
    template = templates[key]
    assert template.id == template_id
    assert template.booking.mode == mode
    assert template.booking.primary_cta == primary
    assert tuple(template.booking.providers) == providers
    pivot = template.get_appointment_type(template.booking.failsafe.pivot_appointment_type)
    assert pivot is not None and pivot.mode == "internal"
    assert any(f.key == "phone" and f.required for f in pivot.intake_fields)


def test_shipped_files_pass_every_rule() -> None:
    report = validate_files(load_template_files())
    assert report.errors == [], [p.line() for p in report.errors]


def test_sober_living_crisis_response_names_the_helplines(templates: dict[str, Template]) -> None:
    crisis = templates["sober_living"].crisis
    assert crisis is not None
    for number in ("988", "911", "1-800-662-4357"):
        assert number in crisis.response


@pytest.mark.parametrize("key", ["med_spa", "dental", "law_firm"])
def test_regulated_verticals_carry_compliance_rules(
    templates: dict[str, Template], key: str
) -> None:
    compliance = templates[key].compliance
    assert compliance is not None and len(compliance.rules) >= 3


def test_law_firm_never_gives_legal_advice(templates: dict[str, Template]) -> None:
    assert "legal advice" in templates["law_firm"].prompt_intro.lower()


@pytest.mark.parametrize("key", ["barber", "salon", "nails"])
def test_personal_care_has_a_catalogue_and_six_faqs(
    templates: dict[str, Template], key: str
) -> None:
    template = templates[key]
    assert len(template.catalog) == 6
    assert len(template.faqs) >= 6
    assert len(template.quick_replies) == 6


@pytest.mark.parametrize("key", ["salon", "nails"])
def test_salon_and_nails_have_their_own_booking_profile(
    templates: dict[str, Template], key: str
) -> None:
    """The old system gave them the recovery-housing profile ("Who is this for?")."""
    fields = {f.key for a in templates[key].booking.appointment_types for f in a.intake_fields}
    assert "whoFor" not in fields
    assert templates[key].booking.mode == "external"


def test_no_template_borrows_another_industrys_content(templates: dict[str, Template]) -> None:
    for key, template in templates.items():
        others = {t.business.type for k, t in templates.items() if k != key}
        assert template.business.type not in others
        assert key.split("_")[0] in template.id


def test_every_template_has_a_primary_chip_and_real_faq_answers(
    templates: dict[str, Template],
) -> None:
    for template in templates.values():
        assert sum(1 for q in template.quick_replies if q.primary) == 1
        for faq in template.faqs:
            assert len(faq.answer.split()) >= 8, (template.key, faq.question)
