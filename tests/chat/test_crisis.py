"""Crisis detection: the baseline table, bot keywords, and the response language."""

from __future__ import annotations

import pytest

from tcai.chat.crisis import (
    CrisisDetector,
    CrisisMatch,
    crisis_response,
    is_spanish,
    load_baseline,
)
from tcai.text.normalise import normalise

MUST_FIRE = [
    "I don't want to live anymore",
    "I dont want to live anymore",
    "I DON’T WANT TO LIVE!!!",
    "i do not want to live like this",
    "I want to kill myself",
    "honestly i want to kill-myself",
    "I keep thinking about killing myself",
    "I want to end my life tonight",
    "Sometimes I want to die",
    "i just want to die",
    "I wanna die",
    "everyone would be better off dead without me around, I'd be better off dead",
    "I have no reason to live",
    "there's nothing to live for",
    "I've been having suicidal thoughts",
    "is suicide painless",
    "I want to hurt myself",
    "I've been cutting myself again",
    "I've been self-harming",
    "self harm",
    "I took too many pills",
    "I think I overdosed",
    "can someone help, my friend is overdosing",
    "I wish I was dead",
    "no quiero vivir",
    "Ya no quiero vivir así",
    "me quiero morir",
    "Quiero morir",
    "estoy pensando en suicidarme",
    "voy a quitarme la vida",
    "quiero hacerme daño",
    "quiero hacerme dano",
    "tomé demasiadas pastillas",
    "creo que es una sobredosis",
]

MUST_NOT_FIRE = [
    # "OD" is not a baseline phrase: two letters fire inside normal words and sentences.
    "good food today",
    "studio",
    "period",
    "good dog",
    "we have a pool",
    "overdue payment",
    "this traffic is killing me",
    "I'd kill for a burger",
    "kill the lights",
    "die-hard fan",
    "to die for cheesecake",
    "my phone died",
    "she is dying her hair",
    "I hurt my back at the gym",
    # Decision: a negated idiom, not a crisis statement. The baseline writes "want to die"
    # as "i want to die" (and close variants) so this stays quiet; "I want to die" fires.
    "Is the Botox painful? I don't want to die of embarrassment",
    "I'm dying to try the new menu",
    "that haircut killed it",
    "I want to live near the beach",
    "I want to take my life back after rehab",
    "my dog wants to live outside",
    "suicides",  # whole words only: a different word, not the phrase "suicide"
    "dead tired after work",
    # Decision: "me muero de hambre" ("I'm starving") is an idiom; the baseline has no bare
    # "muero"/"morir", only "quiero morir", "me quiero morir" and similar.
    "me muero de hambre",
    "quiero vivir en la playa",
    "me muero de risa",
    # "matarme" and "hacerme daño" alone also mean "kill me"/"hurt me" by someone else.
    "mi jefe va a matarme si llego tarde",
    "¿El láser puede hacerme daño?",
    "quiero cortarme el pelo",
    "quiero reservar una cita para mañana",
    "What are your hours on Sunday?",
]


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector()


@pytest.mark.parametrize("text", MUST_FIRE)
def test_baseline_fires(detector: CrisisDetector, text: str) -> None:
    assert detector.detect(text) is not None


@pytest.mark.parametrize("text", MUST_NOT_FIRE)
def test_baseline_stays_quiet(detector: CrisisDetector, text: str) -> None:
    assert detector.detect(text) is None


def test_table_is_large_enough() -> None:
    assert len(set(MUST_FIRE)) == len(MUST_FIRE) >= 25
    assert len(set(MUST_NOT_FIRE)) == len(MUST_NOT_FIRE) >= 25


def test_match_names_the_phrase_as_written_and_its_language(detector: CrisisDetector) -> None:
    assert detector.detect("I dont want to live anymore") == CrisisMatch(
        phrase="don't want to live", language="en"
    )
    assert detector.detect("¡Me quiero morir!") == CrisisMatch(
        phrase="me quiero morir", language="es"
    )
    assert detector.detect("estoy pensando en hacerme una autolesion") == CrisisMatch(
        phrase="autolesión", language="es"
    )


def test_longest_phrase_at_a_position_wins() -> None:
    detector = CrisisDetector(["using", "using again"])
    assert detector.detect("I'm using again") == CrisisMatch("using again", "bot")


def test_bot_keywords_are_added_to_the_baseline() -> None:
    sober_living = CrisisDetector(["relapsed", "using again"])
    assert sober_living.detect("I relapsed last night") == CrisisMatch("relapsed", "bot")
    assert sober_living.detect("I'm Using Again.") == CrisisMatch("using again", "bot")
    assert sober_living.detect("the relapsedness of it") is None
    assert sober_living.detect("I want to kill myself") == CrisisMatch("kill myself", "en")
    assert sober_living.detect("no quiero vivir") == CrisisMatch("no quiero vivir", "es")
    assert CrisisDetector().detect("I relapsed last night") is None


def test_bot_keyword_repeating_a_baseline_phrase_keeps_the_baseline_language() -> None:
    match = CrisisDetector(["Kill Myself"]).detect("i want to kill myself")
    assert match == CrisisMatch("kill myself", "en")


@pytest.mark.parametrize("blank", ["", "   ", "!!!", "’"])
def test_blank_bot_keywords_are_ignored(blank: str) -> None:
    detector = CrisisDetector([blank, "relapsed"])
    assert detector.detect("hello, what are your hours?") is None
    assert detector.detect("") is None
    assert detector.detect("I relapsed") == CrisisMatch("relapsed", "bot")


def test_baseline_phrases_are_distinct_and_not_abbreviations() -> None:
    baseline = load_baseline()
    phrases = baseline.phrases_en + baseline.phrases_es
    normalised = [normalise(p) for p in phrases]
    assert len(set(normalised)) == len(normalised), "two phrases normalise to the same text"
    assert all(len(p) >= 6 for p in normalised), "short abbreviations fire on normal text"
    assert "od" not in {word for p in normalised for word in p.split()}


def test_default_responses_name_the_lifeline_and_emergency_number() -> None:
    baseline = load_baseline()
    for response in (baseline.response, baseline.response_es):
        assert "988" in response
        assert "911" in response
    assert "Suicide & Crisis Lifeline" in baseline.response
    assert "not a crisis service" in baseline.response.replace("isn't", "is not")
    assert "Línea 988" in baseline.response_es
    assert "2 para español" in baseline.response_es
    assert "no es un servicio de crisis" in baseline.response_es


@pytest.mark.parametrize(
    ("text", "spanish"),
    [
        ("no quiero vivir", True),
        ("Hola, necesito ayuda", True),
        ("me siento muy mal y no tengo ganas de nada", True),
        ("I don't want to live anymore", False),
        ("I want to kill myself", False),
        ("", False),
    ],
)
def test_is_spanish(text: str, spanish: bool) -> None:
    assert is_spanish(text) is spanish


def test_crisis_response_follows_the_visitor_language(detector: CrisisDetector) -> None:
    baseline = load_baseline()
    for text, expected in [
        ("no quiero vivir", baseline.response_es),
        ("sobredosis", baseline.response_es),
        ("I want to kill myself", baseline.response),
        ("creo que tengo pensamientos de suicide", baseline.response_es),
    ]:
        match = detector.detect(text)
        assert match is not None, text
        assert crisis_response(text, match) == expected, text
