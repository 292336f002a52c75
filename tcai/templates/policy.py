"""The platform's template policy (`tcai/data/template_policy.yaml`): which industries
ship, in which display order, what each must carry, and which are walk-in or sensitive
(rules the go-live check applies to their bots)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from tcai.data import data_file, load_yaml

POLICY_FILE = data_file("template_policy.yaml")


@dataclass(frozen=True)
class IndustryPolicy:
    key: str
    template_id: str
    display_order: int
    min_faqs: int
    requires: frozenset[str]
    crisis_must_mention: tuple[str, ...]
    walk_in: bool = False
    """Visitors come to the door: the bot needs a street address to go live."""
    sensitive: bool = False
    """The bot must carry crisis or compliance rules to go live."""


@dataclass(frozen=True)
class TemplatePolicy:
    industries: tuple[IndustryPolicy, ...]
    default_min_faqs: int

    @property
    def expected_count(self) -> int:
        return len(self.industries)

    def for_key(self, key: str) -> IndustryPolicy | None:
        return next((i for i in self.industries if i.key == key), None)

    def display_order(self, key: str) -> int:
        found = self.for_key(key)
        return found.display_order if found else len(self.industries)

    def resolve(self, ident: str) -> str | None:
        """The template_id for a key or template id the user typed."""
        wanted = ident.strip().lower()
        for industry in self.industries:
            if wanted in (industry.key, industry.template_id):
                return industry.template_id
        return None


@cache
def load_policy() -> TemplatePolicy:
    raw = load_yaml("template_policy.yaml")
    default_min = int(raw["defaults"]["min_faqs"])
    return TemplatePolicy(
        industries=tuple(
            IndustryPolicy(
                key=item["key"],
                template_id=item["template_id"],
                display_order=index,
                min_faqs=int(item.get("min_faqs", default_min)),
                requires=frozenset(item.get("requires", [])),
                crisis_must_mention=tuple(item.get("crisis_must_mention", [])),
                walk_in=bool(item.get("walk_in", False)),
                sensitive=bool(item.get("sensitive", False)),
            )
            for index, item in enumerate(raw["industries"])
        ),
        default_min_faqs=default_min,
    )
