"""The diff between what a site or file says and what the bot has (docs/knowledge-import.md).

Each item is one of:
- `new`: the bot has nothing there; applied.
- `same`: the bot already says it; nothing to do.
- `duplicate`: an FAQ whose question is the same as one of the bot's (token-Jaccard of
  the normalised questions ≥ 0.7), or a service the template already lists. Merged: a
  duplicate of a *template* FAQ or service takes the business's own answer or price
  (stored under the template's question or name, so the bot keeps one entry); a
  duplicate of the business's own FAQ with another answer is a `conflict`.
- `near_duplicate`: an FAQ at Jaccard ≥ 0.6 and < 0.7; kept for review, never applied.
- `conflict`: the bot already has another value (a phone, the hours, an FAQ answer);
  reported and kept unless `--overwrite FIELD` names it.
- `info`: read but with no place in the bot (geo coordinates), shown for review.

Nothing here writes: `plan` turns the applied items into `key=value` assignments and a
patch for `tcai.bots.service.change_bot`, the one audited way a bot changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tcai.bots.config import WEEKDAYS, BotConfig
from tcai.knowledge.extract import Found, FoundFaq, FoundService
from tcai.knowledge.hours import Hours, as_assignments, hours_text
from tcai.knowledge.site import origin_of, site_of
from tcai.text.normalise import normalise, words

DUPLICATE = 0.7
NEAR_DUPLICATE = 0.6
Kind = Literal["new", "same", "duplicate", "near_duplicate", "conflict", "info"]
OVERWRITABLE = ("name", "phone", "email", "address", "website", "hours", "booking_url", "faqs")


@dataclass
class Change:
    kind: Kind
    field: str
    proposed: Any
    current: Any = None
    source: str = ""
    note: str = ""
    apply: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "field": self.field,
            "current": self.current,
            "proposed": self.proposed,
            "source": self.source,
            "note": self.note,
            "apply": self.apply,
        }


@dataclass
class Knowledge:
    """What a site or a file says, every source merged, structured data first."""

    facts: dict[str, list[Found]] = field(default_factory=dict)
    faqs: list[FoundFaq] = field(default_factory=list)
    services: list[FoundService] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        useful = {k: v for k, v in self.facts.items() if k not in ("name", "website")}
        return not (useful or self.faqs or self.services)


def jaccard(a: str, b: str) -> float:
    left, right = set(words(a)), set(words(b))
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def _best(question: str, candidates: Sequence[str]) -> tuple[int, float]:
    scores = [jaccard(question, c) for c in candidates]
    if not scores:
        return -1, 0.0
    index = max(range(len(scores)), key=scores.__getitem__)
    return index, scores[index]


def dedupe_faqs(faqs: Iterable[FoundFaq]) -> list[FoundFaq]:
    """One FAQ per question across pages and sources: the first read (structured data
    comes first) wins over later duplicates."""
    kept: list[FoundFaq] = []
    for faq in faqs:
        if _best(faq.question, [k.question for k in kept])[1] < DUPLICATE:
            kept.append(faq)
    return kept


def _service_key(name: str) -> str:
    return " ".join(word.removesuffix("s") for word in words(name))


@dataclass
class Proposal:
    changes: list[Change] = field(default_factory=list)
    assignments: list[str] = field(default_factory=list)
    faqs: list[dict[str, str]] | None = None
    services: list[dict[str, str]] | None = None

    @property
    def patch(self) -> dict[str, Any]:
        business: dict[str, Any] = {}
        if self.faqs is not None:
            business["faqs"] = self.faqs
        if self.services is not None:
            business["services"] = self.services
        return {"business": business} if business else {}

    def count(self, kind: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind)

    @property
    def to_apply(self) -> int:
        return sum(1 for c in self.changes if c.apply)


def _same_text(a: str | None, b: str | None) -> bool:
    return normalise(a or "") == normalise(b or "")


def _fact(
    proposal: Proposal,
    name: str,
    found: list[Found],
    current: Any,
    overwrite: set[str],
    same: bool,
    assignment: list[str],
) -> None:
    first = found[0]
    others = [f.value for f in found[1:]]
    note = f"the site also gives {others}" if others else ""
    if current in (None, "", {}):
        kind: Kind = "new"
    elif same:
        kind = "same"
    else:
        kind = "conflict"
    apply = kind == "new" or (kind == "conflict" and name in overwrite)
    if kind == "conflict" and not apply:
        note = (note + "; " if note else "") + f"kept the current value (--overwrite {name})"
    proposal.changes.append(Change(kind, name, first.value, current or None, first.source, note))
    proposal.changes[-1].apply = apply
    if apply:
        proposal.assignments.extend(assignment)


def _hours_same(a: dict[str, Any], b: Hours) -> bool:
    def squash(spans: Iterable[str]) -> list[str]:
        return [s.replace(" ", "") for s in spans]

    return all(squash(a.get(day, ())) == squash(b.get(day, [])) for day in WEEKDAYS)


def propose(
    config: BotConfig,
    origins: Sequence[str],
    knowledge: Knowledge,
    *,
    overwrite: Iterable[str] = (),
) -> Proposal:
    """The diff of `knowledge` against the bot (`config` and its allowed origins)."""
    wanted = set(overwrite)
    proposal = Proposal()
    business = config.business
    facts = knowledge.facts
    if found := facts.get("name"):
        site_name, own = str(found[0].value), business.name
        similar = normalise(site_name).startswith(normalise(own)) or normalise(own).startswith(
            normalise(site_name)
        )
        _fact(proposal, "name", found, own, wanted, similar, [f"name={site_name}"])
    for key in ("phone", "email"):
        if found := facts.get(key):
            value = str(found[0].value)
            current = getattr(business, key)
            _fact(proposal, key, found, current, wanted, value == current, [f"{key}={value}"])
    if found := facts.get("address"):
        value = str(found[0].value)
        same = _same_text(value, business.address)
        _fact(proposal, "address", found, business.address, wanted, same, [f"address={value}"])
    if found := facts.get("website"):
        value = str(found[0].value)
        same = business.website is not None and site_of(value) == site_of(business.website)
        _fact(proposal, "website", found, business.website, wanted, same, [f"website={value}"])
    if found := facts.get("hours"):
        hours: Hours = found[0].value
        current_hours: Hours = {day: list(spans) for day, spans in business.hours.items()}
        change_count = len(proposal.changes)
        _fact(
            proposal,
            "hours",
            found,
            current_hours,
            wanted,
            _hours_same(current_hours, hours),
            as_assignments(hours),
        )
        shown = proposal.changes[change_count]
        shown.proposed = hours_text(hours)
        shown.current = hours_text(current_hours) if current_hours else None
        if len(found) > 1:
            shown.note = shown.note.replace(
                f"the site also gives {[f.value for f in found[1:]]}",
                f"the site also gives other hours: {hours_text(found[1].value)}",
            )
    if found := facts.get("booking_url"):
        _booking(proposal, config, found, wanted)
    if found := facts.get("geo"):
        proposal.changes.append(
            Change(
                "info",
                "geo",
                found[0].value,
                source=found[0].source,
                note="the bot has no place for coordinates; shown for review only",
            )
        )
    _origins(proposal, list(origins), knowledge.origins)
    _faqs(proposal, config, knowledge.faqs, wanted)
    _services(proposal, config, knowledge.services)
    return proposal


def _booking(proposal: Proposal, config: BotConfig, found: list[Found], wanted: set[str]) -> None:
    from tcai.templates.providers import classify_booking_url

    url = str(found[0].value)
    verdict = classify_booking_url(url)
    if not verdict.ok or verdict.placeholder:
        proposal.changes.append(
            Change(
                "info",
                "booking_url",
                url,
                source=found[0].source,
                note=f"not usable as a booking link: {verdict.reason or 'a placeholder'}",
            )
        )
        return
    current = config.booking.url
    provider = config.booking.provider
    assignment = [f"booking_url={url}"]
    if verdict.provider and provider != verdict.provider:
        assignment.insert(0, f"booking_provider={verdict.provider}")
    if current is None and provider and verdict.provider and provider != verdict.provider:
        current = f"(no link; the bot's provider is {provider})"
    _fact(proposal, "booking_url", found, current, wanted, url == current, assignment)
    change = proposal.changes[-1]
    if verdict.provider:
        change.note = "; ".join(filter(None, [f"a {verdict.provider} link", change.note]))


def _origins(proposal: Proposal, current: list[str], seen: list[str]) -> None:
    missing = [o for o in dict.fromkeys(origin_of(s) for s in seen) if o not in current]
    if not missing:
        return
    union = sorted({*current, *missing})
    proposal.changes.append(
        Change(
            "new",
            "allowed_origins",
            missing,
            current or None,
            note="the widget may run on the business's own site",
            apply=True,
        )
    )
    proposal.assignments.append(f"allowed_origins={','.join(union)}")


def _faqs(
    proposal: Proposal, config: BotConfig, imported: list[FoundFaq], wanted: set[str]
) -> None:
    own = [{"question": f.question, "answer": f.answer} for f in config.business.faqs]
    template = [f for f in config.template.faqs]
    changed = False
    for faq in dedupe_faqs(imported):
        questions = [f["question"] for f in own] + [f.question for f in template]
        index, score = _best(faq.question, questions)
        proposed = {"question": faq.question, "answer": faq.answer}
        if score >= DUPLICATE and index < len(own):
            mine = own[index]
            if _same_text(mine["answer"], faq.answer):
                proposal.changes.append(Change("same", "faq", proposed, dict(mine), faq.source))
                continue
            apply = "faqs" in wanted
            note = (
                "the site's answer replaces the business's"
                if apply
                else "another answer to the business's own question; kept (--overwrite faqs)"
            )
            proposal.changes.append(
                Change("conflict", "faq", proposed, dict(mine), faq.source, note, apply)
            )
            if apply:
                own[index] = {"question": mine["question"], "answer": faq.answer}
                changed = True
        elif score >= DUPLICATE:
            base = template[index - len(own)]
            current = {"question": base.question, "answer": base.answer}
            if _same_text(base.answer, faq.answer):
                proposal.changes.append(Change("same", "faq", proposed, current, faq.source))
                continue
            proposal.changes.append(
                Change(
                    "duplicate",
                    "faq",
                    proposed,
                    current,
                    faq.source,
                    f"merged (similarity {score:.2f}): the business's answer replaces the "
                    "template's",
                    True,
                )
            )
            own.append({"question": base.question, "answer": faq.answer})
            changed = True
        elif score >= NEAR_DUPLICATE:
            near = questions[index]
            proposal.changes.append(
                Change(
                    "near_duplicate",
                    "faq",
                    proposed,
                    {"question": near},
                    faq.source,
                    f"similar to '{near}' ({score:.2f}); kept for review, not applied",
                )
            )
        else:
            proposal.changes.append(Change("new", "faq", proposed, None, faq.source, "", True))
            own.append(proposed)
            changed = True
    if changed:
        proposal.faqs = own


def _services(proposal: Proposal, config: BotConfig, imported: list[FoundService]) -> None:
    own = [{"name": s.name, "description": s.description} for s in config.business.services]
    template = {_service_key(s.name): s for s in config.template.business.services}
    changed = False
    seen: set[str] = set()
    for service in imported:
        key = _service_key(service.name)
        if key in seen or not key:
            continue
        seen.add(key)
        priced = f" Price: {service.price}." if service.price else ""
        description = (service.description or service.name).rstrip(".") + "." + priced
        proposed = {"name": service.name, "description": description.strip()[:4000]}
        mine = next((s for s in own if _service_key(s["name"]) == key), None)
        if mine is not None:
            proposal.changes.append(Change("same", "service", proposed, mine, service.source))
        elif key in template:
            base = template[key]
            if not service.price:
                current = {"name": base.name, "description": base.description}
                proposal.changes.append(
                    Change("same", "service", proposed, current, service.source)
                )
                continue
            merged = {
                "name": base.name,
                "description": f"{base.description.rstrip('.')}.{priced}"[:4000],
            }
            proposal.changes.append(
                Change(
                    "duplicate",
                    "service",
                    merged,
                    {"name": base.name, "description": base.description},
                    service.source,
                    "merged: the template's service with the business's price",
                    True,
                )
            )
            own.append(merged)
            changed = True
        else:
            proposal.changes.append(
                Change("new", "service", proposed, None, service.source, "", True)
            )
            own.append(proposed)
            changed = True
    if changed:
        proposal.services = own
