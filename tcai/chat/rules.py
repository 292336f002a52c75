"""The chat engine's platform rules (`tcai/data/chat_rules.yaml`), loaded once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from tcai.data import data_file, load_yaml
from tcai.text.normalise import contains_phrase

RULES_FILE = data_file("chat_rules.yaml")


@dataclass(frozen=True)
class ChatRules:
    booking_intent: tuple[str, ...]
    urgency: tuple[str, ...]
    presets: dict[str, str]
    plans: dict[str, tuple[int | None, int | None]]
    texts: dict[str, str]

    def say(self, key: str, **values: str | None) -> str:
        """A canned text with its values filled in ("" when a value it needs is missing)."""
        if any(f"{{{name}}}" in self.texts[key] and not value for name, value in values.items()):
            return ""
        return self.texts[key].format(**{k: v or "" for k, v in values.items()})

    def wants_booking(self, text: str) -> bool:
        return any(contains_phrase(text, phrase) for phrase in self.booking_intent)

    def is_urgent(self, text: str) -> bool:
        return any(contains_phrase(text, phrase) for phrase in self.urgency)


@cache
def load_rules() -> ChatRules:
    raw = load_yaml("chat_rules.yaml")
    return ChatRules(
        booking_intent=tuple(raw["booking_intent"]),
        urgency=tuple(raw["urgency"]),
        presets=dict(raw["presets"]),
        texts=dict(raw["texts"]),
        plans={
            name: (limits["messages"], limits["leads"]) for name, limits in raw["plans"].items()
        },
    )
