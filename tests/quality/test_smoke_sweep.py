"""`tcai templates smoke` and `sweep`: both pass on the shipped templates, both can fail."""

from __future__ import annotations

import copy
import json

import pytest
from sqlmodel import Session, select

from tcai.db.models import AuditLog, Bot, Conversation, Lead, Message, Workspace
from tcai.quality.sweep import run_sweep
from tcai.templates.files import load_template_files
from tests.helpers import count


def _corrupt(database, template_id: str, mutate) -> None:
    engine = database.engine()
    with Session(engine) as session:
        from tcai.db.models import BotTemplate

        row = session.exec(select(BotTemplate).where(BotTemplate.template_id == template_id)).one()
        document = copy.deepcopy(row.document)
        mutate(document)
        row.document = document
        session.add(row)
        session.commit()
    engine.dispose()


def test_smoke_passes_for_all_17_and_leaves_nothing_behind(cli, seeded) -> None:
    result = cli("templates", "smoke")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "✓ ALL 17 TEMPLATES PASSED SMOKE TEST"
    for model in (Workspace, Bot, Conversation, Message, Lead, AuditLog):
        assert count(seeded, model) == 0, model.__name__


def test_smoke_json_and_a_broken_template(cli, seeded) -> None:
    def no_helpline(document):
        document["crisis"]["response"] = (
            "We're here for you. Please reach out to someone you trust."
        )

    _corrupt(seeded, "sober_living_template", no_helpline)
    result = cli("templates", "smoke", "--only", "sober_living", "--only", "gym", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    failed = [i["name"] for i in report["items"] if i["status"] == "fail"]
    assert failed == ["sober_living_template: crisis reply"]
    assert report["passed"] == report["total"] - 1


def test_sweep_passes_and_prints_totals(cli, seeded) -> None:
    result = cli("templates", "sweep")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    total = int(lines[0].removeprefix("Total tests: "))
    assert total > 17 * 20
    assert lines[1] == f"Passed: {total}" and lines[2] == "Failed: 0"


def _mutations():
    def pivot_external(d):
        d["booking"]["failsafe"]["pivot_appointment_type"] = "book_cut"

    def payment_url(d):
        d["catalog"][0]["booking_url"] = "https://buy.stripe.com/test_abc"

    def dangling_cta(d):
        d["booking"]["ctas"][0]["appointment_type"] = "ghost"

    def card_field(d):
        d["booking"]["appointment_types"][1]["intake_fields"].append(
            {"key": "cardNumber", "label": "Card number", "type": "text", "required": True}
        )

    def phone_optional(d):
        for f in d["booking"]["appointment_types"][1]["intake_fields"]:
            if f["key"] == "phone":
                f["required"] = False

    return [
        ("barber", pivot_external, "barber_template: pivot is internal"),
        ("barber", payment_url, "barber_template: no payment links"),
        ("barber", dangling_cta, "barber_template: CTA references resolve"),
        ("barber", card_field, "barber_template: no card-entry fields"),
        ("barber", phone_optional, "barber_template: request_callback collects a phone number"),
    ]


@pytest.mark.parametrize(
    ("key", "mutate", "expected"), _mutations(), ids=lambda v: getattr(v, "__name__", str(v))[:30]
)
def test_sweep_catches_each_corruption(key, mutate, expected) -> None:
    templates = {t.key: t for t in load_template_files()}
    from tcai.templates.schema import Template

    document = templates[key].model_dump(mode="json")
    mutate(document)
    templates[key] = Template.model_validate(document)
    report = run_sweep(list(templates.values()))
    failed = [i.name for i in report.failed]
    assert expected in failed, failed
    assert all(name.startswith(f"{key}_template: ") for name in failed), (
        "other templates unaffected"
    )


def test_sweep_catches_silent_crisis_keywords_and_missing_rules() -> None:
    from tcai.templates.schema import Template

    templates = {t.key: t for t in load_template_files()}
    sober = templates["sober_living"].model_dump(mode="json")
    sober["crisis"]["response"] = "Call 911."
    med = templates["med_spa"].model_dump(mode="json")
    del med["compliance"]
    report = run_sweep([Template.model_validate(sober), Template.model_validate(med)])
    failed = {i.name for i in report.failed}
    assert "sober_living_template: crisis response names helplines" in failed
    assert "med_spa_template: compliance rules in prompt" in failed
    assert "med_spa_template: required fields and policy" in failed


def test_sweep_on_an_empty_database_fails(cli, migrated) -> None:
    result = cli("templates", "sweep", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False
