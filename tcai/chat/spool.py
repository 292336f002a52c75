"""The lead spool: where a visitor's contact details go when the database cannot take them.

This module owns the spool's format (one JSON object per line, `SpoolEntry`) and both
ends of it: the chat engine appends (`append`), `tcai leads recover` takes the file over
(`take`) and puts back what it could not import (`put_back`). See docs/chat-pipeline.md.

Durability: every append is fsync'd before the visitor's reply leaves. Appends and the
take-over hold an exclusive `flock` on the file, and an appender re-checks after locking
that its descriptor still is the spool (not a file `take` just renamed away), so a line
written while `tcai leads recover` runs is never lost: it lands either in the file being
imported or in the new spool.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

SPOOL_NAME = "lead-spool.jsonl"


def default_spool(log_dir: Path) -> Path:
    return Path(log_dir) / SPOOL_NAME


@dataclass(frozen=True)
class SpoolEntry:
    spooled_at: datetime
    client_id: str
    bot_id: str
    session_id: str
    contacts: dict[str, str | None]
    """name, phone (E.164), email, consent: as `tcai.text.contacts.Contacts` holds them."""
    message: str
    reply: str = ""
    source: str = "failsafe"
    priority: str = "normal"
    error: str = ""
    """Why the database did not take it (for the operator; never shown to a visitor)."""

    def to_line(self) -> str:
        document = asdict(self)
        document["spooled_at"] = self.spooled_at.isoformat()
        document["error"] = self.error[:300]
        return json.dumps(document, ensure_ascii=False) + "\n"

    @classmethod
    def from_line(cls, line: str) -> SpoolEntry:
        """Parse one line; raises ValueError (with no personal data) when it is not one."""
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError("not a JSON line") from None
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        for key in ("spooled_at", "client_id", "bot_id"):
            if not isinstance(raw.get(key), str):
                raise ValueError(f"missing {key}")
        contacts = raw.get("contacts")
        if not isinstance(contacts, dict):
            raise ValueError("missing contacts")
        return cls(
            spooled_at=datetime.fromisoformat(raw["spooled_at"]),
            client_id=raw["client_id"],
            bot_id=raw["bot_id"],
            session_id=str(raw.get("session_id") or "spool"),
            contacts={
                k: (str(contacts[k]) if contacts.get(k) else None)
                for k in ("name", "phone", "email", "consent")
            },
            message=str(raw.get("message") or ""),
            reply=str(raw.get("reply") or ""),
            source=str(raw.get("source") or "failsafe"),
            priority=str(raw.get("priority") or "normal"),
            error=str(raw.get("error") or ""),
        )


@contextlib.contextmanager
def _locked_spool(path: Path) -> Iterator[int]:
    """An fd of the file now at `path`, exclusively locked (re-opened if it moved)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield fd
                return
        finally:
            os.close(fd)  # closing releases the lock


def append(path: Path, entry: SpoolEntry) -> None:
    """Append one entry and fsync it (mode 0600)."""
    data = entry.to_line().encode("utf-8", "replace")
    with _locked_spool(path) as fd:
        os.write(fd, data)
        os.fsync(fd)


def take(path: Path) -> Path | None:
    """Move the spool aside for importing and return where it went (None when empty).

    A previous take that was interrupted leaves its file behind; it is merged first so
    nothing is forgotten."""
    taken = path.with_name(f".{path.name}.importing")
    if path.exists():
        with _locked_spool(path):
            if taken.exists():
                with open(taken, "ab") as into:
                    into.write(Path(path).read_bytes())
                    into.flush()
                    os.fsync(into.fileno())
                os.unlink(path)
            else:
                os.replace(path, taken)
    return taken if taken.exists() else None


def put_back(path: Path, taken: Path, failed: list[str], done: list[str]) -> None:
    """Finish an import: `done` lines go to `<spool>.imported`, `failed` lines back to the
    spool (after whatever arrived meanwhile), and the taken file is removed."""
    if done:
        fd = os.open(
            path.with_suffix(path.suffix + ".imported"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o600,
        )
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in done))
            handle.flush()
            os.fsync(handle.fileno())
    if failed:
        data = "".join(line + "\n" for line in failed).encode("utf-8", "replace")
        with _locked_spool(path) as fd:
            os.write(fd, data)
            os.fsync(fd)
    taken.unlink(missing_ok=True)


def read_lines(taken: Path) -> list[str]:
    return [
        line
        for line in taken.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip()
    ]
