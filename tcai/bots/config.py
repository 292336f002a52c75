"""A bot's configuration: the template it came from, merged with the business
(docs/architecture.md, "bots").

`BotConfig` keeps a full snapshot of the template (so a template change never silently
changes a live bot, and nothing of the template — booking profile, quick replies,
disclaimer, crisis rules — can be dropped on the way), the business's own facts, and
the bot's settings. The merged views the chat engine needs (FAQs, services, quick
replies, crisis keywords, preset) are properties here, computed one way for everyone.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import regex
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)

from tcai.templates.schema import (
    BehaviorPreset,
    Faq,
    HexColour,
    Identifier,
    LongText,
    QuickReply,
    Service,
    ShortText,
    Template,
)
from tcai.text.normalise import normalise

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def parse_span(span: str) -> tuple[time, time]:
    match = _SPAN.match(span.strip())
    if not match:
        raise ValueError(f"'{span}' is not a time span like 09:00-17:30")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start = time(h1, m1)
    end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"'{span}' ends before it starts")
    return start, end


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is not an IANA time zone such as America/New_York") from None
    return name


class BusinessFacts(_Model):
    name: ShortText
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    website: str | None = None
    timezone: str = "America/New_York"
    hours: dict[Weekday, tuple[str, ...]] = Field(default_factory=dict)
    """Opening spans per weekday ("09:00-17:00"); a day with () is closed; no days = unknown."""
    services: tuple[Service, ...] = ()
    faqs: tuple[Faq, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[Weekday, tuple[str, ...]]) -> dict[Weekday, tuple[str, ...]]:
        for spans in value.values():
            for span in spans:
                parse_span(span)
        return value

    def is_open(self, now: datetime) -> bool | None:
        """True/False in the business's time zone; None when hours are unknown."""
        if not self.hours:
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        spans = self.hours.get(WEEKDAYS[local.weekday()], ())
        moment = local.time()
        return any(start <= moment < end for start, end in map(parse_span, spans))

    def hours_text(self) -> str | None:
        if not self.hours:
            return None
        names = {
            "mon": "Mon",
            "tue": "Tue",
            "wed": "Wed",
            "thu": "Thu",
            "fri": "Fri",
            "sat": "Sat",
            "sun": "Sun",
        }
        parts = []
        for day in WEEKDAYS:
            spans = self.hours.get(day, ())
            parts.append(f"{names[day]} {', '.join(spans) if spans else 'closed'}")
        return "; ".join(parts)


class BookingSettings(_Model):
    url: Url | None = None
    provider: str | None = None
    service_urls: dict[str, Url] = Field(default_factory=dict)
    """Per-service booking links: service or catalogue item name → URL."""


class AutomationRule(_Model):
    id: Identifier
    match: Literal["exact", "contains", "starts_with", "ends_with", "regex"]
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    reply: LongText
    enabled: bool = True

    @model_validator(mode="after")
    def _compiles(self) -> AutomationRule:
        if self.match == "regex":
            try:
                regex.compile(self.pattern)
            except regex.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return self


class WidgetLook(_Model):
    primary_color: HexColour | None = None
    position: Literal["bottom-right", "bottom-left"] = "bottom-right"
    welcome_message: str | None = None
    quick_replies: tuple[QuickReply, ...] | None = None


class CanarySpec(_Model):
    """An operator's canary: a visitor question and the texts its answer must contain
    (each one, case and spacing aside; docs/canaries.md)."""

    question: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    expect: Annotated[
        tuple[Annotated[str, StringConstraints(min_length=1, max_length=200)], ...],
        Field(min_length=1, max_length=10),
    ]


DEFAULT_LEAD_TRIGGERS = (
    "price",
    "pricing",
    "how much",
    "quote",
    "estimate",
    "cost",
    "availability",
    "available",
    "call me",
)


class BotConfig(_Model):
    schema_version: Literal[1] = 1
    template: Template
    business: BusinessFacts
    booking: BookingSettings = BookingSettings()
    behavior_preset: BehaviorPreset | None = None
    lead_capture: bool = True
    lead_capture_triggers: tuple[ShortText, ...] = DEFAULT_LEAD_TRIGGERS
    after_hours_message: str | None = None
    after_hours_mode: Literal["prepend", "replace"] = "prepend"
    automations: tuple[AutomationRule, ...] = ()
    crisis_keywords: tuple[ShortText, ...] = ()
    """Added to the platform baseline and the template's keywords, never replacing them."""
    webhook_url: Url | None = None
    webhook_secret: str | None = None
    notify_emails: tuple[str, ...] = ()
    widget: WidgetLook = WidgetLook()
    canaries: Annotated[tuple[CanarySpec, ...], Field(max_length=20)] = ()
    """The operator's own canary questions, run beside those derived from the facts."""

    @model_serializer(mode="wrap")
    def _omit_no_canaries(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Stored documents written before canaries existed stay equal to a fresh dump,
        # so a change never reports "canaries" as changed when it was not.
        data = handler(self)
        if isinstance(data, dict) and not data.get("canaries"):
            data.pop("canaries", None)
        return data

    @property
    def preset(self) -> str:
        return self.behavior_preset or self.template.behavior_preset

    @property
    def faqs(self) -> tuple[Faq, ...]:
        """Template FAQs plus the business's, one per normalised question; the business's
        answer wins where both ask the same thing."""
        merged: dict[str, Faq] = {}
        for faq in (*self.template.faqs, *self.business.faqs):
            merged[normalise(faq.question)] = faq
        return tuple(merged.values())

    @property
    def services(self) -> tuple[Service, ...]:
        merged: dict[str, Service] = {}
        for service in (*self.template.business.services, *self.business.services):
            merged[normalise(service.name)] = service
        return tuple(merged.values())

    @property
    def quick_replies(self) -> tuple[QuickReply, ...]:
        return self.widget.quick_replies or self.template.quick_replies

    @property
    def crisis_keywords_all(self) -> tuple[str, ...]:
        own = self.template.crisis.keywords if self.template.crisis else ()
        return (*own, *self.crisis_keywords)

    @property
    def primary_color(self) -> str:
        return self.widget.primary_color or self.template.theme.primary_color

    @property
    def welcome_message(self) -> str:
        return self.widget.welcome_message or self.template.theme.welcome_message

    def public_dict(self) -> dict[str, Any]:
        """The document with the webhook secret masked (for `bots show` and audits)."""
        document = self.model_dump(mode="json")
        if document.get("webhook_secret"):
            document["webhook_secret"] = "********"
        return document
