"""Widget tokens: a verified token is remembered, but never past its expiry, never for
other settings (another secret), and never for another bot."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tcai.access import tokens
from tcai.access.tokens import ExpiredToken, InvalidToken, mint_widget_token, verify_widget_token
from tcai.config import new_secret
from tests.helpers import make_settings

ORIGIN = "https://fadefactory.example"


def test_a_verified_token_is_remembered_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings()
    token, expires = mint_widget_token(settings, "fade", "fade_main", ORIGIN)
    verify_widget_token(settings, token, "fade", "fade_main")
    calls: list[str] = []
    real = tokens._verify
    monkeypatch.setattr(tokens, "_verify", lambda s, t, typ: calls.append(typ) or real(s, t, typ))
    claims = verify_widget_token(settings, token, "fade", "fade_main")
    assert claims.origin == ORIGIN and calls == []  # from memory
    # Past its expiry (and the leeway) memory forgets it: the full check runs again
    # (which refuses an expired token: `test_an_expired_token_is_refused_as_expired`).
    now = float(expires + tokens.LEEWAY_S + 1)
    monkeypatch.setattr(tokens.time, "time", lambda: now)
    verify_widget_token(settings, token, "fade", "fade_main")
    assert calls == ["widget"]


def test_memory_never_crosses_settings_or_bots() -> None:
    settings = make_settings()
    token, _ = mint_widget_token(settings, "fade", "fade_main", ORIGIN)
    verify_widget_token(settings, token, "fade", "fade_main")
    other = settings.model_copy(update={"widget_secret": SecretStr(new_secret())})
    with pytest.raises(InvalidToken):
        verify_widget_token(other, token, "fade", "fade_main")
    with pytest.raises(InvalidToken):
        verify_widget_token(settings, token, "fade", "other_bot")


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_MAX", 5)
    settings = make_settings()
    for n in range(12):
        token, _ = mint_widget_token(settings, "fade", f"bot_{n}", ORIGIN)
        verify_widget_token(settings, token, "fade", f"bot_{n}")
        assert len(tokens._VERIFIED) <= 5


def test_an_expired_token_is_refused_as_expired() -> None:
    settings = make_settings()
    with pytest.raises(ExpiredToken):
        claims = {"typ": "widget", "cid": "fade", "aud_bot": "fade_main", "origin": ORIGIN}
        token, _ = tokens._mint(settings, claims, -tokens.WIDGET_TTL)
        verify_widget_token(settings, token, "fade", "fade_main")
