"""`tcai knowledge import --file`: CSV and Markdown FAQ files, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcai.bots.config import BotConfig
from tcai.db.models import AuditLog, Bot
from tests.conftest import CliFn, Database, provision
from tests.helpers import rows

pytestmark = pytest.mark.usefixtures("seeded")


def config_of(database: Database, bot: str) -> tuple[BotConfig, int]:
    row = rows(database, Bot, Bot.bot_id == bot)[0]
    return BotConfig.model_validate(row.config), row.config_version


def test_a_csv_is_proposed_then_applied_audited(
    seeded: Database, cli: CliFn, tmp_path: Path
) -> None:
    bot = provision(seeded)
    faq = tmp_path / "faq.csv"
    faq.write_text(
        "Question,Answer\n"
        '"Do you sell beard oil?","Yes, three scents, $18 each."\n'
        '"How long does a haircut take?","About 30 minutes."\n',
        encoding="utf-8",
    )
    dry = cli("knowledge", "import", bot, "--file", str(faq), "--json")
    assert dry.exit_code == 0, dry.output
    document = json.loads(dry.stdout)
    assert document["mode"] == "dry_run" and document["summary"]["new"] == 1
    assert document["summary"]["duplicate"] == 1
    assert config_of(seeded, bot)[1] == 1

    applied = cli("knowledge", "import", bot, "--file", str(faq), "--apply")
    assert applied.exit_code == 0, applied.output
    assert "at config version 2" in applied.stdout
    config, version = config_of(seeded, bot)
    answers = {f.question: f.answer for f in config.faqs}
    assert answers["Do you sell beard oil?"] == "Yes, three scents, $18 each."
    # the template's question, the business's answer: one FAQ, not two
    assert answers["How long does a haircut take?"] == "About 30 minutes."
    assert sum(1 for f in config.faqs if "haircut take" in f.question) == 1
    assert version == 2
    assert [a.action for a in rows(seeded, AuditLog, AuditLog.target == bot)][-1] == "bot.update"


def test_a_csv_without_its_columns_exits_2_naming_them(
    seeded: Database, cli: CliFn, tmp_path: Path
) -> None:
    bot = provision(seeded)
    faq = tmp_path / "faq.csv"
    faq.write_text("q,reply\nHi?,Hello\n", encoding="utf-8")
    result = cli("knowledge", "import", bot, "--file", str(faq))
    assert result.exit_code == 2
    assert "faq.csv has no question or answer column (columns found: q, reply)" in result.stderr
    faq.write_text("question\nHi?\n", encoding="utf-8")
    result = cli("knowledge", "import", bot, "--file", str(faq))
    assert result.exit_code == 2 and "has no answer column" in result.stderr
    assert "Traceback" not in result.output


def test_a_formula_cell_refuses_its_row_and_the_rest_goes_on(
    seeded: Database, cli: CliFn, tmp_path: Path
) -> None:
    bot = provision(seeded)
    faq = tmp_path / "faq.csv"
    faq.write_text(
        "question,answer\n"
        'Do you sell gift cards?,"=HYPERLINK(""http://evil.example"",""Yes"")"\n'
        "@SUM(A1),Yes\n"
        "Do you do hot towel shaves?,Yes: $25 with any cut.\n",
        encoding="utf-8",
    )
    result = cli("knowledge", "import", bot, "--file", str(faq), "--apply")
    assert result.exit_code == 0, result.output
    assert "faq.csv line 2: the answer starts with '='" in result.stderr
    assert "faq.csv line 3: the question starts with '@'" in result.stderr
    questions = {f.question for f in config_of(seeded, bot)[0].business.faqs}
    assert questions == {"Do you do hot towel shaves?"}
    faq.write_text("question,answer\n=1+1,two\n", encoding="utf-8")
    refused = cli("knowledge", "import", bot, "--file", str(faq))
    assert refused.exit_code == 1 and "no FAQ in faq.csv can be imported" in refused.stderr


def test_a_markdown_file_and_conflicts_with_the_business_answers(
    seeded: Database, cli: CliFn, tmp_path: Path
) -> None:
    bot = provision(seeded)
    faq = tmp_path / "faq.md"
    faq.write_text(
        "# Fade Factory FAQ\n\n## Do you sell beard oil?\n\nYes, three scents.\n\n"
        "## Is there parking?\nBehind the shop.\nFree after 5 pm.\n",
        encoding="utf-8",
    )
    assert cli("knowledge", "import", bot, "--file", str(faq), "--apply").exit_code == 0
    answers = {f.question: f.answer for f in config_of(seeded, bot)[0].business.faqs}
    assert answers == {
        "Do you sell beard oil?": "Yes, three scents.",
        "Is there parking?": "Behind the shop. Free after 5 pm.",
    }
    faq.write_text("## Do you sell beard oil?\nNo, not any more.\n", encoding="utf-8")
    kept = cli("knowledge", "import", bot, "--file", str(faq), "--apply", "--json")
    document = json.loads(kept.stdout)
    assert document["summary"]["conflict"] == 1 and document["applied"] is False
    assert config_of(seeded, bot)[1] == 2
    forced = cli("knowledge", "import", bot, "--file", str(faq), "--apply", "--overwrite", "faqs")
    assert forced.exit_code == 0, forced.output
    answers = {f.question: f.answer for f in config_of(seeded, bot)[0].business.faqs}
    assert answers["Do you sell beard oil?"] == "No, not any more."
    empty = tmp_path / "empty.md"
    empty.write_text("Just some notes.\n", encoding="utf-8")
    result = cli("knowledge", "import", bot, "--file", str(empty))
    assert result.exit_code == 2 and "no '## Question' headings" in result.stderr
