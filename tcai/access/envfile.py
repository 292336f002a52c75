"""First-run set-up: a private `.env` with fresh secrets, then the schema.

`write_env_file` never overwrites: an operator's existing configuration is theirs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from tcai.config import DEFAULT_DATABASE_URL, new_secret

ENV_FILE_MODE = 0o600


def write_env_file(path: Path) -> bool:
    """Create `path` with fresh secrets, mode 0600, atomically; False if it exists."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = "\n".join(
        [
            f"# tcai configuration, written by `tcai init` at {stamp}.",
            "# Private: it holds secrets. Never commit it (it is in .gitignore).",
            "TCAI_ENV=development",
            f"DATABASE_URL={DEFAULT_DATABASE_URL}",
            f"SESSION_SECRET={new_secret()}",
            f"WIDGET_SECRET={new_secret()}",
            "# Unset: the assistant answers offline from the business's facts.",
            "# OPENAI_API_KEY=",
            "",
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ENV_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if someone created it meanwhile: never overwrite
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True
