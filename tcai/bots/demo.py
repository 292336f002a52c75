"""`tcai demo`: one made-up business per template, ready to chat with, offline.

Idempotent: existing demo clients are kept. Demo workspaces have status "demo", so
DEMO_SAFE_MODE can protect them and the demo pages list only them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tcai.bots.config import BotConfig
from tcai.bots.provisioning import ClientRequest, create_client
from tcai.bots.service import change_bot
from tcai.data import data_file, load_yaml
from tcai.db.engine import session_scope
from tcai.db.models import Bot, Workspace
from tcai.templates.store import stored_templates

DEMO_FILE = data_file("demo_businesses.yaml")


@cache
def load_demo_businesses() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml("demo_businesses.yaml")
    return data


@dataclass(frozen=True)
class DemoClient:
    client_id: str
    bot_id: str
    name: str
    created: bool


def demo_slug(key: str) -> str:
    return "demo-" + key.replace("_", "-")


def provision_demo(engine: Engine, origins: list[str]) -> list[DemoClient]:
    data = load_demo_businesses()
    defaults, businesses = data["defaults"], data["businesses"]
    with session_scope(engine) as session:
        keys = [row.key for row in stored_templates(session) if row.is_active]
        existing = set(
            session.exec(select(Workspace.slug).where(col(Workspace.slug).startswith("demo-")))
        )
    made: list[DemoClient] = []
    for key in keys:
        facts = businesses.get(key)
        if facts is None:
            continue
        slug = demo_slug(key)
        if slug in existing:
            made.append(DemoClient(slug, f"{slug}_main", facts["name"], False))
            continue
        result = create_client(
            engine,
            ClientRequest(
                template=key,
                slug=slug,
                name=facts["name"],
                phone=facts["phone"],
                address=facts.get("address"),
                timezone=defaults["timezone"],
                booking_url=facts.get("booking_url"),
                allowed_origins=origins,
                plan="enterprise",
                status="demo",
            ),
            actor="demo",
        )
        hours = facts.get("hours", defaults["hours"])
        change_bot(
            engine,
            result.bot_id,
            assignments=[
                f"hours.{day}={','.join(spans) if spans else 'closed'}"
                for day, spans in hours.items()
            ],
            actor="demo",
        )
        made.append(DemoClient(slug, result.bot_id, facts["name"], True))
    return made


def list_demo_bots(engine: Engine) -> list[tuple[str, str, str, str]]:
    """(slug, bot id, business name, template id) of every demo workspace, by slug."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Workspace.slug, Bot.bot_id, Workspace.name, Bot.template_id)
            .join(Bot, col(Bot.workspace_id) == col(Workspace.id))
            .where(Workspace.status == "demo")
            .order_by(col(Workspace.slug))
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


@dataclass(frozen=True)
class DemoSite:
    """A demo business as its one-page site shows it: the facts are its bot's config."""

    client_id: str
    bot_id: str
    template_key: str
    group: str
    config: BotConfig


def demo_group(key: str) -> str:
    for group in load_demo_businesses().get("groups", []):
        if key in group["keys"]:
            return str(group["label"])
    return "More businesses"


def list_demo_sites(engine: Engine) -> list[DemoSite]:
    """Every demo workspace's first bot, with its config, by slug."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Workspace.slug, Bot.bot_id, Bot.config)
            .join(Bot, col(Bot.workspace_id) == col(Workspace.id))
            .where(Workspace.status == "demo")
            .order_by(col(Workspace.slug), col(Bot.bot_id))
        ).all()
    sites: dict[str, DemoSite] = {}
    for slug, bot_id, document in rows:
        if slug in sites:
            continue
        config = BotConfig.model_validate(document)
        key = config.template.key
        sites[slug] = DemoSite(slug, bot_id, key, demo_group(key), config)
    return list(sites.values())
