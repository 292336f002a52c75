"""Structured JSON-lines logs in LOG_DIR, rotated, with personal data kept out.

The access log records the canonical route (never the raw path or query, which may carry
tokens), the status, the duration, the request id and an anonymised client address
(IPv4 /24, IPv6 /48). Free text that may contain a visitor's words goes through
`redact_contacts` first.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import logging
import logging.handlers
import queue
import threading
from pathlib import Path
from typing import Any

from tcai.db.types import utcnow

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


def anonymise_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": utcnow().isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            document.update(extra)
        return json.dumps(document, ensure_ascii=False, default=str)


def make_file_logger(
    name: str, log_dir: Path, filename: str
) -> tuple[logging.Logger, logging.Handler]:
    """A logger writing JSON lines to LOG_DIR/filename with size-based rotation; the
    handler is returned so its owner can close it on shutdown."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        (log_dir / filename).resolve(), maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(JsonLines())
    logger.addHandler(handler)
    return logger, handler


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    logger.info(event, extra={"fields": fields})


# ---- the application log ---------------------------------------------------------------

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tcai_request_id", default=None
)


class RedactPersonalData(logging.Filter):
    """E-mails, phone numbers and card numbers never reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from tcai.text.redact import redact_contacts

        message = record.getMessage()
        record.msg, record.args = redact_contacts(message), None
        record.request_id = request_id_var.get()
        return True


class JsonLinesWithRequest(JsonLines):
    def format(self, record: logging.LogRecord) -> str:
        document = json.loads(super().format(record))
        request_id = getattr(record, "request_id", None)
        if request_id:
            document["request_id"] = request_id
        if record.exc_info:
            from tcai.text.redact import redact_contacts

            document["error"] = redact_contacts(self.formatException(record.exc_info))[-2000:]
        return json.dumps(document, ensure_ascii=False, default=str)


class SystemLogHandler(logging.Handler):
    """Errors also go to the `system_log` table, where operators look first."""

    def __init__(self, engine: Any) -> None:
        super().__init__(level=logging.ERROR)
        self.engine = engine
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False) or record.name.startswith("sqlalchemy"):
            return
        self._busy.on = True
        try:
            from tcai.db.engine import session_scope
            from tcai.db.models import SystemLog

            details = {"request_id": getattr(record, "request_id", None), "logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                details["exception"] = record.exc_info[0].__name__
            with session_scope(self.engine) as session:
                session.add(
                    SystemLog(
                        level="critical" if record.levelno >= logging.CRITICAL else "error",
                        source=record.name[:80],
                        message=record.getMessage()[:2000],
                        details=details,
                    )
                )
        except Exception:  # the log must never take the process down
            pass
        finally:
            self._busy.on = False


class BackgroundSystemLog(logging.handlers.QueueHandler):
    """Hands error records to a thread that writes them to `system_log`, so logging an
    error never waits for a database connection the logging thread may itself hold."""

    def __init__(self, engine: Any) -> None:
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        super().__init__(self._queue)
        self.setLevel(logging.ERROR)
        self._listener = logging.handlers.QueueListener(self._queue, SystemLogHandler(engine))
        self._listener.start()
        self._running = True

    def flush(self) -> None:
        """Wait until every queued record is written (tests, shutdown)."""
        if self._running:
            self._listener.stop()
            self._listener.start()

    def close(self) -> None:
        if self._running:
            self._running = False
            self._listener.stop()
        super().close()


def setup_logging(
    log_dir: Path, level: str, engine: Any | None = None, filename: str = "tcai.jsonl"
) -> list[logging.Handler]:
    """tcai.* loggers → JSON lines in LOG_DIR (rotated, redacted) and errors → system_log.

    Returns the handlers it added, so the caller can remove them when it shuts down."""
    logger = logging.getLogger("tcai")
    logger.setLevel(level.upper())
    added: list[logging.Handler] = []
    target = (log_dir / filename).resolve()
    if not any(getattr(h, "baseFilename", None) == str(target) for h in logger.handlers):
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        handler.addFilter(RedactPersonalData())
        handler.setFormatter(JsonLinesWithRequest())
        added.append(handler)
    if engine is not None:
        system = BackgroundSystemLog(engine)
        system.addFilter(RedactPersonalData())
        added.append(system)
    for each in added:
        logger.addHandler(each)
    return added


def remove_handlers(handlers: list[logging.Handler], name: str = "tcai") -> None:
    logger = logging.getLogger(name)
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
