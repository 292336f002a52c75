"""Semantic rules for templates, applied to stored rows (and to files before seeding).

The schema says a template is well-formed; these rules say it is safe and usable:
references resolve, the failsafe pivot exists and is internal, external profiles name
known providers, booking links are https, never payment pages and on a listed provider's
domain (unless the profile allows the business's own site, "Direct Booking"), sensitive
verticals carry their crisis or compliance rules, FAQ counts meet the policy. Each problem is an
error (blocks) or a warning (placeholder URLs: allowed in a template, blocking go-live).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tcai.templates.files import content_hash, schema_problems
from tcai.templates.policy import TemplatePolicy, load_policy
from tcai.templates.providers import classify_booking_url, load_registry
from tcai.templates.schema import Template

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    template_id: str
    field: str
    message: str
    severity: Severity = "error"

    def line(self) -> str:
        return f"{self.template_id}: {self.field}: {self.message}"


@dataclass
class StoredTemplate:
    """What validation needs from a `bot_template` row."""

    template_id: str
    key: str
    version: str
    content_hash: str
    document: Any
    is_active: bool = True


@dataclass
class ValidationReport:
    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def failed_ids(self) -> set[str]:
        return {p.template_id for p in self.errors}

    def as_dict(self) -> dict[str, Any]:
        items = []
        for template_id in self.checked:
            own = [p for p in self.problems if p.template_id == template_id]
            errors = [p for p in own if p.severity == "error"]
            status = "fail" if errors else ("warn" if own else "pass")
            message = "; ".join(f"{p.field}: {p.message}" for p in (errors or own)) or "valid"
            items.append({"name": template_id, "status": status, "message": message})
        orphans = [p for p in self.problems if p.template_id not in self.checked]
        for problem in orphans:
            items.append(
                {"name": problem.template_id, "status": "fail", "message": problem.message}
            )
        passed = sum(1 for item in items if item["status"] != "fail")
        return {
            "ok": self.ok,
            "total": len(items),
            "passed": passed,
            "failed": len(items) - passed,
            "items": items,
            "problems": [
                {
                    "template_id": p.template_id,
                    "field": p.field,
                    "message": p.message,
                    "severity": p.severity,
                }
                for p in self.problems
            ],
        }


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


def check_template(template: Template, policy: TemplatePolicy | None = None) -> list[Problem]:
    """Every semantic rule for one parsed template."""
    policy = policy or load_policy()
    registry = load_registry()
    problems: list[Problem] = []
    tid = template.id

    def error(field_name: str, message: str) -> None:
        problems.append(Problem(tid, field_name, message))

    def warning(field_name: str, message: str) -> None:
        problems.append(Problem(tid, field_name, message, "warning"))

    industry = policy.for_key(template.key)
    if industry is None:
        warning("key", f"'{template.key}' is not one of the platform's industries")
    elif industry.template_id != tid:
        error("id", f"must be '{industry.template_id}' for key '{template.key}'")
    min_faqs = industry.min_faqs if industry else policy.default_min_faqs
    requires = industry.requires if industry else frozenset()

    # Unique ids and names.
    booking = template.booking
    for label, values in (
        ("quick_replies", [q.id for q in template.quick_replies]),
        ("booking.ctas", [c.id for c in booking.ctas]),
        ("booking.appointment_types", [a.id for a in booking.appointment_types]),
        ("faqs", [_norm(f.question) for f in template.faqs]),
        ("business.services", [_norm(s.name) for s in template.business.services]),
        ("catalog", [_norm(c.name) for c in template.catalog]),
        ("suggest_keywords", [_norm(k) for k in template.suggest_keywords]),
    ):
        for dup in _duplicates(values):
            error(label, f"'{dup}' appears more than once")
    for i, appt in enumerate(booking.appointment_types):
        for dup in _duplicates(f.key for f in appt.intake_fields):
            error(f"booking.appointment_types[{i}].intake_fields", f"key '{dup}' repeats")
        for j, intake in enumerate(appt.intake_fields):
            where = f"booking.appointment_types[{i}].intake_fields[{j}]"
            if intake.type == "select" and not intake.options:
                error(where, "a select field needs options")
            if intake.type != "select" and intake.options:
                error(where, f"options are only for select fields (type is {intake.type})")

    # References.
    appt_ids = {a.id for a in booking.appointment_types}
    cta_ids = {c.id for c in booking.ctas}
    for i, cta in enumerate(booking.ctas):
        if cta.appointment_type and cta.appointment_type not in appt_ids:
            error(
                f"booking.ctas[{i}].appointment_type",
                f"'{cta.appointment_type}' is not an appointment type of this template",
            )
        if not cta.appointment_type and not cta.external_url:
            error(f"booking.ctas[{i}]", "needs an appointment_type or an external_url")
    for i, chip in enumerate(template.quick_replies):
        if chip.cta and chip.cta not in cta_ids:
            error(f"quick_replies[{i}].cta", f"'{chip.cta}' is not a booking CTA")
    kinds = Counter(c.kind for c in booking.ctas)
    if kinds["primary"] != 1:
        error("booking.ctas", f"exactly one CTA must be primary (found {kinds['primary']})")
    if kinds["secondary"] > 1:
        error("booking.ctas", f"at most one CTA may be secondary (found {kinds['secondary']})")
    if booking.secondary_cta and booking.secondary_cta == booking.primary_cta:
        error("booking.secondary_cta", "must differ from primary_cta")

    # The failsafe pivot.
    pivot = template.get_appointment_type(booking.failsafe.pivot_appointment_type)
    if pivot is None:
        error(
            "booking.failsafe.pivot_appointment_type",
            f"'{booking.failsafe.pivot_appointment_type}' is not an appointment type",
        )
    elif pivot.mode != "internal":
        error("booking.failsafe.pivot_appointment_type", f"'{pivot.id}' must be internal")

    # Booking mode.
    if booking.mode == "external":
        if not booking.providers:
            error("booking.providers", "external booking must name its providers")
        for i, name in enumerate(booking.providers):
            if registry.get(name) is None:
                error(f"booking.providers[{i}]", f"unknown provider '{name}'")
        for dup in _duplicates(p.lower() for p in booking.providers):
            error("booking.providers", f"'{dup}' is listed twice")
        if not booking.default_provider:
            error("booking.default_provider", "external booking needs a default provider")
        elif booking.default_provider not in booking.providers:
            error("booking.default_provider", f"'{booking.default_provider}' is not listed")
        if not any(a.mode == "external" for a in booking.appointment_types):
            error("booking.appointment_types", "external booking needs an external type")
    else:
        if booking.providers or booking.default_provider:
            error("booking.providers", "internal booking must not name providers")
        for i, appt in enumerate(booking.appointment_types):
            if appt.mode != "internal":
                error(f"booking.appointment_types[{i}].mode", "must be internal in internal mode")

    # Booking URLs.
    urls: list[tuple[str, str]] = []
    if booking.booking_url:
        urls.append(("booking.booking_url", booking.booking_url))
    urls += [
        (f"booking.ctas[{i}].external_url", c.external_url)
        for i, c in enumerate(booking.ctas)
        if c.external_url
    ]
    urls += [
        (f"booking.appointment_types[{i}].external_url_override", a.external_url_override)
        for i, a in enumerate(booking.appointment_types)
        if a.external_url_override
    ]
    urls += [
        (f"catalog[{i}].booking_url", c.booking_url)
        for i, c in enumerate(template.catalog)
        if c.booking_url
    ]
    listed = [p for p in (registry.get(name) for name in booking.providers) if p is not None]
    own_site_allowed = not listed or any(not p.hosts for p in listed)
    for where, url in urls:
        verdict = classify_booking_url(url)
        if not verdict.ok:
            error(where, f"booking URL {verdict.reason}")
        elif verdict.provider is None and not own_site_allowed:
            # A template's links belong to its providers: a host none of them uses is a
            # look-alike or a mistake (booksy.com.evil.example is not Booksy).
            domains = ", ".join(h for p in listed for h in p.hosts)
            error(
                where,
                f"booking URL is on {verdict.host}, which none of the listed providers use "
                f"({domains})",
            )
        elif verdict.placeholder:
            warning(where, verdict.reason)
        elif verdict.provider and verdict.provider not in booking.providers:
            warning(where, f"points at {verdict.provider}, which is not a listed provider")

    # Content the policy requires.
    if len(template.faqs) < min_faqs:
        error("faqs", f"needs at least {min_faqs} FAQs (has {len(template.faqs)})")
    if "crisis" in requires:
        if template.crisis is None:
            error("crisis", "this vertical must carry crisis rules")
        else:
            for needed in industry.crisis_must_mention if industry else ():
                if needed not in template.crisis.response:
                    error("crisis.response", f"must name {needed}")
            if not template.crisis.keywords:
                error("crisis.keywords", "this vertical must add its own crisis keywords")
    if "compliance" in requires and template.compliance is None:
        error("compliance", "this vertical must carry compliance rules")
    if "catalog" in requires and not template.catalog:
        error("catalog", "this vertical must carry a service catalogue")
    for i, keyword in enumerate(template.suggest_keywords):
        if keyword != keyword.lower():
            error(f"suggest_keywords[{i}]", "keywords must be lower case")
    return problems


def validate_stored(
    rows: Sequence[StoredTemplate], policy: TemplatePolicy | None = None
) -> ValidationReport:
    """Check the active stored templates, and that every industry is present."""
    policy = policy or load_policy()
    report = ValidationReport()
    active = [r for r in rows if r.is_active]
    for row in active:
        report.checked.append(row.template_id)
        template, lines = schema_problems(row.document)
        for line in lines:
            where, _, message = line.partition(": ")
            report.problems.append(Problem(row.template_id, where, message))
        if template is None:
            continue
        if template.id != row.template_id:
            report.problems.append(Problem(row.template_id, "id", f"document says '{template.id}'"))
        if template.key != row.key or template.version != row.version:
            report.problems.append(
                Problem(row.template_id, "version", "row and document disagree on key/version")
            )
        if content_hash(template) != row.content_hash:
            report.problems.append(
                Problem(
                    row.template_id,
                    "content_hash",
                    "stored document was changed outside `tcai templates seed`; re-seed",
                )
            )
        report.problems.extend(
            Problem(row.template_id, p.field, p.message, p.severity)
            for p in check_template(template, policy)
        )
    for dup in _duplicates(r.key for r in active):
        report.problems.append(Problem(dup, "key", "more than one active template has this key"))
    present = {r.template_id for r in active}
    for industry in policy.industries:
        if industry.template_id not in present:
            report.problems.append(
                Problem(
                    industry.template_id,
                    "template",
                    "missing or inactive; run `tcai templates seed`",
                )
            )
    return report


def validate_files(templates: Sequence[Template]) -> ValidationReport:
    """Semantic rules on parsed files (the schema already passed in the loader)."""
    policy = load_policy()
    report = ValidationReport()
    for template in templates:
        report.checked.append(template.id)
        report.problems.extend(check_template(template, policy))
    return report
