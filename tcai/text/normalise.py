"""Text normalisation shared by matching rules (crisis, FAQ, booking intent, suggest).

`normalise` lower-cases, folds accents ("recaída" = "recaida"), drops apostrophes
("don't" = "dont") and turns every other non-alphanumeric run into one space, so rules
match whole words and phrases regardless of case and punctuation. It is memoised: the
same phrases (rules, service names) and the same message are normalised once.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_APOSTROPHES = re.compile(r"['’‘`´ʼ]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


SHORT_CHARS = 200
"""Phrases from the rules and short messages share a large memo; longer texts (whole
visitor messages, up to 2,000 characters) a small one, enough for the several look-ups
of one turn, so the memo never keeps thousands of long messages alive."""


def normalise(text: str) -> str:
    """'I DON'T want to live—anymore!' → 'i dont want to live anymore'."""
    return _normalise_short(text) if len(text) <= SHORT_CHARS else _normalise_long(text)


def _normalise(text: str) -> str:
    folded = fold_accents(text.lower())
    folded = _APOSTROPHES.sub("", folded)
    return _NON_WORD.sub(" ", folded).strip()


_normalise_short = lru_cache(maxsize=8192)(_normalise)
_normalise_long = lru_cache(maxsize=64)(_normalise)


def words(text: str) -> list[str]:
    normalised = normalise(text)
    return normalised.split() if normalised else []


def contains_phrase(haystack: str, phrase: str) -> bool:
    """Whole-word/phrase containment on normalised text (both sides normalised here)."""
    needle = normalise(phrase)
    if not needle:
        return False
    return f" {needle} " in f" {normalise(haystack)} "


def join_sentences(*parts: str | None) -> str:
    """Non-empty parts, trimmed, joined by one space: how replies are assembled."""
    return " ".join(part.strip() for part in parts if part and part.strip())
