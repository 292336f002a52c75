"""Contact extraction: phones, e-mails, names and consent from a visitor's own words."""

from __future__ import annotations

import pytest

from tcai.text.contacts import (
    CONSENT_MAX_CHARS,
    Contacts,
    extract_contacts,
    is_placeholder_email,
    normalise_email,
    normalise_phone,
)

PHONE_CASES = [
    # The product's smoke test: a fictional 555 number must be captured.
    ("I'm Ana, 772-555-0142", "+17725550142"),
    ("772-555-0142", "+17725550142"),
    ("(772) 555 0142", "+17725550142"),
    ("call me on 7725550142 please", "+17725550142"),
    ("+1 772 555 0142", "+17725550142"),
    ("1-772-555-0142", "+17725550142"),
    ("+1 (772) 555-0142", "+17725550142"),
    ("my cell is 772.555.0142.", "+17725550142"),
    ("+44 20 7946 0958", "+442079460958"),
    ("home 305-555-0100 or cell 772-555-0142", "+13055550100"),
    ("I'll be there at 10:30, my number is 212 555 0199", "+12125550199"),
    # Not phone numbers.
    ("call 555-1234", None),
    ("ext 0142", None),
    ("back in 2024", None),
    ("is it $1,250 for the package?", None),
    ("I live in 33101", None),
    ("can I come at 10:30?", None),
    ("123-456-7890", None),
    ("order 2024-05-01", None),
    ("card 4111 1111 1111 1111", None),
    ("card 4111111111111111", None),
    ("amex 378282246310005", None),
    ("write to ana7725550142@shop.co", None),
    ("no number here", None),
]


@pytest.mark.parametrize(("text", "phone"), PHONE_CASES)
def test_phone_is_extracted_as_e164(text: str, phone: str | None) -> None:
    assert extract_contacts(text).phone == phone


def test_phone_default_region_applies_to_numbers_without_country_code() -> None:
    assert extract_contacts("llámame al 020 7946 0958", default_region="GB").phone == (
        "+442079460958"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("772-555-0142", "+17725550142"),
        (" (772) 555 0142 ", "+17725550142"),
        ("+44 20 7946 0958", "+442079460958"),
        ("555-1234", None),
        ("4111111111111111", None),
        ("not a phone", None),
        ("", None),
    ],
)
def test_normalise_phone_validates_operator_input(raw: str, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


EMAIL_CASES = [
    ("write to Ana.Perez@Shop.CO", "ana.perez@shop.co"),
    ("my email is ana@shop.co.", "ana@shop.co"),
    ("ana@shop.co, thanks!", "ana@shop.co"),
    ("(ana@shop.co)", "ana@shop.co"),
    ("lucía@correo.es", "lucía@correo.es"),
    ("ANA+booking@Mail.Example-Shop.com", "ana+booking@mail.example-shop.com"),
    ("you@example.com", None),
    ("your@email.com", None),
    ("email@example.com", None),
    ("name@domain.com", None),
    ("test@test.com", None),
    ("bob@mail.example.org", None),
    ("someone@example.net", None),
    ("noreply@shop.co", None),
    ("no-reply@shop.co", None),
    ("ana@localhost", None),
    ("ana@@shop.co", None),
    # A placeholder before the real address does not hide the real one.
    ("not you@example.com but ana@shop.co", "ana@shop.co"),
]


@pytest.mark.parametrize(("text", "email"), EMAIL_CASES)
def test_email_is_extracted_lower_cased_without_placeholders(text: str, email: str | None) -> None:
    assert extract_contacts(text).email == email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ana@Shop.co", "ana@shop.co"),
        ("<ana@shop.co>", "ana@shop.co"),
        ("mailto:ana@shop.co", "ana@shop.co"),
        ("ana at shop dot co", None),
        ("you@example.com", None),
        ("", None),
    ],
)
def test_normalise_email(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    ("email", "placeholder"),
    [
        ("you@example.com", True),
        ("Your@Email.com", True),
        ("youremail@gmail.com", True),
        ("do-not-reply@shop.co", True),
        ("ana@shop.co", False),
        ("ana@examples.com", False),
    ],
)
def test_is_placeholder_email(email: str, placeholder: bool) -> None:
    assert is_placeholder_email(email) is placeholder


NAME_CASES = [
    ("I'm Ana, 772-555-0142", "Ana"),
    ("i'm ana", "Ana"),
    ("Im Ana", "Ana"),
    ("I am Carlos and I need a cut", "Carlos"),
    ("My name is Mary Jane Watson.", "Mary Jane Watson"),
    ("my name's ana maria", "Ana Maria"),
    ("Name's Bond. James Bond.", "Bond"),
    ("MY NAME IS ANA", "Ana"),
    ("Hi, this is Carlos from Acme Roofing", "Carlos"),
    ("This is Dr Smith", "Dr Smith"),
    ("this is Dr. Smith calling", "Dr Smith"),
    ("It's Ana here", "Ana"),
    ("me llamo Lucía", "Lucía"),
    ("Mi nombre es José Luis García López", "José Luis García"),
    ("Soy María y quiero una cita", "María"),
    ("I'm o'neil", "O'Neil"),
    ("I'm Sean McDonald", "Sean McDonald"),
    ("i'm mary-jane", "Mary-Jane"),
    ("Hi I'm Ana need a cut", "Ana"),
    ("I'm Will", "Will"),
    ("I'm looking for a haircut, my name is Ana", "Ana"),
    # Not names.
    ("I'm looking for a haircut", None),
    ("I'm interested", None),
    ("I'm not sure", None),
    ("I am a new client", None),
    ("this is great", None),
    ("This is about my booking", None),
    ("I'm allergic to latex", None),
    ("i'm checking availability", None),
    ("I'm 25", None),
    ("it's raining here", None),
    ("It's Ana", None),
    ("Soy de Miami", None),
    ("soy nueva cliente", None),
    ("I'm Ana's mom", None),
    ("My dog's name is Max", None),
    ("This is Dr.", None),
]


@pytest.mark.parametrize(("text", "name"), NAME_CASES)
def test_name_from_introductions(text: str, name: str | None) -> None:
    assert extract_contacts(text).name == name


CONSENT_CASES = [
    ("You can call me at 772-555-0142", "You can call me at 772-555-0142"),
    (
        "I'm Ana. Text me at 772-555-0142 after 5! Thanks.",
        "Text me at 772-555-0142 after 5!",
    ),
    ("ok to text this number", "ok to text this number"),
    ("Feel free to call anytime.", "Feel free to call anytime."),
    ("Please call me back when you can", "Please call me back when you can"),
    ("Hola.\nPuedes llamarme mañana", "Puedes llamarme mañana"),
    ("Llámame al 772-555-0142", "Llámame al 772-555-0142"),
    ("Please don't call me back, just email.", None),
    ("Do not text me.", None),
    ("What are your hours?", None),
    ("I'll call you tomorrow", None),
]


@pytest.mark.parametrize(("text", "consent"), CONSENT_CASES)
def test_consent_is_the_visitors_own_sentence(text: str, consent: str | None) -> None:
    assert extract_contacts(text).consent == consent


def test_consent_is_trimmed() -> None:
    text = "You can call me " + "really " * 100
    consent = extract_contacts(text).consent
    assert consent is not None
    assert consent.startswith("You can call me")
    assert len(consent) <= CONSENT_MAX_CHARS


def test_consent_never_carries_a_card_number() -> None:
    consent = extract_contacts("Call me back, my card is 4111 1111 1111 1111").consent
    assert consent == "Call me back, my card is [card redacted]"


def test_all_details_in_one_message() -> None:
    contacts = extract_contacts(
        "Hi! My name is ana lópez. You can text me at (772) 555-0142 or ANA@Shop.co."
    )
    assert contacts == Contacts(
        name="Ana López",
        phone="+17725550142",
        email="ana@shop.co",
        consent="You can text me at (772) 555-0142 or ANA@Shop.co.",
    )
    assert contacts.any


def test_nothing_found() -> None:
    contacts = extract_contacts("What time do you open on Saturday?")
    assert contacts == Contacts()
    assert not contacts.any


def test_long_adversarial_input_is_handled() -> None:
    text = "a" * 20_000 + "@" + "b" * 20_000 + " I'm " * 2_000 + "1 " * 20_000
    assert extract_contacts(text) == Contacts()
