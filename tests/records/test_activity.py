"""What the portal reads and changes in the core, scoped by workspace id: conversations
and leads per day in the workspace's time zone, leads searched and filtered, a lead's
status changed and audited, a conversation with its booking clicks, a bot's facts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from tcai.bots.facts import change_facts, current_facts, fact_assignments
from tcai.bots.service import set_bot_status, workspace_bots
from tcai.db.models import AuditLog, BookingEvent, Bot, Conversation, Lead, Workspace
from tcai.errors import InvalidInput, NotFound
from tcai.records.activity import daily_activity, lead_counts
from tcai.records.conversations import get_conversation, workspace_conversations
from tcai.records.leads import find_leads, set_lead_status
from tests.conftest import provision


@pytest.fixture
async def two(facts_chat, barber):
    """Fade Factory (New York time) with two visitors' leads, and an empty second shop."""
    provision(facts_chat.database, slug="clip-joint", name="Clip Joint")
    await facts_chat.say("Hi, I'm Ana, 772-555-0142", session="visitor-ana-01")
    await facts_chat.say("I'm Marcus, marcus%_x@shopmail.com", session="visitor-marcus-01")
    engine = facts_chat.database.engine()
    with Session(engine) as session:
        ids = {w.slug: w.id for w in session.exec(select(Workspace))}
    yield engine, ids
    engine.dispose()


def test_days_are_the_workspaces_own(two) -> None:
    engine, ids = two
    # 03:30 UTC on Dec 6 is still Dec 5 in New York.
    late = datetime(2026, 12, 6, 3, 30, tzinfo=UTC)
    with Session(engine) as session:
        for lead in session.exec(select(Lead)):
            lead.created_at = late
            session.add(lead)
        for conversation in session.exec(select(Conversation)):
            conversation.started_at = late - timedelta(days=40)
            session.add(conversation)
        session.commit()
    days = daily_activity(engine, ids["fade-factory"], days=30, now=late + timedelta(days=1))
    assert len(days) == 30 and days[-1].day == date(2026, 12, 6)
    assert [(d.day, d.leads) for d in days if d.leads] == [(date(2026, 12, 5), 2)]
    assert sum(d.conversations for d in days) == 0, "older than 30 days"
    assert sum(d.leads for d in daily_activity(engine, ids["clip-joint"], now=late)) == 0
    assert lead_counts(engine, ids["fade-factory"]) == {
        "new": 2,
        "contacted": 0,
        "qualified": 0,
        "converted": 0,
        "lost": 0,
    }
    with pytest.raises(NotFound):
        daily_activity(engine, 987654)


def test_leads_are_searched_filtered_and_scoped(two) -> None:
    engine, ids = two
    fade = ids["fade-factory"]
    assert {lead["name"] for lead in find_leads(engine, fade)} == {"Ana", "Marcus"}
    assert [lead["name"] for lead in find_leads(engine, fade, search="5550142")] == ["Ana"]
    assert [lead["name"] for lead in find_leads(engine, fade, search="%_x")] == ["Marcus"]
    assert find_leads(engine, fade, search="a%n") == [], "a % is a character, not a wildcard"
    today = date.today()
    assert len(find_leads(engine, fade, since=today - timedelta(days=1))) == 2
    assert find_leads(engine, fade, until=today - timedelta(days=2)) == []
    assert find_leads(engine, ids["clip-joint"]) == []
    with pytest.raises(InvalidInput):
        find_leads(engine, fade, status="hot")


def test_a_lead_status_change_is_audited_and_scoped(two) -> None:
    engine, ids = two
    lead_id = find_leads(engine, ids["fade-factory"], search="Ana")[0]["lead_id"]
    with pytest.raises(NotFound):
        set_lead_status(engine, ids["clip-joint"], lead_id, "lost", actor="x@clip.shop")
    changed = set_lead_status(
        engine, ids["fade-factory"], lead_id, "contacted", actor="owner@fade.shop"
    )
    assert changed["status"] == "contacted"
    set_lead_status(engine, ids["fade-factory"], lead_id, "contacted", actor="owner@fade.shop")
    [entry] = [a for a in rows_of(engine, AuditLog) if a.action == "lead.status"]
    assert (entry.actor, entry.before, entry.after) == (
        "owner@fade.shop",
        {"status": "new"},
        {"status": "contacted"},
    )
    with pytest.raises(InvalidInput):
        set_lead_status(engine, ids["fade-factory"], lead_id, "won", actor="owner@fade.shop")


def rows_of(engine, model):
    with Session(engine) as session:
        return list(session.exec(select(model)))


def test_a_conversation_with_its_clicks_only_in_its_workspace(two) -> None:
    engine, ids = two
    [first, *_] = workspace_conversations(engine, ids["fade-factory"])
    conversation_id = first["conversation_id"]
    with Session(engine) as session:
        bot = session.exec(select(Bot).where(Bot.bot_id == "fade-factory_main")).one()
        session.add(
            BookingEvent(
                workspace_id=ids["fade-factory"],
                bot_id=bot.id or 0,
                conversation_id=conversation_id,
                handling="external",
                provider="Booksy",
                url="https://booksy.com/en-us/1_fade",
            )
        )
        session.commit()
    found = get_conversation(engine, ids["fade-factory"], conversation_id)
    assert found["booking_clicks"][0]["provider"] == "Booksy"
    assert found["lead"]["lead_id"] and found["transcript"]
    with pytest.raises(NotFound):
        get_conversation(engine, ids["clip-joint"], conversation_id)
    assert workspace_conversations(engine, ids["clip-joint"]) == []


def test_facts_change_only_what_differs_through_change_bot(two) -> None:
    engine, ids = two
    [bot] = workspace_bots(engine, ids["fade-factory"])
    shown = current_facts(bot.config, bot.summary["allowed_origins"])
    assert shown["hours.mon"] == "" and shown["phone"] == "+17725550100"
    assert fact_assignments(bot.config, [], shown) == [], "the form as shown changes nothing"
    assert fact_assignments(bot.config, [], {**shown, "hours.tue": "closed"}) == []
    with pytest.raises(NotFound):
        change_facts(engine, ids["clip-joint"], "fade-factory_main", {"phone": "1"}, actor="x")
    with pytest.raises(InvalidInput, match="phone"):
        change_facts(engine, ids["fade-factory"], "fade-factory_main", {"phone": "nope"}, actor="x")
    change = change_facts(
        engine,
        ids["fade-factory"],
        "fade-factory_main",
        {**shown, "hours.mon": "09:00-17:00", "address": "1 Main St"},
        actor="owner@fade.shop",
    )
    assert set(change.changed) == {"business.hours.mon", "business.address"}
    with pytest.raises(NotFound):
        set_bot_status(
            engine, "fade-factory_main", enabled=False, reason="x", workspace_id=ids["clip-joint"]
        )
    assert [b.summary["status"] for b in workspace_bots(engine, ids["fade-factory"])] == ["active"]
