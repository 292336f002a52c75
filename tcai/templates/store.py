"""Templates in the database: the seed use case, and look-ups.

`seed_templates` is one transaction. It serialises concurrent seeds (an advisory lock on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite), computes what changed against the stored rows,
writes with `INSERT … ON CONFLICT DO UPDATE` so no run can collide with another, and
deactivates templates whose files are gone (never deletes: bots refer to them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tcai.db.engine import session_scope, upsert_insert
from tcai.db.models import BotTemplate
from tcai.db.types import utcnow
from tcai.errors import NotFound
from tcai.templates.files import content_hash
from tcai.templates.policy import load_policy
from tcai.templates.schema import Template
from tcai.templates.validation import StoredTemplate

SEED_LOCK_KEY = 7_310_002  # pg_advisory_xact_lock key owned by template seeding

Action = Literal["inserted", "updated", "unchanged", "deactivated"]
ACTIONS: tuple[Action, ...] = ("inserted", "updated", "unchanged", "deactivated")


@dataclass(frozen=True)
class SeedResult:
    template_id: str
    action: Action
    version: str
    content_hash: str
    changes: tuple[str, ...] = ()


@dataclass
class SeedReport:
    results: list[SeedResult] = field(default_factory=list)
    dry_run: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {a: sum(1 for r in self.results if r.action == a) for a in ACTIONS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": [
                {
                    "template_id": r.template_id,
                    "action": r.action,
                    "version": r.version,
                    "content_hash": r.content_hash,
                    "changes": list(r.changes),
                }
                for r in self.results
            ],
            "counts": self.counts,
            "dry_run": self.dry_run,
        }


class _DryRunRollback(Exception):
    pass


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    keys = sorted(set(old) | set(new))
    return tuple(k for k in keys if old.get(k) != new.get(k))


def _upsert(session: Session, values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    insert = upsert_insert(dialect)
    stmt = insert(BotTemplate.__table__).values(**values)  # type: ignore[attr-defined]
    updated = {k: stmt.excluded[k] for k in values if k not in ("template_id", "created_at")}
    session.execute(stmt.on_conflict_do_update(index_elements=["template_id"], set_=updated))


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK_KEY})


def seed_templates(
    engine: Engine,
    templates: Sequence[Template],
    *,
    dry_run: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> SeedReport:
    policy = load_policy()
    ordered = sorted(templates, key=lambda t: (policy.display_order(t.key), t.key))
    report = SeedReport(dry_run=dry_run)
    try:
        with session_scope(engine) as session:
            _lock(session)
            existing = {row.template_id: row for row in session.exec(select(BotTemplate))}
            now = utcnow()
            for template in ordered:
                document = template.model_dump(mode="json")
                digest = content_hash(template)
                order = policy.display_order(template.key)
                row = existing.get(template.id)
                action: Action
                changes: tuple[str, ...] = ()
                if row is None:
                    action = "inserted"
                elif row.content_hash != digest or not row.is_active or row.display_order != order:
                    action = "updated"
                    changes = _changed_fields(row.document or {}, document)
                    if not row.is_active:
                        changes += ("is_active",)
                    if row.display_order != order:
                        changes += ("display_order",)
                else:
                    action = "unchanged"
                if action != "unchanged" and not dry_run:
                    _upsert(
                        session,
                        {
                            "template_id": template.id,
                            "key": template.key,
                            "name": template.name,
                            "version": template.version,
                            "content_hash": digest,
                            "document": document,
                            "is_active": True,
                            "display_order": order,
                            "seeded_at": now,
                            "created_at": now,
                        },
                    )
                report.results.append(
                    SeedResult(template.id, action, template.version, digest, changes)
                )
                if on_progress:
                    on_progress(template.id)
            shipped = {t.id for t in templates}
            for template_id, row in sorted(existing.items()):
                if template_id in shipped or not row.is_active:
                    continue
                if not dry_run:
                    session.execute(
                        sa.update(BotTemplate)
                        .where(BotTemplate.template_id == template_id)  # type: ignore[arg-type]
                        .values(is_active=False, seeded_at=now)
                    )
                report.results.append(
                    SeedResult(template_id, "deactivated", row.version, row.content_hash)
                )
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    return report


def stored_templates(session: Session) -> list[BotTemplate]:
    return list(
        session.exec(
            select(BotTemplate).order_by(BotTemplate.display_order, BotTemplate.template_id)  # type: ignore[arg-type]
        )
    )


def as_stored(row: BotTemplate) -> StoredTemplate:
    return StoredTemplate(
        template_id=row.template_id,
        key=row.key,
        version=row.version,
        content_hash=row.content_hash,
        document=row.document,
        is_active=row.is_active,
    )


def get_template_row(session: Session, ident: str) -> BotTemplate:
    """A stored template by key (`barber`) or id (`barber_template`); `NotFound` else."""
    wanted = ident.strip().lower()
    resolved = load_policy().resolve(wanted) or wanted
    row = session.exec(
        select(BotTemplate).where(
            sa.or_(BotTemplate.template_id == resolved, BotTemplate.key == wanted)  # type: ignore[arg-type]
        )
    ).first()
    if row is None:
        raise NotFound(f"no template '{ident}'; see tcai templates list")
    return row


def get_active_template(session: Session, ident: str) -> Template:
    """The parsed template provisioning and the chat engine use."""
    row = get_template_row(session, ident)
    if not row.is_active:
        raise NotFound(f"template '{row.template_id}' is deactivated; see tcai templates list")
    return Template.model_validate(row.document)


def template_summary(row: BotTemplate) -> dict[str, Any]:
    return {
        "template_id": row.template_id,
        "key": row.key,
        "name": row.name,
        "version": row.version,
        "is_active": row.is_active,
        "display_order": row.display_order,
        "content_hash": row.content_hash,
        "seeded_at": row.seeded_at.isoformat() if row.seeded_at else None,
    }


def template_choices(
    engine: Engine, prefix: str = "", *, limit: int = 200
) -> list[tuple[str, str]]:
    """Stored templates' keys (`barber`) and ids (`barber_template`) starting with
    `prefix`, each with the template's name, for shell completion (docs/cli.md, "Shell
    completion"): commands take either."""
    query = (
        select(BotTemplate.key, BotTemplate.template_id, BotTemplate.name, BotTemplate.is_active)
        .order_by(BotTemplate.display_order, BotTemplate.template_id)  # type: ignore[arg-type]
        .limit(limit)
    )
    found: dict[str, str] = {}
    with session_scope(engine, read_only=True) as session:
        for key, template_id, name, is_active in session.exec(query):
            label = name if is_active else f"{name} (deactivated)"
            for word in (key, template_id):
                if word.startswith(prefix):
                    found.setdefault(word, label)
    return list(found.items())
