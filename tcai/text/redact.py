"""Redaction of card numbers and contact details from free text.

Owns what a card-number-like sequence is (13–19 digits, optionally grouped by single spaces
or dashes, passing the Luhn check) and the two redactions built on it: `redact_cards`, which
runs before a visitor's text reaches the LLM, the database or a log, and `redact_contacts`,
which additionally hides e-mail addresses and phone numbers for logs.

Deliberately not here: deciding which contact details a visitor *gave* (that is
`tcai.text.contacts`, which validates and normalises them). Log redaction is broad on
purpose: anything phonenumbers considers a possible phone number is hidden, valid or not.

Every pattern here is linear: digit groups are separated by a mandatory single separator
and e-mail candidates may only start on a boundary, so no input makes the engine backtrack.
"""

from __future__ import annotations

import re

import phonenumbers

CARD_PLACEHOLDER = "[card redacted]"
EMAIL_PLACEHOLDER = "[email]"
PHONE_PLACEHOLDER = "[phone]"

CARD_MIN_DIGITS = 13
CARD_MAX_DIGITS = 19

# A maximal run of ASCII digit groups joined by exactly one space or dash. Card candidates
# are carved out of such a run at group boundaries, never from inside a group.
_DIGIT_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_DIGIT_GROUP = re.compile(r"[0-9]+")

# E-mail *candidates*; validation belongs to the caller. The look-behind makes every start
# position a boundary, which keeps the scan linear on long runs of word characters.
EMAIL_CANDIDATE = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")

# Region used to read phone numbers without a country code in log lines.
_LOG_PHONE_REGION = "US"
_ANY_DIGIT = re.compile(r"\d")


def load_phone_metadata() -> None:
    """Load every region's phone-number metadata now, before a server starts serving.

    phonenumbers imports a region's data module the first time it reads a number of that
    region; any region is reachable (a visitor or a log line may carry "+44 …"), and the
    loader holds a lock it never releases if that import fails (say, out of file
    descriptors), which would stop the event loop for good. Loaded up front, the loader is
    never called again. Costs about 1.4 MB and 30–70 ms (docs/http-api.md, "Slow and
    hostile connections"). Short-number, geocoding and carrier data are not used here and
    stay unloaded.
    """
    phonenumbers.PhoneMetadata.load_all()


def is_luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum over a string of ASCII digits."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - ord("0")
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_card_like(digits: str) -> bool:
    """True for 13–19 ASCII digits passing the Luhn check (separators already removed)."""
    return CARD_MIN_DIGITS <= len(digits) <= CARD_MAX_DIGITS and is_luhn_valid(digits)


def _card_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of card-like sequences, left to right, non-overlapping.

    A card is carved out of a digit run at group boundaries only ("qty 2 4111 1111 1111
    1111" hides the card, not the 2). Every card-like window is covered, overlapping ones
    merged, so no digit of a card survives next to a neighbouring number. Each start looks
    at no more than 19 digits, which keeps the work linear in the run length.
    """
    spans: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = list(_DIGIT_GROUP.finditer(text, run.start(), run.end()))
        for first in range(len(groups)):
            digits = ""
            last_card: int | None = None
            for last in range(first, len(groups)):
                digits += groups[last].group()
                if len(digits) > CARD_MAX_DIGITS:
                    break
                if is_card_like(digits):
                    last_card = last
            if last_card is None:
                continue
            span = (groups[first].start(), groups[last_card].end())
            if spans and span[0] < spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], span[1]))
            else:
                spans.append(span)
    return spans


def _replace_spans(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    if not spans:
        return text
    parts: list[str] = []
    cursor = 0
    for start, end in spans:
        parts.append(text[cursor:start])
        parts.append(placeholder)
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


def redact_cards(text: str) -> str:
    """Replace every card-number-like sequence with "[card redacted]"."""
    return _replace_spans(text, _card_spans(text), CARD_PLACEHOLDER)


def has_card_number(text: str) -> bool:
    return bool(_card_spans(text))


def redact_contacts(text: str) -> str:
    """For logs: cards, then e-mails, then phone numbers become placeholders.

    Cards go first so their digits are never read as a phone; e-mails before phones so
    digits inside an address do not leave half an address behind.
    """
    redacted = redact_cards(text)
    redacted = EMAIL_CANDIDATE.sub(EMAIL_PLACEHOLDER, redacted)
    if _ANY_DIGIT.search(redacted) is None:
        return redacted  # no digit, no phone number: skip the matcher
    spans = [
        (match.start, match.end)
        for match in phonenumbers.PhoneNumberMatcher(
            redacted, _LOG_PHONE_REGION, leniency=phonenumbers.Leniency.POSSIBLE
        )
    ]
    return _replace_spans(redacted, spans, PHONE_PLACEHOLDER)
