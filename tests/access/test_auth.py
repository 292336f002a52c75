"""Logging in: one answer for every failure, lockouts shared by every process, sessions
that end when they should (tcai/access/auth.py), and the role table."""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import timedelta

import pytest

from tcai.access.auth import (
    FAILURE,
    IP_MAX_FAILURES,
    SESSION_MAX_AGE,
    LoginFailed,
    authenticate,
    cookie_name,
    login,
    logout,
)
from tcai.access.permissions import access, can, load_roles, workspaces_for
from tcai.access.rotation import end_operator_sessions
from tcai.access.users import change_password, create_user, set_disabled, unlock_user
from tcai.config import load_settings
from tcai.db.models import Lockout, LoginAttempt
from tcai.db.types import utcnow
from tcai.errors import Forbidden, NotFound
from tests.conftest import provision
from tests.helpers import rows


def strong_password() -> str:
    return "Pw-" + secrets.token_urlsafe(18)


@pytest.fixture
def accounts(seeded):
    """Two workspaces, an owner of the first, a password for each account."""
    provision(seeded)
    provision(seeded, slug="clip-joint", name="Clip Joint")
    engine = seeded.engine()
    password = strong_password()
    create_user(engine, "owner@fadefactory.shop", password, workspace="fade-factory")
    yield engine, password
    engine.dispose()


def settings(**overrides):
    base = load_settings()
    return base.model_copy(update=overrides) if overrides else base


def test_a_login_opens_a_session_that_logout_ends(accounts) -> None:
    engine, password = accounts
    opened = login(engine, settings(), "Owner@FadeFactory.shop", password, ip="10.0.0.1")
    who = authenticate(engine, settings(), opened.token)
    assert who is not None and who.email == "owner@fadefactory.shop"
    assert who.csrf_token == opened.csrf_token and len(opened.token) >= 40
    again = login(engine, settings(), "owner@fadefactory.shop", password)
    assert again.token != opened.token  # a new id at every login
    assert logout(engine, opened.token) is True
    assert authenticate(engine, settings(), opened.token) is None  # replayed after logout
    assert logout(engine, opened.token) is False
    assert authenticate(engine, settings(), again.token) is not None


@pytest.mark.parametrize("case", ["unknown", "wrong", "disabled", "locked", "empty"])
def test_every_failure_gets_the_same_answer(accounts, case) -> None:
    engine, password = accounts
    email, attempt = "owner@fadefactory.shop", "not-the-password-at-all"
    if case == "unknown":
        email, attempt = "nobody@fadefactory.shop", password
    elif case == "disabled":
        set_disabled(engine, email, True)
        attempt = password
    elif case == "locked":
        for _ in range(5):
            with pytest.raises(LoginFailed):
                login(engine, settings(), email, "wrong-" + secrets.token_hex(4))
        attempt = password
    elif case == "empty":
        email, attempt = "", ""
    with pytest.raises(LoginFailed) as failed:
        login(engine, settings(), email, attempt, ip="10.0.0.9")
    assert failed.value.message == FAILURE and failed.value.http_status == 401


def test_lockout_after_the_limit_until_it_runs_out_or_is_unlocked(accounts) -> None:
    engine, password = accounts
    config = settings(login_max_attempts=3, login_lockout_minutes=15)
    email = "owner@fadefactory.shop"
    start = utcnow()
    for _ in range(3):
        with pytest.raises(LoginFailed):
            login(engine, config, email, "wrong-password-here", now=start)
    with pytest.raises(LoginFailed):  # locked: even the right password fails
        login(engine, config, email, password, now=start + timedelta(minutes=1))
    [lock] = rows(accounts_db(engine), Lockout)
    assert lock.failed_count == 4 and lock.locked_until is not None  # a locked try counts too
    # After the lockout runs out the right password works, and the count starts again.
    assert login(engine, config, email, password, now=start + timedelta(minutes=16)).token
    for _ in range(3):
        with pytest.raises(LoginFailed):
            login(engine, config, email, "wrong-password-here")
    assert unlock_user(engine, email) is True
    assert login(engine, config, email, password).token
    assert unlock_user(engine, email) is False


def accounts_db(engine):
    class _Db:
        def engine(self):
            return engine

    return _Db()


LOGIN_SCRIPT = """
import sys
from tcai.access.auth import LoginFailed, login
from tcai.config import load_settings
from tcai.db.engine import make_engine
settings = load_settings()
engine = make_engine(settings.database_url)
failed = 0
for _ in range(int(sys.argv[2])):
    try:
        login(engine, settings, sys.argv[1], "wrong-password-from-a-process")
    except LoginFailed:
        failed += 1
print(failed)
"""


def test_failures_from_two_processes_add_up_to_one_lockout(accounts, monkeypatch) -> None:
    engine, password = accounts
    monkeypatch.setenv("LOGIN_MAX_ATTEMPTS", "5")
    email = "owner@fadefactory.shop"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", LOGIN_SCRIPT, email, "3"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in processes]
    assert outputs == ["3", "3"]  # 6 = LOGIN_MAX_ATTEMPTS + 1 failures in all
    [lock] = rows(accounts_db(engine), Lockout)
    assert lock.failed_count == 6 and lock.locked_until is not None
    with pytest.raises(LoginFailed):
        login(engine, settings(login_max_attempts=5), email, password)
    print(f"\nlockout: 2 processes × 3 wrong passwords → failed_count {lock.failed_count}, locked")


def test_an_address_that_fails_too_often_is_throttled(accounts) -> None:
    engine, password = accounts
    for i in range(IP_MAX_FAILURES):
        with pytest.raises(LoginFailed):
            login(engine, settings(), f"guess{i}@guessing.shop", "nope", ip="203.0.113.7")
    with pytest.raises(LoginFailed):
        login(engine, settings(), "owner@fadefactory.shop", password, ip="203.0.113.7")
    assert login(engine, settings(), "owner@fadefactory.shop", password, ip="198.51.100.2")
    assert len(rows(accounts_db(engine), LoginAttempt)) == IP_MAX_FAILURES + 2


def test_idle_and_absolute_timeouts(accounts) -> None:
    engine, password = accounts
    config = settings(session_idle_timeout_minutes=30)
    start = utcnow()
    opened = login(engine, config, "owner@fadefactory.shop", password, now=start)
    assert authenticate(engine, config, opened.token, now=start + timedelta(minutes=29))
    # Active every 20 minutes, it lives until its maximum age, then ends anyway.
    at = start
    while at + timedelta(minutes=20) < start + SESSION_MAX_AGE:
        at += timedelta(minutes=20)
        assert authenticate(engine, config, opened.token, now=at) is not None
    assert authenticate(engine, config, opened.token, now=start + SESSION_MAX_AGE) is None
    idle = login(engine, config, "owner@fadefactory.shop", password, now=start)
    assert authenticate(engine, config, idle.token, now=start + timedelta(minutes=31)) is None
    # Once expired it stays expired, even if asked "earlier" again.
    assert authenticate(engine, config, idle.token, now=start + timedelta(minutes=1)) is None
    print("\nidle timeout: 29 min → alive, 31 min → ended; 12 h of activity → ended")


def test_a_password_change_a_rotation_or_a_disabled_account_end_sessions(accounts) -> None:
    engine, password = accounts
    email = "owner@fadefactory.shop"
    first = login(engine, settings(), email, password)
    change_password(engine, email, strong_password())
    assert authenticate(engine, settings(), first.token) is None
    new_password = strong_password()
    change_password(engine, email, new_password)
    second = login(engine, settings(), email, new_password)
    end_operator_sessions(engine, actor="test", changed=("SESSION_SECRET",))
    assert authenticate(engine, settings(), second.token) is None
    third = login(engine, settings(), email, new_password)
    set_disabled(engine, email, True)
    assert authenticate(engine, settings(), third.token) is None


@pytest.mark.parametrize("token", [None, "", "x" * 500, "not-a-session"])
def test_odd_cookies_are_nobody(accounts, token) -> None:
    engine, _password = accounts
    assert authenticate(engine, settings(), token) is None


def test_the_cookie_is_host_prefixed_in_production() -> None:
    assert cookie_name(settings()) == "tcai_session"
    assert cookie_name(settings(tcai_env="production")).startswith("__Host-")


# ---- the role table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {"view"}),
        ("agent", {"view", "work_leads", "export_leads"}),
        ("staff", {"view", "work_leads", "export_leads"}),
        ("manager", {"view", "work_leads", "export_leads", "pause_bot", "edit_bot"}),
        ("owner", set(load_roles().actions)),
        ("super_admin", set(load_roles().actions)),
    ],
)
def test_the_role_table(role, allowed) -> None:
    assert {a for a in load_roles().actions if can(role, a)} == allowed


def test_access_hides_foreign_workspaces_and_refuses_missing_rights(accounts) -> None:
    engine, password = accounts
    create_user(
        engine, "viewer@fadefactory.shop", password, workspace="fade-factory", role="viewer"
    )
    viewer = authenticate(
        engine,
        settings(),
        login(engine, settings(), "viewer@fadefactory.shop", password).token,
    )
    assert viewer is not None
    assert [w.slug for w in workspaces_for(engine, viewer)] == ["fade-factory"]
    assert access(engine, viewer, "fade-factory", "view").role == "viewer"
    with pytest.raises(Forbidden):
        access(engine, viewer, "fade-factory", "pause_bot")
    for slug in ("clip-joint", "no-such-place"):
        with pytest.raises(NotFound):  # foreign and unknown look the same
            access(engine, viewer, slug, "view")
    create_user(engine, "root@agency.shop", password, super_admin=True)
    admin = authenticate(
        engine, settings(), login(engine, settings(), "root@agency.shop", password).token
    )
    assert admin is not None
    assert [w.slug for w in workspaces_for(engine, admin)] == ["clip-joint", "fade-factory"]
    assert access(engine, admin, "clip-joint", "delete").role == "super_admin"
