"""Suggest an industry template from a business's own description.

Matching is on whole words and phrases of the text as the chat engine normalises it
(`tcai.text.normalise.words`: case, accents and apostrophes folded), never substrings
("car" does not match "care", "inn" does not match "dinner"), with simple plural
folding. A phrase keyword scores one point per word, so "skin care clinic" prefers the
template that knows "skin care".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tcai.templates.schema import Template
from tcai.text.normalise import words


def _fold(word: str) -> str:
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _contains_phrase(haystack: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(list(haystack[i : i + n]) == list(phrase) for i in range(len(haystack) - n + 1))


@dataclass(frozen=True)
class Suggestion:
    template_id: str
    key: str
    name: str
    score: int
    matched: tuple[str, ...]


def suggest(description: str, templates: Sequence[tuple[int, Template]]) -> list[Suggestion]:
    """Templates (with their display order) ranked by keyword matches; best first."""
    text = [_fold(w) for w in words(description)]
    ranked: list[tuple[int, int, Suggestion]] = []
    for order, template in templates:
        matched: list[str] = []
        score = 0
        for keyword in template.suggest_keywords:
            phrase = [_fold(w) for w in words(keyword)]
            if phrase and _contains_phrase(text, phrase):
                matched.append(keyword)
                score += len(phrase)
        if score:
            suggestion = Suggestion(template.id, template.key, template.name, score, tuple(matched))
            ranked.append((-score, order, suggestion))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in ranked]
