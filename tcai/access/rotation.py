"""Secret rotation: new SESSION_SECRET and WIDGET_SECRET in the .env, the old widget
secret kept as WIDGET_SECRET_PREVIOUS (with WIDGET_SECRET_ROTATED_AT) so widget tokens
minted before the rotation keep working until they expire, every operator session
ended, an audit entry.

The file is rewritten atomically (a temporary file in the same folder, fsync, rename,
mode 0600) and every other line — comments, blank lines, `export` prefixes, quoting —
is kept as it was.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from tcai.audit import record_audit
from tcai.config import new_secret
from tcai.db.engine import session_scope
from tcai.db.models import UserSession
from tcai.db.types import utcnow
from tcai.errors import InvalidInput

ENV_FILE_MODE = 0o600
_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<export>export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$"
)
ROTATED = ("SESSION_SECRET", "WIDGET_SECRET", "WIDGET_SECRET_PREVIOUS", "WIDGET_SECRET_ROTATED_AT")


def _unquote(raw: str) -> tuple[str, str]:
    """The value and its quote character ('' when bare); inline comments dropped."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] in "\"'" and raw.endswith(raw[0]):
        return raw[1:-1], raw[0]
    if raw[:1] in "\"'":
        end = raw.find(raw[0], 1)
        if end > 0:
            return raw[1:end], raw[0]
    return raw.split(" #", 1)[0].strip(), ""


@dataclass(frozen=True)
class EnvLine:
    text: str
    key: str | None = None
    value: str | None = None
    quote: str = ""
    export: str = ""
    indent: str = ""


def parse_env(text: str) -> list[EnvLine]:
    lines = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None or line.lstrip().startswith("#"):
            lines.append(EnvLine(line))
            continue
        value, quote = _unquote(match.group("value"))
        lines.append(EnvLine(line, match.group("key"), value, quote, match.group("export") or "",
                             match.group("indent")))  # fmt: skip
    return lines


def render_env(lines: list[EnvLine], updates: dict[str, str]) -> str:
    out, done = [], set()
    for line in lines:
        if line.key in updates and line.key not in done:
            quote = line.quote
            out.append(f"{line.indent}{line.export}{line.key}={quote}{updates[line.key]}{quote}")
            done.add(line.key)
        elif line.key in updates:
            continue  # a duplicate assignment: the first one now holds the value
        else:
            out.append(line.text)
    for key, value in updates.items():
        if key not in done:
            out.append(f"{key}={value}")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class RotationPlan:
    env_file: Path
    changed: tuple[str, ...]
    had_widget_secret: bool
    previous_rotation: str | None
    text: str


def plan_rotation(env_file: Path, now: datetime | None = None) -> RotationPlan:
    if not env_file.is_file():
        raise InvalidInput(f"no env file at {env_file}; run `tcai init` first or pass --env-file")
    try:
        original = env_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {env_file}: {exc}") from None
    lines = parse_env(original)
    current = {line.key: line.value for line in lines if line.key}
    stamp = (now or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")
    updates = {"SESSION_SECRET": new_secret(), "WIDGET_SECRET": new_secret()}
    old_widget = current.get("WIDGET_SECRET")
    if old_widget:
        updates["WIDGET_SECRET_PREVIOUS"] = old_widget
        updates["WIDGET_SECRET_ROTATED_AT"] = stamp
    return RotationPlan(
        env_file=env_file,
        changed=tuple(k for k in ROTATED if k in updates),
        had_widget_secret=bool(old_widget),
        previous_rotation=current.get("WIDGET_SECRET_ROTATED_AT"),
        text=render_env(lines, updates),
    )


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ENV_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, ENV_FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def end_operator_sessions(engine: Engine, *, actor: str, changed: tuple[str, ...]) -> int:
    """Revoke every live operator session and audit the rotation; returns the count."""
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(UserSession)
            .where(col(UserSession.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
        ended = int(getattr(result, "rowcount", 0) or 0)
        record_audit(session, actor=actor, action="secrets.rotate", target="env",
                     after={"rotated": list(changed), "sessions_ended": ended})  # fmt: skip
    return ended


def rotate(engine: Engine, env_file: Path, *, actor: str = "cli") -> tuple[RotationPlan, int]:
    plan = plan_rotation(env_file)
    ended = end_operator_sessions(engine, actor=actor, changed=plan.changed)
    write_atomically(env_file, plan.text)
    return plan, ended
