"""Widget and preview tokens: short-lived JWTs (HS256) signed with WIDGET_SECRET.

A widget token is minted when an allowed page loads the widget; it is bound to the
client, the bot and the page's Origin, lives one hour, and is anti-abuse rather than
identity. A preview token opens `/preview/{token}` for a prospective client (24 h by
default, 7 days at most). The `typ` claim keeps the two apart. Tokens signed with
WIDGET_SECRET_PREVIOUS stay valid until they expire, so a rotation breaks no live
widget. PyJWT compares signatures in constant time.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from tcai.config import Settings
from tcai.db.types import utcnow
from tcai.errors import ConfigError, TcaiError, UsageError

ALGORITHM = "HS256"
ISSUER = "tcai"
WIDGET_TTL = timedelta(hours=1)
PREVIEW_TTL_DEFAULT = timedelta(hours=24)
PREVIEW_TTL_MAX = timedelta(days=7)
LEEWAY_S = 5
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")


class InvalidToken(TcaiError):
    exit_code = 1
    http_status = 401
    code = "invalid_token"


class ExpiredToken(InvalidToken):
    code = "token_expired"


@dataclass(frozen=True)
class WidgetClaims:
    client_id: str
    bot_id: str
    origin: str
    expires_at: int


@dataclass(frozen=True)
class PreviewClaims:
    client_id: str
    bot_id: str
    expires_at: int


def parse_duration(text: str) -> timedelta:
    """'24h', '90m', '7d', '3600s' → timedelta."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise UsageError(f"'{text}' is not a duration like 24h, 90m or 7d")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


def _secrets(settings: Settings) -> list[str]:
    keys = [
        s.get_secret_value() for s in (settings.widget_secret, settings.widget_secret_previous) if s
    ]
    if not keys:
        raise ConfigError(
            "WIDGET_SECRET is not set; run `tcai secrets rotate` to write fresh secrets into "
            "the .env (`tcai init` keeps an existing .env as it is)",
            details=["WIDGET_SECRET: required to sign widget and preview tokens"],
        )
    return keys


def _mint(settings: Settings, claims: dict[str, Any], ttl: timedelta) -> tuple[str, int]:
    now = utcnow()
    expires = int((now + ttl).timestamp())
    payload = {**claims, "iss": ISSUER, "iat": int(now.timestamp()), "exp": expires}
    return jwt.encode(payload, _secrets(settings)[0], algorithm=ALGORITHM), expires


_VERIFIED: dict[tuple[str, str], tuple[Settings, dict[str, Any]]] = {}
"""Tokens already verified, with the settings that verified them: a widget sends the
same token with every message of the hour, and HMAC plus JSON decoding cost more than
the rest of the check. Only successes are kept; `_remembered` re-checks the expiry."""
VERIFIED_MAX = 4096


def _remembered(settings: Settings, token: str, typ: str) -> dict[str, Any] | None:
    found = _VERIFIED.get((token, typ))
    if found is None or found[0] is not settings:
        return None
    claims = found[1]
    if int(claims["exp"]) + LEEWAY_S <= time.time():
        del _VERIFIED[(token, typ)]
        return None
    return claims


def _remember(settings: Settings, token: str, typ: str, claims: dict[str, Any]) -> None:
    if len(_VERIFIED) >= VERIFIED_MAX:
        now = time.time()
        for key in [k for k, (_s, c) in list(_VERIFIED.items()) if int(c["exp"]) + LEEWAY_S <= now]:
            del _VERIFIED[key]
        if len(_VERIFIED) >= VERIFIED_MAX:
            _VERIFIED.clear()
    _VERIFIED[(token, typ)] = (settings, claims)


def _decode(settings: Settings, token: str, typ: str) -> dict[str, Any]:
    if not token or len(token) > 4096:
        raise InvalidToken("missing or malformed token")
    remembered = _remembered(settings, token, typ)
    if remembered is not None:
        return remembered
    claims = _verify(settings, token, typ)
    _remember(settings, token, typ, claims)
    return claims


def _verify(settings: Settings, token: str, typ: str) -> dict[str, Any]:
    expired = False
    for index, key in enumerate(_secrets(settings)):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "typ"]},
                leeway=LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            expired = True
            continue
        except jwt.InvalidTokenError:
            continue
        if claims.get("typ") != typ:
            raise InvalidToken(f"not a {typ} token")
        rotated = settings.widget_secret_rotated_at
        if index > 0 and rotated is not None and int(claims["iat"]) > rotated.timestamp() + 5:
            # Signed with the previous secret after it was retired: not one of ours.
            raise InvalidToken("the token is not valid")
        return claims
    if expired:
        raise ExpiredToken("the token has expired; reload the widget")
    raise InvalidToken("the token is not valid")


def mint_widget_token(
    settings: Settings, client_id: str, bot_id: str, origin: str
) -> tuple[str, int]:
    return _mint(
        settings,
        {"typ": "widget", "cid": client_id, "aud_bot": bot_id, "origin": origin},
        WIDGET_TTL,
    )


def verify_widget_token(
    settings: Settings, token: str, client_id: str, bot_id: str
) -> WidgetClaims:
    claims = _decode(settings, token, "widget")
    if claims.get("cid") != client_id or claims.get("aud_bot") != bot_id:
        raise InvalidToken("the token belongs to another bot")
    return WidgetClaims(client_id, bot_id, str(claims.get("origin", "")), int(claims["exp"]))


def mint_preview_token(
    settings: Settings, client_id: str, bot_id: str, ttl: timedelta = PREVIEW_TTL_DEFAULT
) -> tuple[str, int]:
    if ttl <= timedelta(0) or ttl > PREVIEW_TTL_MAX:
        raise UsageError("--ttl must be more than 0 and at most 7d")
    return _mint(settings, {"typ": "preview", "cid": client_id, "aud_bot": bot_id}, ttl)


def verify_preview_token(settings: Settings, token: str) -> PreviewClaims:
    claims = _decode(settings, token, "preview")
    return PreviewClaims(str(claims.get("cid")), str(claims.get("aud_bot")), int(claims["exp"]))


def token_target(token: str) -> tuple[str, str]:
    """The (client, bot) a widget token names, read before its signature is checked so
    the right bot's rules can be looked up; `verify_widget_token` then checks it."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise InvalidToken("the token is not valid") from None
    client_id, bot_id = unverified.get("cid"), unverified.get("aud_bot")
    if not isinstance(client_id, str) or not isinstance(bot_id, str):
        raise InvalidToken("the token is not valid")
    return client_id, bot_id
