"""Reading a visitor's message for facts mode: its words, intents, days and language.

The vocabulary is data (`tcai/data/facts_intents.yaml`); this module is the one engine
that applies it. A `Reader` is built once per bot config (its typo repair also knows the
bot's own FAQ and service words) and turns a message into a `Reading`:

1. the message is cut into clauses at punctuation and at words like "and" / "also", so
   each question of "what are your hours and where are you?" can be answered;
2. each word is normalised (`tcai.text.normalise`); an unknown word of five letters or more is
   repaired when exactly one edit (insert, delete, substitute, swap two neighbours) makes
   it a word the rules or the bot use ("adress" → "address"), and an unknown long word
   that is two such words is split ("blowdry"). Common English words are never
   "repaired" ("laser" stays "laser", though "later" is one edit away);
3. rewrites turn Spanish and chat shorthand into the English vocabulary ("cuánto" → "how
   much", "tmrw" → "tomorrow"), so one set of phrases serves both;
4. intent phrases and day/moment phrases are found on stemmed words (`faq.stem`), each
   as a `Hit` with its position.

The language of the reply is decided on the words as typed, before rewriting. This
module does not decide what to answer (`tcai.chat.facts` does) and keeps no state
between messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tcai.chat.faq import load_lexicon, stem
from tcai.data import data_file, load_yaml
from tcai.text.contacts import NOT_NAME_WORDS
from tcai.text.normalise import words

INTENTS_FILE = data_file("facts_intents.yaml")

# Typo repair: shorter words are left alone (too many real words lie one edit apart).
REPAIR_MIN_LENGTH = 5
TARGET_MIN_LENGTH = 4  # a repair may land on a word this long ("fadde" → "fade")
SPLIT_MIN_LENGTH = 6  # an unknown word this long may be two known words run together
_CLAUSE_PUNCTUATION = re.compile(r"[?!.;,:\n]+|\s[-–—]\s")


@dataclass(frozen=True)
class Trigger:
    label: str
    stems: tuple[str, ...]
    weak: bool = False
    not_after: frozenset[str] = frozenset()
    not_before: frozenset[str] = frozenset()
    at_start: bool = False


@dataclass(frozen=True)
class Hit:
    label: str
    start: int
    end: int
    weak: bool = False


@dataclass(frozen=True)
class IntentRules:
    """The reading rules, compiled."""

    rewrites: Mapping[tuple[str, ...], tuple[str, ...]]
    rewrite_longest: int
    spanish: frozenset[str]
    english: frozenset[str]
    clause_breaks: frozenset[str]
    question_starts: frozenset[str]
    known_words: frozenset[str]
    generic: frozenset[str]
    filler: frozenset[str]
    lead_words: frozenset[str]
    visit_words: frozenset[str]
    unquoted: frozenset[str]
    triggers: Mapping[str, tuple[Trigger, ...]]  # first stem -> triggers, longest first
    when: Mapping[str, tuple[Trigger, ...]]
    unless: Mapping[str, frozenset[str]]  # intent -> stems that cancel it
    explicit_offer: frozenset[tuple[str, ...]]
    faq_aspects: frozenset[str]
    targets: frozenset[str]  # words a typo may be repaired into: what the rules look for
    protected: frozenset[str]  # words never repaired: every word the rules know
    phrases: Mapping[str, tuple[str, ...]]  # intent -> its phrases, as written

    def intent_phrases(self, intent: str) -> tuple[str, ...]:
        return self.phrases.get(intent, ())


def _stems(phrase: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in words(phrase))


def raw_lexicon_members() -> list[str]:
    """Every word and phrase of the FAQ lexicon's concept groups, as written."""
    raw: dict[str, Any] = load_yaml("faq_lexicon.yaml")
    return [str(m) for members in raw["concepts"].values() for m in members]


def _index(triggers: Iterable[Trigger]) -> dict[str, tuple[Trigger, ...]]:
    by_first: dict[str, list[Trigger]] = {}
    for trigger in triggers:
        if trigger.stems:
            by_first.setdefault(trigger.stems[0], []).append(trigger)
    return {
        first: tuple(sorted(found, key=lambda t: -len(t.stems)))
        for first, found in by_first.items()
    }


def _strings(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        # YAML reads a bare yes/no/on/off as a boolean: quote it in the file.
        raise ValueError(f"{INTENTS_FILE.name}: {where} must be a list of strings")
    return list(raw)


@cache
def load_intent_rules() -> IntentRules:
    raw: dict[str, Any] = load_yaml("facts_intents.yaml")
    rewrites = {
        tuple(words(str(source))): tuple(words(str(target)))
        for source, target in raw["rewrites"].items()
    }
    triggers: list[Trigger] = []
    unless: dict[str, frozenset[str]] = {}
    explicit: set[tuple[str, ...]] = set()
    targets: set[str] = set()
    phrases: dict[str, list[str]] = {}
    for name, spec in raw["intents"].items():
        not_after = frozenset(_strings(spec.get("not_after", []), f"{name}.not_after"))
        not_before = frozenset(_strings(spec.get("not_before", []), f"{name}.not_before"))
        at_start = bool(spec.get("at_start", False))
        for weak, key in ((False, "phrases"), (True, "weak")):
            for phrase in _strings(spec.get(key, []), f"{name}.{key}"):
                targets.update(words(phrase))
                phrases.setdefault(name, []).append(phrase)
                triggers.append(
                    Trigger(name, _stems(phrase), weak, not_after, not_before, at_start)
                )
        if "unless" in spec:
            unless[name] = frozenset(stem(w) for w in _strings(spec["unless"], name))
        explicit.update(_stems(p) for p in _strings(spec.get("explicit", []), name))
    when = [
        Trigger(slot, _stems(phrase))
        for slot, phrases in raw["when"].items()
        for phrase in _strings(phrases, f"when.{slot}")
    ]
    lexicon = load_lexicon()
    lists = {
        key: frozenset(w for item in _strings(raw[key], key) for w in words(item))
        for key in (
            "clause_breaks",
            "question_starts",
            "known_words",
            "generic",
            "filler",
            "lead_words",
            "visit_words",
            "unquoted",
        )
    }
    languages = {
        key: frozenset(_strings(raw["language"][key], f"language.{key}"))
        for key in ("spanish", "english")
    }
    for source in rewrites:
        targets.update(source)  # a misspelt "sabdo" still reaches "sabado" → "saturday"
    for phrase in raw["when"].values():
        targets.update(w for item in phrase for w in words(item))
    targets.update(w for members in raw_lexicon_members() for w in words(members))
    targets -= lexicon.stop_words
    protected = set(targets) | lexicon.stop_words | NOT_NAME_WORDS
    for target in rewrites.values():
        protected.update(target)
    for group in lists.values():
        protected.update(group)
    return IntentRules(
        rewrites=rewrites,
        rewrite_longest=max((len(k) for k in rewrites), default=1),
        spanish=languages["spanish"],
        english=languages["english"],
        clause_breaks=lists["clause_breaks"],
        question_starts=lists["question_starts"],
        known_words=lists["known_words"],
        generic=lists["generic"],
        filler=lists["filler"],
        lead_words=lists["lead_words"],
        visit_words=lists["visit_words"],
        unquoted=lists["unquoted"],
        triggers=_index(triggers),
        when=_index(when),
        unless=unless,
        explicit_offer=frozenset(explicit),
        faq_aspects=frozenset(_strings(raw["faq_aspects"], "faq_aspects")),
        targets=frozenset(targets),
        protected=frozenset(protected),
        phrases={k: tuple(v) for k, v in phrases.items()},
    )


# --- typo repair -----------------------------------------------------------------------


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit), capped."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) >= limit:
            return limit
        previous2, previous = previous, current
    return min(previous[-1], limit)


class Speller:
    """Repairs one-edit typos into `targets` (symmetric-delete look-up); words in
    `targets` or `protected` are taken as spelled. A `base` speller (the platform's
    vocabulary, built once) is consulted too, so a bot only indexes its own words."""

    def __init__(
        self, targets: Iterable[str], protected: Iterable[str] = (), base: Speller | None = None
    ) -> None:
        wanted = frozenset(w for w in targets if w.isalpha())
        self.targets = frozenset(w for w in wanted if len(w) >= TARGET_MIN_LENGTH)
        self._parts = wanted  # halves of a split may be short ("blow" + "dry")
        self.known = wanted | frozenset(protected)
        self.known_stems = frozenset(stem(w) for w in self.known)
        self._base = base
        deletes: dict[str, list[str]] = {}
        for word in sorted(self.targets):
            for variant in _deletes(word) | {word}:
                deletes.setdefault(variant, []).append(word)
        self._deletes = deletes

    def is_known(self, word: str) -> bool:
        if word in self.known or stem(word) in self.known_stems:
            return True
        return self._base is not None and self._base.is_known(word)

    def _candidates(self, word: str, variants: set[str]) -> set[str]:
        found: set[str] = set(self._deletes.get(word, ()))  # a letter left out
        for variant in variants:
            if variant in self.targets:  # a letter too many
                found.add(variant)
            found.update(self._deletes.get(variant, ()))  # substituted or swapped
        if self._base is not None:
            found |= self._base._candidates(word, variants)
        return found

    def _is_part(self, word: str) -> bool:
        if word in self._parts or stem(word) in self._parts:
            return True
        return self._base is not None and self._base._is_part(word)

    def repair(self, word: str) -> tuple[str, ...]:
        """`word` as the vocabulary spells it: itself, one repaired word, or two words."""
        if len(word) < REPAIR_MIN_LENGTH or not word.isalpha() or self.is_known(word):
            return (word,)
        candidates = self._candidates(word, _deletes(word))
        found = [c for c in candidates if edit_distance(word, c) == 1]
        if found:
            # Prefer the same first letter and length (typos rarely touch the first
            # letter), then the alphabet, so the choice is stable.
            found.sort(key=lambda c: (c[0] != word[0], abs(len(c) - len(word)), c))
            return (found[0],)
        if len(word) >= SPLIT_MIN_LENGTH:
            for cut in range(3, len(word) - 2):
                left, right = word[:cut], word[cut:]
                if self._is_part(left) and self._is_part(right):
                    return (left, right)
        return (word,)


@cache
def platform_speller() -> Speller:
    """The rules' and the FAQ lexicon's vocabulary, indexed once per process."""
    rules = load_intent_rules()
    return Speller(rules.targets, rules.protected)


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One message, read: words after repair and rewriting, with what they ask."""

    words: tuple[str, ...]
    stems: tuple[str, ...]
    hits: tuple[Hit, ...]
    when: tuple[Hit, ...]
    clauses: tuple[tuple[int, int], ...]
    language: str  # "en" or "es"
    is_question: bool
    _intents: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def has(self, intent: str, *, strong: bool = False) -> bool:
        if not strong:
            return intent in self._intents
        return any(h.label == intent and not h.weak for h in self.hits)

    def intent_hits(self, intent: str) -> list[Hit]:
        return [h for h in self.hits if h.label == intent]

    def clause_of(self, index: int) -> int:
        for number, (start, end) in enumerate(self.clauses):
            if start <= index < end:
                return number
        return len(self.clauses) - 1

    def clause_text(self, number: int) -> str:
        start, end = self.clauses[number]
        return " ".join(self.words[start:end])

    def slots(self) -> list[str]:
        """Day and moment slots in message order, each once."""
        seen: list[str] = []
        for hit in sorted(self.when, key=lambda h: h.start):
            if hit.label not in seen:
                seen.append(hit.label)
        return seen


def _find(
    stems: Sequence[str],
    raw: Sequence[str],
    index: Mapping[str, tuple[Trigger, ...]],
    openings: frozenset[int] = frozenset(),
) -> list[Hit]:
    """Every trigger of `index` in the message; an `at_start` one only where a clause
    opens (`openings`: the first position of each clause, after any lead words)."""
    hits: list[Hit] = []
    for start, first in enumerate(stems):
        for trigger in index.get(first, ()):
            end = start + len(trigger.stems)
            if tuple(stems[start:end]) != trigger.stems:
                continue
            if trigger.at_start and start not in openings:
                continue
            if start > 0 and raw[start - 1] in trigger.not_after:
                continue
            if end < len(raw) and raw[end] in trigger.not_before:
                continue
            hits.append(Hit(trigger.label, start, end, trigger.weak))
    return hits


class Reader:
    """Reads messages for one bot: the platform rules plus the bot's own words."""

    def __init__(self, bot_words: Iterable[str] = ()) -> None:
        self.rules = load_intent_rules()
        base = platform_speller()
        own = frozenset(bot_words) - load_lexicon().stop_words - base.targets
        self.speller = Speller(own, base=base)

    def _rewrite(self, raw: list[str]) -> list[str]:
        rules = self.rules
        out: list[str] = []
        i = 0
        while i < len(raw):
            for size in range(min(rules.rewrite_longest, len(raw) - i), 0, -1):
                target = rules.rewrites.get(tuple(raw[i : i + size]))
                if target is not None:
                    out.extend(target)
                    i += size
                    break
            else:
                out.append(raw[i])
                i += 1
        return out

    def _language(self, typed: Sequence[str]) -> str:
        spanish = sum(1 for w in typed if w in self.rules.spanish)
        english = sum(1 for w in typed if w in self.rules.english)
        return "es" if spanish > english else "en"

    def read(self, message: str) -> Reading:
        rules = self.rules
        all_words: list[str] = []
        typed: list[str] = []
        clauses: list[tuple[int, int]] = []
        question = "?" in message or "¿" in message
        for piece in _CLAUSE_PUNCTUATION.split(message):
            raw = words(piece)
            if not raw:
                continue
            typed.extend(raw)
            fixed: list[str] = []
            for word in raw:
                fixed.extend(self.speller.repair(word))
            rewritten = self._rewrite(fixed)
            start = len(all_words)
            for word in rewritten:
                if word in rules.clause_breaks and len(all_words) > start:
                    clauses.append((start, len(all_words)))
                    start = len(all_words) + 1
                all_words.append(word)
            if len(all_words) > start:
                clauses.append((start, len(all_words)))
        for start, _end in clauses:
            if all_words[start] in rules.question_starts:
                question = True
        stems = tuple(stem(w) for w in all_words)
        openings = set()
        for start, end in clauses:
            while start < end - 1 and all_words[start] in rules.lead_words:
                start += 1
            openings.add(start)
        hits = _find(stems, all_words, rules.triggers, frozenset(openings))
        # "unless" words cancel a trigger in their own clause only: "where can I park"
        # is about parking, "where are you, and is there parking?" asks both.
        kept = []
        for hit in hits:
            start, end = next((c for c in clauses if c[0] <= hit.start < c[1]), (0, 0))
            if not rules.unless.get(hit.label, frozenset()) & set(stems[start:end]):
                kept.append(hit)
        hits = kept
        when = _find(stems, all_words, rules.when)
        return Reading(
            words=tuple(all_words),
            stems=stems,
            hits=tuple(hits),
            when=tuple(when),
            clauses=tuple(clauses) or ((0, 0),),
            language=self._language(typed),
            is_question=question,
            _intents=frozenset(h.label for h in hits),
        )
