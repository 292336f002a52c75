"""Structured JSON-lines logs in LOG_DIR, rotated, with personal data kept out.

The access log records the canonical route (never the raw path or query, which may carry
tokens), the status, the duration, the request id and an anonymised client address
(IPv4 /24, IPv6 /48). Free text that may contain a visitor's words goes through
`redact_contacts` first.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import json
import logging
import logging.handlers
import os
import queue
import threading
from pathlib import Path
from typing import Any

from tcai.db.types import utcnow

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


@functools.lru_cache(maxsize=4096)
def anonymise_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class OwnerOnlyRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating log file created readable by its owner only (0600), whatever the
    umask: the logs name bots, workspaces and request paths."""

    def _open(self) -> Any:
        return open(
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=lambda path, flags: os.open(path, flags, 0o600),
        )


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


class AccessLog:
    """The daemon's access log: one JSON line per request, written with one `os.write`
    to a file opened for appending — no logging records, handler lock or formatter, and
    no `stat` per line (the size is counted here), so a line costs a few microseconds on
    the event loop. Rotated like the other logs (`MAX_BYTES` × `BACKUPS`); new files are
    readable by their owner only. Each process writes its own file."""

    def __init__(
        self, path: Path, name: str, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS
    ) -> None:
        self.path, self.name = path.resolve(), name
        self.max_bytes, self.backups = max_bytes, backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = -1
        self._size = 0
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, event: str, **fields: Any) -> None:
        document = {
            "ts": utcnow().isoformat(),
            "level": "info",
            "logger": self.name,
            "event": event,
            **fields,
        }
        line = (json.dumps(document, ensure_ascii=False, default=str) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return
            if self._size + len(line) > self.max_bytes and self._size > 0:
                self._rotate()
            try:
                os.write(self._fd, line)
            except OSError:
                return  # a full disk must not fail the request being logged
            self._size += len(line)

    def _rotate(self) -> None:
        os.close(self._fd)
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._open()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


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
        handler = OwnerOnlyRotatingFile(
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
