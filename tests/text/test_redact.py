"""Card numbers never survive redaction; phones, order numbers and prices do."""

from __future__ import annotations

import pytest

from tcai.text.redact import has_card_number, is_luhn_valid, redact_cards, redact_contacts

CARD = "[card redacted]"

CARD_CASES = [
    ("my card is 4111 1111 1111 1111", f"my card is {CARD}"),
    ("4111111111111111", CARD),
    ("4111-1111-1111-1111 exp 12/29", f"{CARD} exp 12/29"),
    ("amex 3782 822463 10005.", f"amex {CARD}."),
    ("amex 378282246310005", f"amex {CARD}"),
    ("mastercard 5555-5555-5555-4444", f"mastercard {CARD}"),
    ("visa 4222222222222 (13 digits)", f"visa {CARD} (13 digits)"),
    ("two: 4111111111111111 and 5555555555554444", f"two: {CARD} and {CARD}"),
    ("qty 2 4111 1111 1111 1111", f"qty 2 {CARD}"),
    ("order 1234 4111 1111 1111 1111", f"order 1234 {CARD}"),
    # Left alone: not Luhn-valid, too short, too long, or a phone number.
    ("order 1234567890123456", "order 1234567890123456"),
    ("order 1234 5678 9012 3456", "order 1234 5678 9012 3456"),
    ("call 772-555-0142", "call 772-555-0142"),
    ("call +1 (772) 555-0142", "call +1 (772) 555-0142"),
    ("+44 20 7946 0958", "+44 20 7946 0958"),
    ("tracking 41111111111111111111111", "tracking 41111111111111111111111"),
    ("4111  1111  1111  1111", "4111  1111  1111  1111"),
    ("$1,250 on 2024-05-01 at 10:30", "$1,250 on 2024-05-01 at 10:30"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CARD_CASES)
def test_redact_cards(text: str, expected: str) -> None:
    assert redact_cards(text) == expected
    assert has_card_number(text) is (CARD in expected)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("378282246310005", True),
        ("79927398713", True),
        ("4111111111111112", False),
        ("1234567890123456", False),
        ("", False),
        ("4111 1111", False),
    ],
)
def test_is_luhn_valid(digits: str, valid: bool) -> None:
    assert is_luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "I'm Ana, ana@shop.co, 772-555-0142",
            "I'm Ana, [email], [phone]",
        ),
        ("card 4111 1111 1111 1111 thanks", f"card {CARD} thanks"),
        ("+44 20 7946 0958 or Ana.Perez@Shop.CO.", "[phone] or [email]."),
        ("local 555-1234", "local [phone]"),
        ("$1,250 on 2024-05-01 at 10:30", "$1,250 on 2024-05-01 at 10:30"),
        ("What are your hours?", "What are your hours?"),
    ],
)
def test_redact_contacts_for_logs(text: str, expected: str) -> None:
    assert redact_contacts(text) == expected


def test_long_inputs_are_scanned_linearly() -> None:
    digits = "1 " * 50_000
    assert redact_cards(digits) == digits
    word_run = "a" * 50_000 + "@" + "b" * 50_000
    assert redact_contacts(word_run) == word_run
