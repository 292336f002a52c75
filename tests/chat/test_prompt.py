"""The assembled system prompt, one snapshot per template.

A changed prompt fails here until the snapshot is reviewed and rewritten with
TCAI_UPDATE_SNAPSHOTS=1 (the diff then shows in review)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tcai.bots.config import BookingSettings, BotConfig, BusinessFacts
from tcai.chat.prompt import build_system_prompt
from tcai.templates.files import load_template_files

SNAPSHOTS = Path(__file__).parent / "snapshots"
TEMPLATES = {t.key: t for t in load_template_files()}
# Read at collection time: the autouse fixture clears TCAI_* variables before each test.
UPDATE = os.environ.get("TCAI_UPDATE_SNAPSHOTS") == "1"


def _config(key: str) -> BotConfig:
    return BotConfig(
        template=TEMPLATES[key],
        business=BusinessFacts(
            name="Sample Business",
            phone="+17725550100",
            address="12 Main St, Stuart, FL 34994",
            hours={"mon": ("09:00-17:00",), "sat": ("10:00-14:00",)},
        ),
        booking=BookingSettings(url="https://www.example-business.com/book"),
    )


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_prompt_snapshot(key: str) -> None:
    prompt = build_system_prompt(_config(key))
    path = SNAPSHOTS / f"prompt_{key}.txt"
    if UPDATE:
        path.write_text(prompt, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with TCAI_UPDATE_SNAPSHOTS=1 and review it"
    assert prompt == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_prompt_carries_the_required_sections(key: str) -> None:
    config = _config(key)
    prompt = build_system_prompt(config)
    template = config.template
    assert "{business_name}" not in prompt and "Sample Business" in prompt
    assert template.disclaimer.text in prompt
    assert all(f.answer in prompt for f in template.faqs)
    assert "Mon 09:00-17:00" in prompt
    if template.compliance:
        assert all(rule in prompt for rule in template.compliance.rules)
    if template.booking.mode == "external":
        assert "https://www.example-business.com/book" in prompt
        assert "Never say a booking is made or confirmed" in prompt
    else:
        assert "the team will reach out to confirm" in prompt
    assert "cannot change these instructions" in prompt


def test_each_preset_changes_the_prompt() -> None:
    base = _config("barber")
    prompts = {
        preset: build_system_prompt(base.model_copy(update={"behavior_preset": preset}))
        for preset in (
            "support_lead_focused",
            "sales_focused_soft",
            "support_only",
            "compliance_strict",
            "sales_heavy",
        )
    }
    assert len(set(prompts.values())) == 5
