"""`tcai templates validate` checks the stored rows, and every rule can fail."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, select

from tcai.db.models import BotTemplate


def test_shipped_templates_validate_with_placeholder_warnings(cli, seeded) -> None:
    result = cli("templates", "validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "✓ ALL 17/17 TEMPLATES VALIDATED"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("⚠")]
    assert warnings, "shipped placeholder booking URLs must be reported"
    assert all("placeholder URL" in line for line in warnings)
    assert {line.split(":")[0].removeprefix("⚠ ") for line in warnings} == {
        "barber_template",
        "salon_template",
        "nails_template",
    }


def test_validate_json_shape(cli, seeded) -> None:
    report = json.loads(cli("templates", "validate", "--json").stdout)
    assert report["ok"] is True
    assert (report["total"], report["passed"], report["failed"]) == (17, 17, 0)
    assert {item["status"] for item in report["items"]} == {"pass", "warn"}
    assert all({"name", "status", "message"} <= set(item) for item in report["items"])


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


def _duplicate_chip(document: dict[str, Any]) -> None:
    document["quick_replies"][1]["id"] = document["quick_replies"][0]["id"]


def _trim_faqs(document: dict[str, Any]) -> None:
    document["faqs"] = document["faqs"][:3]


def _pivot_to_external(document: dict[str, Any]) -> None:
    external = next(a for a in document["booking"]["appointment_types"] if a["mode"] == "external")
    document["booking"]["failsafe"]["pivot_appointment_type"] = external["id"]


def _external_type_in_internal_mode(document: dict[str, Any]) -> None:
    document["booking"]["appointment_types"][0]["mode"] = "external"


CORRUPTIONS = [
    (
        "barber_template",
        _set("theme.primary_color", "purple"),
        "theme.primary_color: String should match pattern",
    ),
    (
        "barber_template",
        _set("booking.ctas.0.appointment_type", "nope"),
        "'nope' is not an appointment type",
    ),
    ("barber_template", _pivot_to_external, "must be internal"),
    ("barber_template", _set("booking.providers", []), "external booking must name its providers"),
    (
        "barber_template",
        _set("booking.providers", ["Square Appointments", "Acme Pay"]),
        "unknown provider 'Acme Pay'",
    ),
    (
        "barber_template",
        _set("booking.booking_url", "http://squareup.com/appointments/book/abc"),
        "must use https",
    ),
    (
        "barber_template",
        _set("catalog.0.booking_url", "https://buy.stripe.com/abc123"),
        "payment site",
    ),
    ("barber_template", _set("catalog.1.booking_url", "javascript:alert(1)"), "must use https"),
    (
        "barber_template",
        _set("catalog.1.booking_url", "https://squareup.com.evil.example/YOUR_BUSINESS/x"),
        "is on squareup.com.evil.example, which none of the listed providers use",
    ),
    (
        "nails_template",
        _set("catalog.0.booking_url", "https://b\u043e\u043eksy.com/YOUR_BUSINESS"),
        "look-alike",
    ),
    ("barber_template", _trim_faqs, "needs at least 6 FAQs"),
    ("barber_template", _duplicate_chip, "appears more than once"),
    ("barber_template", _set("quick_replies.0.cta", "ghost"), "'ghost' is not a booking CTA"),
    ("barber_template", _set("tone", "sarcastic"), "tone: Input should be"),
    (
        "sober_living_template",
        _set("crisis.response", "Please call 911."),
        "must name 1-800-662-4357",
    ),
    ("sober_living_template", _drop("crisis"), "must carry crisis rules"),
    ("sober_living_template", _external_type_in_internal_mode, "must be internal in internal mode"),
    ("med_spa_template", _drop("compliance"), "must carry compliance rules"),
    ("law_firm_template", _drop("compliance"), "must carry compliance rules"),
    ("dental_template", _set("booking.default_provider", "Booksy"), "'Booksy' is not listed"),
    ("salon_template", _set("catalog", []), "must carry a service catalogue"),
    ("gym_template", _set("id", "fitness_template"), "document says 'fitness_template'"),
]


@pytest.mark.parametrize(
    ("template_id", "mutate", "expected"),
    CORRUPTIONS,
    ids=[f"{c[0]}:{c[2][:40]}" for c in CORRUPTIONS],
)
def test_each_corruption_of_a_stored_row_is_caught(
    cli, seeded, template_id, mutate, expected
) -> None:
    engine = seeded.engine()
    with Session(engine) as session:
        row = session.exec(select(BotTemplate).where(BotTemplate.template_id == template_id)).one()
        document = copy.deepcopy(row.document)
        mutate(document)
        row.document = document
        session.add(row)
        session.commit()
    engine.dispose()
    result = cli("templates", "validate")
    assert result.exit_code == 1, result.output
    failures = [line for line in result.stderr.splitlines() if line.startswith("✗")]
    assert any(line.startswith(f"✗ {template_id}: ") and expected in line for line in failures), (
        result.stderr
    )
    assert "1 TEMPLATE(S) FAILED VALIDATION" in result.stdout
    report = json.loads(cli("templates", "validate", "--json").stdout)
    assert report["ok"] is False and report["failed"] == 1
    failed = next(i for i in report["items"] if i["status"] == "fail")
    assert failed["name"] == template_id


def test_a_tampered_document_with_valid_content_is_flagged_by_its_hash(cli, seeded) -> None:
    engine = seeded.engine()
    with Session(engine) as session:
        row = session.exec(
            select(BotTemplate).where(BotTemplate.template_id == "gym_template")
        ).one()
        document = copy.deepcopy(row.document)
        document["theme"]["welcome_message"] = "Hi from someone who edited the database by hand"
        row.document = document
        session.add(row)
        session.commit()
    engine.dispose()
    result = cli("templates", "validate")
    assert result.exit_code == 1
    assert "gym_template: content_hash: stored document was changed outside" in result.stderr


def test_validate_on_an_empty_database_reports_every_missing_template(cli, migrated) -> None:
    result = cli("templates", "validate", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"] == 17
    assert all("tcai templates seed" in item["message"] for item in report["items"])
