"""The public HTTP API's bodies as Pydantic models: the one source of their shape.

The handlers validate every request body through these models (after `_json_body` in
`tcai/daemon/handlers.py` has parsed it with its guards), and `tcai/daemon/openapi.py`
builds the published document's schemas from them (docs/http-api.md, "The contract").
Responses are still written as plain dicts on the hot path (the chat turn, the health
probe); tests/daemon/test_openapi.py validates real responses of every route against
these models, so a dict that drifts from its model fails there.

What this module does not own: the rules behind a value (a message's length after
cleaning, a booking link's verdict, a session id's uniqueness) stay in the core; a model
only says what a well-formed body looks like.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError
from pydantic.json_schema import SkipJsonSchema

from tcai.chat.pipeline import MAX_MESSAGE_CHARS, SESSION_ID
from tcai.errors import InvalidMessage

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$"
"""Client and bot ids in paths (`handlers.IDENTIFIER`, matched whole)."""
REQUEST_ID_PATTERN = r"^[A-Za-z0-9-]{8,64}$"
SessionId = Annotated[
    str,
    Field(
        pattern=SESSION_ID.pattern,
        description="The conversation's id, as the previous reply gave it.",
        examples=["visitor-0001"],
    ),
]
Source = Literal["llm", "faq", "failsafe", "crisis", "automation", "paused", "limit"]


class _Request(BaseModel):
    """A request body: strict types (no "42" for 42, no 42 for "42"); unknown keys are
    ignored (the server keeps the transcript, so a client's history is simply dropped)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    usage: ClassVar[str]
    """How to send this body, appended to every validation error's message."""


class _Response(BaseModel):
    """A response body: exactly these keys (a new key is a change of the contract)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound="_Request")


# ---- requests ---------------------------------------------------------------------------


class ChatMessage(_Request):
    """`POST /api/chat/{client_id}/{bot_id}`: one visitor message."""

    usage: ClassVar[str] = 'send {"message": "…", "session_id": "…"}'
    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        description=(
            "The visitor's message: 1 to 2,000 characters, also after control characters "
            "and surrounding spaces are removed."
        ),
        examples=["What are your hours?"],
    )
    session_id: SessionId | None = Field(
        default=None,
        description="Absent on a conversation's first message: the reply gives a new id.",
    )


class BookingClick(_Request):
    """`POST /api/booking/click`: the visitor followed a `booking_redirect`."""

    usage: ClassVar[str] = 'send {"url": "https://…", "session_id": "…"}'
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="The booking link followed: one tcai would send (https, no payment page).",
        examples=["https://squareup.com/appointments/book/fade-factory"],
    )
    session_id: SessionId | None = None


def parse_body(model: type[M], body: dict[str, Any]) -> M:
    """`body` (already parsed by the handler's guarded JSON reader) as `model`, or
    `InvalidMessage` (400 `invalid_message`) naming the first field that is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidMessage(_explain(exc, model.usage)) from None


def _explain(exc: ValidationError, usage: str) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "the body"
    limits = error.get("ctx") or {}
    reasons = {
        "missing": "is required",
        "string_type": "must be a string",
        "string_too_short": "must not be empty",
        "string_too_long": f"must be at most {limits.get('max_length', 0):,} characters",
        "string_pattern_mismatch": "does not have the expected form",
    }
    reason = reasons.get(error["type"], f"is not valid ({str(error['msg']).lower()})")
    if field == "session_id" and error["type"] == "string_pattern_mismatch":
        reason = "must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'"
    return f"{field} {reason}; {usage}"


# ---- responses --------------------------------------------------------------------------


class DatabaseHealth(_Response):
    ok: bool
    latency_ms: float = Field(ge=0, description="How long the last `SELECT 1` took.")


class Health(_Response):
    """`GET /api/health`: 200 with `ok`, 503 with `degraded`."""

    status: Literal["ok", "degraded"]
    timestamp: datetime = Field(description="When the database was last checked (UTC).")
    version: str
    db: DatabaseHealth


class QuickReply(_Response):
    id: str
    label: str
    prompt: str


class _WidgetConfigBase(_Response):
    client_id: str = Field(pattern=IDENTIFIER_PATTERN)
    bot_id: str = Field(pattern=IDENTIFIER_PATTERN)
    name: str
    welcome_message: str
    primary_color: str
    position: Literal["bottom-right", "bottom-left"]
    quick_replies: list[QuickReply]
    booking_mode: Literal["internal", "external"]
    phone: str | None = Field(description="The business's phone, for display.")
    disclaimer: str | None
    token: str = Field(description="The widget token (a JWT) for chat and click requests.")
    token_expires_at: datetime


class ActiveWidgetConfig(_WidgetConfigBase):
    """A bot that chats."""

    status: Literal["active"]
    paused_message: None


class PausedWidgetConfig(_WidgetConfigBase):
    """A paused bot (or workspace, or a draft): the widget shows `paused_message`."""

    status: Literal["paused"]
    paused_message: str


class WidgetConfig(
    RootModel[Annotated[ActiveWidgetConfig | PausedWidgetConfig, Field(discriminator="status")]]
):
    """`GET /api/widget/config/{client_id}/{bot_id}`."""


class BookingRedirect(_Response):
    """Send the visitor to the provider's own booking page."""

    type: Literal["booking_redirect"]
    url: str = Field(pattern=r"^https://")
    label: str
    provider: str | None


class BookingRequested(_Response):
    """An internal request the team follows up."""

    type: Literal["booking_requested"]
    appointment_type: str
    label: str


Action = Annotated[BookingRedirect | BookingRequested, Field(discriminator="type")]


def _no_default(schema: dict[str, Any]) -> None:
    """An absent key is not a null one: the schema names no default."""
    schema.pop("default", None)


class ChatReply(_Response):
    """A chat turn's reply: the JSON body, and the `done` event of a stream."""

    reply: str
    session_id: str = Field(pattern=SESSION_ID.pattern)
    source: Source
    actions: list[Action] = Field(max_length=1)
    lead_captured: bool
    quick_replies: list[QuickReply]
    status: Literal["paused", "limit_reached", "unavailable"] | SkipJsonSchema[None] = Field(
        default=None,
        description="Present only when the turn was refused.",
        json_schema_extra=_no_default,
    )


class StreamChunk(_Response):
    """A streamed chat reply's `chunk` event."""

    text: str


class ErrorDetail(_Response):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["origin_not_allowed"])
    message: str


class Error(_Response):
    """The one error shape of every API and widget route."""

    error: ErrorDetail
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)


class StreamError(_Response):
    """A streamed chat reply's `error` event (the request id is in `X-Request-Id`)."""

    error: ErrorDetail


PUBLIC_MODELS: tuple[type[BaseModel], ...] = (
    ChatMessage,
    BookingClick,
    Health,
    WidgetConfig,
    ChatReply,
    StreamChunk,
    StreamError,
    Error,
)
"""Every model the published document names (their parts come along as `$defs`)."""
