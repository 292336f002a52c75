"""`tcai init`, `tcai db upgrade|status|downgrade|backup|restore` (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


def init_command(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Create or upgrade the database; write a .env with fresh secrets if none exists."""
    from tcai.access.envfile import write_env_file
    from tcai.db.engine import describe_url
    from tcai.db.migrate import get_status, upgrade

    cli = state(ctx)
    created = write_env_file(cli.env_file) if not cli.env_file.exists() else False
    settings = cli.reload_settings()
    assert settings.database_url is not None
    engine = cli.engine(create=True)
    before = upgrade(engine)
    after = get_status(engine)
    report = {
        "env_file": str(cli.env_file),
        "env_file_created": created,
        "database": describe_url(settings.database_url),
        "applied": list(before.pending),
        "revision": after.current,
    }
    if json_:
        output.emit_json(report)
        return
    if created:
        output.info(f"wrote {cli.env_file} with fresh secrets (mode 0600)")
    else:
        output.info(f"kept the existing {cli.env_file}")
    applied = f"applied {len(before.pending)} migration(s)" if before.pending else "already current"
    output.result(f"✓ database ready: {report['database']} at {after.current} ({applied})")


@app.command("upgrade")
def upgrade_command(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Apply pending migrations (safe to run from several machines at once)."""
    from tcai.db.migrate import get_status, upgrade

    engine = state(ctx).engine(create=True)
    before = upgrade(engine)
    after = get_status(engine)
    if json_:
        output.emit_json({"applied": list(before.pending), "revision": after.current})
        return
    if before.pending:
        output.result(f"✓ applied {len(before.pending)} migration(s); now at {after.current}")
    else:
        output.result(f"✓ already at {after.current}; nothing to apply")


@app.command("status")
def status_command(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Show the schema revision; exit 1 when migrations are pending."""
    from tcai.db.engine import describe_url
    from tcai.db.migrate import get_status

    cli = state(ctx)
    status = get_status(cli.engine())
    assert cli.settings.database_url is not None
    document = {
        "database": describe_url(cli.settings.database_url),
        "current": status.current,
        "head": status.head,
        "pending": list(status.pending),
        "up_to_date": status.up_to_date,
    }
    if status.unknown:
        document["unknown_revision"] = True
    if json_:
        output.emit_json(document)
    elif status.unknown:
        output.result(
            f"✗ {document['database']}: at {status.current}, which this version of tcai "
            f"does not know (it ships up to {status.head}); downgrade with the newer "
            "version or restore a backup (docs/operations.md)"
        )
    elif status.up_to_date:
        output.result(f"✓ {document['database']}: at {status.head} (up to date)")
    else:
        output.result(
            f"✗ {document['database']}: at {status.current or 'empty'}, head {status.head}; "
            f"{len(status.pending)} pending — run `tcai db upgrade`"
        )
    if not status.up_to_date:
        raise typer.Exit(1)


YesOpt = Annotated[bool, typer.Option("--yes", help="Confirm: this replaces or drops data.")]
STOP_DAEMONS = "stop every daemon (`tcai serve`) on this database before you run this"


# `-1` is a revision, not an option: unknown options pass through as the argument.
@app.command("downgrade", context_settings={"ignore_unknown_options": True})
def downgrade_command(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="A revision id, base, or -1 (one back).")],
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Undo migrations down to REV (drops the tables and columns they added)."""
    from tcai.db.migrate import downgrade, get_status, plan_downgrade

    engine = state(ctx).engine()
    plan = plan_downgrade(engine, revision)
    target = plan.target or "base"
    for rev, title in plan.steps:
        output.info(f"will undo {rev}: {title}")
    if plan.steps and not yes:
        raise UsageError(
            f"downgrading to {target} drops the data those migrations hold; back up first "
            f"(`tcai db backup FILE`), {STOP_DAEMONS}, then add --yes"
        )
    if plan.steps:
        downgrade(engine, target)
    after = get_status(engine)
    undone = [rev for rev, _title in plan.steps]
    if json_:
        output.emit_json({"undone": undone, "revision": after.current, "head": after.head})
    elif undone:
        output.result(f"✓ undid {len(undone)} migration(s); now at {after.current or 'base'}")
    else:
        output.result(f"✓ already at {after.current}; nothing to undo")


@app.command("backup")
def backup_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The backup file to write (0600).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Back up the database to PATH (SQLite online backup, or pg_dump)."""
    from tcai.db.backup import backup_database

    cli = state(ctx)
    assert cli.settings.database_url is not None
    report = backup_database(cli.settings.database_url, path, force=force)
    if json_:
        output.emit_json(report.as_dict())
        return
    output.result(
        f"✓ backed up {report.database} at {report.revision or 'no revision'} to "
        f"{report.path} ({report.bytes} bytes)"
    )


@app.command("restore")
def restore_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file written by `tcai db backup`.")],
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Replace the database with the backup in PATH (stop every daemon first)."""
    from tcai.db.backup import restore_database
    from tcai.db.migrate import revisions

    cli = state(ctx)
    assert cli.settings.database_url is not None
    if not yes:
        raise UsageError(
            f"restoring replaces every row of the database with the backup's; {STOP_DAEMONS}, "
            "then add --yes"
        )
    output.warn(f"{STOP_DAEMONS}; restart them after the restore")
    report = restore_database(cli.settings.database_url, path)
    if json_:
        output.emit_json(report.as_dict())
        return
    if report.dropped_tables:
        output.info(f"dropped tables the backup lacks: {', '.join(report.dropped_tables)}")
    output.result(
        f"✓ restored {report.database} from {report.path} (revision {report.revision or 'none'})"
    )
    chain = revisions()
    if report.revision is None:
        output.info("the backup holds no schema revision (taken at base); run `tcai db upgrade`")
    elif report.revision not in chain:
        output.info(
            f"this version of tcai does not know revision {report.revision}; "
            "run the version that made the backup"
        )
    elif report.revision != chain[-1]:
        output.info(
            f"the backup is at {report.revision}, this version at {chain[-1]}: "
            "run `tcai db upgrade` before you start this version, or install "
            "the version that matches the backup"
        )
