"""What a bot says and shows outside an answer, decided once for every door.

The kill switch and the quota each have one rule and one text here; the widget's public
view of a bot (its look, quick replies, paused message) is built here too, so the daemon
only adds a token and renders it.
"""

from __future__ import annotations

from typing import Any

from tcai.bots.config import BotConfig
from tcai.chat.directory import CachedBot
from tcai.chat.rules import load_rules
from tcai.text.contacts import display_phone
from tcai.text.normalise import join_sentences


def is_paused(bot: CachedBot) -> bool:
    """The kill switch: the bot or its whole workspace is paused."""
    return bot.status != "active" or bot.workspace_status == "paused"


def paused_text(config: BotConfig) -> str:
    """The polite "we'll be back", with the business's phone when it has one."""
    rules = load_rules()
    phone = display_phone(config.business.phone)
    return join_sentences(
        rules.say("paused", name=config.business.name), rules.say("reach_us", phone=phone)
    )


def limit_text(config: BotConfig) -> str:
    """The friendly "can't take more chats" of a bot over its plan's quota."""
    rules = load_rules()
    reach = rules.say("reach_us", phone=display_phone(config.business.phone))
    return join_sentences(rules.say("limit"), reach or rules.say("contact_directly"))


def quick_replies(config: BotConfig | None) -> list[dict[str, Any]]:
    if config is None:
        return []
    return [{"id": q.id, "label": q.label, "prompt": q.prompt} for q in config.quick_replies]


def public_view(bot: CachedBot) -> dict[str, Any]:
    """The bot as the widget shows it (docs/http-api.md, the widget config route)."""
    config = bot.config
    paused = is_paused(bot)
    disclaimer = config.template.booking.disclaimer
    return {
        "status": "paused" if paused else "active",
        "client_id": bot.client_id,
        "bot_id": bot.bot_id,
        "name": config.business.name,
        "welcome_message": config.welcome_message,
        "primary_color": config.primary_color,
        "position": config.widget.position,
        "quick_replies": quick_replies(config),
        "booking_mode": config.template.booking.mode,
        "phone": display_phone(config.business.phone),
        "paused_message": paused_text(config) if paused else None,
        "disclaimer": disclaimer.text if disclaimer and disclaimer.enabled else None,
    }
