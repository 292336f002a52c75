"""The facts-mode evaluation: labelled visitor messages, the answer facts mode gives, a score.

Owns reading a case file (format in `tests/chat/facts_eval/cases.yaml`), building each case's
bot the way provisioning does (`build_bot_config` from the template file, then the
business's hours through the same `key=value` setters an operator uses), asking
`FactsBook` exactly as the pipeline's facts path would (contacts extracted, booking
intent decided, lead-capture triggers), and scoring each reply against what it must and
must not say. `bench/facts_eval.py` prints the report; `tests/chat/test_facts_eval.py` holds
the floor. The cases themselves are data in `tests/chat/facts_eval/`; nothing here is tuned
to them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tcai.bots.config import BotConfig
from tcai.bots.provisioning import ClientRequest, build_bot_config
from tcai.bots.service import apply_assignments
from tcai.chat.booking import decide_booking
from tcai.chat.facts import FactsAnswer, FactsBook
from tcai.chat.rules import load_rules
from tcai.templates.files import load_template_files
from tcai.templates.schema import Template
from tcai.text.contacts import extract_contacts
from tcai.text.normalise import contains_phrase, fold_accents

# Alternatives for one expectation: the reply must contain at least one of them.
Expectation = tuple[str, ...]


@dataclass(frozen=True)
class EvalCase:
    number: int
    template: str
    variant: str
    category: str
    message: str
    now: datetime
    expect: tuple[Expectation, ...]
    reject: tuple[str, ...]
    matched: bool | None


@dataclass(frozen=True)
class EvalSuite:
    name: str
    cases: tuple[EvalCase, ...]
    names: dict[str, str]
    variants: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class CaseResult:
    case: EvalCase
    reply: str
    matched: bool
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class EvalReport:
    suite: str
    results: list[CaseResult] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results) if self.results else 0.0

    def by_category(self) -> dict[str, tuple[int, int]]:
        """category -> (passed, total)."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for result in self.results:
            counts[result.case.category][0] += result.passed
            counts[result.case.category][1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(counts.items())}

    def misses(self) -> list[CaseResult]:
        """Failed cases, hardest first: the most expectations missed, then the earliest."""
        failed = [r for r in self.results if not r.passed]
        return sorted(failed, key=lambda r: (-len(r.problems), r.case.number))


# --- reading case files ------------------------------------------------------------------


def _as_expectations(raw: Sequence[Any] | None) -> tuple[Expectation, ...]:
    out = []
    for item in raw or ():
        alternatives = item if isinstance(item, list) else [item]
        if not all(isinstance(a, str) for a in alternatives):
            # YAML reads a bare yes/no/on/off as a boolean: quote it in the file.
            raise ValueError(f"expectations must be strings: {item!r}")
        out.append(tuple(alternatives))
    return tuple(out)


def _as_strings(raw: Sequence[Any]) -> tuple[str, ...]:
    return tuple(a for expectation in _as_expectations(raw) for a in expectation)


def _parse_now(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"'now' must carry a time zone (UTC 'Z'): {value}")
    return moment


def load_suite(path: Path, definitions: Path | None = None) -> EvalSuite:
    """The cases in `path`; names, variants, defaults come from `definitions` (the main
    case file) when the file holds only groups."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    base: dict[str, Any] = (
        yaml.safe_load(definitions.read_text(encoding="utf-8")) if definitions else raw
    )
    default_now = _parse_now(raw.get("now", base["now"]))
    always = _as_strings(base.get("reject_always", ()))
    category_defaults: dict[str, dict[str, Any]] = base.get("category_defaults", {})
    cases: list[EvalCase] = []
    for group in raw["groups"]:
        for item in group["cases"]:
            category = item.get("category", group["category"])
            defaults = category_defaults.get(category, {})
            matched = item.get("matched", defaults.get("matched", True))
            cases.append(
                EvalCase(
                    number=len(cases) + 1,
                    template=item.get("template", group["template"]),
                    variant=item.get("variant", group["variant"]),
                    category=category,
                    message=str(item["message"]),
                    now=_parse_now(item["now"]) if "now" in item else default_now,
                    expect=_as_expectations(item.get("expect")),
                    reject=(*always, *_as_strings(item.get("reject", ()))),
                    matched=matched,
                )
            )
    return EvalSuite(path.stem, tuple(cases), dict(base["names"]), dict(base["variants"]))


# --- building bots -----------------------------------------------------------------------


@cache
def _templates() -> dict[str, Template]:
    return {t.key: t for t in load_template_files()}


def make_config(template_key: str, name: str, variant: dict[str, Any]) -> BotConfig:
    """A bot as provisioning builds it, with the variant's business facts."""
    template = _templates()[template_key]
    request = ClientRequest(
        template=template.id,
        slug=f"eval-{template_key.replace('_', '-')}",
        name=name,
        phone=variant.get("phone"),
        email=variant.get("email"),
        address=variant.get("address"),
        website=variant.get("website"),
        timezone=variant.get("timezone", "America/New_York"),
        booking_url=variant.get("booking_url"),
    )
    config, _origins = build_bot_config(request, template)
    assignments = []
    for day, spans in (variant.get("hours") or {}).items():
        value = "closed" if spans in ("closed", None, []) else ",".join(spans)
        assignments.append(f"hours.{day}={value}")
    if not assignments:
        return config
    document, _ = apply_assignments(config.model_dump(mode="json"), assignments)
    return BotConfig.model_validate(document)


def ask(book: FactsBook, message: str, now: datetime) -> FactsAnswer:
    """`book`'s answer to `message` as the pipeline's facts path asks for it."""
    config = book.config
    rules = load_rules()
    contacts = extract_contacts(message)
    wants_booking = rules.wants_booking(message)
    decision = decide_booking(config, message) if wants_booking else None
    known_phone = bool(contacts.phone)
    ask_contact = (
        config.lead_capture
        and not known_phone
        and (
            wants_booking or any(contains_phrase(message, t) for t in config.lead_capture_triggers)
        )
    )
    return book.answer(
        message,
        now=now,
        decision=decision,
        ask_contact=ask_contact,
        known_phone=known_phone,
        contacts=contacts,
    )


# --- scoring -----------------------------------------------------------------------------


def _fold(text: str) -> str:
    return fold_accents(text).casefold()


def contains(reply: str, wanted: str) -> bool:
    """Case- and accent-blind; on word boundaries when `wanted` starts and ends with a
    letter or digit ("yes" is not found in "eyes"), a plural ending allowed ("Root Canal"
    is found in "Root Canals")."""
    haystack, needle = _fold(reply), _fold(wanted)
    if needle[:1].isalnum() and needle[-1:].isalnum():
        pattern = rf"(?<!\w){re.escape(needle)}(?:e?s)?(?!\w)"
        return re.search(pattern, haystack) is not None
    return needle in haystack


def check(case: EvalCase, answer: FactsAnswer) -> tuple[str, ...]:
    problems = []
    for alternatives in case.expect:
        if not any(contains(answer.text, a) for a in alternatives):
            problems.append("missing " + " | ".join(alternatives))
    for unwanted in case.reject:
        if contains(answer.text, unwanted):
            problems.append(f"says {unwanted}")
    if case.matched is not None and answer.matched != case.matched:
        problems.append(f"matched={answer.matched}")
    return tuple(problems)


def run_suite(suite: EvalSuite) -> EvalReport:
    books: dict[tuple[str, str], FactsBook] = {}
    report = EvalReport(suite.name)
    for case in suite.cases:
        key = (case.template, case.variant)
        if key not in books:
            config = make_config(
                case.template, suite.names[case.template], suite.variants[case.variant]
            )
            books[key] = FactsBook(config)
        answer = ask(books[key], case.message, case.now)
        report.results.append(CaseResult(case, answer.text, answer.matched, check(case, answer)))
    return report
