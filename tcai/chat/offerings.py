"""What a business offers, as a visitor names it: services and priced catalogue items.

Owns matching a visitor's words to the bot's services (`BotConfig.services`, name and
description) and catalogue items (`Template.catalog`, with prices), and saying a price
("$30", "from $140"). A visitor's thing is *covered* when every word of it appears in one
offering's name or description (after `root`, a stronger stemming than the FAQ's, so
"whitened" meets "Whitening" and "rotate" meets "rotation"); words every offering name
shares ("law" at a law firm) and asking verbs ("do", "fix") say nothing about which one.

Deliberately not here: deciding whether the message asks about an offering (intents) or
how the reply is worded (`tcai.chat.facts`). Nothing here invents a price: only catalogue
items carry one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tcai.bots.config import BotConfig
from tcai.chat.faq import load_lexicon, stem
from tcai.text.normalise import words

# Roots shorter than this keep their suffix (so "station" stays "station").
_MIN_ROOT = 4


def root(word: str) -> str:
    """A matching root: plural and -ing/-ed off, then -ation/-ion/-ate, so "rotation",
    "rotate" and "rotating" all read "rot"; "cleanings" and "clean" read "clean"."""
    base = stem(stem(word))
    for suffix in ("ation", "ion", "at"):
        if base.endswith(suffix) and len(base) - len(suffix) >= _MIN_ROOT:
            base = base[: -len(suffix)]
            break
    return base


def _join_letters(raw: Sequence[str]) -> list[str]:
    """Runs of single letters are one word: "A/C" → "a c" → "ac"."""
    out: list[str] = []
    run = ""
    for word in raw:
        if len(word) == 1 and word.isalpha():
            run += word
            continue
        if run:
            out.append(run)
            run = ""
        out.append(word)
    if run:
        out.append(run)
    return out


def content_words(text: str, stop: frozenset[str]) -> list[str]:
    """The words of `text` that can name something (stop words and numbers left out;
    a stop word is judged as typed, so "wills" stays while "will" goes)."""
    return [
        w for w in _join_letters(words(text)) if len(w) >= 2 and not w.isdigit() and w not in stop
    ]


def say_price(cents: int, price_from: bool = False, language: str = "en") -> str:
    amount = f"${cents / 100:,.0f}" if cents % 100 == 0 else f"${cents / 100:,.2f}"
    if not price_from:
        return amount
    return f"desde {amount}" if language == "es" else f"from {amount}"


@dataclass(frozen=True)
class Offering:
    name: str
    description: str | None
    price_cents: int | None
    price_from: bool
    duration_minutes: int | None
    name_roots: frozenset[str]
    cover_roots: frozenset[str]  # name and description
    concepts: frozenset[str]  # lexicon concepts of the name's words

    @property
    def priced(self) -> bool:
        return self.price_cents is not None

    def price(self, language: str = "en") -> str | None:
        if self.price_cents is None:
            return None
        return say_price(self.price_cents, self.price_from, language)


@dataclass(frozen=True)
class Term:
    """One content word of the visitor's message."""

    word: str  # as the visitor wrote it (after typo repair)
    root: str
    concepts: frozenset[str]
    position: int


@dataclass(frozen=True)
class OfferMatch:
    offerings: tuple[Offering, ...]  # best first
    terms: tuple[Term, ...]  # the visitor's thing (generic words left out)
    uncovered: tuple[Term, ...]
    generic_only: bool  # the visitor named only words every offering shares ("nails")

    @property
    def full(self) -> bool:
        return bool(self.offerings) and not self.uncovered

    @property
    def mostly(self) -> bool:
        """Everything covered, or all but one word of three or more."""
        return bool(self.offerings) and (
            not self.uncovered or (len(self.terms) >= 3 and len(self.uncovered) == 1)
        )

    def phrase(self, terms: Iterable[Term] | None = None) -> str:
        chosen = sorted(terms if terms is not None else self.terms, key=lambda t: t.position)
        return " ".join(t.word for t in chosen)


class Offerings:
    """The bot's services and catalogue items, indexed for matching."""

    def __init__(self, config: BotConfig, stop: frozenset[str], generic: frozenset[str]) -> None:
        self._stop = stop
        self._generic = generic
        lexicon = load_lexicon()
        self._concepts = lexicon.concepts

        def make(
            name: str,
            description: str | None,
            cents: int | None = None,
            price_from: bool = False,
            minutes: int | None = None,
        ) -> Offering:
            name_words = content_words(name, stop)
            described = content_words(description or "", stop)
            return Offering(
                name=name,
                description=description,
                price_cents=cents,
                price_from=price_from,
                duration_minutes=minutes,
                name_roots=frozenset(root(w) for w in name_words),
                cover_roots=frozenset(root(w) for w in [*name_words, *described]),
                concepts=frozenset(c for w in name_words for c in self._concepts.get(stem(w), ())),
            )

        self.services = tuple(make(s.name, s.description) for s in config.services)
        self.catalogue = tuple(
            make(i.name, None, i.price_cents, i.price_from, i.duration_minutes)
            for i in config.template.catalog
        )
        # A root in the names of several offerings, and not a whole name by itself, tells
        # them apart no more than "service" does ("law" at a law firm, "nail" at a salon).
        counts = Counter(r for o in self.services for r in o.name_roots)
        whole_names = {next(iter(o.name_roots)) for o in self.services if len(o.name_roots) == 1}
        self.shared_roots = frozenset(
            r for r, n in counts.items() if n >= 2 and r not in whole_names
        )
        self._generic_roots = frozenset(root(w) for w in generic)

    @property
    def all(self) -> tuple[Offering, ...]:
        return (*self.services, *self.catalogue)

    def terms(self, message_words: Sequence[str], skip: frozenset[int] = frozenset()) -> list[Term]:
        """The content words of a message (positions in `skip` left out)."""
        terms = []
        for position, word in enumerate(message_words):
            if position in skip or len(word) < 2 or word.isdigit() or word in self._stop:
                continue
            concepts = frozenset(self._concepts.get(stem(word), ()))
            terms.append(Term(word, root(word), concepts, position))
        return terms

    def match(self, terms: Sequence[Term], *, catalogue: bool = False) -> OfferMatch:
        """Which offerings the visitor's `terms` name. Generic words are dropped; each
        offering covers the terms its name or description holds; offerings are taken
        greedily, most coverage first, until no term is left that one of them covers."""
        pool = self.catalogue if catalogue else self.services
        shared = [t for t in terms if t.root in self.shared_roots]
        thing = [
            t
            for t in terms
            if t.word not in self._generic
            and t.root not in self._generic_roots
            and t.root not in self.shared_roots
        ]
        chosen: list[Offering] = []
        left = list(thing)
        while left:
            best: tuple[float, Offering] | None = None
            for offering in pool:
                if offering in chosen:
                    continue
                covered = [t for t in left if t.root in offering.cover_roots]
                if not covered:
                    continue
                in_name = sum(1 for t in covered if t.root in offering.name_roots)
                score = len(covered) + 0.5 * in_name
                if best is None or score > best[0]:
                    best = (score, offering)
            if best is None:
                break
            chosen.append(best[1])
            left = [t for t in left if t.root not in best[1].cover_roots]
        if not thing and shared:
            sharing = tuple(o for o in pool if any(t.root in o.name_roots for t in shared))
            return OfferMatch(sharing, tuple(shared), (), generic_only=True)
        return OfferMatch(tuple(chosen), tuple(thing), tuple(left), generic_only=False)

    def priced(self, terms: Sequence[Term]) -> list[Offering]:
        """The catalogue items a price question names, best first: words of the item's
        name count 1, a word of the same concept 0.5 ("cut" for "Haircut"); only the top
        score is kept, so "beard trim" is the Beard Trim & Shape, not the combo."""
        scored: list[tuple[float, int, Offering]] = []
        for order, item in enumerate(self.catalogue):
            score = 0.0
            for term in terms:
                if term.root in item.name_roots:
                    score += 1
                elif term.concepts & item.concepts:
                    score += 0.5
            if score > 0:
                scored.append((score, order, item))
        if not scored:
            return []
        top = max(s for s, _o, _i in scored)
        return [item for score, _order, item in sorted(scored) if score == top]
