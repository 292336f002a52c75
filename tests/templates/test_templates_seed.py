"""`tcai templates seed`: idempotent, atomic, concurrent-safe, never deletes."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlmodel import Session, select

import tcai.templates.store as store
from tcai.db.models import BotTemplate
from tcai.templates.files import load_template_files
from tcai.templates.policy import load_policy
from tests.conftest import TEMPLATES_DIR, run_tcai


def _rows(database) -> dict[str, BotTemplate]:
    engine = database.engine()
    try:
        with Session(engine) as session:
            return {r.template_id: r for r in session.exec(select(BotTemplate))}
    finally:
        engine.dispose()


def _copy_templates(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, target)
    return target


def test_first_seed_inserts_all_17_then_reports_unchanged(cli, migrated) -> None:
    first = cli("templates", "seed")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().splitlines()[-1] == "✓ ALL 17 TEMPLATES SEEDED"
    second = cli("templates", "seed", "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["counts"] == {"inserted": 0, "updated": 0, "unchanged": 17, "deactivated": 0}
    assert {r["action"] for r in report["results"]} == {"unchanged"}
    rows = _rows(migrated)
    assert len(rows) == 17 and all(r.is_active for r in rows.values())
    policy = load_policy()
    for industry in policy.industries:
        row = rows[industry.template_id]
        assert row.display_order == industry.display_order
        assert row.key == industry.key
        assert len(row.content_hash) == 64


def test_seed_json_reports_hash_and_version_per_template(cli, migrated) -> None:
    report = json.loads(cli("templates", "seed", "--json").stdout)
    assert report["counts"]["inserted"] == 17
    by_id = {r["template_id"]: r for r in report["results"]}
    assert by_id["auto_shop_template"]["action"] == "inserted"
    assert by_id["auto_shop_template"]["version"] == "1.0.0"
    assert (
        _rows(migrated)["auto_shop_template"].content_hash
        == by_id["auto_shop_template"]["content_hash"]
    )


def test_dry_run_writes_nothing(cli, migrated) -> None:
    result = cli("templates", "seed", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["inserted"] == 17
    assert _rows(migrated) == {}


def test_changed_file_is_updated_and_removed_file_deactivated(cli, seeded, tmp_path: Path) -> None:
    folder = _copy_templates(tmp_path)
    barber = yaml.safe_load((folder / "barber.yaml").read_text())
    barber["version"] = "1.1.0"
    barber["theme"]["welcome_message"] = "Welcome in! Want to grab a chair?"
    (folder / "barber.yaml").write_text(yaml.safe_dump(barber, sort_keys=False))
    (folder / "hotel.yaml").unlink()
    before = _rows(seeded)

    dry = json.loads(cli("templates", "seed", "--dir", str(folder), "--dry-run", "--json").stdout)
    assert dry["counts"] == {"inserted": 0, "updated": 1, "unchanged": 15, "deactivated": 1}
    changes = next(r for r in dry["results"] if r["template_id"] == "barber_template")["changes"]
    assert set(changes) == {"theme", "version"}
    assert {k: r.content_hash for k, r in _rows(seeded).items()} == {
        k: r.content_hash for k, r in before.items()
    }

    result = cli("templates", "seed", "--dir", str(folder), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {
        "inserted": 0,
        "updated": 1,
        "unchanged": 15,
        "deactivated": 1,
    }
    rows = _rows(seeded)
    assert len(rows) == 17, "a removed template is kept, never deleted"
    assert rows["hotel_template"].is_active is False
    assert rows["barber_template"].version == "1.1.0"
    assert rows["barber_template"].content_hash != before["barber_template"].content_hash

    # The validator counts only active templates and reports the missing industry.
    validated = cli("templates", "validate")
    assert validated.exit_code == 1
    assert "hotel_template: template: missing or inactive" in validated.stderr

    # Shipping the file again reactivates it.
    again = json.loads(cli("templates", "seed", "--json").stdout)
    hotel = next(r for r in again["results"] if r["template_id"] == "hotel_template")
    assert hotel["action"] == "updated" and "is_active" in hotel["changes"]
    assert _rows(seeded)["hotel_template"].is_active is True


def test_display_order_is_kept_in_sync(cli, seeded) -> None:
    engine = seeded.engine()
    with engine.begin() as conn:
        conn.execute(
            sa.update(BotTemplate)
            .where(BotTemplate.template_id == "gym_template")
            .values(display_order=99)  # type: ignore[arg-type]
        )
    engine.dispose()
    report = json.loads(cli("templates", "seed", "--json").stdout)
    gym = next(r for r in report["results"] if r["template_id"] == "gym_template")
    assert gym == {**gym, "action": "updated", "changes": ["display_order"]}
    assert _rows(seeded)["gym_template"].display_order == load_policy().display_order("gym")


def test_a_seed_failing_half_way_leaves_the_database_as_it_was(
    migrated,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    templates = load_template_files()
    engine = migrated.engine()
    calls = {"n": 0}
    real_upsert = store._upsert

    def failing_upsert(session, values):
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("power cut")
        real_upsert(session, values)

    monkeypatch.setattr(store, "_upsert", failing_upsert)
    with pytest.raises(RuntimeError, match="power cut"):
        store.seed_templates(engine, templates)
    assert _rows(migrated) == {}

    monkeypatch.setattr(store, "_upsert", real_upsert)
    store.seed_templates(engine, templates)
    before = {k: r.content_hash for k, r in _rows(migrated).items()}

    bumped = [t.model_copy(update={"version": "9.9.9"}) for t in templates]
    calls["n"] = 0
    monkeypatch.setattr(store, "_upsert", failing_upsert)
    with pytest.raises(RuntimeError):
        store.seed_templates(engine, bumped)
    after = _rows(migrated)
    engine.dispose()
    assert {k: r.content_hash for k, r in after.items()} == before
    assert {r.version for r in after.values()} == {"1.0.0"}


def test_a_bad_template_file_stops_the_seed_before_any_write(cli, migrated, tmp_path: Path) -> None:
    folder = _copy_templates(tmp_path)
    nails = yaml.safe_load((folder / "nails.yaml").read_text())
    nails["theme"]["primary_color"] = "pink"
    nails["favourite_colour"] = "pink"
    del nails["faqs"][0]["answer"]
    (folder / "nails.yaml").write_text(yaml.safe_dump(nails, sort_keys=False))
    (folder / "gym.yaml").write_text("id: [unclosed\n")

    for command in (("templates", "seed"), ("templates", "validate", "--files")):
        result = cli(*command, "--dir", str(folder))
        assert result.exit_code == 1, result.output
        err = result.stderr
        assert "templates/nails.yaml: theme.primary_color: String should match pattern" in err
        assert "templates/nails.yaml: favourite_colour: Extra inputs are not permitted" in err
        assert "templates/nails.yaml: faqs[0].answer: Field required" in err
        assert "templates/gym.yaml: cannot read" in err
        assert "Traceback" not in result.output
    assert _rows(migrated) == {}


def test_four_seeds_at_once_leave_exactly_17_active_rows(migrated) -> None:
    env = {"DATABASE_URL": migrated.url}
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _: run_tcai("templates", "seed", "--json", env=env), range(4)))
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
    reports = [json.loads(proc.stdout) for proc in runs]
    assert sum(r["counts"]["inserted"] for r in reports) == 17
    assert sum(r["counts"]["unchanged"] for r in reports) == 17 * 3
    rows = _rows(migrated)
    assert len(rows) == 17
    assert sum(1 for r in rows.values() if r.is_active) == 17


def test_four_upgrades_and_seeds_at_once_on_a_blank_database(database) -> None:
    env = {"DATABASE_URL": database.url}

    def init_and_seed(_: int) -> tuple[int, str]:
        upgrade = run_tcai("db", "upgrade", env=env)
        if upgrade.returncode:
            return upgrade.returncode, upgrade.stderr
        seed = run_tcai("templates", "seed", env=env)
        return seed.returncode, seed.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(init_and_seed, range(4)))
    assert all(code == 0 for code, _ in results), results
    assert sum(1 for r in _rows(database).values() if r.is_active) == 17
