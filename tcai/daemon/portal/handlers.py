"""The portal's pages: parse the request, call the core, render a template.

Every handler but login, static files and the favicon goes through `portal_page` (see
`web.py`), which signs the person in, checks CSRF and Origin on a POST, and opens the
workspace for the route's action. The action each route needs is named here; which roles
have it is the core's table (`tcai/data/roles.yaml`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from sqlalchemy.engine import Engine

from tcai.access.auth import LoginFailed, authenticate, cookie_name, login, logout
from tcai.access.invites import accept_invite, describe_invite
from tcai.access.members import workspace_members
from tcai.access.permissions import workspaces_for
from tcai.bots.facts import FACT_FIELDS, HOURS_FIELDS, change_facts, current_facts
from tcai.bots.service import set_bot_status, workspace_bots
from tcai.chat.hours import DAY_NAMES, Week
from tcai.daemon.keys import ENGINE, LIMITS, METRICS, SETTINGS
from tcai.daemon.middlewares import CLIENT
from tcai.daemon.portal.chart import activity_chart
from tcai.daemon.portal.web import (
    STATIC,
    Visit,
    blocking,
    check_csrf,
    drop_cookie,
    error_page,
    from_our_origin,
    html_errors,
    login_cookie_name,
    login_token,
    new_login_token,
    portal_page,
    read_form,
    render,
    safe_next,
    see_other,
    session_token,
    set_cookie,
    static_version,
    tokens_match,
)
from tcai.errors import InvalidInput, NotFound, UsageError
from tcai.records.activity import daily_activity, lead_counts
from tcai.records.conversations import get_conversation, workspace_conversations
from tcai.records.leads import STATUSES, export_leads_csv, find_leads, set_lead_status

STATIC_FILES = {"portal.css": "text/css", "site.css": "text/css", "favicon.svg": "image/svg+xml"}
MAX_ID = 2**31 - 1
DONE = {
    "updated": "The lead's status was saved.",
    "paused": "The assistant is paused: visitors now see your paused message.",
    "resumed": "The assistant is answering visitors again.",
    "saved": "The business facts were saved; the assistant uses them within two seconds.",
    "unchanged": "Nothing changed.",
    "welcome": "Your password is set. Sign in with your e-mail and the new password.",
}


def _id(text: str) -> int:
    """A row id from a URL or a form; anything else is simply not found."""
    if not text.isdigit() or int(text) > MAX_ID:
        raise NotFound("There is nothing at this address.")
    return int(text)


def _done(request: web.Request) -> str | None:
    return DONE.get(request.query.get("done", ""))


# ---- public: the front door, static files, login ---------------------------------------


async def root(_request: web.Request) -> web.Response:
    return see_other("/portal/login")


async def portal_root(_request: web.Request) -> web.Response:
    return see_other("/portal/")


async def favicon(_request: web.Request) -> web.Response:
    return web.Response(
        body=(STATIC / "favicon.ico").read_bytes(),
        headers={"Content-Type": "image/x-icon", "Cache-Control": "public, max-age=86400"},
    )


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        return error_page(request, 404, "There is nothing at this address.")
    versioned = request.query.get("v") == static_version(name)
    return web.Response(
        body=(STATIC / name).read_bytes(),
        headers={
            "Content-Type": f"{STATIC_FILES[name]}; charset=utf-8",
            "Cache-Control": "public, max-age=31536000, immutable"
            if versioned
            else "public, max-age=300",
            "ETag": f'"{static_version(name)}"',
        },
    )


async def not_found(request: web.Request) -> web.Response:
    return error_page(request, 404, "There is nothing at this address.")


@html_errors
async def login_form(request: web.Request) -> web.Response:
    engine, settings = request.app[ENGINE], request.app[SETTINGS]
    token = session_token(request)
    signed_in = await blocking(authenticate, engine, settings, token) if token else None
    if signed_in is not None:
        return see_other(safe_next(request.query.get("next")))
    return _login_page(request, safe_next(request.query.get("next")), None, 200)


def _login_page(
    request: web.Request, next_url: str, error: str | None, status: int
) -> web.Response:
    csrf = login_token(request) or new_login_token()
    response = render(
        request,
        "login.html",
        {
            "csrf": csrf,
            "next": next_url,
            "error": error,
            "done": _done(request) if error is None else None,
            "user": None,
            "ws": None,
        },
        status=status,
    )
    set_cookie(request, response, login_cookie_name(request), csrf)
    return response


@html_errors
async def login_submit(request: web.Request) -> web.Response:
    engine, settings = request.app[ENGINE], request.app[SETTINGS]
    # Attempts per address, shared by every daemon through Redis when REDIS_URL is set,
    # before any form is read or password hashed (docs/http-api.md, "Rate limits"); the
    # per-account lockout and failure throttle live in the database (tcai/access/auth.py).
    refusal = await request.app[LIMITS].hit_login(request[CLIENT])
    if refusal is not None:
        request.app[METRICS].rate_limited.labels(refusal.scope).inc()
        response = error_page(
            request, 429, "Too many sign-in attempts from your network; try again later."
        )
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    form = await read_form(request)
    if not from_our_origin(request) or not tokens_match(login_token(request), form.get("csrf")):
        return error_page(request, 403, "This sign-in form has expired; reload the page.")
    email, password = str(form.get("email", ""))[:254], str(form.get("password", ""))[:256]
    next_url = safe_next(str(form.get("next", "")))
    try:
        session = await blocking(
            login,
            engine,
            settings,
            email,
            password,
            ip=request[CLIENT],
            user_agent=request.headers.get("User-Agent"),
        )
    except LoginFailed as exc:
        return _login_page(request, next_url, exc.message, 401)
    old = session_token(request)
    if old:
        await blocking(logout, engine, old)
    response = see_other(next_url)
    set_cookie(request, response, cookie_name(settings), session.token)
    drop_cookie(request, response, login_cookie_name(request))
    return response


@html_errors
async def invite_form(request: web.Request) -> web.Response:
    """The page a new user's one-time link opens: choose a password (an unknown, used or
    expired link is the core's `InvalidInvite`, a 404 page)."""
    invite = await blocking(describe_invite, request.app[ENGINE], request.match_info["token"])
    return _invite_page(request, invite, None, 200)


def _invite_page(
    request: web.Request, invite: dict[str, Any], error: str | None, status: int
) -> web.Response:
    csrf = login_token(request) or new_login_token()
    response = render(
        request,
        "invite.html",
        {
            "invite": invite,
            "action": request.path,
            "csrf": csrf,
            "error": error,
            "user": None,
            "ws": None,
        },
        status=status,
    )
    set_cookie(request, response, login_cookie_name(request), csrf)
    return response


@html_errors
async def invite_submit(request: web.Request) -> web.Response:
    engine, token = request.app[ENGINE], request.match_info["token"]
    form = await read_form(request)
    if not from_our_origin(request) or not tokens_match(login_token(request), form.get("csrf")):
        return error_page(request, 403, "This form has expired; open the link again.")
    password, again = str(form.get("password", ""))[:256], str(form.get("confirm", ""))[:256]
    try:
        invite = await blocking(describe_invite, engine, token)
        if password != again:
            return _invite_page(request, invite, "The two passwords differ; type them again.", 422)
        await blocking(accept_invite, engine, token, password)
    except InvalidInput as exc:
        return _invite_page(request, invite, exc.message, 422)
    return see_other("/portal/login?done=welcome")


@html_errors
async def logout_submit(request: web.Request) -> web.Response:
    """End the session on the server. A session that has already ended (idle, expired)
    just goes back to the sign-in page; a live one needs its CSRF token and our Origin."""
    engine, settings = request.app[ENGINE], request.app[SETTINGS]
    form = await read_form(request)
    token = session_token(request)
    user = await blocking(authenticate, engine, settings, token) if token else None
    if user is not None:
        check_csrf(request, form, user.csrf_token)
        await blocking(logout, engine, token)
    response = see_other("/portal/login")
    drop_cookie(request, response, cookie_name(settings))
    return response


# ---- workspaces and the dashboard -------------------------------------------------------


@portal_page()
async def workspaces(request: web.Request, visit: Visit) -> web.Response:
    found = await blocking(workspaces_for, request.app[ENGINE], visit.user)
    return render(request, "workspaces.html", visit.context(workspaces=found))


def _dashboard(engine: Engine, workspace_id: int) -> dict[str, Any]:
    days = daily_activity(engine, workspace_id, days=30)
    return {
        "days": days,
        "chart": activity_chart(days),
        "counts": lead_counts(engine, workspace_id),
        "bots": workspace_bots(engine, workspace_id),
        "leads": find_leads(engine, workspace_id, limit=5),
        "conversations": workspace_conversations(engine, workspace_id, limit=6),
    }


@portal_page("view")
async def dashboard(request: web.Request, visit: Visit) -> web.Response:
    data = await blocking(_dashboard, request.app[ENGINE], visit.ws.workspace_id)
    return render(request, "dashboard.html", visit.context(section="dashboard", **data))


# ---- leads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadFilter:
    status: str | None
    since: date | None
    until: date | None
    search: str | None
    problems: tuple[str, ...]

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> LeadFilter:
        problems: list[str] = []
        status = query.get("status") or None
        if status not in (None, *STATUSES):
            status, problems = None, [*problems, "Unknown status; showing every status."]
        dates: list[date | None] = []
        for key in ("since", "until"):
            text = (query.get(key) or "").strip()
            try:
                dates.append(date.fromisoformat(text) if text else None)
            except ValueError:
                dates.append(None)
                problems.append(f"'{text[:20]}' is not a date like 2026-12-01; it was ignored.")
        search = (query.get("q") or "").strip()[:100] or None
        return cls(status, dates[0], dates[1], search, tuple(problems))

    def query(self) -> str:
        pairs = {
            "status": self.status,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "q": self.search,
        }
        return urlencode({k: v for k, v in pairs.items() if v})

    def core(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "search": self.search,
        }


@portal_page("view")
async def leads(request: web.Request, visit: Visit) -> web.Response:
    chosen = LeadFilter.parse(request.query)
    rows = await blocking(
        find_leads, request.app[ENGINE], visit.ws.workspace_id, **chosen.core(), limit=500
    )
    return render(
        request,
        "leads.html",
        visit.context(
            section="leads",
            leads=rows,
            filter=chosen,
            statuses=STATUSES,
            done=_done(request),
        ),
    )


@portal_page("export_leads")
async def leads_csv(request: web.Request, visit: Visit) -> web.Response:
    chosen = LeadFilter.parse(request.query)
    text = await blocking(
        export_leads_csv,
        request.app[ENGINE],
        visit.ws.workspace_id,
        actor=visit.user.email,
        **chosen.core(),
    )
    name = f"leads-{visit.ws.slug}-{date.today().isoformat()}.csv"
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@portal_page("work_leads", write=True)
async def lead_status(request: web.Request, visit: Visit) -> web.Response:
    lead_id = _id(visit.field("lead_id"))
    await blocking(
        set_lead_status,
        request.app[ENGINE],
        visit.ws.workspace_id,
        lead_id,
        visit.field("status"),
        actor=visit.user.email,
    )
    back = LeadFilter.parse(dict(parse_qsl(visit.field("back")[:500]))).query()
    return see_other(
        f"/portal/w/{visit.ws.slug}/leads?{back}{'&' if back else ''}done=updated#lead-{lead_id}"
    )


# ---- conversations -----------------------------------------------------------------------


@portal_page("view")
async def conversations(request: web.Request, visit: Visit) -> web.Response:
    rows = await blocking(
        workspace_conversations, request.app[ENGINE], visit.ws.workspace_id, limit=100
    )
    return render(
        request, "conversations.html", visit.context(section="conversations", conversations=rows)
    )


@portal_page("view")
async def conversation(request: web.Request, visit: Visit) -> web.Response:
    conversation_id = _id(request.match_info["conversation_id"])
    found = await blocking(
        get_conversation, request.app[ENGINE], visit.ws.workspace_id, conversation_id
    )
    return render(
        request, "conversation.html", visit.context(section="conversations", conversation=found)
    )


# ---- the assistant: status, pause/resume, business facts --------------------------------


async def _bot_page(
    request: web.Request,
    visit: Visit,
    *,
    status: int = 200,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, dict[str, str]] | None = None,
) -> web.Response:
    bots = await blocking(workspace_bots, request.app[ENGINE], visit.ws.workspace_id)
    views = []
    for bot in bots:
        facts = current_facts(bot.config, bot.summary["allowed_origins"])
        week = Week.of(bot.config.business)
        views.append(
            {
                "summary": bot.summary,
                "name": bot.config.business.name,
                "colour": bot.config.primary_color,
                "facts": {**facts, **(values or {}).get(bot.summary["bot_id"], {})},
                "hours": week.summary() if week else None,
                "errors": (errors or {}).get(bot.summary["bot_id"], {}),
            }
        )
    days = [(field, DAY_NAMES["en"][i]) for i, field in enumerate(HOURS_FIELDS)]
    return render(
        request,
        "bot.html",
        visit.context(section="bot", bots=views, days=days, done=_done(request)),
        status=status,
    )


@portal_page("view")
async def bot(request: web.Request, visit: Visit) -> web.Response:
    return await _bot_page(request, visit)


@portal_page("pause_bot", write=True)
async def bot_status(request: web.Request, visit: Visit) -> web.Response:
    bot_id, action = visit.field("bot_id"), visit.field("action")
    if action not in ("pause", "resume"):
        raise InvalidInput("Choose pause or resume.")
    try:
        await blocking(
            set_bot_status,
            request.app[ENGINE],
            bot_id,
            enabled=action == "resume",
            reason=visit.field("reason").strip()[:500] or None,
            actor=visit.user.email,
            workspace_id=visit.ws.workspace_id,
        )
    except UsageError:
        errors = {bot_id: {"reason": "Say why you pause the assistant (your team sees it)."}}
        return await _bot_page(request, visit, status=422, errors=errors)
    done = "resumed" if action == "resume" else "paused"
    return see_other(f"/portal/w/{visit.ws.slug}/bot?done={done}")


@portal_page("edit_bot", write=True)
async def bot_facts(request: web.Request, visit: Visit) -> web.Response:
    bot_id = visit.field("bot_id")
    values = {
        field: visit.field(field) for field in FACT_FIELDS if visit.form and field in visit.form
    }
    try:
        change = await blocking(
            change_facts,
            request.app[ENGINE],
            visit.ws.workspace_id,
            bot_id,
            values,
            actor=visit.user.email,
        )
    except (InvalidInput, UsageError) as exc:
        field, _, rest = exc.message.partition(": ")
        found = {field: rest} if field in FACT_FIELDS else {"_": exc.message}
        if exc.details:
            found["_details"] = "; ".join(exc.details[:5])
        return await _bot_page(
            request, visit, status=422, errors={bot_id: found}, values={bot_id: values}
        )
    done = "saved" if change.changed else "unchanged"
    return see_other(f"/portal/w/{visit.ws.slug}/bot?done={done}")


# ---- users ---------------------------------------------------------------------------------


@portal_page("manage_users")
async def users(request: web.Request, visit: Visit) -> web.Response:
    members = await blocking(workspace_members, request.app[ENGINE], visit.ws.workspace_id)
    return render(request, "users.html", visit.context(section="users", members=members))
