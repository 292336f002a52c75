"""`tcai check`: every gate runs, none stops the others, exit 1 on any FAIL."""

from __future__ import annotations

import json
import random
import string

GATES = ["configuration", "migrations", "templates", "secrets scan", "payment guard"]


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
        "secrets scan": "pass",
        "payment guard": "pass",
    }
    assert report["ok"] is True and report["failed"] == 0
    assert all(i["seconds"] >= 0 and i["command"].startswith("tcai ") for i in report["items"])
    human = cli("check", "--path", str(tree))
    assert "READY TO DEPLOY" in human.stdout


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
    assert report["failed"] == 4 and len(report["items"]) == 5
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
