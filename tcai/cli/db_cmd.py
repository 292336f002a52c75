"""`tcai init`, `tcai db upgrade`, `tcai db status`."""

from __future__ import annotations

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt

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
    if json_:
        output.emit_json(document)
    elif status.up_to_date:
        output.result(f"✓ {document['database']}: at {status.head} (up to date)")
    else:
        output.result(
            f"✗ {document['database']}: at {status.current or 'empty'}, head {status.head}; "
            f"{len(status.pending)} pending — run `tcai db upgrade`"
        )
    if not status.up_to_date:
        raise typer.Exit(1)
