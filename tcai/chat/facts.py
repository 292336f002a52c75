"""Facts mode: the answer built from the business's own facts, without the LLM.

Used when no LLM is configured, and as the failsafe when it fails or runs out of time
(docs/facts-mode.md). `FactsBook` is built once per bot config version (it is part of
the compiled bot) and answers one visitor message at a time; it never mentions a
provider, a model or an error, and it never says more than the business's facts:
no invented hours, prices, addresses or services.

How an answer is put together (each step is data-driven; see docs/facts-mode.md):
1. `tcai.chat.intents` reads the message: repaired words, clauses, intents (greeting,
   urgent, hours, location, parking, phone, price, services, "do you offer X"), named
   days, language;
2. each intent found is answered from the facts: hours from `BusinessFacts.hours` at
   `now` (`tcai.chat.hours`), prices and "do you offer X" from the services and catalogue
   (`tcai.chat.offerings`), everything else from the FAQs (`tcai.chat.faq`), filtered so
   an FAQ about another topic never answers ("beard trims?" is not "How long does a
   haircut take?");
3. clauses no intent explains are matched against the FAQs on their own, so two questions
   in one message get two answers, in the order asked;
4. the visitor's name and number (given in this message) are acknowledged first; the
   booking decision the pipeline made is added last; with nothing matched, the generic
   "our team can help" reply (`matched=False`).
Canned sentences are `texts` in `tcai/data/chat_rules.yaml`, in English and Spanish.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tcai.bots.config import BotConfig
from tcai.chat.booking import BookingDecision, decide_booking
from tcai.chat.faq import CONCEPT_PREFIX, FaqEntry, FaqHit, FaqIndex, analyse_units, load_lexicon
from tcai.chat.hours import DAY_NAMES, Week, say_spans, say_time
from tcai.chat.intents import Hit, Reader, Reading, load_intent_rules
from tcai.chat.offerings import Offering, Offerings, OfferMatch, Term, content_words, root
from tcai.chat.rules import ChatRules, load_rules
from tcai.text.contacts import Contacts, display_phone
from tcai.text.normalise import join_sentences, words

_WEEKDAY_SLOTS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FACT_INTENTS = ("urgent", "hours", "location", "parking", "phone", "price", "services", "offer")
_BOOKING_CONCEPT = CONCEPT_PREFIX + "booking"
# At most this many answers in one reply: enough for "hours and address", short enough
# to read in a chat bubble.
MAX_PARTS = 3


@dataclass(frozen=True)
class FactsAnswer:
    text: str
    matched: bool
    """True when a fact or FAQ answered the question (message source "faq"); False for
    the generic "our team can help" reply (source "failsafe")."""
    intents: tuple[str, ...] = ()
    """What answered, in reply order ("hours", "faq", "greeting", ...): for tests and the
    evaluation; the visitor never sees it."""


def _and(items: Sequence[str], language: str = "en") -> str:
    """ "a", "a and b", "a, b and c" ("y" in Spanish)."""
    joiner = " y " if language == "es" else " and "
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + joiner + items[-1]


@dataclass(frozen=True)
class _Faq:
    """One FAQ entry, analysed once for the topic filters."""

    entry: FaqEntry
    question_units: tuple[tuple[str, ...], ...]
    question_terms: frozenset[str]
    question_roots: frozenset[str]
    all_roots: frozenset[str]
    all_terms: frozenset[str]

    def asks(self, concept: str) -> bool:
        return CONCEPT_PREFIX + concept in self.question_terms


@dataclass
class _Turn:
    """One message being answered."""

    reading: Reading
    now: datetime
    decision: BookingDecision | None
    parts: list[tuple[int, str, str]] = field(default_factory=list)  # position, intent, text
    explained: set[int] = field(default_factory=set)  # clause numbers answered
    used_faqs: set[int] = field(default_factory=set)

    @property
    def language(self) -> str:
        return self.reading.language

    def add(self, position: int, intent: str, text: str, clauses: Iterable[int] = ()) -> None:
        if text and all(text != existing for _p, _i, existing in self.parts):
            self.parts.append((position, intent, text))
        self.explained.update(clauses)


class FactsBook:
    """One bot config's facts, indexed for answering."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.rules = load_intent_rules()
        lexicon = load_lexicon()
        business = config.business
        entries = [FaqEntry(f.question, f.answer) for f in config.faqs]
        self.faq = FaqIndex(entries)
        self._faqs = tuple(self._analyse_faq(e) for e in entries)
        self._faq_df = Counter(r for faq in self._faqs for r in faq.all_roots)
        # The business's own kind ("Dental Office", "Pet Grooming") names no one service:
        # "dental implants" is about implants.
        domain = frozenset(words(config.template.business.type))
        self.offerings = Offerings(config, lexicon.stop_words, self.rules.generic | domain)
        self.week = Week.of(business)
        self.phone = display_phone(business.phone)
        # Typos are repaired into the words visitors ask with: FAQ questions and the
        # names and descriptions of what the business offers (not every word of every
        # answer, which would turn real words into others).
        bot_text = [business.name, *(e.question for e in entries)]
        bot_text += [f"{s.name} {s.description}" for s in config.services]
        bot_text += [item.name for item in config.template.catalog]
        self.reader = Reader(w for text in bot_text for w in words(text))
        self._link = decide_booking(config)
        self._stop = lexicon.stop_words
        # Words that only say "price" or "service": a question made of nothing else is
        # about prices in general.
        self._price_roots = frozenset(
            root(w)
            for phrase in (*self.rules.intent_phrases("price"), *self.rules.generic)
            for w in words(phrase)
        )

    @staticmethod
    def _analyse_faq(entry: FaqEntry) -> _Faq:
        units = tuple(analyse_units(entry.question))
        stop = load_lexicon().stop_words
        question_roots = frozenset(root(w) for w in content_words(entry.question, stop))
        answer_roots = frozenset(root(w) for w in content_words(entry.answer, stop))
        answer_terms = frozenset(t for u in analyse_units(entry.answer) for t in u)
        question_terms = frozenset(t for u in units for t in u)
        return _Faq(
            entry=entry,
            question_units=units,
            question_terms=question_terms,
            question_roots=question_roots,
            all_roots=question_roots | answer_roots,
            all_terms=question_terms | answer_terms,
        )

    # --- the reply -----------------------------------------------------------------------

    def answer(
        self,
        message: str,
        *,
        now: datetime,
        decision: BookingDecision | None = None,
        ask_contact: bool = False,
        known_phone: bool = False,
        contacts: Contacts | None = None,
    ) -> FactsAnswer:
        """The reply to `message` at `now` (UTC). `decision` is the booking handling
        already decided for this message; `ask_contact` asks for name and phone;
        `known_phone` says the visitor's number is already known; `contacts` are the
        details this very message gave."""
        turn = _Turn(self.reader.read(message), now, decision)
        given = contacts or Contacts()
        self._facts(turn)
        parts = [text for _pos, _intent, text in sorted(turn.parts, key=lambda p: p[0])]
        intents = [intent for _pos, intent, _text in sorted(turn.parts, key=lambda p: p[0])]
        parts, intents = parts[:MAX_PARTS], intents[:MAX_PARTS]
        ack = self._acknowledge(turn, given)
        if not parts and decision is None:
            social = self._social(turn, given)
            if social:
                return FactsAnswer(join_sentences(*social), True, ("greeting",))
            if ack:
                return FactsAnswer(
                    join_sentences(ack, self._say(turn, "contact_only")), True, ("contact",)
                )
        if decision is not None:
            booking = self._booking(turn, decision, known_phone)
            return FactsAnswer(
                join_sentences(ack, *parts, booking), bool(parts), (*intents, "booking")
            )
        if parts:
            ask = ""
            if ask_contact:
                ask = self._say(turn, "ask_phone" if given.name else "contact_ask")
            return FactsAnswer(join_sentences(ack, *parts, ask), True, tuple(intents))
        return FactsAnswer(join_sentences(ack, self._fallback(turn, known_phone)), False)

    def _say(self, turn: _Turn, key: str, **values: str | None) -> str:
        rules = load_rules()
        if turn.language == "es" and f"{key}_es" in rules.texts:
            key = f"{key}_es"
        return rules.say(key, **values)

    def _booking(self, turn: _Turn, decision: BookingDecision, known_phone: bool) -> str:
        rules: ChatRules = load_rules()
        if decision.handling == "external" and decision.url:
            return rules.say("booking_redirect", url=decision.url)
        ask = "" if known_phone else rules.say("ask_name_phone")
        return join_sentences(rules.say("booking_requested"), ask)

    def _fallback(self, turn: _Turn, known_phone: bool) -> str:
        link = self._link
        return join_sentences(
            self._say(turn, "fallback"),
            "" if known_phone else self._say(turn, "fallback_ask"),
            self._say(turn, "fallback_call", phone=self.phone),
            self._say(turn, "fallback_book", url=link.url if link.handling == "external" else None),
        )

    def _acknowledge(self, turn: _Turn, given: Contacts) -> str:
        contact = display_phone(given.phone) if given.phone else None
        if given.email:
            contact = _and([c for c in (contact, given.email) if c], turn.language)
        first = given.name.split()[0] if given.name else None
        if first and contact:
            return self._say(turn, "ack_name_contact", visitor=first, contact=contact)
        if contact:
            return self._say(turn, "ack_contact", contact=contact)
        if first and not self._greeting_only(turn, given):
            return self._say(turn, "ack_name", visitor=first)
        return ""

    # --- social: greetings and thanks ----------------------------------------------------

    def _greeting_only(self, turn: _Turn, given: Contacts) -> bool:
        """The message only greets (maybe with the visitor's name): nothing else to answer."""
        r = turn.reading
        if not r.has("greeting"):
            return False
        return not self._leftover(r, given, ("greeting",))

    def _leftover(self, r: Reading, given: Contacts, intents: Sequence[str]) -> list[str]:
        covered = {i for h in r.hits if h.label in intents for i in range(h.start, h.end)}
        name = set(words(given.name or ""))
        return [
            w
            for i, w in enumerate(r.words)
            if i not in covered
            and w not in self._stop
            and w not in self.rules.filler
            and w not in name
            and not w.isdigit()
        ]

    def _social(self, turn: _Turn, given: Contacts) -> list[str]:
        r = turn.reading
        first = given.name.split()[0] if given.name else None
        ack = ""
        if given.phone or given.email:
            ack = self._acknowledge(turn, given)
        if r.has("greeting") and not self._leftover(r, given, ("greeting", "thanks")):
            name = self.config.business.name
            if first and not ack:
                return [self._say(turn, "greeting_named", visitor=first, name=name)]
            return [ack, self._say(turn, "greeting", name=name)]
        if r.has("thanks") and not self._leftover(r, given, ("greeting", "thanks")):
            return [ack, self._say(turn, "thanks_reply")]
        return []

    # --- facts ---------------------------------------------------------------------------

    def _facts(self, turn: _Turn) -> None:
        r = turn.reading
        if r.has("urgent"):
            self._urgent(turn)
        if r.has("hours") or self._named_days_only(r):
            self._hours(turn)
        if r.has("parking"):
            self._parking(turn)
        if r.has("location"):
            self._location(turn)
        if r.has("phone"):
            self._phone(turn)
        if r.has("price"):
            self._price(turn)
        if r.has("services"):
            self._services(turn)
        if r.has("offer"):
            self._offer(turn)
        self._faq_clauses(turn)
        if not turn.parts:
            self._mentioned(turn)

    def _clauses(self, hits: Iterable[Hit], r: Reading, *, context: bool = False) -> list[int]:
        """The clauses an intent's triggers stand in, each extended over the following
        clauses that hold no trigger at all ("how much is the haircut and beard combo")
        and, with `context`, over such clauses before it ("I was in a car accident, do
        you handle that?")."""
        triggered = {r.clause_of(h.start) for h in r.hits}
        questions = {
            n
            for n, (start, end) in enumerate(r.clauses)
            if end > start and r.words[start] in self.rules.question_starts
        }
        out: list[int] = []
        for hit in hits:
            number = r.clause_of(hit.start)
            before = number - 1
            while context and before >= 0 and before not in triggered | questions:
                out.append(before)
                before -= 1
            while number < len(r.clauses):
                if number not in out:
                    out.append(number)
                number += 1
                if number in triggered or number in questions:
                    break
        return sorted(set(out))

    def _scope_terms(self, turn: _Turn, intent: str) -> tuple[list[Term], list[int]]:
        r = turn.reading
        clauses = self._clauses(r.intent_hits(intent), r, context=intent == "offer")
        positions = {i for c in clauses for i in range(*r.clauses[c])}
        skip = {i for h in (*r.hits, *r.when) for i in range(h.start, h.end)}
        terms = self.offerings.terms(
            r.words, frozenset(skip | (set(range(len(r.words))) - positions))
        )
        return terms, clauses

    def _scope_text(self, turn: _Turn, clauses: Sequence[int]) -> str:
        r = turn.reading
        return " ".join(r.words[i] for c in clauses for i in range(*r.clauses[c]))

    def _named_days_only(self, r: Reading) -> bool:
        """A day named with nothing else asked ("can I come in on a Sunday?"): every
        other word is a stop word or a visiting word ("what's the weather like
        tomorrow" is not about our hours)."""
        named = [
            h for h in r.when if h.label in _WEEKDAY_SLOTS or h.label in ("tomorrow", "weekend")
        ]
        if not named or any(r.has(i) for i in _FACT_INTENTS if i != "offer"):
            return False
        days = {i for h in named for i in range(h.start, h.end)}
        return all(
            i in days or w in self._stop or w in self.rules.visit_words
            for i, w in enumerate(r.words)
        )

    # FAQ matching -------------------------------------------------------------------------

    def _faq_hits(self, turn: _Turn, query: str) -> list[tuple[FaqHit, _Faq]]:
        """Confident FAQ hits for `query` that really answer it (topic filter)."""
        units = analyse_units(query)
        terms = {t for u in units for t in u}
        roots = {root(w) for w in content_words(query, self._stop)}
        out = []
        for hit in self.faq.confident(query, limit=4):
            faq = self._faqs[hit.index]
            if self._answers(faq, units, terms, roots, turn):
                out.append((hit, faq))
        # The question is what an FAQ is about: among confident hits, the one whose
        # question holds more of the message comes first, even when another's longer
        # answer repeats the message's words more often.
        return sorted(
            out, key=lambda h: -sum(1 for u in h[1].question_units if terms.intersection(u))
        )

    def _answers(
        self,
        faq: _Faq,
        units: Sequence[tuple[str, ...]],
        terms: set[str],
        roots: set[str],
        turn: _Turn,
    ) -> bool:
        """Whether a confident FAQ hit really answers the message (docs/facts-mode.md):
        an FAQ whose question asks about an aspect (duration, price, hours, ...) needs the
        message to ask about it too, or to share more than half of the question; a
        question met only through a broad concept on a small part is about something
        else; next to a booking, only a question besides booking gets an FAQ."""
        aspects = self.rules.faq_aspects
        asked = [u for u in faq.question_units if any(t[1:] in aspects for t in u if t[0] == "@")]
        matched = [u for u in faq.question_units if terms.intersection(u)]
        aspect_met = any(terms.intersection(u) for u in asked)
        if asked and not aspect_met and 2 * len(matched) <= len(faq.question_units):
            return False
        # A question that meets the message only through a broad concept, on less than
        # half of either side, is about something else ("can I book a fade for
        # saturday?" is not "Do you cut kids' hair?"). A shared word is real evidence,
        # and an FAQ matched through its answer alone stays (walk-ins are explained
        # under "Do I need an appointment?").
        held = [u for u in units if faq.question_terms.intersection(u)]
        partial = 2 * len(matched) < len(faq.question_units) and 2 * len(held) < len(units)
        shared_aspect = any(t[1:] in aspects for t in terms & faq.question_terms if t[0] == "@")
        if matched and partial and not (faq.question_roots & roots) and not shared_aspect:
            return False
        if turn.decision is not None:
            # With a booking under way, an FAQ about an aspect ("How long does an oil
            # change take?") is added only when that aspect was asked.
            if asked and not aspect_met:
                return False
            # The booking reply covers "I'd like to book": an FAQ adds to it only when the
            # visitor asked something besides booking, or asked exactly that FAQ ("do I
            # need an appointment?").
            if not turn.reading.is_question:
                return False
            exact = len(matched) == len(faq.question_units) and len(held) == len(units)
            if not (terms & faq.all_terms) - {_BOOKING_CONCEPT} and not exact:
                return False
        return True

    def _use_faq(
        self, turn: _Turn, hit: FaqHit, position: int, clauses: Iterable[int] = ()
    ) -> None:
        if hit.index in turn.used_faqs:
            turn.explained.update(clauses)
            return
        turn.used_faqs.add(hit.index)
        turn.add(position, "faq", hit.entry.answer, clauses)

    def _topic_faq(self, turn: _Turn, concept: str, query: str) -> FaqHit | None:
        """The best FAQ whose question asks about `concept`: a confident one for `query`,
        else the first such FAQ."""
        for hit, faq in self._faq_hits(turn, query):
            if faq.asks(concept):
                return hit
        for index, faq in enumerate(self._faqs):
            if faq.asks(concept):
                return FaqHit(faq.entry, 0.0, index)
        return None

    def _faq_clauses(self, turn: _Turn) -> None:
        """FAQ answers for the message (when no fact answered it) and for each question
        clause no fact explained."""
        r = turn.reading
        if not turn.parts and not turn.explained:
            hits = self._faq_hits(turn, r.text)
            if hits:
                self._use_faq(turn, hits[0][0], 0)
                first = hits[0][1]
                for number in range(len(r.clauses)):
                    clause_hits = self._faq_hits(turn, r.clause_text(number))
                    if clause_hits and clause_hits[0][1] is first:
                        turn.explained.add(number)
        if len(r.clauses) < 2 and turn.parts:
            return
        for number, (start, end) in enumerate(r.clauses):
            if number in turn.explained or end <= start:
                continue
            if len(r.clauses) > 1 and r.words[start] not in self.rules.question_starts:
                continue
            hits = self._faq_hits(turn, r.clause_text(number))
            if hits:
                self._use_faq(turn, hits[0][0], start, (number,))

    # Intents ------------------------------------------------------------------------------

    def _weak_yields(self, turn: _Turn, intent: str) -> bool:
        """A weak trigger ("what time ...") gives way to an FAQ on another topic that
        answers the same clause ("what time is check-in?")."""
        r = turn.reading
        if r.has(intent, strong=True):
            return False
        for number in self._clauses(r.intent_hits(intent), r):
            for _hit, faq in self._faq_hits(turn, r.clause_text(number)):
                if not faq.asks(intent):
                    return True
        return False

    def _urgent(self, turn: _Turn) -> None:
        r = turn.reading
        hits = r.intent_hits("urgent")
        clauses = self._clauses(hits, r)
        faq = self._topic_faq(turn, "emergency", r.text)
        text = faq.entry.answer if faq else self._say(turn, "urgent_help")
        if faq is not None:
            turn.used_faqs.add(faq.index)
        if self.phone:
            call = self._say(turn, "urgent_call", phone=self.phone)
        else:
            call = self._say(turn, "urgent_ask")
        # The urgent answer leads: whatever else was asked comes after it.
        turn.add(
            -1,
            "urgent",
            join_sentences(call, text) if self.phone else join_sentences(text, call),
            clauses,
        )

    def _hours(self, turn: _Turn) -> None:
        r = turn.reading
        if r.has("hours") and self._weak_yields(turn, "hours"):
            return
        hits = r.intent_hits("hours") or [h for h in r.when if h.label != "now"]
        clauses = self._clauses(hits, r)
        position = min((h.start for h in hits), default=0)
        if self.week is None:
            text = self._say(turn, "hours_unknown", phone=self.phone) or self._say(
                turn, "hours_unknown_ask"
            )
            faq = self._topic_faq(turn, "hours", r.text)
            if faq is not None and faq.index not in turn.used_faqs:
                turn.used_faqs.add(faq.index)
                text = join_sentences(faq.entry.answer, text)
            turn.add(position, "hours", text, clauses)
            return
        turn.add(position, "hours", self._hours_text(turn), clauses)

    def _hours_text(self, turn: _Turn) -> str:
        week = self.week
        assert week is not None
        r, lang = turn.reading, turn.language
        local = week.local(turn.now)
        today = local.weekday()
        slots = r.slots()
        days: list[int] = []
        for slot in slots:
            if slot in _WEEKDAY_SLOTS:
                days.append(_WEEKDAY_SLOTS.index(slot))
            elif slot == "tomorrow":
                days.append((today + 1) % 7)
            elif slot == "weekend":
                days += [5, 6]
            elif slot == "today":
                days.append(today)
        days = list(dict.fromkeys(days))[:3]
        if days:
            alone = len(days) == 1
            return join_sentences(*(self._day_text(turn, d, next_open=alone) for d in days))
        if "week" in slots:
            return self._say(turn, "hours_week", hours=week.summary(lang))
        if "now" in slots:
            return self._now_text(turn)
        if "soon" in slots:
            return self._day_text(turn, today)
        return self._say(turn, "hours_week", hours=week.summary(lang))

    def _day_text(self, turn: _Turn, weekday: int, *, next_open: bool = True) -> str:
        """One day's hours; for a closed day asked alone, the next open day too."""
        week = self.week
        assert week is not None
        lang = turn.language
        today = week.local(turn.now).weekday()
        name = DAY_NAMES[lang][weekday]
        spans = week.spans[weekday]
        if weekday == today:
            if not spans:
                return join_sentences(
                    self._say(turn, "hours_today_closed", day=name), self._next_text(turn)
                )
            text = self._say(turn, "hours_today_open", day=name, spans=say_spans(spans, lang))
            if week.is_open_at(turn.now):
                closes = week.closes_at(turn.now)
                return (
                    join_sentences(text, self._say(turn, "hours_now_open", time=say_time(closes)))
                    if closes
                    else text
                )
            upcoming = week.next_opening(turn.now)
            if upcoming and upcoming[0] == 0:
                return join_sentences(
                    text, self._say(turn, "hours_now_closed"), self._next_text(turn)
                )
            return join_sentences(text, self._say(turn, "hours_done_today"), self._next_text(turn))
        tomorrow = weekday == (today + 1) % 7
        if spans:
            key = "hours_tomorrow_open" if tomorrow else "hours_day_open"
            return self._say(turn, key, day=name, spans=say_spans(spans, lang))
        key = "hours_tomorrow_closed" if tomorrow else "hours_day_closed"
        after = next((d % 7 for d in range(weekday + 1, weekday + 8) if week.spans[d % 7]), None)
        text = self._say(turn, key, day=name)
        if next_open and after is not None and after != weekday:
            text = join_sentences(
                text,
                self._say(
                    turn,
                    "hours_day_open",
                    day=DAY_NAMES[lang][after],
                    spans=say_spans(week.spans[after], lang),
                ),
            )
        return text

    def _now_text(self, turn: _Turn) -> str:
        week = self.week
        assert week is not None
        closes = week.closes_at(turn.now)
        if closes is not None:
            return self._say(turn, "hours_now_open", time=say_time(closes))
        return join_sentences(self._say(turn, "hours_now_closed"), self._next_text(turn))

    def _next_text(self, turn: _Turn) -> str:
        week = self.week
        assert week is not None
        upcoming = week.next_opening(turn.now)
        if upcoming is None:
            return ""
        offset, start = upcoming
        weekday = (week.local(turn.now).weekday() + offset) % 7
        name = DAY_NAMES[turn.language][weekday]
        key = {0: "hours_next_today", 1: "hours_next_tomorrow"}.get(offset, "hours_next_day")
        return self._say(turn, key, day=name, time=say_time(start))

    def _location(self, turn: _Turn) -> None:
        r = turn.reading
        hits = r.intent_hits("location")
        clauses = self._clauses(hits, r)
        address = self.config.business.address
        if address:
            text = self._say(turn, "location", address=address)
        else:
            faq = self._topic_faq(turn, "location", r.text)
            if faq is not None and faq.index not in turn.used_faqs:
                turn.used_faqs.add(faq.index)
                text = faq.entry.answer
            else:
                text = self._say(turn, "location_unknown", phone=self.phone) or self._say(
                    turn, "location_unknown_ask"
                )
        turn.add(hits[0].start, "location", text, clauses)

    def _parking(self, turn: _Turn) -> None:
        r = turn.reading
        hits = r.intent_hits("parking")
        clauses = self._clauses(hits, r)
        faq = self._topic_faq(turn, "parking", r.text)
        if faq is not None:
            self._use_faq(turn, faq, hits[0].start, clauses)
            return
        address = self.config.business.address
        text = join_sentences(
            self._say(turn, "location", address=address) if address else "",
            self._say(turn, "parking_call", phone=self.phone) or self._say(turn, "parking_ask"),
        )
        turn.add(hits[0].start, "parking", text, clauses)

    def _phone(self, turn: _Turn) -> None:
        r = turn.reading
        hits = r.intent_hits("phone")
        clauses = self._clauses(hits, r)
        email = self.config.business.email
        wants_email = "email" in r.words
        if self.phone:
            text = join_sentences(
                self._say(turn, "phone", phone=self.phone),
                self._say(turn, "email", email=email) if wants_email else "",
            )
        elif email:
            text = self._say(turn, "email_only", email=email)
        else:
            text = self._say(turn, "phone_unknown")
        turn.add(hits[0].start, "phone", text, clauses)

    def _call_or_ask(self, turn: _Turn) -> str:
        return self._say(turn, "check_call", phone=self.phone) or self._say(turn, "check_ask")

    def _services(self, turn: _Turn) -> None:
        r = turn.reading
        if self._weak_yields(turn, "services"):
            return
        hits = r.intent_hits("services")
        names = [s.name for s in self.offerings.services]
        text = self._say(turn, "services_list", services=_and(names, turn.language))
        turn.add(hits[0].start, "services", text, self._clauses(hits, r))

    def _items_text(self, turn: _Turn, items: Sequence[Offering]) -> str:
        lang = turn.language
        said = []
        for item in items:
            minutes = f" ({item.duration_minutes} min)" if item.duration_minutes else ""
            said.append(f"{item.name}: {item.price(lang)}{minutes}")
        return self._say(turn, "price_items", items="; ".join(said))

    def _price(self, turn: _Turn) -> None:
        r = turn.reading
        hits = r.intent_hits("price")
        terms, clauses = self._scope_terms(turn, "price")
        position = hits[0].start
        items = self.offerings.priced(terms)
        if items:
            turn.add(position, "price", self._items_text(turn, items), clauses)
            return
        match = self._match(terms)
        query = self._scope_text(turn, clauses)
        faq = self._price_faq(turn, query, match)
        if faq is not None:
            self._use_faq(turn, faq, position, clauses)
            return
        if match.offerings and not match.generic_only:
            names = _and([o.name for o in match.offerings[:2]], turn.language)
            text = self._say(turn, "price_quote", service=names, phone=self.phone) or self._say(
                turn, "price_quote_ask", service=names
            )
            turn.add(position, "price", text, clauses)
            return
        listed = self._price_list(turn)
        if match.uncovered and not match.offerings:
            if self._faq_hits(turn, query):
                # "if I cancel last minute is there a fee": an FAQ explains those words
                # (the clause stays open for it); they are not an unknown service.
                return
            text = join_sentences(self._offer_no(turn, match), listed)
        else:
            text = listed
        turn.add(position, "price", text, clauses)

    def _price_list(self, turn: _Turn) -> str:
        catalogue = self.offerings.catalogue
        if catalogue:
            lang = turn.language
            items = ", ".join(f"{i.name} {i.price(lang)}" for i in catalogue)
            return self._say(turn, "price_list", items=items)
        return self._say(turn, "price_unknown", phone=self.phone) or self._say(
            turn, "price_unknown_ask"
        )

    def _price_faq(self, turn: _Turn, query: str, match: OfferMatch) -> FaqHit | None:
        """A price FAQ for the question, unless it is about another offering than the one
        named ("How much does a tattoo cost?" does not price a piercing)."""
        named = {r for o in match.offerings for r in o.name_roots}
        for hit, faq in [*self._faq_hits(turn, query), *self._faq_hits(turn, turn.reading.text)]:
            if not faq.asks("price"):
                continue
            # With an offering named, the FAQ must name it too, or be about prices in
            # general ("How much do treatments cost?"), not about something else ("Do you
            # offer free estimates?" does not price an oil change).
            names_other = match.offerings and not (faq.question_roots & named)
            if names_other and faq.question_roots - self._price_roots:
                continue
            return hit
        return None

    def _match(self, terms: Sequence[Term]) -> OfferMatch:
        """The services the terms name; the catalogue when it covers them better."""
        services = self.offerings.match(terms)
        if services.full:
            return services
        catalogue = self.offerings.match(terms, catalogue=True)
        if catalogue.offerings and len(catalogue.uncovered) < len(services.uncovered):
            return catalogue
        return services

    def _offer(self, turn: _Turn) -> None:
        r = turn.reading
        hits = r.intent_hits("offer")
        terms, clauses = self._scope_terms(turn, "offer")
        if any(c in turn.explained for c in clauses) and not terms:
            return
        match = self._match(terms)
        if not match.terms and not match.generic_only:
            return
        position = hits[0].start
        query = self._scope_text(turn, clauses)
        thing = match.terms
        # FAQs that literally name what the visitor named come first.
        faq_hits = sorted(
            self._faq_hits(turn, query),
            key=lambda h: -sum(1 for t in thing if t.root in h[1].all_roots),
        )
        # In order: an offering whose name says it all ("do you do beard trims?"); an
        # FAQ asking exactly this ("Do you groom cats?"); an offering whose description
        # covers it ("balayage" → Highlights); an FAQ that mostly covers it; an offering
        # covering all but one word; a partial match (no claim about the rest); else —
        # for a plain "do you offer X?" — X is not on the list.
        if match.generic_only or self._named(match):
            turn.add(position, "offer", self._offer_yes(turn, match, terms), clauses)
            return
        for hit, faq in faq_hits:
            if all(self._covers(faq.question_roots, faq.question_terms, t) for t in thing):
                self._use_faq(turn, hit, position, clauses)
                return
        if match.full:
            turn.add(position, "offer", self._offer_yes(turn, match, terms), clauses)
            return
        open_terms = match.uncovered if match.offerings else thing
        doubt = False
        for hit, faq in faq_hits:
            covered = sum(1 for t in thing if self._covers(faq.all_roots, faq.all_terms, t))
            explains = all(self._covers(faq.all_roots, faq.all_terms, t) for t in open_terms)
            if 2 * covered > len(thing) or explains:
                self._use_faq(turn, hit, position, clauses)
                return
            # Half of the words naming one FAQ's topic (words only that FAQ's question
            # uses) is no answer, but enough doubt to not say "not on our list".
            topical = sum(1 for t in thing if t.root in faq.question_roots and self._rare(t))
            doubt = doubt or 2 * topical >= len(thing)
        if match.mostly:
            turn.add(position, "offer", self._offer_yes(turn, match, terms), clauses)
            return
        if match.offerings:
            names = _and([o.name for o in match.offerings[:2]], turn.language)
            text = join_sentences(
                self._say(
                    turn,
                    "offer_partial",
                    service=names,
                    thing=f"“{match.phrase(match.uncovered)}”",
                ),
                self._call_or_ask(turn),
            )
            turn.add(position, "offer", text, clauses)
            return
        explicit = any(tuple(r.stems[h.start : h.end]) in self.rules.explicit_offer for h in hits)
        # "Not on our list" is said only when nothing else answered that part.
        if doubt:
            # Considered and left unanswered: the FAQ that raised the doubt must not
            # answer it later either.
            turn.explained.update(clauses)
            return
        if explicit and r.is_question and not turn.explained.intersection(clauses):
            text = join_sentences(self._offer_no(turn, match), self._call_or_ask(turn))
            turn.add(position, "offer", text, clauses)

    def _covers(self, roots: frozenset[str], terms: frozenset[str], term: Term) -> bool:
        """An FAQ covers a visitor's word when it uses the word, or — for a word that is
        not the name of something the business offers — a word of the same concept
        ("kids" for "children"; but "fades" is not "kids' cuts")."""
        if term.root in roots:
            return True
        if any(term.root in o.cover_roots for o in self.offerings.all):
            return False
        return bool(term.concepts & terms)

    def _rare(self, term: Term) -> bool:
        """The word appears in one FAQ at most."""
        return self._faq_df.get(term.root, 0) <= 1

    @staticmethod
    def _named(match: OfferMatch) -> bool:
        """Every word the visitor named is in the name of a matched offering."""
        names = {r for o in match.offerings for r in o.name_roots}
        return bool(match.terms) and all(t.root in names for t in match.terms)

    def _offer_yes(self, turn: _Turn, match: OfferMatch, terms: Sequence[Term]) -> str:
        chosen = match.offerings[:3] if match.generic_only else match.offerings[:2]
        lines = []
        for offering in chosen:
            if offering.description and not match.generic_only:
                description = offering.description.strip()
                lines.append(
                    self._say(turn, "offer_yes", service=offering.name, description=description)
                )
            else:
                lines.append(self._say(turn, "offer_yes_plain", service=offering.name))
        if match.generic_only and len(match.offerings) > 1:
            names = _and([o.name for o in match.offerings], turn.language)
            lines = [self._say(turn, "offer_yes_plain", service=names)]
        items = [i for i in self.offerings.priced(match.terms) if i not in chosen]
        priced = [o for o in chosen if o.priced]
        if items or priced:
            lines.append(self._items_text(turn, [*priced, *items][:3]))
        return join_sentences(*lines)

    def _offer_no(self, turn: _Turn, match: OfferMatch) -> str:
        names = _and([s.name for s in self.offerings.services], turn.language)
        # "do you sell jewelry?": the verb counts when matching, the thing is "jewelry".
        shown = [t for t in match.terms if t.word not in self.rules.unquoted] or match.terms
        return self._say(turn, "offer_no", thing=f"“{match.phrase(shown)}”", services=names)

    def _mentioned(self, turn: _Turn) -> None:
        """A message that only names an offering ("what's a classic mani") gets it
        described, with its price when the catalogue has one."""
        r = turn.reading
        skip = {i for h in (*r.hits, *r.when) for i in range(h.start, h.end)}
        terms = self.offerings.terms(r.words, frozenset(skip))
        if not terms:
            return
        items = self.offerings.priced(terms)
        item_roots = {t.root for t in terms if any(t.root in i.name_roots for i in items)}
        match = self._match(terms)
        if items and len(item_roots) * 2 >= len(terms):
            turn.add(0, "price", self._items_text(turn, items[:3]))
        elif match.offerings and match.mostly and not match.generic_only:
            turn.add(0, "offer", self._offer_yes(turn, match, terms))
