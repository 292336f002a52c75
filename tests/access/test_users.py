"""Accounts from the CLI: roles per workspace, invitations (one-time, expiring links),
lockouts that `tcai users unlock` really ends, and the audit log naming the operating-
system user behind every CLI change."""

from __future__ import annotations

import getpass
import json
import secrets
import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from tcai.access.auth import LoginFailed, login
from tcai.access.invites import (
    InvalidInvite,
    accept_invite,
    create_invite,
    describe_invite,
    token_hash,
)
from tcai.access.users import create_user, unlock, unlock_user, verify_password
from tcai.cli.context import CliState, os_actor
from tcai.config import load_settings, new_secret
from tcai.db.models import AuditLog, Lockout, Membership, Outbox, User, UserInvite
from tcai.db.types import utcnow
from tcai.errors import Conflict, InvalidInput, NotFound, UsageError
from tests.conftest import provision
from tests.helpers import rows

OWNER = "owner@fadefactory.shop"


def strong_password() -> str:
    return "Pw-" + secrets.token_urlsafe(18)


@pytest.fixture
def shops(seeded):
    """Two workspaces (fade-factory, clip-joint) and an engine on them."""
    provision(seeded)
    provision(seeded, slug="clip-joint", name="Clip Joint")
    engine = seeded.engine()
    yield engine
    engine.dispose()


@pytest.fixture
def password(monkeypatch) -> str:
    chosen = strong_password()
    monkeypatch.setenv("TCAI_PASSWORD", chosen)
    return chosen


@pytest.fixture
def alice(monkeypatch) -> str:
    """The operating-system user running the CLI."""
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    return "cli:alice"


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---- users create and list ------------------------------------------------------------


def test_create_with_a_role_in_a_workspace_and_list_it(cli, shops, password, alice) -> None:
    made = cli("users", "create", "--email", OWNER, "--workspace", "fade-factory", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["memberships"] == [
        {"client_id": "fade-factory", "role": "owner"}
    ]
    for email, extra in (
        ("manager@fadefactory.shop", ("-w", "clip-joint", "--role", "manager")),
        ("root@agency.shop", ("--super-admin",)),
    ):
        result = cli("users", "create", "--email", email, *extra)
        assert result.exit_code == 0, result.output
    create_user(shops, "two@fadefactory.shop", password, workspace="clip-joint", role="viewer")
    with Session(shops) as session:
        user = session.exec(select(User).where(User.email == "two@fadefactory.shop")).one()
        session.add(Membership(workspace_id=1, user_id=user.id or 0, role="staff"))
        session.commit()

    listed = {u["email"]: u for u in json.loads(cli("users", "list", "--json").stdout)}
    assert listed[OWNER]["memberships"] == [{"client_id": "fade-factory", "role": "owner"}]
    assert listed[OWNER]["global_role"] == "none" and listed[OWNER]["status"] == "active"
    assert listed["two@fadefactory.shop"]["memberships"] == [
        {"client_id": "clip-joint", "role": "viewer"},
        {"client_id": "fade-factory", "role": "staff"},
    ]
    assert listed["root@agency.shop"]["memberships"] == []
    assert listed["root@agency.shop"]["global_role"] == "super_admin"
    assert all("password_hash" not in u for u in listed.values())

    table = cli("users", "list")
    assert table.exit_code == 0
    line = {row.split()[0]: row for row in table.stdout.splitlines() if "@" in row}
    assert "fade-factory:owner" in line[OWNER] and "none" not in line[OWNER]
    assert "clip-joint:manager" in line["manager@fadefactory.shop"]
    assert "super_admin" in line["root@agency.shop"]
    assert "clip-joint:viewer," in line["two@fadefactory.shop"]  # and on, folded:
    assert "fade-factory:staff" in table.stdout
    audit = rows(shops_db(shops), AuditLog, AuditLog.action == "user.create")
    assert {a.actor for a in audit} == {alice, "cli"}  # the core default for direct calls


def test_create_refuses_bad_input_in_one_line_before_asking_a_password(cli, shops) -> None:
    # No TCAI_PASSWORD and no terminal: whatever is wrong is said before the password.
    ghost = cli("users", "create", "--email", OWNER, "-w", "no-such-shop", "--role", "viewer")
    assert ghost.exit_code == 1
    assert one_line(ghost) == "error: no workspace 'no-such-shop'; see tcai clients list"
    role = cli("users", "create", "--email", OWNER, "-w", "fade-factory", "--role", "boss")
    assert role.exit_code == 1
    assert "'boss' is not a role" in one_line(role) and "viewer" in one_line(role)
    alone = cli("users", "create", "--email", OWNER, "--role", "viewer")
    assert alone.exit_code == 2 and "--role needs --workspace" in one_line(alone)
    bad = cli("users", "create", "--email", "not-an-email", "-w", "fade-factory")
    assert bad.exit_code == 1 and "--email" in one_line(bad)
    assert rows(shops_db(shops), User) == []


def shops_db(engine):
    class _Db:
        def engine(self):
            return engine

    return _Db()


# ---- invitations ----------------------------------------------------------------------


def test_invite_prints_a_one_time_link_that_sets_the_password(cli, shops, alice) -> None:
    result = cli(
        "users", "invite", "--email", "Mia@FadeFactory.shop", "--workspace", "fade-factory",
        "--role", "manager", "--url", "https://chat.agency.example/",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    prefix = "https://chat.agency.example/portal/invite/"
    assert link.startswith(prefix) and len(link) > len(prefix) + 40
    assert "works once" in result.stderr and "does not e-mail" in result.stderr
    token = link.removeprefix(prefix)

    db = shops_db(shops)
    [user] = rows(db, User)
    assert user.email == "mia@fadefactory.shop" and user.disabled and user.must_change_password
    [invite] = rows(db, UserInvite)
    assert invite.token_hash == token_hash(token) and invite.invited_by == alice
    assert timedelta(hours=71) < invite.expires_at - utcnow() <= timedelta(hours=72)
    [member] = rows(db, Membership)
    assert member.role == "manager"
    listed = json.loads(cli("users", "list", "--json").stdout)[0]
    assert listed["status"] == "invited" and listed["invite_expires_at"]
    assert listed["memberships"] == [{"client_id": "fade-factory", "role": "manager"}]
    with pytest.raises(LoginFailed):  # nobody can log in before the link is used
        login(shops, load_settings(), "mia@fadefactory.shop", "anything at all here")

    assert describe_invite(shops, token)["role"] == "manager"
    with pytest.raises(InvalidInput):  # the password policy; the link stays usable
        accept_invite(shops, token, "password")
    chosen = strong_password()
    assert accept_invite(shops, token, chosen) == "mia@fadefactory.shop"
    [user] = rows(db, User)
    assert not user.disabled and not user.must_change_password
    assert verify_password(user.password_hash, chosen)
    assert login(shops, load_settings(), "mia@fadefactory.shop", chosen).token
    with pytest.raises(InvalidInvite):  # one time only
        accept_invite(shops, token, strong_password())
    with pytest.raises(InvalidInvite):
        describe_invite(shops, token)
    assert verify_password(rows(db, User)[0].password_hash, chosen)
    accepted = rows(db, AuditLog, AuditLog.action == "user.invite_accept")
    assert [a.actor for a in accepted] == ["mia@fadefactory.shop"]
    assert json.loads(cli("users", "list", "--json").stdout)[0]["status"] == "active"


def test_the_token_is_never_stored_and_the_json_carries_the_link(cli, shops, seeded) -> None:
    result = cli(
        "users", "invite", "--email", "mia@fadefactory.shop", "-w", "fade-factory",
        "--role", "viewer", "--ttl", "2h", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) >= {"email", "client_id", "role", "url", "expires_at"}
    assert document["url"].startswith("http://127.0.0.1:5000/portal/invite/")
    token = document["url"].rsplit("/", 1)[1]
    engine = seeded.engine()
    try:
        with engine.connect() as conn:
            for table in ("user_invite", "audit_log", "app_user", "membership"):
                dump = " ".join(str(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table}"))
                assert token not in dump, table
    finally:
        engine.dispose()


def test_an_invitation_expires(shops) -> None:
    token, expires = create_invite(
        shops, "mia@fadefactory.shop", "fade-factory", "staff", timedelta(hours=1), "cli:bo"
    )
    with pytest.raises(InvalidInvite) as late:
        accept_invite(shops, token, strong_password(), now=expires + timedelta(seconds=1))
    assert late.value.http_status == 404 and "ask for a new one" in late.value.message
    with pytest.raises(InvalidInvite):
        describe_invite(shops, token, now=expires)
    assert accept_invite(shops, token, strong_password(), now=expires - timedelta(minutes=1))
    for forged in ("", "x" * 500, secrets.token_urlsafe(32)):
        with pytest.raises(InvalidInvite):
            accept_invite(shops, forged, strong_password())


def test_two_uses_at_once_only_one_wins(shops) -> None:
    token, _ = create_invite(shops, "mia@fadefactory.shop", "fade-factory", "staff")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def use(password: str) -> None:
        start.wait()
        try:
            accept_invite(shops, token, password)
            outcomes.append("accepted")
        except InvalidInvite:
            outcomes.append("refused")

    threads = [threading.Thread(target=use, args=(strong_password(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["accepted", "refused"]


def test_inviting_again_withdraws_the_earlier_link(shops, cli) -> None:
    first, _ = create_invite(shops, "mia@fadefactory.shop", "fade-factory", "staff")
    second, _ = create_invite(shops, "mia@fadefactory.shop", "fade-factory", "manager")
    with pytest.raises(InvalidInvite):
        accept_invite(shops, first, strong_password())
    [member] = rows(shops_db(shops), Membership)
    assert member.role == "manager"
    # Disabling the account withdraws its pending link too.
    assert cli("users", "disable", "mia@fadefactory.shop").exit_code == 0
    with pytest.raises(InvalidInvite):
        accept_invite(shops, second, strong_password())
    assert json.loads(cli("users", "list", "--json").stdout)[0]["status"] == "disabled"


def test_an_account_in_use_cannot_be_invited(shops, password, cli) -> None:
    create_user(shops, OWNER, password, workspace="fade-factory")
    with pytest.raises(Conflict):  # the link would set a password someone else uses
        create_invite(shops, OWNER, "clip-joint", "owner")
    token, _ = create_invite(shops, "mia@fadefactory.shop", "fade-factory", "staff")
    with pytest.raises(Conflict):  # a pending invitee of one workspace is not another's
        create_invite(shops, "mia@fadefactory.shop", "clip-joint", "owner")
    accept_invite(shops, token, strong_password())
    with pytest.raises(Conflict):  # nor, once accepted, anyone's to re-invite
        create_invite(shops, "mia@fadefactory.shop", "fade-factory", "owner")
    taken = cli("users", "invite", "--email", OWNER, "-w", "clip-joint", "--role", "owner")
    assert taken.exit_code == 1 and "already has an account" in one_line(taken)


def test_invite_refuses_bad_input(cli, shops) -> None:
    base = ("users", "invite", "--email", "mia@fadefactory.shop")
    ghost = cli(*base, "-w", "no-such-shop", "--role", "staff")
    assert ghost.exit_code == 1 and "no workspace 'no-such-shop'" in one_line(ghost)
    role = cli(*base, "-w", "fade-factory", "--role", "boss")
    assert role.exit_code == 1 and "'boss' is not a role" in one_line(role)
    assert cli(*base, "-w", "fade-factory").exit_code == 2  # --role is required
    for ttl, says in (("8d", "at most 7d"), ("1m", "at least 5m"), ("soon", "duration")):
        result = cli(*base, "-w", "fade-factory", "--role", "staff", "--ttl", ttl)
        assert result.exit_code == 2 and says in one_line(result), ttl
    url = cli(*base, "-w", "fade-factory", "--role", "staff", "--url", "chat.example")
    assert url.exit_code == 2
    assert rows(shops_db(shops), User) == [] and rows(shops_db(shops), UserInvite) == []
    with pytest.raises(UsageError):
        create_invite(shops, "mia@fadefactory.shop", "fade-factory", "staff", timedelta(days=8))


# ---- unlock ---------------------------------------------------------------------------


def add_lockout(engine, email: str, failed: int, until) -> None:
    with Session(engine) as session:
        session.add(Lockout(email=email, failed_count=failed, locked_until=until))
        session.commit()


def test_unlock_says_truthfully_whether_it_was_locked(cli, shops, password, alice) -> None:
    create_user(shops, OWNER, password, workspace="fade-factory")
    until = utcnow() + timedelta(minutes=12)
    add_lockout(shops, OWNER, 5, until)
    locked = cli("users", "unlock", "Owner@FadeFactory.shop")  # the key is lower-cased
    assert locked.exit_code == 0, locked.output
    assert locked.stdout.strip() == (
        f"✓ unlocked {OWNER}: it was locked until {until:%Y-%m-%d %H:%M} UTC; "
        "5 failed login(s) cleared"
    )
    [row] = rows(shops_db(shops), Lockout)
    assert row.failed_count == 0 and row.locked_until is None
    again = cli("users", "unlock", OWNER)
    assert again.stdout.strip() == f"✓ {OWNER} was not locked"
    # Failures below the limit, or a lock that has run out, are not a lockout.
    with Session(shops) as session:
        row = session.exec(select(Lockout)).one()
        row.failed_count, row.locked_until = 3, utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()
    expired = cli("users", "unlock", OWNER)
    assert expired.stdout.strip() == f"✓ {OWNER} was not locked; 3 failed login(s) cleared"
    assert rows(shops_db(shops), Lockout)[0].failed_count == 0
    audit = rows(shops_db(shops), AuditLog, AuditLog.action == "user.unlock")
    assert [(a.actor, a.after["was_locked"]) for a in audit] == [
        (alice, True),
        (alice, False),
        (alice, False),
    ]


def test_unlock_ends_a_real_lockout_and_knows_no_stranger(cli, shops, password) -> None:
    create_user(shops, OWNER, password, workspace="fade-factory")
    config = load_settings().model_copy(update={"login_max_attempts": 2})
    for _ in range(2):
        with pytest.raises(LoginFailed):
            login(shops, config, OWNER, "not the password at all")
    with pytest.raises(LoginFailed):  # locked: the right password fails too
        login(shops, config, OWNER, password)
    assert cli("users", "unlock", OWNER).stdout.startswith(f"✓ unlocked {OWNER}: it was locked")
    assert login(shops, config, OWNER, password).token
    # An address with no account can be locked too (lockouts reveal nothing).
    add_lockout(shops, "nobody@fadefactory.shop", 9, utcnow() + timedelta(minutes=5))
    assert unlock(shops, "nobody@fadefactory.shop").was_locked
    assert unlock_user(shops, "nobody@fadefactory.shop") is False
    with pytest.raises(NotFound):
        unlock(shops, "stranger@fadefactory.shop")
    missing = cli("users", "unlock", "stranger@fadefactory.shop")
    assert missing.exit_code == 1 and "no user 'stranger@fadefactory.shop'" in one_line(missing)


# ---- the audit actor ------------------------------------------------------------------


def test_the_actor_is_the_operating_system_user(monkeypatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert os_actor() == "cli:alice"
    monkeypatch.setattr(getpass, "getuser", lambda: "bad name\n" + "x" * 300)
    assert os_actor() == "cli:badname" + "x" * 57
    assert len(os_actor()) == len("cli:") + 64

    def unknown() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", unknown)
    assert os_actor() == "cli"
    monkeypatch.setattr(getpass, "getuser", lambda: "")
    assert os_actor() == "cli"
    state = CliState()
    monkeypatch.setattr(getpass, "getuser", lambda: "bo")
    assert state.actor == "cli:bo"
    monkeypatch.setattr(getpass, "getuser", lambda: "someone-else")
    assert state.actor == "cli:bo"  # worked out once per command


def test_every_cli_change_is_audited_with_the_os_user(
    cli, shops, seeded, password, alice, isolated_env
) -> None:
    env = isolated_env / ".env"
    env.write_text(f"SESSION_SECRET={new_secret()}\nWIDGET_SECRET={new_secret()}\n")
    with Session(shops) as session:
        event_id = secrets.token_hex(16)
        outbox = Outbox(
            event_id=event_id,
            event_type="lead.created",
            channel="webhook",
            target="https://hooks.example.org/x",
            payload={"id": event_id},
            next_attempt_at=utcnow(),
        )
        session.add(outbox)
        session.commit()
        session.refresh(outbox)
        outbox_id = str(outbox.id)
    commands = [
        ("clients", "create", "--template", "barber", "--slug", "snip-shop", "--name", "Snip",
         "--phone", "+1 772 555 0199"),
        ("bots", "set", "fade-factory_main", "phone=+1 772 555 0111"),
        ("bot", "disable", "fade-factory_main", "--reason", "owner asked"),
        ("bot", "enable", "fade-factory_main"),
        ("cache", "invalidate"),
        ("outbox", "retry", outbox_id),
        ("privacy", "export", "--email", "rosa.m@brightmail.co"),
        ("privacy", "erase", "--email", "rosa.m@brightmail.co", "--yes"),
        ("retention", "purge"),
        ("secrets", "rotate", "--env-file", str(env)),
        ("users", "create", "--email", OWNER, "-w", "fade-factory"),
        ("users", "passwd", OWNER),
        ("users", "unlock", OWNER),
        ("users", "disable", OWNER),
        ("users", "disable", OWNER, "--enable"),
        ("users", "invite", "--email", "mia@fadefactory.shop", "-w", "fade-factory",
         "--role", "staff"),
    ]  # fmt: skip
    before = {a.id for a in rows(seeded, AuditLog)}
    for command in commands:
        result = cli(*command)
        assert result.exit_code == 0, (command, result.output)
    audit = [a for a in rows(seeded, AuditLog) if a.id not in before]
    assert {a.action for a in audit} == {
        "client.create", "bot.update", "bot.disable", "bot.enable", "cache.invalidate",
        "outbox.retry", "privacy.export", "privacy.erase", "retention.purge",
        "secrets.rotate", "user.create", "user.passwd", "user.unlock", "user.disable",
        "user.enable", "user.invite",
    }  # fmt: skip
    assert {a.actor for a in audit} == {alice}, [(a.action, a.actor) for a in audit]
