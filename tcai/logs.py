"""Structured JSON-lines logs in LOG_DIR, rotated, with personal data kept out.

The access log records the canonical route (never the raw path or query, which may carry
tokens), the status, the duration, the request id and an anonymised client address
(IPv4 /24, IPv6 /48). Free text that may contain a visitor's words goes through
`redact_contacts` first.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import logging.handlers
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


def make_file_logger(name: str, log_dir: Path, filename: str) -> logging.Logger:
    """A logger writing JSON lines to LOG_DIR/filename with size-based rotation."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    target = (log_dir / filename).resolve()
    if not any(getattr(h, "baseFilename", None) == str(target) for h in logger.handlers):
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
    return logger


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    logger.info(event, extra={"fields": fields})
