"""`tcai templates sweep`: the industry matrix, one row per behaviour per template.

Where `validate` asks "is this document well-formed and within policy", the sweep asks
"does the platform behave right with it": the booking-URL judge on each provider's real
host, on hostile links and on look-alikes of each provider's domain, the booking decision
with and without links for each appointment type, references, intake fields, crisis and
compliance behaviour, required content and freedom from payment flows. Every check
compares an outcome with an expectation, so a broken template or a broken engine fails it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tcai.bots.config import BookingSettings, BotConfig, BusinessFacts
from tcai.chat.booking import decide_booking
from tcai.chat.crisis import CrisisDetector
from tcai.chat.prompt import build_system_prompt
from tcai.quality.checks import CheckReport
from tcai.templates.policy import load_policy
from tcai.templates.providers import classify_booking_url, load_registry
from tcai.templates.schema import Template
from tcai.templates.validation import check_template

CARD_FIELD_WORDS = ("card", "cvc", "cvv", "iban", "expiry", "billing")
HOSTILE_URLS = (
    ("http", "http://{host}/book"),
    ("javascript", "javascript:alert(document.cookie)"),
    ("data", "data:text/html,<script>alert(1)</script>"),
    ("file", "file:///etc/passwd"),
    ("scheme-less", "//{host}/book"),
    ("bare host", "{host}/book"),
    ("stripe", "https://buy.stripe.com/test_123"),
    ("paypal", "https://www.paypal.com/checkoutnow?token=1"),
    ("checkout path", "https://{host}/checkout/session"),
)


# Look-alikes of a provider's host: a longer host that starts with it, one that merely
# ends in its letters, and one with a Cyrillic letter in place of a Latin one.
HOMOGLYPHS = {"o": "\u043e", "a": "\u0430", "e": "\u0435", "c": "\u0441", "p": "\u0440"}
LOOK_ALIKES = (
    ("suffix look-alike", "https://{host}.evil.example/book"),
    ("prefix look-alike", "https://evil{host}/book"),
    ("homoglyph look-alike", "https://{homoglyph}/book"),
)


def _providers(template: Template) -> list[tuple[str, str]]:
    """(provider name, its first host) for each provider of the template with hosts."""
    registry = load_registry()
    found = []
    for name in template.booking.providers:
        provider = registry.get(name)
        if provider and provider.hosts:
            found.append((provider.name, provider.hosts[0]))
    return found


def _hosts(template: Template) -> list[str]:
    return [host for _, host in _providers(template)] or ["www.example-business.com"]


def _homoglyph(host: str) -> str | None:
    name, dot, rest = host.partition(".")
    for index, char in enumerate(name):
        if char in HOMOGLYPHS:
            return name[:index] + HOMOGLYPHS[char] + name[index + 1 :] + dot + rest
    return None


def _config(template: Template, url: str | None, provider: str | None = None) -> BotConfig:
    return BotConfig(
        template=template,
        business=BusinessFacts(name="Sweep Test Co", phone="+17725550100"),
        booking=BookingSettings(url=url, provider=provider),
    )


def _walk_urls(document: Any) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for value in document.values():
            found += _walk_urls(value)
    elif isinstance(document, list):
        for value in document:
            found += _walk_urls(value)
    elif isinstance(document, str) and "://" in document:
        found.append(document)
    return found


def sweep_template(report: CheckReport, template: Template) -> None:
    tid = template.id
    check = report.check
    policy = load_policy().for_key(template.key)
    registry = load_registry()

    # Booking-URL judge on this template's providers.
    for host in _hosts(template):
        good = classify_booking_url(f"https://{host}/book/sweep")
        check(
            f"{tid}: https link on {host} accepted", good.ok and not good.placeholder, good.reason
        )
        placeholder = classify_booking_url(f"https://{host}/YOUR_BUSINESS_ID/book")
        check(
            f"{tid}: placeholder on {host} flagged",
            placeholder.ok and placeholder.placeholder,
            placeholder.reason,
        )
    host = _hosts(template)[0]
    for label, pattern in HOSTILE_URLS:
        verdict = classify_booking_url(pattern.format(host=host))
        check(f"{tid}: {label} link refused", not verdict.ok, verdict.reason)
    for name, provider_host in _providers(template):
        homoglyph = _homoglyph(provider_host)
        for label, pattern in LOOK_ALIKES:
            if "{homoglyph}" in pattern and homoglyph is None:
                continue
            verdict = classify_booking_url(
                pattern.format(host=provider_host, homoglyph=homoglyph), name
            )
            check(
                f"{tid}: {label} of {provider_host} refused for {name}",
                not verdict.ok and verdict.provider != name,
                verdict.reason,
            )

    # Booking decisions, with and without a link.
    booking = template.booking
    pivot = template.get_appointment_type(booking.failsafe.pivot_appointment_type)
    without = decide_booking(_config(template, None), "I'd like to book")
    check(
        f"{tid}: no link → internal request",
        without.handling == "internal" and without.url is None,
        f"{without.handling}: {without.reason}",
    )
    good_url = f"https://{host}/book/sweep"
    with_link = decide_booking(_config(template, good_url), "I'd like to book")
    if booking.mode == "external":
        check(
            f"{tid}: https link → redirect",
            with_link.handling == "external" and with_link.url == good_url,
            with_link.reason,
        )
        provider = _providers(template)[0][0] if _providers(template) else None
        for label, bad in (
            ("http", f"http://{host}/book"),
            ("payment", "https://buy.stripe.com/x1"),
            ("placeholder", f"https://{host}/YOUR_BUSINESS/book"),
            ("look-alike", f"https://{host}.evil.example/book"),
        ):
            decision = decide_booking(_config(template, bad, provider), "book")
            check(
                f"{tid}: {label} link → pivot",
                decision.handling == "internal"
                and decision.appointment_type == booking.failsafe.pivot_appointment_type,
                decision.reason,
            )
    else:
        check(
            f"{tid}: internal mode ignores links",
            with_link.handling == "internal",
            with_link.reason,
        )
    for appt in booking.appointment_types:
        if appt.mode == "external":
            check(
                f"{tid}: {appt.id} has a way to finish",
                booking.mode == "external",
                "external type in an external profile",
            )
        else:
            fields = {f.key: f for f in appt.intake_fields}
            phone = fields.get("phone")
            check(
                f"{tid}: {appt.id} collects a phone number",
                phone is not None and phone.required,
                "internal requests need a required phone field",
            )
    check(
        f"{tid}: pivot is internal",
        pivot is not None and pivot.mode == "internal",
        booking.failsafe.pivot_appointment_type,
    )

    # References and required content (the validator's rules, as one row each).
    problems = [p for p in check_template(template) if p.severity == "error"]
    refs = [p for p in problems if "cta" in p.field or "appointment_type" in p.field]
    check(f"{tid}: CTA references resolve", not refs, "; ".join(p.line() for p in refs))
    other = [p for p in problems if p not in refs]
    check(f"{tid}: required fields and policy", not other, "; ".join(p.line() for p in other[:3]))
    check(f"{tid}: disclaimer present", bool(template.disclaimer.text.strip()))
    prompt = build_system_prompt(_config(template, None))
    check(f"{tid}: disclaimer in prompt", template.disclaimer.text in prompt)

    # Crisis and compliance.
    detector = CrisisDetector(template.crisis.keywords if template.crisis else ())
    check(
        f"{tid}: platform crisis baseline active",
        detector.detect("I want to kill myself") is not None,
    )
    check(
        f"{tid}: no crisis on ordinary text", detector.detect("Is there good food today?") is None
    )
    if template.crisis:
        fired = [k for k in template.crisis.keywords if detector.detect(f"well, {k}.") is None]
        check(f"{tid}: its crisis keywords fire", not fired, f"silent: {fired}")
    if policy and "crisis" in policy.requires:
        response = template.crisis.response if template.crisis else ""
        missing = [n for n in policy.crisis_must_mention if n not in response]
        check(f"{tid}: crisis response names helplines", not missing, f"missing {missing}")
    if policy and "compliance" in policy.requires:
        rules = template.compliance.rules if template.compliance else ()
        check(f"{tid}: compliance rules in prompt", bool(rules) and all(r in prompt for r in rules))

    # Payment freedom.
    urls = _walk_urls(template.model_dump(mode="json"))
    payment = [u for u in urls if any(p in u for p in registry.payment_hosts)]
    check(f"{tid}: no payment links", not payment, f"{payment}")
    card_fields = [
        f"{a.id}.{f.key}"
        for a in booking.appointment_types
        for f in a.intake_fields
        if any(w in f.key.lower() for w in CARD_FIELD_WORDS)
    ]
    check(f"{tid}: no card-entry fields", not card_fields, f"{card_fields}")
    check(
        f"{tid}: prompt forbids taking payment",
        "never ask for payment or card details" in prompt.lower()
        or "never ask for or accept payment" in prompt.lower(),
    )


def run_sweep(templates: Sequence[Template]) -> CheckReport:
    started = time.monotonic()
    report = CheckReport()
    if not templates:
        report.check("templates", False, "no templates stored; run `tcai templates seed`")
    for template in templates:
        sweep_template(report, template)
    report.seconds = time.monotonic() - started
    return report
