"""A list of named checks with pass/fail, in the JSON shape of docs/cli.md
(`{"ok", "total", "passed", "failed", "items": [{"name", "status", "message"}]}`),
shared by smoke, sweep and the pre-deployment checklist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckItem:
    name: str
    ok: bool
    message: str = ""


@dataclass
class CheckReport:
    items: list[CheckItem] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, name: str, ok: bool, message: str = "") -> bool:
        self.items.append(
            CheckItem(name, bool(ok), message if message else ("ok" if ok else "failed"))
        )
        return bool(ok)

    @property
    def failed(self) -> list[CheckItem]:
        return [i for i in self.items if not i.ok]

    @property
    def ok(self) -> bool:
        return bool(self.items) and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "total": len(self.items),
            "passed": len(self.items) - len(self.failed),
            "failed": len(self.failed),
            "seconds": round(self.seconds, 3),
            "items": [
                {"name": i.name, "status": "pass" if i.ok else "fail", "message": i.message}
                for i in self.items
            ],
        }
