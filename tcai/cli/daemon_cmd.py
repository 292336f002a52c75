"""`tcai serve`, `tcai demo`, `tcai health`, `tcai embed`, `tcai preview-link`,
`tcai cache invalidate` (the kill switch is `tcai bots pause|resume`, in bots_cmd.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import TcaiError

HostOpt = Annotated[str | None, typer.Option("--host", help="Default: HOST (127.0.0.1).")]
PortOpt = Annotated[
    int | None, typer.Option("--port", min=0, max=65535, help="Default: PORT (5000).")
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="The daemon's public URL (default http://HOST:PORT).")
]

cache_app = typer.Typer(help="Daemon caches.", no_args_is_help=True)


def _base_url(ctx: typer.Context, url: str | None) -> str:
    return state(ctx).public_url(url)


def serve_command(
    ctx: typer.Context,
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64)] = 1,
) -> None:
    """Run the daemon (drains in-flight requests on SIGTERM)."""
    from tcai.daemon.server import run_server

    cli = state(ctx)
    cli.migrated_engine()
    settings = cli.settings
    bind_host, bind_port = host or settings.host, settings.port if port is None else port
    output.info(
        f"tcai daemon on http://{bind_host}:{bind_port} ({workers} worker(s)); Ctrl-C stops"
    )
    if workers > 1 and not settings.redis_url:
        output.info(
            f"note: rate limits are kept per worker process, so each visitor may send up to "
            f"{workers}× CHAT_RATE_LIMIT before a refusal; set REDIS_URL to share them"
        )
    run_server(
        settings,
        host=bind_host,
        port=bind_port,
        workers=workers,
        on_ready=lambda name: output.info(f"listening on {name}"),
    )


def demo_command(
    ctx: typer.Context,
    host: HostOpt = None,
    port: PortOpt = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the daemon afterwards.")
    ] = True,
    json_: JsonOpt = False,
) -> None:
    """The one-command tour: init, seed, a demo business per template, serve, print the URL."""
    from tcai.access.envfile import write_env_file
    from tcai.bots.demo import provision_demo
    from tcai.daemon.server import run_server
    from tcai.db.migrate import upgrade
    from tcai.templates.files import load_template_files
    from tcai.templates.store import seed_templates

    cli = state(ctx)
    if not cli.env_file.exists() and write_env_file(cli.env_file):
        output.info(f"wrote {cli.env_file} with fresh secrets (mode 0600)")
    settings = cli.reload_settings()
    engine = cli.engine(create=True)
    upgrade(engine)
    seed_templates(engine, load_template_files())
    bind_host, bind_port = host or settings.host, settings.port if port is None else port
    origins = [f"http://127.0.0.1:{bind_port}", f"http://localhost:{bind_port}"]
    made = provision_demo(engine, origins)
    output.info(
        f"{len(made)} demo businesses ready ({sum(m.created for m in made)} new); no API key needed"
    )
    url = f"http://{bind_host}:{bind_port}/demo/"
    # Only `tcai demo` serves /demo/ (`tcai serve` answers it 404), and running it again
    # provisions nothing new, so the command that serves what was made is this one again.
    serve_with = demo_serve_command(cli.env_file, host, port)
    document = {
        "url": url,
        "businesses": len(made),
        "created": sum(m.created for m in made),
        "serving": serve,
        "serve_command": serve_with,
    }
    if not serve:
        if json_:
            output.emit_json(document)
        else:
            output.info(f"not serving; to serve the demo pages run: {serve_with}")
            output.result(url)
        return

    def ready(_name: str) -> None:
        if json_:
            output.emit_json(document)
            sys.stdout.flush()
        else:
            output.result(f"✓ tcai demo is running: open {url}")

    run_server(settings, host=bind_host, port=bind_port, demo=True, on_ready=ready)


def demo_serve_command(env_file: Path, host: str | None, port: int | None) -> str:
    """The exact `tcai demo` command line that serves the demo pages as this run made
    them: the same --env-file, --host and --port (only those given)."""
    import shlex

    words = ["tcai"]
    if env_file != Path(".env"):
        words += ["--env-file", str(env_file)]
    words.append("demo")
    if host is not None:
        words += ["--host", host]
    if port is not None:
        words += ["--port", str(port)]
    return shlex.join(words)


def health_command(ctx: typer.Context, url: UrlOpt = None, json_: JsonOpt = False) -> None:
    """Ask a running daemon for its health; exit 1 when degraded or unreachable."""
    import urllib.error
    import urllib.request

    target = _base_url(ctx, url) + "/api/health"
    try:
        with urllib.request.urlopen(target, timeout=5) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TcaiError(
            f"no daemon answers at {target} ({reason}); is `tcai serve` (or `tcai demo`) running?"
        ) from None
    try:
        document = json.loads(body)
    except ValueError:
        raise TcaiError(
            f"{target} answered {status} with something that is not tcai's health JSON"
        ) from None
    if json_:
        output.emit_json(document)
    else:
        db = document.get("db", {})
        output.result(
            f"{document.get('status')}: version {document.get('version')}, "
            f"database {'ok' if db.get('ok') else 'DOWN'} ({db.get('latency_ms')} ms)"
        )
    if status != 200 or document.get("status") != "ok":
        raise typer.Exit(1)


def embed_command(
    ctx: typer.Context,
    bot_id: Annotated[str, typer.Argument(autocompletion=complete.bot_ids)],
    url: UrlOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print the snippet to paste into the business's website."""
    from tcai.bots.service import get_bot
    from tcai.db.engine import session_scope

    base = _base_url(ctx, url)
    with session_scope(state(ctx).migrated_engine()) as session:
        bot, workspace = get_bot(session, bot_id)
        origins = list(bot.allowed_origins or [])
    snippet = (
        f'<script src="{base}/widget/embed.js" data-client="{workspace.slug}" '
        f'data-bot="{bot.bot_id}" async></script>'
    )
    if json_:
        output.emit_json(
            {
                "bot_id": bot.bot_id,
                "client_id": workspace.slug,
                "snippet": snippet,
                "script_url": f"{base}/widget/embed.js",
                "allowed_origins": origins,
            }
        )
    else:
        output.result(snippet)
    if not origins:
        output.warn(
            f"no allowed origins yet: `tcai bots set {bot.bot_id} allowed_origins=https://www.the-business.com`"
        )


def preview_link_command(
    ctx: typer.Context,
    bot_id: Annotated[str, typer.Argument(autocompletion=complete.bot_ids)],
    ttl: Annotated[
        str, typer.Option("--ttl", help="How long it works: 24h (default), up to 7d.")
    ] = "24h",
    url: UrlOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A signed, expiring link to a page showing the bot (for a prospective client)."""
    from datetime import UTC, datetime

    from tcai.access.tokens import mint_preview_token, parse_duration
    from tcai.bots.service import get_bot
    from tcai.db.engine import session_scope

    cli = state(ctx)
    base = _base_url(ctx, url)
    with session_scope(cli.migrated_engine()) as session:
        bot, workspace = get_bot(session, bot_id)
    token, expires = mint_preview_token(
        cli.settings, workspace.slug, bot.bot_id, parse_duration(ttl)
    )
    link = f"{base}/preview/{token}"
    if json_:
        output.emit_json(
            {
                "bot_id": bot.bot_id,
                "client_id": workspace.slug,
                "url": link,
                "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
            }
        )
    else:
        output.result(link)


@cache_app.command("invalidate")
def invalidate(
    ctx: typer.Context,
    bot_id: Annotated[str | None, typer.Argument(autocompletion=complete.bot_ids)] = None,
    json_: JsonOpt = False,
) -> None:
    """Make every running daemon reload one bot (or all bots)."""
    from tcai.bots.service import invalidate_caches

    cli = state(ctx)
    invalidate_caches(cli.migrated_engine(), bot_id, actor=cli.actor)
    if json_:
        output.emit_json({"bot_id": bot_id, "all_bots": bot_id is None, "reload_within_seconds": 2})
    else:
        output.result(f"✓ daemons will reload {bot_id or 'every bot'} within 2 seconds")
