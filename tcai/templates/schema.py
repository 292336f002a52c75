"""The one typed shape of an industry template.

Seeding, validation, provisioning and the chat engine all read templates through
`Template`; nothing else in tcai knows what a template file looks like. The models check
structure and local rules (types, ranges, formats, one primary chip). Rules that need the
platform's policy (which verticals need crisis rules, known providers, payment hosts,
placeholder URLs) live in `tcai.templates.validation`, because they are ours, not the
template author's.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][A-Za-z0-9_]{0,62}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
HexColour = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]

Tone = Literal["professional", "friendly", "casual", "compassionate", "informative"]
BehaviorPreset = Literal[
    "support_lead_focused",
    "sales_focused_soft",
    "support_only",
    "compliance_strict",
    "sales_heavy",
]
BookingMode = Literal["internal", "external"]
CtaAction = Literal["tour", "consult", "book", "reserve", "estimate", "call"]
CtaKind = Literal["primary", "secondary", "link"]
IntakeType = Literal["text", "email", "phone", "date", "time", "select", "textarea", "number"]

PROMPT_PLACEHOLDERS = frozenset({"business_name"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Service(_Model):
    name: ShortText
    description: LongText


class Faq(_Model):
    question: ShortText
    answer: LongText


class Theme(_Model):
    primary_color: HexColour
    welcome_message: LongText


class QuickReply(_Model):
    id: Identifier
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    prompt: ShortText
    primary: bool = False
    cta: Identifier | None = None
    """Optional id of a booking CTA this chip triggers."""


class Disclaimer(_Model):
    title: ShortText
    text: LongText


class IntakeOption(_Model):
    value: Identifier
    label: ShortText


class IntakeField(_Model):
    key: FieldKey
    label: ShortText
    type: IntakeType
    required: bool = False
    options: tuple[IntakeOption, ...] = ()
    placeholder: str | None = None

    @field_validator("options")
    @classmethod
    def _unique_option_values(cls, options: tuple[IntakeOption, ...]) -> tuple[IntakeOption, ...]:
        values = [o.value for o in options]
        if len(values) != len(set(values)):
            raise ValueError("option values must be unique")
        return options


class BookingCta(_Model):
    id: Identifier
    label: ShortText
    kind: CtaKind
    appointment_type: Identifier | None = None
    external_url: Url | None = None


class AppointmentType(_Model):
    id: Identifier
    label: ShortText
    mode: BookingMode
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)] | None = None
    description: str | None = None
    external_url_override: Url | None = None
    intake_fields: tuple[IntakeField, ...] = ()
    confirmation_message: LongText


class BookingFailsafe(_Model):
    external_missing_url_behavior: Literal["pivot_to_internal"]
    pivot_appointment_type: Identifier


class BookingDisclaimer(_Model):
    enabled: bool
    text: str = ""


class BookingProfile(_Model):
    mode: BookingMode
    primary_cta: CtaAction
    secondary_cta: CtaAction | None = None
    providers: tuple[ShortText, ...] = ()
    default_provider: ShortText | None = None
    booking_url: Url | None = None
    ctas: Annotated[tuple[BookingCta, ...], Field(min_length=1)]
    appointment_types: Annotated[tuple[AppointmentType, ...], Field(min_length=1)]
    failsafe: BookingFailsafe
    disclaimer: BookingDisclaimer | None = None


class CrisisRules(_Model):
    keywords: tuple[ShortText, ...] = ()
    response: LongText


class ComplianceRules(_Model):
    rules: Annotated[tuple[ShortText, ...], Field(min_length=1)]
    """Instructions the assistant must follow, added to every system prompt."""


class CatalogItem(_Model):
    name: ShortText
    price_cents: Annotated[int, Field(ge=0, le=10_000_000)]
    price_from: bool = False
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)]
    category: Identifier
    booking_url: Url | None = None


class Business(_Model):
    type: ShortText
    services: Annotated[tuple[Service, ...], Field(min_length=1)]


class Template(_Model):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*_template$")]
    key: Identifier
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    name: ShortText
    icon: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]*$")]
    description: LongText
    business: Business
    prompt_intro: LongText
    faqs: Annotated[tuple[Faq, ...], Field(min_length=1)]
    tone: Tone
    formality: Annotated[int, Field(ge=0, le=100)]
    behavior_preset: BehaviorPreset = "support_lead_focused"
    theme: Theme
    quick_replies: Annotated[tuple[QuickReply, ...], Field(min_length=1, max_length=8)]
    disclaimer: Disclaimer
    booking: BookingProfile
    crisis: CrisisRules | None = None
    compliance: ComplianceRules | None = None
    catalog: tuple[CatalogItem, ...] = ()
    suggest_keywords: Annotated[tuple[ShortText, ...], Field(min_length=1)]

    @field_validator("quick_replies")
    @classmethod
    def _one_primary_chip(cls, chips: tuple[QuickReply, ...]) -> tuple[QuickReply, ...]:
        primaries = sum(1 for c in chips if c.primary)
        if primaries != 1:
            raise ValueError(f"exactly one quick reply must be primary (found {primaries})")
        return chips

    @field_validator("prompt_intro")
    @classmethod
    def _known_placeholders(cls, text: str) -> str:
        unknown = {m for m in _PLACEHOLDER.findall(text)} - PROMPT_PLACEHOLDERS
        if unknown:
            allowed = ", ".join("{" + p + "}" for p in sorted(PROMPT_PLACEHOLDERS))
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {allowed}")
        return text

    def get_appointment_type(self, type_id: str) -> AppointmentType | None:
        return next((a for a in self.booking.appointment_types if a.id == type_id), None)
