"""A real database outage in the middle of real traffic, over HTTP.

PostgreSQL: a scratch database on the test server stops taking connections (ALLOW_CONNECTIONS
false, every backend terminated) while visitors chat, some of them while the LLM thinks,
then comes back. SQLite: another process holds an exclusive lock on the file for the same
window. Either way every visitor gets an answer from the bot's facts with the business's
phone and nothing that names the database; /api/health says degraded; and after
`tcai leads recover` the leads in the database are exactly the visitors who gave a number.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from tcai.config import load_settings, new_secret
from tcai.daemon.app import create_app
from tcai.quality.stub_llm import StubLLM
from tests.conftest import Database, engine_kind, postgres_url, provision

ORIGIN = "https://fadefactory.example.org"
CHAT = "/api/chat/fade-factory/fade-factory_main"
CONFIG = "/api/widget/config/fade-factory/fade-factory_main"
BUSINESS_PHONE = "(772) 555-0100"


@pytest.fixture
def outage_db(tmp_path, monkeypatch, cli) -> Iterator[tuple[Database, str]]:
    """A database of this run's engine that the test can take down: (database, name)."""
    if engine_kind() == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'outage.db'}", "sqlite")
        monkeypatch.setenv("DATABASE_URL", db.url)
        yield db, str(tmp_path / "outage.db")
        return
    base = postgres_url()
    assert base
    name = f"tcai_outage_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield Database(url, "postgresql"), name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@asynccontextmanager
async def database_down(kind: str, name: str) -> AsyncIterator[None]:
    if kind == "sqlite":
        holder = sqlite3.connect(name, timeout=30, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    base = postgres_url()
    assert base
    admin = sa.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()


def phone(i: int) -> str:
    return f"772-555-{1000 + i:04d}"


async def test_leads_survive_a_database_outage_in_the_middle_of_traffic(
    outage_db, cli, aiohttp_client, tmp_path
) -> None:
    db, name = outage_db
    assert cli("init").exit_code == 0
    assert cli("templates", "seed").exit_code == 0
    provision(db, allowed_origins=[ORIGIN], plan="pro")
    async with StubLLM(reply="Happy to help! Ask me anything.", delay_s=0.6) as llm:
        settings = load_settings().model_copy(
            update={
                "widget_secret": SecretStr(new_secret()),
                "log_dir": tmp_path / "logs",
                "openai_api_key": SecretStr("test-" + uuid.uuid4().hex),
                "openai_base_url": llm.base_url,
                "llm_timeout_ms": 2500,
                "chat_rate_limit": "1000/minute",
            }
        )
        engine = db.engine()
        client = await aiohttp_client(create_app(settings, engine=engine))
        try:
            config = await client.get(CONFIG, headers={"Origin": ORIGIN})
            token = (await config.json())["token"]
            headers = {"Origin": ORIGIN, "Authorization": f"Bearer {token}"}

            async def visit(i: int) -> dict[str, Any]:
                response = await client.post(
                    CHAT, json={"message": f"Hi, I'm Visitor, {phone(i)}"}, headers=headers
                )
                body = await response.text()
                return {"status": response.status, "body": body, "json": json.loads(body)}

            sent = 0
            before = await asyncio.gather(*(visit(i) for i in range(8)))  # database up
            sent += 8
            # Visitors whose turn started (and whose LLM is thinking) when it goes down.
            thinking = [asyncio.create_task(visit(sent + i)) for i in range(8)]
            sent += 8
            await asyncio.sleep(0.3)
            async with database_down(db.engine_name, name):
                during = await asyncio.gather(*(visit(sent + i) for i in range(12)))
                sent += 12
                during += await asyncio.gather(*thinking)
                health = await client.get("/api/health")
                health_body = await health.json()
                widget = await client.get(CONFIG, headers={"Origin": ORIGIN})
                widget_status = widget.status
            after = await asyncio.gather(*(visit(sent + i) for i in range(8)))  # back
            sent += 8
        finally:
            await client.close()
            engine.dispose()

    for reply in before + during + after:
        assert reply["status"] == 200, reply["body"]
        assert reply["json"]["lead_captured"] is True
    for reply in during:
        for word in ("PostgreSQL", "SQLite", "5432", "127.0.0.1", name, "DATABASE_URL", "psycopg"):
            assert word not in reply["body"]
    assert any(BUSINESS_PHONE in r["json"]["reply"] for r in during)
    assert health.status == 503 and health_body["status"] == "degraded"
    assert widget_status == 200  # the widget still loads, from the bot in memory

    spool_file = tmp_path / "logs" / "lead-spool.jsonl"
    spooled = len(spool_file.read_text().splitlines())
    assert spooled >= 12  # the outage was real: at least every visitor during it spooled
    recovered = cli("leads", "recover", "--spool", str(spool_file))
    assert recovered.exit_code == 0, recovered.output
    listed = cli("leads", "list", "--workspace", "fade-factory", "--json")
    phones = {lead["phone"] for lead in json.loads(listed.stdout)}
    expected = {"+1" + phone(i).replace("-", "") for i in range(sent)}
    print(
        f"\noutage on {db.engine_name}: {sent} visitors gave a number, {spooled} spooled, "
        f"{len(phones & expected)} leads stored after recovery"
    )
    assert phones == expected
    # Again: nothing changes (the import is idempotent).
    spool = tmp_path / "logs" / "lead-spool.jsonl.imported"
    assert cli("leads", "recover", "--spool", str(spool)).exit_code == 0
    again = json.loads(cli("leads", "list", "--workspace", "fade-factory", "--json").stdout)
    assert len(again) == sent
