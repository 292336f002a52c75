"""Keyword automations: a bot's own canned replies, checked before the LLM.

Matching is on normalised text for exact / contains / starts_with / ends_with (whole
words, so "park" does not fire on "parking"), and on the raw text for regex rules, which
run under a time limit (the `regex` module's timeout) so a pathological pattern cannot
stall a daemon: a rule that times out is skipped as if it did not match.
"""

from __future__ import annotations

from collections.abc import Sequence

import regex

from tcai.bots.config import AutomationRule
from tcai.text.normalise import normalise

REGEX_TIMEOUT_S = 0.05


def _matches(rule: AutomationRule, text: str) -> bool:
    if rule.match == "regex":
        try:
            return (
                regex.search(rule.pattern, text, flags=regex.IGNORECASE, timeout=REGEX_TIMEOUT_S)
                is not None
            )
        except TimeoutError:
            return False
        except regex.error:
            return False
    message, pattern = normalise(text), normalise(rule.pattern)
    if not pattern:
        return False
    if rule.match == "exact":
        return message == pattern
    if rule.match == "starts_with":
        return message == pattern or message.startswith(pattern + " ")
    if rule.match == "ends_with":
        return message == pattern or message.endswith(" " + pattern)
    return f" {pattern} " in f" {message} "


def find_automation(rules: Sequence[AutomationRule], text: str) -> AutomationRule | None:
    """The first enabled rule that matches `text`, in the order the bot lists them."""
    return next((r for r in rules if r.enabled and _matches(r, text)), None)


def check_pattern(rule: AutomationRule) -> str | None:
    """A reason the rule's regex is unusable, or None."""
    if rule.match != "regex":
        return None
    try:
        regex.compile(rule.pattern)
    except regex.error as exc:
        return f"invalid regex: {exc}"
    return None
