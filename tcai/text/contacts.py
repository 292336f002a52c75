"""Contact details a visitor gives in a chat message: name, phone, e-mail and consent.

Owns how each detail is recognised and normalised: phones through phonenumbers (E.164),
e-mails through email_validator (syntax only, no DNS, lower-cased, placeholders dropped),
names from introductions ("my name is …", "I'm …", "me llamo …") and consent as the
visitor's own sentence granting permission to call or text. `normalise_phone` and
`normalise_email` are also the validators for operator input, so both doors agree.

Deliberately not here: storing or merging leads, and redaction. Card numbers are redacted
first (`tcai.text.redact`), so nothing extracted here can carry one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from tcai.text.normalise import contains_phrase, normalise, words
from tcai.text.redact import EMAIL_CANDIDATE, is_card_like, redact_cards

CONSENT_MAX_CHARS = 300
NAME_MAX_WORDS = 3


@dataclass(frozen=True)
class Contacts:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    consent: str | None = None

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.name, self.phone, self.email, self.consent))


# --- E-mail ------------------------------------------------------------------------------

PLACEHOLDER_EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.org",
    "example.net",
    "domain.com",
    "email.com",
    "test.com",
)
# Local parts that are never a person: form hints ("your@…") and robot senders.
PLACEHOLDER_EMAIL_LOCALS: tuple[str, ...] = (
    "your",
    "youremail",
    "your.email",
    "your_email",
    "yourname",
    "your.name",
    "your_name",
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
)
_EMAIL_EDGE_PUNCTUATION = "\"'<>()[]{}.,;:!?-"


def is_placeholder_email(email: str) -> bool:
    local, at, domain = email.strip().lower().rpartition("@")
    if not at:
        return False
    if local in PLACEHOLDER_EMAIL_LOCALS:
        return True
    return any(
        domain == placeholder or domain.endswith("." + placeholder)
        for placeholder in PLACEHOLDER_EMAIL_DOMAINS
    )


def normalise_email(raw: str) -> str | None:
    """'<Ana@Shop.co>.' → 'ana@shop.co'; None when invalid or a placeholder."""
    candidate = raw.strip().strip(_EMAIL_EDGE_PUNCTUATION)
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[len("mailto:") :]
    if not candidate:
        return None
    try:
        validated = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    email = validated.normalized.lower()
    return None if is_placeholder_email(email) else email


def _first_email(text: str) -> str | None:
    for match in EMAIL_CANDIDATE.finditer(text):
        email = normalise_email(match.group())
        if email is not None:
            return email
    return None


# --- Phone -------------------------------------------------------------------------------

# POSSIBLE finds every number the library can read, however it is punctuated; validity is
# then decided by `_is_acceptable_phone`, the same rule `normalise_phone` applies to
# operator input. libphonenumber validates a NANP number by its area code and the first
# digit of the exchange, so fictional 555 numbers such as 772-555-0142 are valid, while
# 7-digit fragments ("555-1234") and impossible area codes ("123-456-7890") are not.
_PHONE_LENIENCY = phonenumbers.Leniency.POSSIBLE
_ANY_DIGIT = re.compile(r"\d")
"""Any decimal digit, in any script (the phone matcher reads them all)."""


def _digits(text: str) -> str:
    return "".join(char for char in text if "0" <= char <= "9")


def _is_acceptable_phone(number: phonenumbers.PhoneNumber, raw: str) -> bool:
    return bool(phonenumbers.is_valid_number(number)) and not is_card_like(_digits(raw))


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_phone(raw: str, default_region: str = "US") -> str | None:
    """'(772) 555 0142' → '+17725550142'; None when not a valid number."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    return _e164(number) if _is_acceptable_phone(number, raw) else None


def _first_phone(text: str, default_region: str) -> str | None:
    if _ANY_DIGIT.search(text) is None:
        return None  # most messages: no number to look for (the matcher costs ~0.1 ms)
    # Digits inside an e-mail address ("ana7725550142@…") are not a phone number.
    masked = EMAIL_CANDIDATE.sub(lambda match: " " * len(match.group()), text)
    for match in phonenumbers.PhoneNumberMatcher(masked, default_region, leniency=_PHONE_LENIENCY):
        if _is_acceptable_phone(match.number, match.raw_string):
            return _e164(match.number)
    return None


# --- Name --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameTrigger:
    """An introduction phrase. `screened` ones ("I'm", "this is") are often followed by
    something other than a name, so the first word also passes the suffix heuristics;
    `suffix` is a word that must follow the name ("it's Ana here")."""

    pattern: str
    screened: bool = False
    suffix: str | None = None


NAME_TRIGGERS: tuple[NameTrigger, ...] = (
    NameTrigger(r"my\s+name\s+is"),
    NameTrigger(r"my\s+name['’]?s"),
    NameTrigger(r"name['’]s"),
    NameTrigger(r"mi\s+nombre\s+es"),
    NameTrigger(r"me\s+llamo"),
    NameTrigger(r"i\s+am", screened=True),
    NameTrigger(r"i['’]?m", screened=True),
    NameTrigger(r"this\s+is", screened=True),
    NameTrigger(r"soy", screened=True),
    NameTrigger(r"it['’]?s", screened=True, suffix="here"),
)

# Words that are never the first word of a name after a trigger (compared normalised:
# lower-case, accents folded, apostrophes dropped).
NOT_NAME_WORDS: frozenset[str] = frozenset(
    words(
        """
        looking interested trying wondering calling not a an the here new just so very good fine
        ok okay sorry available free busy ready sure glad happy hoping asking writing texting
        going planning thinking in at on from with for to your my it that this currently also
        still really having getting bringing pregnant allergic over under about nervous scared
        i im me we you he she they us them his her their our what who how when where why which
        there all done back out up down off late early coming following reaching contacting
        messaging emailing needing wanting want need would can could should have has had
        was were is am are be been and or but if as by of after before since actually only
        always never usually probably definitely maybe kind sort gonna wanna worried concerned
        confused curious excited unsure afraid tired sick hurt injured unable able willing local
        nearby close near open flexible married single divorced retired located based moving
        visiting staying traveling travelling inquiring enquiring requesting booking scheduling
        checking great awesome perfect amazing helpful urgent important weird strange correct
        right wrong true false yes no yeah yep nope hi hello hey thanks thank please well more
        less much many some any every each almost already again too one two first second last
        next same other another both either neither regarding re mom mother dad father parent
        wife husband owner client customer patient member student teacher nurse manager girl
        lady man woman person someone somebody everyone nobody friend neighbor neighbour older
        younger returning existing regular super pretty quite rather literally basically totally
        completely absolutely extremely kinda sorta monday tuesday wednesday thursday friday
        saturday sunday today tomorrow tonight yesterday morning afternoon evening night hot cold
        quiet sunny raining anxious stressed hungry thirsty alone home outside inside
        de del la el los las un una nuevo nueva cliente muy tu su mi en con para por que y o si
        aqui alla estudiante paciente alergico alergica embarazada madre padre mama papa esposa
        esposo amigo amiga vecino vecina dueno duena alguien yo lo le se ya tambien solo feliz
        interesado interesada buena bueno nuevos nuevas
        """
    )
)
# Extra words that end a name once it has started ("I'm Ana and …", "soy María y …").
NAME_STOP_WORDS: frozenset[str] = NOT_NAME_WORDS | frozenset(
    words(
        """
        will like love hate know think see call text wanted needed looked called here via
        pero quiero necesito busco llamo desde
        """
    )
)
NAME_TITLES: frozenset[str] = frozenset(words("dr mr mrs ms mx miss prof doctor sr sra srta dra"))
# Endings of lower-case words after a screened trigger that are almost never names
# ("i'm checking", "i'm anxious"). Only applied to words of six letters or more.
_NON_NAME_SUFFIXES: tuple[str, ...] = ("ing", "ous", "ful", "able", "ible")

_TRIGGER_REGEX = re.compile(
    r"(?<![\w'’])(?:"
    + "|".join(f"(?P<t{index}>{trigger.pattern})" for index, trigger in enumerate(NAME_TRIGGERS))
    + r")[ \t]+",
    re.IGNORECASE,
)
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_NAME_GAP = re.compile(r"[ \t]+")
_NAME_PART_SPLIT = re.compile(r"(['’-])")
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)


def _title_case(word: str) -> str:
    """'ana' → 'Ana', "o'neil" → "O'Neil", 'ANA' → 'Ana'; mixed case ('McDonald') is kept."""
    parts = _NAME_PART_SPLIT.split(word)
    cased = []
    for part in parts:
        if part.islower() or part.isupper():
            part = part[:1].upper() + part[1:].lower()
        else:
            part = part[:1].upper() + part[1:]
        cased.append(part)
    return "".join(cased)


def _looks_like_non_name(word: str) -> bool:
    return word.islower() and len(word) >= 6 and word.lower().endswith(_NON_NAME_SUFFIXES)


def _read_title(text: str, pos: int) -> tuple[str | None, int]:
    """An honorific at `pos` ("Dr", "Dr.") and where the name after it starts."""
    match = _NAME_WORD.match(text, pos)
    if match is None or normalise(match.group()) not in NAME_TITLES:
        return None, pos
    end = match.end() + 1 if text[match.end() : match.end() + 1] == "." else match.end()
    gap = _NAME_GAP.match(text, end)
    if gap is None or _NAME_WORD.match(text, gap.end()) is None:
        return None, pos
    return _title_case(match.group().rstrip(".")), gap.end()


def _read_name(text: str, pos: int, trigger: NameTrigger) -> str | None:
    title, pos = _read_title(text, pos)
    name_words: list[str] = []
    next_pos = pos
    while len(name_words) < NAME_MAX_WORDS:
        match = _NAME_WORD.match(text, next_pos)
        if match is None:
            break
        word = match.group()
        key = normalise(word)
        if not name_words:
            if key in NOT_NAME_WORDS or key in NAME_TITLES:
                return None
            if trigger.screened and _looks_like_non_name(word):
                return None
        elif key in NAME_STOP_WORDS or (name_words[0][:1].isupper() and not word[:1].isupper()):
            break
        name_words.append(word)
        gap = _NAME_GAP.match(text, match.end())
        if gap is None:
            next_pos = match.end()
            break
        next_pos = gap.end()
    if not name_words or any(_POSSESSIVE.search(word) for word in name_words):
        return None
    if trigger.suffix is not None:
        following = _NAME_WORD.match(text, next_pos)
        if following is None or normalise(following.group()) != trigger.suffix:
            return None
    return " ".join(([title] if title else []) + [_title_case(word) for word in name_words])


def _first_name(text: str) -> str | None:
    for match in _TRIGGER_REGEX.finditer(text):
        trigger = NAME_TRIGGERS[int(str(match.lastgroup)[1:])]
        name = _read_name(text, match.end(), trigger)
        if name is not None:
            return name
    return None


# --- Consent -----------------------------------------------------------------------------

CONSENT_PHRASES: tuple[str, ...] = (
    "you can call me",
    "you may call me",
    "call me at",
    "call me on",
    "call me back",
    "call me anytime",
    "call me any time",
    "please call me",
    "can you call me",
    "could you call me",
    "feel free to call",
    "text me",
    "you can text me",
    "feel free to text",
    "feel free to contact me",
    "contact me at",
    "reach me at",
    "you can reach me",
    "ok to call",
    "okay to call",
    "ok to text",
    "okay to text",
    "ok to contact",
    "okay to contact",
    "puedes llamarme",
    "pueden llamarme",
    "me pueden llamar",
    "llámame",
    "llamenme",
    "escríbeme",
    "mándame un mensaje",
)
# A consent phrase preceded (within three words) by one of these is a refusal:
# "please don't call me back".
CONSENT_NEGATIONS: frozenset[str] = frozenset(
    words("dont not never cannot cant wont shouldnt nunca")
)
_NEGATION_WINDOW = 3
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|[\r\n]+")


def _is_negated(sentence: str, phrase: str) -> bool:
    haystack = f" {normalise(sentence)} "
    index = haystack.find(f" {normalise(phrase)} ")
    before = haystack[:index].split()[-_NEGATION_WINDOW:]
    return any(word in CONSENT_NEGATIONS for word in before)


def _first_consent(text: str) -> str | None:
    for sentence in _SENTENCE_BREAK.split(text):
        for phrase in CONSENT_PHRASES:
            if contains_phrase(sentence, phrase) and not _is_negated(sentence, phrase):
                return sentence.strip()[:CONSENT_MAX_CHARS].rstrip()
    return None


# --- Extraction --------------------------------------------------------------------------


def extract_contacts(text: str, default_region: str = "US") -> Contacts:
    """The first name, phone, e-mail and consent sentence in a visitor's message."""
    safe = redact_cards(text)
    return Contacts(
        name=_first_name(safe),
        phone=_first_phone(safe, default_region),
        email=_first_email(safe),
        consent=_first_consent(safe),
    )


@functools.lru_cache(maxsize=1024)
def display_phone(e164: str | None, home_region: str = "US") -> str | None:
    """How a stored E.164 number is shown to visitors: national format at home
    ("(772) 555-0142"), international elsewhere ("+44 20 7946 0958")."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    same = phonenumbers.region_code_for_number(number) == home_region
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if same
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return str(phonenumbers.format_number(number, style))
