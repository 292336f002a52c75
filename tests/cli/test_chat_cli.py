"""`tcai chat` from a terminal: one message or an interactive session, offline."""

from __future__ import annotations

import json

from tests.conftest import CliRunner, app


def test_one_message_as_json(cli, barber) -> None:
    result = cli("chat", barber, "--message", "do you take walk-ins?", "--json")
    assert result.exit_code == 0, result.output
    reply = json.loads(result.stdout)
    assert set(reply) >= {
        "reply",
        "session_id",
        "source",
        "actions",
        "lead_captured",
        "quick_replies",
    }
    assert reply["source"] == "faq"


def test_human_output_shows_source_and_actions(cli, barber) -> None:
    result = cli("chat", barber, "-m", "I'd like to book, I'm Ana 772-555-0142")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[failsafe] ")
    assert "booking request recorded (request_callback)" in result.stdout
    assert "lead captured" in result.stdout


def test_interactive_session_keeps_the_conversation(barber) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["chat", barber], input="hi, I'm Ana\n\nignored\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("[") == 1
    second = runner.invoke(app, ["chat", barber], input="hello\nI'm Bo, 772-555-0111\n\n")
    assert second.stdout.count("[") == 2 and "lead captured" in second.stdout


def test_bad_input(cli, barber) -> None:
    assert cli("chat", "ghost_main", "-m", "hi").exit_code == 1
    empty = cli("chat", barber, "-m", "")
    assert empty.exit_code == 2 and "1 to 2000 characters" in empty.stderr
    assert cli("chat", barber, "--json").exit_code == 2
