"""Shared fixtures: an isolated environment per test and a fresh database per test.

The database is SQLite (a temp file) unless TCAI_TEST_POSTGRES_URL is set, in which case
every test gets its own schema on that PostgreSQL server, dropped afterwards. `.ci/run`
runs the suite both ways; with the variable set, an unreachable server is an error,
never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tcai.bots.provisioning import ClientRequest, create_client
from tcai.chat.llm import LlmClient
from tcai.chat.pipeline import ChatEngine, ChatReply, ChatRequest
from tcai.cli.main import app
from tcai.config import Settings, load_settings
from tcai.db.engine import make_engine
from tcai.db.migrate import upgrade
from tcai.quality.stub_llm import StubLLM

REPO = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = REPO / "templates"
PG_URL_VAR = "TCAI_TEST_POSTGRES_URL"
ENV_PREFIXES = ("TCAI_", "NODE_ENV", "OPENAI_", "WIDGET_", "SESSION_", "LOGIN_", "LOG_")
ENV_NAMES = {name.upper() for name in Settings.model_fields} | {"NODE_ENV"}


def postgres_url() -> str | None:
    return os.environ.get(PG_URL_VAR) or None


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configuration leaks in from the developer's shell or a .env in the repo."""
    for name in list(os.environ):
        if name in ENV_NAMES or (name.startswith(ENV_PREFIXES) and name != PG_URL_VAR):
            monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@dataclass
class Database:
    url: str
    engine_name: str

    def engine(self) -> sa.Engine:
        from tcai.config import normalise_database_url

        return make_engine(normalise_database_url(self.url))


def _make_database(kind: str, tmp_path: Path) -> Iterator[Database]:
    if kind == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'test.db'}", "sqlite")
        return
    base = postgres_url()
    assert base, f"{PG_URL_VAR} is not set"
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield Database(_pg_schema_url(base, schema), "postgresql")
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def engine_kind() -> str:
    """This run's engine: PostgreSQL when TCAI_TEST_POSTGRES_URL is set, else SQLite."""
    return "postgresql" if postgres_url() else "sqlite"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A fresh, empty database of this run's engine; DATABASE_URL points at it."""
    for db in _make_database(engine_kind(), tmp_path):
        monkeypatch.setenv("DATABASE_URL", db.url)
        yield db


@pytest.fixture
def migrated(database: Database) -> Database:
    engine = database.engine()
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return database


@pytest.fixture
def seeded(migrated: Database, cli: CliFn) -> Database:
    result = cli("templates", "seed")
    assert result.exit_code == 0, result.output
    return migrated


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class CliFn:
    """Run `tcai ...` in-process through the real root app and its error boundary."""

    def __call__(self, *args: str) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli() -> CliFn:
    return CliFn()


def run_tcai(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m tcai ...` as a separate process, as an operator would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tcai", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


# ---- chat fixtures ------------------------------------------------------------------


@pytest.fixture
async def stub_llm() -> AsyncIterator[StubLLM]:
    async with StubLLM(reply="Happy to help! We'd love to see you soon.") as stub:
        yield stub


def provision(
    database: Database, template: str = "barber", slug: str = "fade-factory", **extra: Any
) -> str:
    """Provision a client through the real core path; returns the bot id."""
    engine = database.engine()
    try:
        made = create_client(
            engine,
            ClientRequest(
                template=template,
                slug=slug,
                name=extra.pop("name", "Fade Factory"),
                phone=extra.pop("phone", "+1 772 555 0100"),
                **extra,
            ),
        )
    finally:
        engine.dispose()
    return made.bot_id


@pytest.fixture
def barber(seeded: Database) -> str:
    return provision(seeded)


@dataclass
class Chat:
    """A ChatEngine over the test database, with or without the stub LLM."""

    database: Database
    settings: Settings
    engine: sa.Engine
    llm: LlmClient | None
    spool: Path
    made: list[ChatEngine] = field(default_factory=list)

    def make(self, **overrides: Any) -> ChatEngine:
        """A fresh engine (a new bot cache); closed with the fixture."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        made = ChatEngine(settings, self.engine, self.llm, spool_path=self.spool)
        # Check the change signal on every turn: a test that edits the bot and then
        # chats must never race the quarter-second interval.
        made.directory.check_interval = 0.0
        self.made.append(made)
        return made

    @property
    def chat_engine(self) -> ChatEngine:
        """The one engine `say` uses, made on first use."""
        if not self.made:
            self.make()
        return self.made[0]

    async def say(
        self,
        message: str,
        session: str | None = None,
        client: str = "fade-factory",
        bot: str = "fade-factory_main",
        **kw: Any,
    ) -> ChatReply:
        request = ChatRequest(client, bot, message, session, "test")
        return await self.chat_engine.handle(request, **kw)

    def close(self) -> None:
        for made in self.made:
            made.close()
        self.made.clear()


@pytest.fixture
async def facts_chat(seeded: Database, tmp_path: Path) -> AsyncIterator[Chat]:
    engine = seeded.engine()
    chat = Chat(seeded, load_settings(), engine, None, tmp_path / "spool.jsonl")
    yield chat
    chat.close()
    engine.dispose()


@pytest.fixture
async def llm_chat(seeded: Database, stub_llm: StubLLM, tmp_path: Path) -> AsyncIterator[Chat]:
    engine = seeded.engine()
    client = LlmClient("test-key", stub_llm.base_url)
    chat = Chat(
        seeded,
        load_settings().model_copy(update={"llm_timeout_ms": 1500}),
        engine,
        client,
        tmp_path / "spool.jsonl",
    )
    yield chat
    chat.close()
    await client.close()
    engine.dispose()
