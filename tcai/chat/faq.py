"""The FAQ matcher behind facts mode: which stored answer fits a visitor's question.

When the LLM is unset or fails (docs/chat-pipeline.md, "Order", step 6), the engine
answers from the business's facts. The caller gathers them as `FaqEntry`s (template
FAQs, the business's own FAQs and synthetic entries for hours, location, phone, ...) and
builds one `FaqIndex` per bot config; `FaqIndex.best` picks the entry to answer with, or
None when nothing fits well enough (then the engine asks for name and phone instead).

Ranking is Okapi BM25 over analysed tokens. Analysis, in order:
1. `text.words` (lower case, accents folded, apostrophes dropped, punctuation gone);
2. light stemming (`stem`): plural -s/-es/-ies, then -ing/-ed, then a final -e, so
   "closing", "closed" and "close" share the stem "clos";
3. phrases from the lexicon ("how much", "walk ins") are read before stop words go;
4. stop words, single letters and bare numbers are dropped;
5. a word or phrase in a concept group becomes its concept token (`@hours`, `@price`),
   on the visitor's side and the FAQ's side alike, so paraphrases meet on the concept:
   "when do you open" and "What are your hours?" both read as `@hours`. Replacing rather
   than adding keeps one rare member ("schedule" in a long answer) from outweighing the
   concept an entry's question is about.
The vocabulary lives in `tcai/data/faq_lexicon.yaml` (rules as data).

This module does not phrase the reply, decide when facts mode applies, or know where
entries come from; it only ranks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from tcai.data import data_file, load_yaml
from tcai.text.normalise import words

LEXICON_FILE = data_file("faq_lexicon.yaml")
CONCEPT_PREFIX = "@"  # `words` never yields "@", so concepts cannot collide with words

# Okapi BM25 parameters (the usual defaults).
K1 = 1.2
B = 0.75
# The question says what an entry is about; its answer only elaborates. Question (and
# topic) tokens are counted this many times in the entry's term frequencies.
QUESTION_WEIGHT = 2

# Confidence gate for `best` (see `FaqIndex.best`).
MIN_SCORE = 0.5
MIN_COVERAGE = 0.3


@dataclass(frozen=True)
class FaqEntry:
    question: str
    answer: str
    topic: str | None = None  # optional tag, e.g. "hours" for synthetic fact entries


@dataclass(frozen=True)
class FaqHit:
    entry: FaqEntry
    score: float
    index: int = -1  # the entry's position in the index's list


@dataclass(frozen=True)
class Lexicon:
    """Stop words and concept groups, already stemmed."""

    stop_words: frozenset[str]
    concepts: Mapping[str, tuple[str, ...]]  # stemmed word -> concept tokens
    phrases: Mapping[tuple[str, ...], tuple[str, ...]]  # stemmed words -> concept tokens
    longest_phrase: int


def stem(word: str) -> str:
    """Light suffix stripping; deliberately crude but the same on both sides.

    Plurals first ("policies" → "policy", "boxes" → "box", "hours" → "hour"; words ending
    in -ss/-us/-is keep their s); if no plural was stripped, -ing/-ed go ("opening" →
    "open", "running" → "run", "booked" → "book"); finally a trailing -e ("close" →
    "clos"). Words of three letters or fewer are left alone.
    """
    if len(word) <= 3:
        return word
    stripped = word
    if word.endswith("ies") and len(word) > 4:
        stripped = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "zes", "ches", "shes")) and len(word) > 4:
        stripped = word[:-2]
    elif word.endswith("s") and word[-2] not in "sui":
        stripped = word[:-1]
    if stripped == word:
        for suffix in ("ing", "ed"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                stripped = word[: -len(suffix)]
                # "running" → "runn" → "run"; "called" keeps its "ll"
                if stripped[-1] == stripped[-2] and stripped[-1] not in "aeiouls":
                    stripped = stripped[:-1]
                break
    if len(stripped) > 4 and stripped.endswith("e"):
        stripped = stripped[:-1]
    return stripped


def _stems(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in words(text))


@cache
def load_lexicon() -> Lexicon:
    raw: dict[str, Any] = load_yaml("faq_lexicon.yaml")
    listed = [*raw["stop_words"], *(m for ms in raw["concepts"].values() for m in ms)]
    if not all(isinstance(item, str) for item in listed):
        # YAML reads a bare yes/no/on/off as a boolean: quote it in the file.
        raise ValueError(f"{LEXICON_FILE.name}: every word must be a string")
    stop_words = frozenset(w for word in raw["stop_words"] for w in (word, stem(word)))
    concepts: dict[str, list[str]] = {}
    phrases: dict[tuple[str, ...], list[str]] = {}
    for name, members in raw["concepts"].items():
        token = CONCEPT_PREFIX + str(name)
        for member in members:
            stems = _stems(member)
            target = concepts.setdefault(stems[0], []) if len(stems) == 1 else None
            if target is None:
                target = phrases.setdefault(stems, [])
            if token not in target:
                target.append(token)
    return Lexicon(
        stop_words=stop_words,
        concepts={k: tuple(v) for k, v in concepts.items()},
        phrases={k: tuple(v) for k, v in phrases.items()},
        longest_phrase=max((len(p) for p in phrases), default=1),
    )


def analyse_units(text: str, lexicon: Lexicon | None = None) -> list[tuple[str, ...]]:
    """The tokens of `text`, grouped by the word or phrase that produced them.

    "how much for a fade?" → [("@price",), ("fade", "@haircut")]. The grouping lets `best`
    measure how much of a question was understood, one word at a time.
    """
    lex = lexicon if lexicon is not None else load_lexicon()
    raw = words(text)
    stems = [stem(w) for w in raw]
    units: list[tuple[str, ...]] = []
    i = 0
    while i < len(raw):
        for size in range(min(lex.longest_phrase, len(raw) - i), 1, -1):
            concepts = lex.phrases.get(tuple(stems[i : i + size]))
            if concepts:
                units.append(concepts)
                i += size
                break
        else:
            word, stemmed = raw[i], stems[i]
            i += 1
            if len(word) < 2 or word.isdigit():
                continue  # "10 minutes" vs "a few minutes": numbers rarely mean the same
            if word in lex.stop_words or stemmed in lex.stop_words:
                continue
            units.append(lex.concepts.get(stemmed, (stemmed,)))
    return units


def analyse(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """`analyse_units`, flattened: the terms BM25 counts."""
    return [token for unit in analyse_units(text, lexicon) for token in unit]


@dataclass(frozen=True)
class _Doc:
    length: int
    terms: frozenset[str]
    question_terms: frozenset[str]


class FaqIndex:
    """BM25 over a fixed list of entries; build once per bot config, search per message.

    Every (term, entry) weight is precomputed at build time, so a search is a sum over the
    postings of the query's few terms.
    """

    def __init__(self, entries: Sequence[FaqEntry]) -> None:
        self._entries = tuple(entries)
        lexicon = load_lexicon()
        self._lexicon = lexicon
        counts: list[Counter[str]] = []
        docs: list[_Doc] = []
        for entry in self._entries:
            question = analyse(entry.question, lexicon) + analyse(entry.topic or "", lexicon)
            terms: Counter[str] = Counter()
            for _ in range(QUESTION_WEIGHT):
                terms.update(question)
            terms.update(analyse(entry.answer, lexicon))
            counts.append(terms)
            docs.append(
                _Doc(
                    length=sum(terms.values()),
                    terms=frozenset(terms),
                    question_terms=frozenset(question),
                )
            )
        self._docs = tuple(docs)
        total = len(docs)
        avg_length = sum(d.length for d in docs) / total if total else 0.0
        doc_freq: Counter[str] = Counter()
        for terms in counts:
            doc_freq.update(terms.keys())
        # The non-negative idf: a term in every entry still counts a little, which keeps
        # tiny indexes (three entries) working where classic BM25 idf goes negative.
        self._idf = {
            term: math.log(1 + (total - n + 0.5) / (n + 0.5)) for term, n in doc_freq.items()
        }
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for index, (terms, doc) in enumerate(zip(counts, docs, strict=True)):
            norm = K1 * (1 - B + B * doc.length / avg_length) if avg_length else K1
            for term, tf in terms.items():
                weight = self._idf[term] * tf * (K1 + 1) / (tf + norm)
                self._postings.setdefault(term, []).append((index, weight))

    def __len__(self) -> int:
        return len(self._entries)

    def _scores(self, terms: Iterable[str]) -> dict[int, float]:
        scores: dict[int, float] = {}
        for term in set(terms):
            for index, weight in self._postings.get(term, ()):
                scores[index] = scores.get(index, 0.0) + weight
        return scores

    def _ranked(self, terms: Iterable[str]) -> list[tuple[int, float]]:
        scores = self._scores(terms)
        # Highest score first; on a tie the entry listed first wins.
        return sorted(
            ((i, s) for i, s in scores.items() if s > 0), key=lambda item: (-item[1], item[0])
        )

    def search(self, query: str, limit: int = 3) -> list[FaqHit]:
        """Up to `limit` entries sharing any term with `query`, best first, ungated."""
        terms = analyse(query, self._lexicon)
        return [FaqHit(self._entries[i], s, i) for i, s in self._ranked(terms)[: max(limit, 0)]]

    def best(self, query: str) -> FaqHit | None:
        """The top entry, if the match is confident; otherwise None.

        Confident means all three:
        - absolute: its BM25 score is at least `MIN_SCORE`;
        - relative: it matches at least `MIN_COVERAGE` of the query's meaningful words and
          phrases (one matching term from a word's unit is enough), so one shared word in
          a long unrelated question is not an answer;
        - anchored: at least one shared term is a concept or appears in the entry's own
          question or topic, so a word that only turns up somewhere in a long answer
          ("night" in "get a good night's sleep") cannot carry the match alone.
        """
        hits = self._gated(query, limit=1, top_only=True)
        return hits[0] if hits else None

    def confident(self, query: str, limit: int = 3) -> list[FaqHit]:
        """Up to `limit` entries that each pass `best`'s confidence gate, best first (the
        first one is `best` whenever `best` finds one)."""
        return self._gated(query, limit=limit, top_only=False)

    def _gated(self, query: str, *, limit: int, top_only: bool) -> list[FaqHit]:
        units = analyse_units(query, self._lexicon)
        if not units:
            return []
        query_terms = {t for unit in units for t in unit}
        ranked = self._ranked(query_terms)
        hits: list[FaqHit] = []
        for index, score in ranked[:1] if top_only else ranked:
            if len(hits) >= limit or score < MIN_SCORE:
                break
            doc = self._docs[index]
            covered = sum(1 for unit in units if doc.terms.intersection(unit))
            if covered / len(units) < MIN_COVERAGE:
                continue
            shared = doc.terms.intersection(query_terms)
            if not any(t.startswith(CONCEPT_PREFIX) or t in doc.question_terms for t in shared):
                continue
            hits.append(FaqHit(self._entries[index], score, index))
        return hits
