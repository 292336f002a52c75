"""Structured logs: JSON lines, request ids, personal data redacted, errors in system_log."""

from __future__ import annotations

import json
import logging

import pytest
from sqlmodel import Session, select

from tcai.db.models import SystemLog
from tcai.logs import remove_handlers, request_id_var, setup_logging
from tests.conftest import provision
from tests.helpers import ALLOWED, make_settings, token_for
from tests.helpers import CHAT_PATH as PATH


@pytest.fixture
def site(seeded):
    provision(seeded, allowed_origins=[ALLOWED])
    return seeded


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_log_lines_are_json_with_request_id_and_no_personal_data(migrated, tmp_path) -> None:
    engine = migrated.engine()
    handlers = setup_logging(tmp_path, "info", engine)
    log = logging.getLogger("tcai.test")
    token = request_id_var.set("req-1234abcd")
    try:
        log.warning(
            "visitor ana.lopez@shopmail.com called from 772-555-0142 paying 4111 1111 1111 1111"
        )
        log.error("could not store lead for %s", "+1 (772) 555-0199")
    finally:
        request_id_var.reset(token)
    for handler in handlers:
        handler.flush()
    text = (tmp_path / "tcai.jsonl").read_text()
    for secret in ("ana.lopez", "555-0142", "4111 1111", "555-0199"):
        assert secret not in text
    lines = _lines(tmp_path / "tcai.jsonl")
    assert lines[0]["level"] == "warning" and lines[0]["request_id"] == "req-1234abcd"
    assert (
        "[email]" in lines[0]["event"]
        and "[phone]" in lines[0]["event"]
        and "[card redacted]" in lines[0]["event"]
    )
    with Session(engine) as session:
        rows = session.exec(select(SystemLog)).all()
    engine.dispose()
    assert len(rows) == 1 and rows[0].level == "error" and "[phone]" in rows[0].message
    assert rows[0].details["request_id"] == "req-1234abcd"
    remove_handlers(handlers)


async def test_an_unexpected_daemon_error_is_logged_and_shaped(
    site, aiohttp_client, tmp_path, monkeypatch
) -> None:
    from tcai.chat.pipeline import ChatEngine
    from tcai.daemon.app import create_app

    async def explode(*_a, **_k):
        raise RuntimeError("boom while answering ana.lopez@shopmail.com")

    monkeypatch.setattr(ChatEngine, "handle", explode)
    engine = site.engine()
    settings = make_settings(log_dir=tmp_path)
    client = await aiohttp_client(create_app(settings, engine=engine))
    token = await token_for(client)
    response = await client.post(
        PATH,
        json={"message": "hi"},
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"},
    )
    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "internal_error" and "boom" not in body["error"]["message"]
    text = (tmp_path / "tcai.jsonl").read_text()
    assert body["request_id"] in text and "ana.lopez" not in text and "RuntimeError" in text
    from tcai.logs import BackgroundSystemLog

    for handler in logging.getLogger("tcai").handlers:
        if isinstance(handler, BackgroundSystemLog):
            handler.flush()
    with Session(engine) as session:
        row = session.exec(select(SystemLog)).one()
    engine.dispose()
    assert row.details["request_id"] == body["request_id"]
