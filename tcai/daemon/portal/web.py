"""The portal's plumbing: templates, cookies, the session behind a request, CSRF and
Origin checks, and the one wrapper every portal handler goes through.

`portal_page(action)` is where a request becomes a `Visit`: the session cookie is looked
up (`tcai.access.auth.authenticate`), a state-changing request must carry the session's
CSRF token and come from our own origin, and the workspace in the path is opened through
`tcai.access.permissions.access` with the route's action — an unknown or foreign
workspace is a 404, an action the role lacks a 403. Errors become HTML pages here, not
the API's JSON. Which role may do what is the core's table, never decided here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial, wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from tcai.access.auth import Authenticated, authenticate, cookie_name, cookie_secure
from tcai.access.permissions import WorkspaceAccess, access, can
from tcai.daemon.keys import ENGINE, SETTINGS
from tcai.daemon.middlewares import PUBLIC_UNAVAILABLE
from tcai.daemon.portal.sites import say_phone
from tcai.errors import Forbidden, TcaiError

P = ParamSpec("P")
T = TypeVar("T")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent.parent / "static" / "portal"
PORTAL_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
LOGIN_COOKIE = "tcai_login"
"""The pre-login CSRF cookie (double submit: the login form carries the same value)."""
MAX_FORM_BYTES = 64 * 1024
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
SAFE_NEXT = re.compile(r"^/portal/[A-Za-z0-9/_.\-]*(\?[A-Za-z0-9_.\-=&%+]*)?$")
STATUS_TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too much data",
    429: "Please wait a moment",
    422: "Please check the form",
}


# ---- templates and responses ------------------------------------------------------------


@cache
def static_version(name: str) -> str:
    """A short hash of a static file, for cache-busting URLs (`?v=…`)."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/portal/static/{name}?v={static_version(name)}"


def setup_templates(app: web.Application) -> None:
    """One Jinja environment for the portal and the demo pages; autoescaping on for
    every template, undefined names an error rather than an empty string."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        default_helpers=False,
    )
    env = aiohttp_jinja2.get_env(app)
    env.globals.update(static_url=static_url, can=can)
    env.filters["when"] = when
    env.filters["day"] = day
    env.filters["phone"] = say_phone


def when(iso: str | None) -> str:
    """An ISO timestamp from the core as people read it: `2026-12-06 14:03 UTC`."""
    if not iso:
        return "—"
    return f"{iso[:10]} {iso[11:16]} UTC"


def day(iso: str | None) -> str:
    return iso[:10] if iso else "—"


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    csp: str = PORTAL_CSP,
) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, dict(context), status=status)
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    title = STATUS_TITLES.get(status, "Something went wrong")
    return render(
        request, "error.html", {"title": title, "status": status, "message": message}, status=status
    )


def see_other(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs `location` (no resubmission)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def blocking(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A core call (the database, argon2) on a thread, off the event loop."""
    return await asyncio.to_thread(partial(function, *args, **kwargs))


# ---- cookies ---------------------------------------------------------------------------


def login_cookie_name(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    return f"__Host-{LOGIN_COOKIE}" if cookie_secure(settings) else LOGIN_COOKIE


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=cookie_secure(request.app[SETTINGS]),
    )


def drop_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    response.del_cookie(
        name,
        path="/",
        secure=cookie_secure(request.app[SETTINGS]),
        httponly=True,
        samesite="Lax",
    )


def session_token(request: web.Request) -> str | None:
    token = request.cookies.get(cookie_name(request.app[SETTINGS]))
    return token if token and TOKEN.match(token) else None


def login_token(request: web.Request) -> str | None:
    token = request.cookies.get(login_cookie_name(request))
    return token if token and TOKEN.match(token) else None


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a portal path of ours, never another site."""
    if value and SAFE_NEXT.match(value) and "//" not in value and ".." not in value:
        return value
    return "/portal/"


# ---- CSRF and Origin -------------------------------------------------------------------


def from_our_origin(request: web.Request) -> bool:
    """The request's Origin (or, without one, its Referer) is the daemon's own origin.
    `https://` on our host counts too: behind a TLS proxy the daemon itself sees http."""
    # The Host header is fine here: this guards browsers against cross-site forms, and a
    # browser cannot forge Host (the widget, which must not trust it, uses PUBLIC_URL).
    ours = {f"{request.scheme}://{request.host}".lower(), f"https://{request.host}".lower()}
    public = request.app[SETTINGS].public_url
    if public:
        ours.add(public)
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin.strip().rstrip("/").lower() in ours
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() in ours
    return False


def tokens_match(expected: str | None, given: Any) -> bool:
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def check_csrf(request: web.Request, form: MultiDictProxy[Any], expected: str | None) -> None:
    """A state-changing request must come from our origin with the expected token."""
    if not from_our_origin(request):
        raise Forbidden("This form was sent from another website, so it was refused.")
    if not tokens_match(expected, form.get("csrf")):
        raise Forbidden("This form has expired or was not sent from this portal; reload the page.")


async def read_form(request: web.Request) -> MultiDictProxy[Any]:
    """The posted form; over the daemon's body limit (16 KiB) aiohttp refuses it (413)."""
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_FORM_BYTES, actual_size=request.content_length
        )
    return await request.post()


# ---- the visit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """A signed-in person's request, as every portal handler receives it."""

    user: Authenticated
    token: str
    workspace: WorkspaceAccess | None
    form: MultiDictProxy[Any] | None

    @property
    def ws(self) -> WorkspaceAccess:
        assert self.workspace is not None
        return self.workspace

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def context(self, **extra: Any) -> dict[str, Any]:
        return {"user": self.user, "csrf": self.user.csrf_token, "ws": self.workspace, **extra}


PortalHandler = Callable[[web.Request, Visit], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def html_errors(handler: Handler) -> Handler:
    """The portal's error boundary: a core error or an oversized form becomes a page in
    the portal's layout (the API's JSON shape is for programs, not people)."""

    @wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error_page(request, 413, "That form is too large; nothing was saved.")
        except TcaiError as exc:
            message = exc.message if exc.http_status < 500 else PUBLIC_UNAVAILABLE
            return error_page(request, exc.http_status, message)

    return run


def portal_page(
    action: str | None = None, *, write: bool = False
) -> Callable[[PortalHandler], Handler]:
    """Wrap a portal handler: signed in (else to the login page), for a `write` the CSRF
    token and our Origin (else 403), the `{slug}` workspace opened for `action` (404 for
    an unknown or foreign one, 403 when the role lacks the action), errors as pages."""

    def wrap(handler: PortalHandler) -> Handler:
        @html_errors
        @wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            return await _visit(request, handler, action, write)

        return run

    return wrap


async def _visit(
    request: web.Request, handler: PortalHandler, action: str | None, write: bool
) -> web.StreamResponse:
    engine, settings = request.app[ENGINE], request.app[SETTINGS]
    form = await read_form(request) if write else None
    token = session_token(request)
    user = await blocking(authenticate, engine, settings, token) if token else None
    if user is None or token is None:
        if write:
            raise Forbidden("Your session has ended; sign in again.")
        return see_other("/portal/login?" + urlencode({"next": request.path_qs}))
    if form is not None:
        check_csrf(request, form, user.csrf_token)
    workspace = None
    if action is not None:
        workspace = await blocking(access, engine, user, request.match_info["slug"], action)
    return await handler(request, Visit(user, token, workspace, form))
