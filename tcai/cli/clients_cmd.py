"""`tcai clients create | list`."""

from __future__ import annotations

from typing import Annotated

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt

app = typer.Typer(
    help="Clients (workspaces): provision from a template, list.", no_args_is_help=True
)

Opt = typer.Option


@app.command("create")
def create(
    ctx: typer.Context,
    template: Annotated[str, Opt("--template", help="Template key or id, e.g. barber.")],
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
