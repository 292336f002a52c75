"""`tcai clients create | list | show | update | suspend | resume | delete | plan`.

The client's life after provisioning is `tcai.bots.clients`; these commands parse, call it
and render (docs/cli.md, "Client lifecycle")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

app = typer.Typer(
    help="Clients (workspaces): provision, list, show, update, suspend, resume, delete, plan.",
    no_args_is_help=True,
)

Opt = typer.Option
SlugArg = Annotated[
    str,
    typer.Argument(
        help="The client id (workspace slug).",
        show_default=False,
        autocompletion=complete.client_ids,
    ),
]


@app.command("create")
def create(
    ctx: typer.Context,
    template: Annotated[
        str,
        Opt(
            "--template",
            help="Template key or id, e.g. barber.",
            autocompletion=complete.template_ids,
        ),
    ],
    slug: Annotated[str, Opt("--slug", help="The client id: a-z, 0-9, '-', '_'.")],
    name: Annotated[str, Opt("--name", help="The business's name.")],
    phone: Annotated[str | None, Opt("--phone")] = None,
    email: Annotated[str | None, Opt("--email")] = None,
    address: Annotated[str | None, Opt("--address")] = None,
    website: Annotated[str | None, Opt("--website")] = None,
    timezone: Annotated[str, Opt("--timezone")] = "America/New_York",
    booking_url: Annotated[
        str | None, Opt("--booking-url", help="https link to the booking page.")
    ] = None,
    booking_provider: Annotated[str | None, Opt("--booking-provider")] = None,
    allowed_origin: Annotated[list[str] | None, Opt("--allowed-origin", help="Repeatable.")] = None,
    plan: Annotated[str, Opt("--plan", help="free, starter, pro or enterprise.")] = "free",
    bot_id: Annotated[str | None, Opt("--bot-id", help="Default: <slug>_main.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Provision a workspace and its bot from a template, in one transaction."""
    from tcai.bots.provisioning import ClientRequest, create_client

    request = ClientRequest(
        template=template,
        slug=slug,
        name=name,
        phone=phone,
        email=email,
        address=address,
        website=website,
        timezone=timezone,
        booking_url=booking_url,
        booking_provider=booking_provider,
        allowed_origins=list(allowed_origin or []),
        plan=plan,
        bot_id=bot_id,
    )
    cli = state(ctx)
    made = create_client(cli.migrated_engine(), request, actor=cli.actor)
    document = {
        "client_id": made.workspace_slug,
        "bot_id": made.bot_id,
        "template_id": made.template_id,
    }
    if json_:
        output.emit_json(document)
    else:
        output.result(
            f"✓ created client {made.workspace_slug} with bot {made.bot_id} ({made.template_id})"
        )


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List clients (workspaces)."""
    from tcai.bots.service import list_clients
    from tcai.db.engine import session_scope

    with session_scope(state(ctx).migrated_engine()) as session:
        items = list_clients(session)
    output.listing(
        items,
        [
            ("client_id", "client_id"),
            ("name", "name"),
            ("plan", "plan"),
            ("status", "status"),
            ("bots", "bots"),
        ],
        json_=json_,
        empty="no clients yet; create one with `tcai clients create`",
    )


def _plans() -> dict[str, tuple[int | None, int | None]]:
    from tcai.chat.rules import load_rules

    return load_rules().plans


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


@app.command("show")
def show(ctx: typer.Context, slug: SlugArg, json_: JsonOpt = False) -> None:
    """Show a client: facts, plan and quotas, this month's usage, status and bots."""
    from tcai.bots.clients import show_client

    client = show_client(state(ctx).migrated_engine(), slug, plans=_plans())
    if json_:
        output.emit_json(client)
        return
    quotas, usage = client["quotas"], client["usage"]
    lines = [
        ("client_id", client["client_id"]),
        ("name", client["name"]),
        ("status", client["status"]),
        ("plan", client["plan"]),
        ("messages", f"{usage['messages']:,} of {_limit(quotas['messages'])} in {usage['month']}"),
        ("leads", f"{usage['leads']:,} of {_limit(quotas['leads'])} in {usage['month']}"),
        ("timezone", client["timezone"]),
        ("phone", client["contact_phone"]),
        ("email", client["contact_email"]),
    ]
    if client["suspension"]:
        suspension = client["suspension"]
        lines.append(
            ("suspended", f"{suspension['at']} by {suspension['by']}: {suspension['reason']}")
        )
    counts = client["counts"]
    lines.append(
        (
            "holds",
            f"{counts['leads']} lead(s), {counts['conversations']} conversation(s), "
            f"{counts['pending_deliveries']} pending delivery(ies)",
        )
    )
    for key, value in lines:
        output.result(f"{key}: {'' if value is None else value}")
    output.table(
        ["bot_id", "status", "paused_reason", "version", "website"],
        [
            (
                b["bot_id"],
                b["status"],
                b["paused_reason"],
                b["config_version"],
                b["business"]["website"],
            )
            for b in client["bots"]
        ],
    )


@app.command("update")
def update(
    ctx: typer.Context,
    slug: SlugArg,
    name: Annotated[str | None, Opt("--name", help="The business's name.")] = None,
    phone: Annotated[str | None, Opt("--phone", help="'' clears it.")] = None,
    email: Annotated[str | None, Opt("--email", help="'' clears it.")] = None,
    address: Annotated[str | None, Opt("--address", help="'' clears it.")] = None,
    website: Annotated[str | None, Opt("--website", help="'' clears it.")] = None,
    timezone: Annotated[str | None, Opt("--timezone", help="IANA, e.g. America/Chicago.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Change business facts on the client and all its bots (validated as `bots set`)."""
    from tcai.bots.clients import update_client

    cli = state(ctx)
    facts = {
        "name": name,
        "phone": phone,
        "email": email,
        "address": address,
        "website": website,
        "timezone": timezone,
    }
    result = update_client(cli.migrated_engine(), slug, facts, actor=cli.actor)
    if json_:
        output.emit_json(result)
    elif not result["changed"]:
        output.result(f"no change; {result['client_id']} already has those facts")
    else:
        bots = ", ".join(f"{b['bot_id']} v{b['config_version']}" for b in result["bots"])
        output.result(
            f"✓ updated {result['client_id']}: {', '.join(result['facts'])}"
            + (f" (bots: {bots})" if bots else "")
        )


@app.command("suspend")
def suspend(
    ctx: typer.Context,
    slug: SlugArg,
    reason: Annotated[
        str | None, Opt("--reason", help="Why (shown to operators, audited).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Suspend a client: visitors get 403 and every active bot is paused, within 2 s."""
    from tcai.bots.clients import suspend_client

    cli = state(ctx)
    result = suspend_client(
        cli.migrated_engine(),
        slug,
        reason=reason,
        actor=cli.actor,
        demo_safe_mode=cli.settings.demo_safe_mode,
    )
    if json_:
        output.emit_json(result)
        return
    paused = ", ".join(result["paused_bots"]) or "none"
    output.result(f"✓ {result['client_id']} suspended: {result['reason']} (paused bots: {paused})")


@app.command("resume")
def resume(ctx: typer.Context, slug: SlugArg, json_: JsonOpt = False) -> None:
    """Lift a suspension; bots paused for another reason stay paused."""
    from tcai.bots.clients import resume_client

    cli = state(ctx)
    result = resume_client(cli.migrated_engine(), slug, actor=cli.actor)
    if json_:
        output.emit_json(result)
        return
    resumed = ", ".join(result["resumed_bots"]) or "none"
    output.result(f"✓ {result['client_id']} is active again (resumed bots: {resumed})")
    for bot in result["still_paused"]:
        output.warn(f"{bot['bot_id']} stays paused: {bot['paused_reason']} (tcai bots resume)")


@app.command("plan")
def plan(
    ctx: typer.Context,
    slug: SlugArg,
    plan_name: Annotated[str, typer.Argument(metavar="PLAN", help="free, starter, pro, ...")],
    json_: JsonOpt = False,
) -> None:
    """Move a client to another plan (its monthly message and lead quotas)."""
    from tcai.bots.clients import change_plan

    cli = state(ctx)
    result = change_plan(cli.migrated_engine(), slug, plan_name, plans=_plans(), actor=cli.actor)
    if json_:
        output.emit_json(result)
        return
    quotas = result["quotas"]
    limits = f"{_limit(quotas['messages'])} messages, {_limit(quotas['leads'])} leads a month"
    if result["changed"]:
        output.result(
            f"✓ {result['client_id']}: {result['previous_plan']} → {result['plan']} ({limits})"
        )
    else:
        output.result(f"no change; {result['client_id']} is already on {result['plan']} ({limits})")


@app.command("delete")
def delete(
    ctx: typer.Context,
    slug: SlugArg,
    yes: Annotated[bool, Opt("--yes", help="Confirm: this cannot be undone.")] = False,
    force: Annotated[bool, Opt("--force", help="Delete even while bots are live.")] = False,
    export: Annotated[
        Path | None,
        Opt("--export", help="Write the export here (default: ./tcai-client-SLUG-TIME.json)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Export a client to a file (0600), then delete everything it owns, in one transaction."""
    from tcai.bots.clients import check_export_path, default_export_path, delete_client

    path = export or default_export_path(slug)
    check_export_path(path)
    if not yes:
        raise UsageError(
            f"deleting client '{slug}' cannot be undone; add --yes (an export is written first)"
        )
    cli = state(ctx)
    result = delete_client(
        cli.migrated_engine(),
        slug,
        export_path=path,
        force=force,
        actor=cli.actor,
        demo_safe_mode=cli.settings.demo_safe_mode,
    )
    _render_deletion(result, json_=json_)


def _render_deletion(result: dict[str, Any], *, json_: bool) -> None:
    export = result["export"]
    dropped = result["pending_deliveries_dropped"]
    if json_:
        output.emit_json(result)
    else:
        output.info(
            f"export: {export['path']} ({export['bytes']:,} bytes, sha256 {export['sha256']})"
        )
        output.result(f"✓ deleted client {result['client_id']}: {result['total']} row(s)")
    if dropped:
        output.warn(
            f"{dropped} pending delivery(ies) dropped, not sent; they are in {export['path']}"
        )
    if result["forced"]:
        output.warn(f"deleted while live: {', '.join(result['live_bots'])} (--force)")
