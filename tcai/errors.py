"""The errors the core raises on purpose.

Every door maps a `TcaiError` to what its user sees: the CLI to one actionable line on
stderr and `exit_code`, the daemon to the JSON error shape with `http_status` and `code`.
Anything else that escapes is a bug, reported as such.
"""

from __future__ import annotations


class TcaiError(Exception):
    """A failure the user can act on. `message` is one sentence that says what to do."""

    exit_code = 1
    http_status = 500
    code = "error"

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class UsageError(TcaiError):
    """The command was called wrongly (a bad flag value, a malformed argument)."""

    exit_code = 2
    http_status = 400
    code = "bad_request"


class ConfigError(TcaiError):
    """The configuration is invalid; `details` holds one line per variable."""

    exit_code = 2
    http_status = 500
    code = "configuration_error"


class DatabaseUnavailable(TcaiError):
    """The database cannot be reached or opened."""

    exit_code = 2
    http_status = 503
    code = "database_unavailable"


class NotFound(TcaiError):
    exit_code = 1
    http_status = 404
    code = "not_found"


class Conflict(TcaiError):
    exit_code = 1
    http_status = 409
    code = "conflict"


class InvalidInput(TcaiError):
    """Input that is well-formed for the command but wrong for the domain."""

    exit_code = 1
    http_status = 422
    code = "invalid_input"


class TemplateFileError(TcaiError):
    """A template file could not be read or does not match the schema."""

    exit_code = 1
    code = "template_file_error"


class MigrationRequired(TcaiError):
    """The database schema is behind the code."""

    exit_code = 1
    http_status = 503
    code = "migration_required"


class Forbidden(TcaiError):
    exit_code = 1
    http_status = 403
    code = "forbidden"


class InvalidMessage(TcaiError):
    """A chat request that breaks the message or session-id rules (docs/chat-pipeline.md)."""

    exit_code = 2
    http_status = 400
    code = "invalid_message"


class RateLimited(TcaiError):
    exit_code = 1
    http_status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OriginNotAllowed(TcaiError):
    exit_code = 1
    http_status = 403
    code = "origin_not_allowed"


class BotUnavailable(TcaiError):
    """The bot exists but cannot serve right now (its stored config does not load)."""

    exit_code = 1
    http_status = 503
    code = "unavailable"
