"""Settings: every variable of the README's configuration table, read once, validated, passed down.

`load_settings()` is the only place tcai reads the environment (and an optional `.env`
file). It reports every problem at once as `ConfigError.details`, one line per variable,
and never puts a secret's value in a message. Nothing here runs at import time.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tcai.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///./tcai.db"
MIN_SECRET_LENGTH = 32
SECRET_FIELDS = (
    "openai_api_key",
    "session_secret",
    "widget_secret",
    "widget_secret_previous",
    "smtp_password",
    "metrics_token",
)

# Lower-cased fragments that mark a value someone meant to replace.
_PLACEHOLDER_FRAGMENTS = (
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "replace",
    "your-secret",
    "your_secret",
    "yoursecret",
    "example",
    "dummy",
    "insecure",
    "xxxx",
    "secret",
    "password",
    "default",
    "todo",
)

Env = Literal["development", "production", "test"]
_ENV_ALIASES = {
    "development": "development",
    "dev": "development",
    "production": "production",
    "prod": "production",
    "test": "test",
    "testing": "test",
}
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:]+\](:\d{1,5})?$"
)


def is_placeholder_secret(value: str) -> bool:
    lowered = value.lower()
    if any(fragment in lowered for fragment in _PLACEHOLDER_FRAGMENTS):
        return True
    return len(set(value)) < 10  # "aaaa…", "abcabc…": long but guessable


def normalise_database_url(url: str) -> str:
    """Map the URL forms operators paste to the drivers tcai uses (psycopg 3, sqlite3)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("must look like sqlite:///path/to/tcai.db or postgresql://user@host/db")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return f"sqlite://{rest}"
    raise ValueError(
        f"unsupported scheme '{scheme}'; use sqlite:///path/to/tcai.db or postgresql://…"
    )


_RATE = re.compile(
    r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE
)
_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_alert_target(value: str) -> str:
    """An alert target: an http(s) webhook URL or an e-mail address."""
    value = value.strip()
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"'{value}' is not an http(s) URL such as https://hooks.agency.example/tcai"
            )
        return value
    if not _EMAIL.match(value):
        raise ValueError(
            f"'{value}' is neither a webhook URL nor an e-mail address such as ops@agency.example"
        )
    return value


def mask_url_password(url: str) -> str:
    """'postgresql://tcai:s3cret@db/tcai' → 'postgresql://tcai:***@db/tcai': a URL's
    password never reaches output (`tcai config show`, messages, the portal)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{tail}"


def parse_rate(text: str) -> tuple[int, float]:
    """'30/minute', '500 per hour', '10/5 minutes' → (hits, window in seconds)."""
    match = _RATE.match(text)
    if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
        raise ValueError(f"'{text}' is not a rate such as 30/minute or 500/hour")
    count, multiple, unit = match.groups()
    return int(count), float(int(multiple or 1) * _RATE_UNITS[unit.lower()])


def parse_origin(value: str) -> str:
    origin = value.strip().rstrip("/")
    if not _ORIGIN.match(origin):
        raise ValueError(f"'{origin}' is not an origin like https://www.example.com")
    parts = urlsplit(origin)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def parse_network(value: str) -> str:
    """'10.0.0.0/8', '127.0.0.1', '::1' → a normalised CIDR network."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(
            f"'{value.strip()}' is not an address or CIDR network like 10.0.0.0/8"
        ) from None


TIMEOUT_MARGIN_MS = 1000
"""REQUEST_TIMEOUT_MS must exceed LLM_TIMEOUT_MS by at least this much."""


class Settings(BaseSettings):
    """The validated configuration. Field order matters: `tcai_env` is checked first so
    the other validators can apply the production rules."""

    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, frozen=True, validate_default=True
    )

    tcai_env: Env = Field(
        default="development", validation_alias=AliasChoices("TCAI_ENV", "NODE_ENV")
    )
    database_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    llm_timeout_ms: Annotated[int, Field(ge=100, le=120_000)] = 4500
    session_secret: SecretStr | None = None
    widget_secret: SecretStr | None = None
    widget_secret_previous: SecretStr | None = None
    widget_secret_rotated_at: datetime | None = None
    widget_allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    public_url: str | None = None
    """The daemon's own public origin (https://chat.agency.example). In production the
    widget trusts this, never the request's Host header, as its own origin."""
    metrics_token: SecretStr | None = None
    """Set: `/metrics` wants `Authorization: Bearer <it>`. Unset: `/metrics` answers only
    loopback peers (404 to anyone else)."""
    session_idle_timeout_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    login_max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    login_lockout_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_dir: Path = Path("logs")
    demo_safe_mode: bool = False
    request_timeout_ms: Annotated[int, Field(ge=1000, le=600_000)] = 30_000
    chat_rate_limit: str = "30/minute"
    """Per visitor: one session from one client address, on one bot."""
    chat_address_rate_limit: str = "60/minute"
    """Per client address on one bot, whatever sessions it invents."""
    chat_bot_rate_limit: str = "120/minute"
    """Per bot, across everyone: over it, turns are answered from the business's facts
    without the LLM (never refused), so an abuser cannot switch a bot off."""
    redis_url: str | None = None
    """Set: rate limits and the portal's login throttle are shared through Redis by
    every process and host. Unset: each process counts on its own."""
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """CIDR networks of reverse proxies whose X-Forwarded-For / Forwarded name the
    client. A request from any other peer is its own client; headers are ignored."""
    header_timeout_seconds: Annotated[float, Field(ge=1, le=300)] = 10.0
    """A connection must deliver a request's headers within this long (slow clients)."""
    body_timeout_seconds: Annotated[float, Field(ge=1, le=300)] = 15.0
    """A request's body must arrive within this long once its headers have."""
    max_connections_per_address: Annotated[int, Field(ge=1, le=100_000)] = 64
    """Open connections one client address may hold; more are closed at once.
    Trusted proxies are exempt (they carry everyone)."""
    port: Annotated[int, Field(ge=1, le=65535)] = 5000
    host: str = "127.0.0.1"
    smtp_host: str | None = None
    """Unset: no owner e-mail notifications are queued at all."""
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_starttls: bool = True
    outbox_max_attempts: Annotated[int, Field(ge=1, le=100)] = 12
    webhook_allow_private: bool = False
    """Lets webhooks reach loopback and private addresses (and plain http): tests and
    development only, refused in production."""
    canary_interval_minutes: Annotated[int, Field(ge=0, le=7 * 24 * 60)] = 0
    """The daemon runs every bot's canary conversations this often and after every change
    of a bot's config (docs/canaries.md). 0: the daemon runs none (`tcai canary run` still
    does)."""
    canary_alerts: Annotated[tuple[str, ...], NoDecode] = ()
    """The agency's webhook URLs and e-mail addresses told when a bot's canaries start
    failing (once per failure streak) and when they pass again."""

    @property
    def is_production(self) -> bool:
        return self.tcai_env == "production"

    @property
    def is_sqlite(self) -> bool:
        return (self.database_url or "").startswith("sqlite")

    @property
    def smtp_enabled(self) -> bool:
        return self.smtp_host is not None

    @field_validator("tcai_env", mode="before")
    @classmethod
    def _env_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            normalised = _ENV_ALIASES.get(value.strip().lower())
            if normalised is None:
                raise ValueError("must be development, production or test")
            return normalised
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url(cls, value: str | None, info: ValidationInfo) -> str:
        if not value or not value.strip():
            if info.data.get("tcai_env") == "production":
                raise ValueError("required in production; set it to postgresql://user@host/db")
            value = DEFAULT_DATABASE_URL
        return normalise_database_url(value)

    @field_validator(
        "openai_api_key", "widget_secret_previous", "widget_secret_rotated_at", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_base_url", mode="after")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8080/v1")
        return value.strip().rstrip("/")

    @field_validator("session_secret", "widget_secret", mode="before")
    @classmethod
    def _blank_secret(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("session_secret", "widget_secret", "widget_secret_previous", mode="after")
    @classmethod
    def _secret_rules(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        production = info.data.get("tcai_env") == "production"
        hint = "run `tcai init` in a fresh directory for a .env with new secrets"
        if value is None:
            if production and info.field_name != "widget_secret_previous":
                raise ValueError(f"required in production; {hint}")
            return None
        secret = value.get_secret_value()
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters (has {len(secret)}); {hint}"
            )
        if production and is_placeholder_secret(secret):
            raise ValueError(f"looks like a placeholder, refused in production; {hint}")
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _blank_metrics_token(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("metrics_token", mode="after")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None or info.data.get("tcai_env") != "production":
            return value
        token = value.get_secret_value()
        hint = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        if len(token) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters in production "
                f"(has {len(token)}); {hint}"
            )
        if is_placeholder_secret(token):
            raise ValueError(f"looks like a placeholder, refused in production; {hint}")
        return value

    @field_validator("request_timeout_ms", mode="after")
    @classmethod
    def _request_timeout(cls, value: int, info: ValidationInfo) -> int:
        # Budgets nest (docs/chat-pipeline.md): a chat reply must leave well before the
        # request timeout turns it into a 504 and costs the visitor's contact details.
        llm = info.data.get("llm_timeout_ms")
        if isinstance(llm, int) and value < llm + TIMEOUT_MARGIN_MS:
            raise ValueError(
                f"must be at least LLM_TIMEOUT_MS + {TIMEOUT_MARGIN_MS} ms "
                f"({llm + TIMEOUT_MARGIN_MS}); it is {value}. Raise REQUEST_TIMEOUT_MS "
                "or lower LLM_TIMEOUT_MS"
            )
        return value

    @field_validator(
        "chat_rate_limit", "chat_address_rate_limit", "chat_bot_rate_limit", mode="after"
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return None
        value = value.strip()
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must look like redis://127.0.0.1:6379/0 (or rediss://, unix://)")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [item for item in value.split(",") if item.strip()]
        if isinstance(value, (list, tuple)):
            return tuple(parse_network(str(item)) for item in value)
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            return parse_origin(value)
        return None

    @field_validator("widget_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [item for item in value.split(",") if item.strip()]
        if isinstance(value, (list, tuple)):
            return tuple(parse_origin(str(item)) for item in value)
        return value

    @field_validator("smtp_host", "smtp_username", "smtp_password", "smtp_from", mode="before")
    @classmethod
    def _blank_smtp(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("smtp_from", mode="after")
    @classmethod
    def _smtp_from(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("smtp_host"):
                raise ValueError(
                    "required when SMTP_HOST is set; the sender address of owner "
                    "notifications, e.g. tcai@your-agency.example"
                )
            return None
        if not _EMAIL.match(value):
            raise ValueError("must be an e-mail address such as tcai@your-agency.example")
        return value

    @field_validator("canary_alerts", mode="before")
    @classmethod
    def _canary_alerts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, (list, tuple)):
            return tuple(parse_alert_target(str(item)) for item in value)
        return value

    @field_validator("webhook_allow_private", mode="after")
    @classmethod
    def _allow_private(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("tcai_env") == "production":
            raise ValueError(
                "refused in production: it lets webhooks reach private addresses; unset it"
            )
        return value

    def public_view(self) -> dict[str, Any]:
        """Every variable by its environment name, secrets masked."""
        view: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = None if value is None else "********"
            elif isinstance(value, str) and "://" in value:
                value = mask_url_password(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = ",".join(value)
            view[name.upper()] = value
        return view


def _problem_line(error: Mapping[str, Any]) -> str:
    loc = error.get("loc") or ("configuration",)
    name = str(loc[0]).upper()
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    return f"{name}: {message}"


def load_settings(env_file: Path | None = Path(".env")) -> Settings:
    """Read the environment (and `env_file` when it exists) into validated settings.

    Raises `ConfigError` listing every invalid variable; values never appear in it."""
    kwargs: dict[str, Any] = {}
    if env_file is not None and env_file.is_file():
        kwargs["_env_file"] = env_file
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        lines = sorted({_problem_line(e) for e in exc.errors(include_input=False)})
        raise ConfigError(f"the configuration has {len(lines)} problem(s)", details=lines) from None


def new_secret() -> str:
    """A fresh secret of 64 URL-safe characters that no placeholder rule refuses."""
    while True:
        candidate = secrets.token_urlsafe(48)
        if not is_placeholder_secret(candidate):
            return candidate
