"""The facts-mode FAQ matcher: visitors' paraphrases find the right entry, noise finds none."""

from __future__ import annotations

import pytest
import yaml

from tcai.chat.faq import FaqEntry, FaqIndex, analyse, load_lexicon
from tests.helpers import REPO

TEMPLATES = REPO / "templates"

# What the engine builds from the business's own facts in facts mode.
FACTS = [
    FaqEntry(
        "What are your hours?",
        "We're open Monday to Friday 9am to 7pm and Saturday 9am to 5pm; closed Sunday.",
        topic="hours",
    ),
    FaqEntry(
        "Where are you located?",
        "You'll find us at 412 Main Street, Springfield, next to the post office.",
        topic="location",
    ),
    FaqEntry(
        "What's your phone number?",
        "Call or text us at (555) 010-0199.",
        topic="phone",
    ),
    FaqEntry(
        "What services do you offer?",
        "Haircuts, skin fades, beard trims, hot towel shaves and kids' cuts.",
        topic="services",
    ),
    FaqEntry(
        "How do I book an appointment?",
        "Book online at https://example.booksy.com/fadefactory or ask here for a time.",
        topic="booking",
    ),
    FaqEntry(
        "How much does a haircut cost?",
        "Haircuts start at $30, skin fades at $35 and a haircut and beard combo is $45.",
        topic="prices",
    ),
]


def template_faqs(key: str) -> list[FaqEntry]:
    raw = yaml.safe_load((TEMPLATES / f"{key}.yaml").read_text(encoding="utf-8"))
    return [FaqEntry(item["question"], item["answer"]) for item in raw["faqs"]]


@pytest.fixture(scope="module")
def barber() -> FaqIndex:
    return FaqIndex([*template_faqs("barber"), *FACTS])


def by_question(index: FaqIndex, query: str) -> str | None:
    hit = index.best(query)
    return hit.entry.question if hit else None


PARAPHRASES = [
    ("when do you open", "What are your hours?"),
    ("are you open sunday", "What are your hours?"),
    ("what time do you close today?", "What are your hours?"),
    ("Open on weekends?", "What are your hours?"),
    ("where are you located", "Where are you located?"),
    ("where r u", "Where are you located?"),
    ("what's the address", "Where are you located?"),
    ("directions to the shop", "Where are you located?"),
    ("how much for a fade", "How much does a haircut cost?"),
    ("what are your prices", "How much does a haircut cost?"),
    ("¿Cuánto cuesta un corte?", "How much does a haircut cost?"),
    ("do u take walk ins", "Do I need an appointment?"),
    ("can i just walk in?", "Do I need an appointment?"),
    ("can i pay with card", "What forms of payment do you accept?"),
    ("do you take cash", "What forms of payment do you accept?"),
    ("what if i'm late", "What if I'm running late?"),
    ("I'm running 10 minutes behind", "What if I'm running late?"),
    ("can I choose my barber", "Can I request a specific barber?"),
    ("how long does a cut take", "How long does a haircut take?"),
    ("what's your number", "What's your phone number?"),
    ("how can I contact you", "What's your phone number?"),
    ("do you cut children's hair", "Do you cut kids' hair?"),
    ("I need to cancel", "What is your cancellation and no-show policy?"),
    ("can I reschedule my appointment", "What is your cancellation and no-show policy?"),
    ("what do you guys offer", "What services do you offer?"),
    ("how do I make a booking", "How do I book an appointment?"),
    ("can I schedule online", "How do I book an appointment?"),
]


@pytest.mark.parametrize(("query", "question"), PARAPHRASES)
def test_paraphrase_finds_entry(barber: FaqIndex, query: str, question: str) -> None:
    hits = [(h.entry.question, round(h.score, 2)) for h in barber.search(query)]
    assert by_question(barber, query) == question, hits


NEGATIVES = [
    "what is the meaning of life",  # "mean" occurs only inside an answer: not an anchor
    "asdf qwer",
    "asdfgh",
    "tell me a joke",
    "who won the game last night",
    "",
    "!!!",
    "   ",
    "the and of to",
    "my dog ate my homework today",
    "is it going to rain today",
    "what's the capital of France",
]


@pytest.mark.parametrize("query", NEGATIVES)
def test_unrelated_question_finds_nothing(barber: FaqIndex, query: str) -> None:
    assert barber.best(query) is None, barber.search(query)


def test_search_ranks_best_first_and_respects_limit(barber: FaqIndex) -> None:
    hits = barber.search("how much does a haircut cost", limit=2)
    assert len(hits) == 2
    assert hits[0].entry.question == "How much does a haircut cost?"
    assert hits[0].score >= hits[1].score
    assert barber.search("asdf qwer") == []
    assert barber.search("haircut", limit=0) == []


def test_tiny_restaurant_index_still_matches() -> None:
    faqs = {entry.question: entry for entry in template_faqs("restaurant")}
    index = FaqIndex(
        [faqs["Do you take reservations?"], faqs["Is there parking?"], faqs["Can I see the menu?"]]
    )
    assert by_question(index, "can I reserve a table for 4") == "Do you take reservations?"
    assert by_question(index, "do I need to book ahead") == "Do you take reservations?"
    assert by_question(index, "where can I park") == "Is there parking?"
    assert by_question(index, "do you have vegan dishes") == "Can I see the menu?"
    assert index.best("what is the meaning of life") is None
    assert index.best("asdfgh") is None


def test_tie_goes_to_the_entry_listed_first() -> None:
    first = FaqEntry("What are your hours?", "9 to 5, Monday to Friday.")
    second = FaqEntry("What are your hours?", "9 to 5, Monday to Friday.")
    hit = FaqIndex([first, second, FACTS[2]]).best("when are you open")
    assert hit is not None
    assert hit.entry is first
    flipped = FaqIndex([second, first, FACTS[2]]).best("when are you open")
    assert flipped is not None
    assert flipped.entry is second


def test_topic_tag_counts_like_the_question() -> None:
    tagged = FaqEntry("Visiting us", "Come by whenever suits you.", topic="hours")
    index = FaqIndex(
        [
            FaqEntry("Is there parking?", "Yes, out back."),
            FaqEntry("Do you sell gift cards?", "Yes, at the front desk."),
            tagged,
        ]
    )
    hit = index.best("when do you open")
    assert hit is not None
    assert hit.entry is tagged


def test_empty_index_finds_nothing() -> None:
    index = FaqIndex([])
    assert index.best("what are your hours") is None
    assert index.search("what are your hours") == []


def test_lexicon_has_no_word_in_both_lists() -> None:
    lexicon = load_lexicon()
    assert not set(lexicon.concepts) & lexicon.stop_words


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("When do you open?", "What are your hours?"),
        ("do u take walk ins", "Do you take walk-ins?"),
        ("WHERE'S the location", "where is your address"),
    ],
)
def test_paraphrases_share_a_concept(left: str, right: str) -> None:
    concepts = {t for t in analyse(left) if t.startswith("@")}
    assert concepts & set(analyse(right))
