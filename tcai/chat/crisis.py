"""Crisis detection: does a visitor's message call for the crisis response?
(docs/chat-pipeline.md, "Order", step 3)

Owns the matching engine and the loading of the platform baseline
(`tcai/data/crisis_baseline.yaml`: English and Spanish phrases, the default responses).
A bot's own keywords are added to the baseline, never replace it. Matching is whole words
and phrases on `normalise`d text, so case, punctuation, apostrophes and accents do not
matter. This module does not flag conversations, choose a bot's custom response or skip the
LLM; the pipeline does that with the `CrisisMatch` it gets back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from tcai.data import data_file, load_yaml
from tcai.text.normalise import normalise, words

BASELINE_FILE = data_file("crisis_baseline.yaml")


@dataclass(frozen=True)
class CrisisMatch:
    phrase: str  # the rule phrase that fired, as written in the rules
    language: str  # "en", "es" or "bot" (a bot's own keyword)


@dataclass(frozen=True)
class CrisisBaseline:
    phrases_en: tuple[str, ...]
    phrases_es: tuple[str, ...]
    response: str
    response_es: str
    spanish_words: frozenset[str]
    english_words: frozenset[str]


def _phrases(raw: object, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) and normalise(p) for p in raw):
        raise ValueError(f"{BASELINE_FILE.name}: {key} must be a list of non-blank phrases")
    return tuple(raw)


@cache
def load_baseline() -> CrisisBaseline:
    raw = load_yaml("crisis_baseline.yaml")
    return CrisisBaseline(
        phrases_en=_phrases(raw["phrases_en"], "phrases_en"),
        phrases_es=_phrases(raw["phrases_es"], "phrases_es"),
        response=str(raw["response"]).strip(),
        response_es=str(raw["response_es"]).strip(),
        spanish_words=frozenset(raw["language_hints"]["es"]),
        english_words=frozenset(raw["language_hints"]["en"]),
    )


def is_spanish(text: str) -> bool:
    """More common Spanish words than English ones: enough to pick `response_es`."""
    baseline = load_baseline()
    tokens = words(text)
    spanish = sum(token in baseline.spanish_words for token in tokens)
    english = sum(token in baseline.english_words for token in tokens)
    return spanish > english


def crisis_response(text: str, match: CrisisMatch) -> str:
    """The baseline response in the visitor's language: Spanish for a Spanish phrase or a
    message that reads as Spanish, English otherwise."""
    baseline = load_baseline()
    if match.language == "es" or is_spanish(text):
        return baseline.response_es
    return baseline.response


class CrisisDetector:
    """The baseline plus one bot's keywords, compiled into one regex alternation."""

    def __init__(self, extra_keywords: Sequence[str] = ()) -> None:
        baseline = load_baseline()
        rules: dict[str, CrisisMatch] = {}
        # First writer wins, so a bot keyword that repeats a baseline phrase keeps the
        # baseline's language (and with it the baseline's response language).
        self._add(rules, baseline.phrases_en, "en")
        self._add(rules, baseline.phrases_es, "es")
        self._add(rules, extra_keywords, "bot")
        self._rules = rules
        # Longest first, so a phrase wins over any shorter phrase it contains.
        alternation = "|".join(re.escape(p) for p in sorted(rules, key=lambda p: (-len(p), p)))
        self._pattern = re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z0-9])")

    @staticmethod
    def _add(rules: dict[str, CrisisMatch], phrases: Iterable[str], language: str) -> None:
        for phrase in phrases:
            key = normalise(phrase)
            if key and key not in rules:
                rules[key] = CrisisMatch(phrase=phrase.strip(), language=language)

    def detect(self, text: str) -> CrisisMatch | None:
        """The first rule phrase found in `text`, or None."""
        found = self._pattern.search(normalise(text))
        return self._rules[found.group(0)] if found else None
