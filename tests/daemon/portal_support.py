"""What the portal's tests share: two workspaces with a conversation and a lead each, one
account per role, and signing in over HTTP as a browser would (login page, its CSRF
cookie and field, our Origin)."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from tcai.access.users import create_user
from tcai.chat.pipeline import ChatEngine, ChatRequest
from tcai.config import Settings
from tcai.daemon.app import create_app
from tcai.db.models import Bot, Conversation, Lead, Workspace
from tests.conftest import Database, provision
from tests.helpers import make_settings

OWN, FOREIGN = "fade-factory", "joes-garage"
MEMBER_ROLES = ("viewer", "agent", "staff", "manager", "owner")
ROLES = (*MEMBER_ROLES, "super_admin")
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def strong_password() -> str:
    return "portal " + secrets.token_urlsafe(12)


def email_of(role: str, slug: str = OWN) -> str:
    return f"{role.replace('_', '-')}@{slug}.shop"


@dataclass
class Tenant:
    slug: str
    workspace_id: int
    bot_id: str
    lead_id: int
    conversation_id: int


@dataclass
class Portal:
    database: Database
    settings: Settings
    server: TestServer
    password: str
    own: Tenant
    foreign: Tenant
    clients: list[TestClient] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def tenant(self, slug: str) -> Tenant:
        return self.own if slug == self.own.slug else self.foreign

    async def browser(self) -> TestClient:
        """A fresh client with its own cookie jar (one per person)."""
        client = TestClient(self.server, cookie_jar=CookieJar(unsafe=True))
        await client.start_server()
        self.clients.append(client)
        return client

    async def signed_in(self, email: str) -> tuple[TestClient, str]:
        """A client signed in as `email`, and its session's CSRF token."""
        client = await self.browser()
        response = await sign_in(client, self.origin, email, self.password)
        assert response.status == 303, await response.text()
        page = await client.get("/portal/")
        assert page.status == 200
        return client, csrf_of(await page.text())

    def query(self, model: Any, *where: Any) -> list[Any]:
        engine = self.database.engine()
        try:
            with Session(engine) as session:
                return list(session.exec(select(model).where(*where)))
        finally:
            engine.dispose()


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def sign_in(client: TestClient, origin: str, email: str, password: str) -> Any:
    page = await client.get("/portal/login")
    assert page.status == 200
    csrf = csrf_of(await page.text())
    return await client.post(
        "/portal/login",
        data={"csrf": csrf, "email": email, "password": password, "next": "/portal/"},
        headers={"Origin": origin},
        allow_redirects=False,
    )


async def make_visit(settings: Settings, database: Database, tmp_path: Path) -> None:
    """A visitor per workspace leaves a name and a phone: a conversation and a lead."""
    engine = database.engine()
    chat = ChatEngine(settings, engine, None, spool_path=tmp_path / "spool.jsonl")
    try:
        for slug in (OWN, FOREIGN):
            request = ChatRequest(
                slug, f"{slug}_main", "Hi, I'm Ana, call me at 772-555-0142", f"visitor-{slug}", "t"
            )
            reply = await chat.handle(request)
            assert reply.lead_captured, reply
    finally:
        chat.close()
        engine.dispose()


def tenant(database: Database, slug: str) -> Tenant:
    engine = database.engine()
    try:
        with Session(engine) as session:
            ws = session.exec(select(Workspace).where(Workspace.slug == slug)).one()
            bot = session.exec(select(Bot).where(Bot.workspace_id == ws.id)).one()
            lead = session.exec(select(Lead).where(Lead.workspace_id == ws.id)).one()
            conversation = session.exec(
                select(Conversation).where(Conversation.workspace_id == ws.id)
            ).one()
            assert ws.id and lead.id and conversation.id
            return Tenant(slug, ws.id, bot.bot_id, lead.id, conversation.id)
    finally:
        engine.dispose()


@pytest.fixture
async def portal(seeded: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    provision(seeded, allowed_origins=["https://fadefactory.example.org"])
    provision(seeded, template="auto", slug=FOREIGN, name="Joe's Garage & Tire")
    settings = make_settings(log_dir=tmp_path / "logs")
    await make_visit(settings, seeded, tmp_path)
    password = strong_password()
    engine = seeded.engine()
    for role in MEMBER_ROLES:
        create_user(engine, email_of(role), password, workspace=OWN, role=role)
    create_user(engine, email_of("owner", FOREIGN), password, workspace=FOREIGN, role="owner")
    create_user(engine, email_of("super_admin"), password, super_admin=True)
    server = TestServer(create_app(settings, engine=engine), host="127.0.0.1")
    await server.start_server()
    made = Portal(seeded, settings, server, password, tenant(seeded, OWN), tenant(seeded, FOREIGN))
    yield made
    for client in made.clients:
        await client.close()
    await server.close()
    engine.dispose()
