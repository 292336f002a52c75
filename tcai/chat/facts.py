"""Facts mode: the answer built from the business's own facts, without the LLM.

Used when no LLM is configured, and as the failsafe when it fails or runs out of time
(docs/chat-pipeline.md). `FactsBook` is built once per bot config version (it is part of
the compiled bot) and answers one visitor message at a time; it never mentions a
provider, a model or an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tcai.bots.config import BotConfig
from tcai.chat.booking import BookingDecision, decide_booking
from tcai.chat.contacts import Contacts, display_phone
from tcai.chat.faq import FaqEntry, FaqIndex
from tcai.chat.rules import load_rules


@dataclass(frozen=True)
class FactsAnswer:
    text: str
    matched: bool
    """True when a fact or FAQ answered the question (message source "faq"); False for
    the generic "our team can help" reply (source "failsafe")."""


def _join(*parts: str) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())


def _fact_entries(config: BotConfig) -> list[FaqEntry]:
    b = config.business
    entries = [FaqEntry(f.question, f.answer) for f in config.faqs]
    covered = FaqIndex(entries) if entries else None
    ask = (
        f"please call us at {display_phone(b.phone)}"
        if b.phone
        else "leave your name and number here"
    )
    hours_q, where_q = (
        "What are your hours? When are you open?",
        "Where are you located? What is your address?",
    )
    if hours := b.hours_text():
        entries.append(FaqEntry(hours_q, f"Our hours are: {hours}.", "hours"))
    elif covered is None or covered.best(hours_q) is None:
        entries.append(FaqEntry(hours_q, f"For today's hours, {ask} and we'll confirm.", "hours"))
    if b.address:
        entries.append(FaqEntry(where_q, f"You'll find us at {b.address}.", "location"))
    elif covered is None or covered.best(where_q) is None:
        entries.append(FaqEntry(where_q, f"For directions, {ask}.", "location"))
    if b.phone:
        entries.append(
            FaqEntry(
                "What is your phone number? How can I contact you?",
                f"You can call us at {display_phone(b.phone)}.",
                "phone",
            )
        )
    names = ", ".join(s.name for s in config.services)
    entries.append(FaqEntry("What services do you offer?", f"We offer {names}.", "services"))
    if config.template.catalog:
        prices = "; ".join(
            f"{i.name} {'from ' if i.price_from else ''}${i.price_cents / 100:,.0f}"
            for i in config.template.catalog
        )
        entries.append(
            FaqEntry(
                "How much does it cost? What are your prices?", f"Our prices: {prices}.", "prices"
            )
        )
    return entries


class FactsBook:
    """One bot config's facts, indexed for answering."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.faq = FaqIndex(_fact_entries(config))

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
        config = self.config
        rules = load_rules()
        phone = display_phone(config.business.phone)
        if decision is not None:
            if decision.handling == "external" and decision.url:
                return FactsAnswer(rules.say("booking_redirect", url=decision.url), False)
            ask = "" if known_phone else rules.say("ask_name_phone")
            return FactsAnswer(_join(rules.say("booking_requested"), ask), False)
        hit = self.faq.best(message)
        if hit is not None:
            text = _join(hit.entry.answer, rules.say("contact_ask") if ask_contact else "")
            return FactsAnswer(text, True)
        link = decide_booking(config)
        return FactsAnswer(
            _join(
                rules.say("fallback"),
                "" if known_phone else rules.say("fallback_ask"),
                rules.say("fallback_call", phone=phone),
                rules.say("fallback_book", url=link.url if link.handling == "external" else None),
            ),
            False,
        )
