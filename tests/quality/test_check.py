"""`tcai check`: every gate runs, none stops the others, exit 1 on any FAIL; a WARN never
counts as passed."""

from __future__ import annotations

import json
import random
import string

import pytest

from tcai.quality.checklist import Checklist, Gate

GATES = ["configuration", "migrations", "templates", "go-live", "secrets scan", "payment guard"]


def _fake_aws_key() -> str:
    rng = random.Random(7)
    return "AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))


def test_a_ready_deployment(cli, seeded, tmp_path) -> None:
    tree = tmp_path / "app"
    tree.mkdir()
    (tree / "main.py").write_text("print('hello')\n")
    result = cli("check", "--path", str(tree), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [i["name"] for i in report["items"]] == GATES
    status = {i["name"]: i["status"] for i in report["items"]}
    assert status == {
        "configuration": "warn",
        "migrations": "pass",
        "templates": "warn",
        "go-live": "pass",
        "secrets scan": "pass",
        "payment guard": "pass",
    }
    assert report["ok"] is True
    assert (report["total"], report["passed"], report["warnings"], report["failed"]) == (6, 4, 2, 0)
    assert "no live bots" in next(i for i in report["items"] if i["name"] == "go-live")["message"]
    assert all(i["seconds"] >= 0 and i["command"].startswith("tcai ") for i in report["items"])
    human = cli("check", "--path", str(tree))
    assert human.exit_code == 0
    assert human.stdout.strip().splitlines()[-1] == (
        "✓ READY TO DEPLOY with 2 warning(s): see the WARN rows"
    )


def _live_restaurant(cli, **overrides: str) -> str:
    flags = {"--phone": "772-555-0102", "--address": "88 Ocean Blvd, Stuart, FL",
             "--booking-url": "https://www.opentable.com/r/sunset-diner",
             "--allowed-origin": "https://sunsetdiner.net", "--plan": "pro", **overrides}  # fmt: skip
    args = [item for pair in flags.items() for item in pair if pair[1]]
    result = cli("clients", "create", "--template", "restaurant", "--slug", "sunset-diner",
                 "--name", "Sunset Diner", *args)  # fmt: skip
    assert result.exit_code == 0, result.output
    hours = [f"hours.{d}=09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat")]
    assert cli("bots", "set", "sunset-diner_main", *hours, "hours.sun=closed").exit_code == 0
    return "sunset-diner_main"


def test_a_blocked_live_bot_fails_the_go_live_gate(cli, seeded, tmp_path) -> None:
    tree = tmp_path / "app"
    tree.mkdir()
    bot_id = _live_restaurant(cli, **{"--phone": ""})
    result = cli("check", "--path", str(tree), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    gate = next(i for i in report["items"] if i["name"] == "go-live")
    assert gate["status"] == "fail"
    assert gate["message"].startswith(f"1 of 1 live bot(s) blocked; {bot_id}: no_phone:")
    assert gate["command"] == "tcai bots check --all"
    assert (report["passed"], report["warnings"], report["failed"]) == (3, 2, 1)
    human = cli("check", "--path", str(tree))
    assert human.exit_code == 1
    assert "READY TO DEPLOY" not in human.stdout
    assert human.stdout.strip().splitlines()[-1] == "✗ NOT READY: fix the 1 FAIL row(s)"
    # A paused bot is not live: the gate no longer counts it.
    assert cli("bot", "disable", bot_id, "--reason", "phone number pending").exit_code == 0
    again = json.loads(cli("check", "--path", str(tree), "--json").stdout)
    assert next(i for i in again["items"] if i["name"] == "go-live")["status"] == "pass"


def test_a_live_bot_with_warnings_is_a_warn_row(cli, seeded, tmp_path) -> None:
    tree = tmp_path / "app"
    tree.mkdir()
    _live_restaurant(cli)  # no e-mail, website or notifications: warnings only
    report = json.loads(cli("check", "--path", str(tree), "--json").stdout)
    gate = next(i for i in report["items"] if i["name"] == "go-live")
    assert gate["status"] == "warn" and gate["message"] == "1/1 live bot(s) ready; 3 warning(s)"
    assert report["ok"] is True and report["warnings"] == 3 and report["passed"] == 3


@pytest.mark.parametrize(
    ("statuses", "counts", "ok"),
    [
        (["PASS", "PASS"], (2, 0, 0), True),
        (["PASS", "WARN"], (1, 1, 0), True),
        (["WARN", "WARN"], (0, 2, 0), True),
        (["PASS", "WARN", "FAIL"], (1, 1, 1), False),
    ],
)
def test_a_warning_never_counts_as_passed(statuses, counts, ok) -> None:
    checklist = Checklist([Gate(f"g{i}", s, "", 0.0, "tcai x") for i, s in enumerate(statuses)])
    document = checklist.as_dict()
    assert (document["passed"], document["warnings"], document["failed"]) == counts
    assert document["ok"] is ok and document["total"] == len(statuses)


def test_every_gate_runs_and_failures_are_counted(cli, database, tmp_path) -> None:
    tree = tmp_path / "app"
    tree.mkdir()
    (tree / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{_fake_aws_key()}"\n')
    (tree / "pay.py").write_text("import stripe\n")
    result = cli("check", "--path", str(tree), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    status = {i["name"]: i["status"] for i in report["items"]}
    assert status["migrations"] == "fail" and status["secrets scan"] == "fail"
    assert status["payment guard"] == "fail" and status["templates"] == "fail"
    assert status["go-live"] == "fail"
    assert report["failed"] == 5 and len(report["items"]) == 6 and report["passed"] == 0
    assert (
        "settings.py:1"
        in next(i for i in report["items"] if i["name"] == "secrets scan")["message"]
    )
    assert _fake_aws_key() not in result.output


def test_bad_configuration_fails_its_gate_without_hiding_the_others(
    cli, migrated, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    tree = tmp_path / "app"
    tree.mkdir()
    result = cli("check", "--path", str(tree), "--json")
    assert result.exit_code == 1
    items = {i["name"]: i for i in json.loads(result.stdout)["items"]}
    assert (
        items["configuration"]["status"] == "fail" and "PORT" in items["configuration"]["message"]
    )
    assert items["secrets scan"]["status"] == "pass"


def test_a_missing_path_is_a_usage_error(cli, migrated, tmp_path) -> None:
    result = cli("check", "--path", str(tmp_path / "nope"))
    assert result.exit_code == 2


def test_scan_secrets_cli(cli, tmp_path) -> None:
    tree = tmp_path / "app"
    tree.mkdir()
    key = _fake_aws_key()
    (tree / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{key}"\n')
    human = cli("scan", "secrets", str(tree))
    assert human.exit_code == 1
    assert "settings.py:1: aws-access-key-id:" in human.stdout and key not in human.output
    document = json.loads(cli("scan", "secrets", str(tree), "--json").stdout)
    assert document["files_scanned"] == 1
    assert document["findings"][0] == {
        **document["findings"][0],
        "line": 1,
        "rule": "aws-access-key-id",
    }
    sarif = json.loads(cli("scan", "secrets", str(tree), "--sarif").stdout)
    assert (
        sarif["version"] == "2.1.0"
        and sarif["runs"][0]["results"][0]["ruleId"] == "aws-access-key-id"
    )
    assert key not in json.dumps(sarif)
    baseline = tmp_path / "baseline.json"
    assert (
        cli(
            "scan", "secrets", str(tree), "--baseline", str(baseline), "--update-baseline"
        ).exit_code
        == 0
    )
    assert key not in baseline.read_text()
    assert cli("scan", "secrets", str(tree), "--baseline", str(baseline)).exit_code == 0
    assert cli("scan", "secrets", str(tmp_path / "missing")).exit_code == 2
    assert cli("scan", "secrets", str(tree), "--update-baseline").exit_code == 2
    assert cli("scan", "secrets", str(tree), "--json", "--sarif").exit_code == 2


def test_guard_payments_cli(cli, tmp_path) -> None:
    tree = tmp_path / "app"
    tree.mkdir()
    (tree / "pay.py").write_text("import os\nimport stripe\n")
    (tree / "README.md").write_text("We never use Stripe.\n")
    result = cli("guard", "payments", str(tree), "--json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert [(f["file"].endswith("pay.py"), f["line"]) for f in findings] == [(True, 2)]
    assert "Stripe" in findings[0]["message"]
    (tree / "pay.py").write_text("import os\n")
    assert cli("guard", "payments", str(tree)).exit_code == 0
