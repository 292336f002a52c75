"""Provisioning and bot settings: one path, nothing half-made, every change audited."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from tcai.bots.config import BotConfig
from tcai.db.models import AuditLog, Bot, CacheSignal, Workspace
from tcai.templates.files import load_template_files
from tests.conftest import provision
from tests.helpers import count

TEMPLATE_KEYS = [t.key for t in load_template_files()]


def _bot(database, bot_id: str) -> Bot:
    engine = database.engine()
    try:
        with Session(engine) as session:
            return session.exec(select(Bot).where(Bot.bot_id == bot_id)).one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_every_template_provisions_with_its_content_intact(cli, seeded, key: str) -> None:
    slug = f"client-{key.replace('_', '-')}"
    result = cli("clients", "create", "--template", key, "--slug", slug, "--name", "Acme " + key,
                 "--phone", "(772) 555-0100", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["bot_id"] == f"{slug}_main"
    template = next(t for t in load_template_files() if t.key == key)
    config = BotConfig.model_validate(_bot(seeded, made["bot_id"]).config)
    assert config.template.booking == template.booking
    assert config.template.quick_replies == template.quick_replies
    assert config.template.disclaimer == template.disclaimer
    assert config.template.crisis == template.crisis
    assert config.template.compliance == template.compliance
    assert config.business.phone == "+17725550100"
    # Neutral defaults: nothing from another industry.
    assert config.template.business.type == template.business.type


def test_duplicate_slug_writes_nothing(cli, seeded) -> None:
    provision(seeded)
    before = (count(seeded, Workspace), count(seeded, Bot), count(seeded, AuditLog))
    result = cli(
        "clients", "create", "--template", "salon", "--slug", "fade-factory", "--name", "Other"
    )
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "nothing written" in result.stderr
    assert (count(seeded, Workspace), count(seeded, Bot), count(seeded, AuditLog)) == before


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--phone", "12345", "--phone: '12345' is not a valid phone number"),
        ("--email", "not-an-email", "--email:"),
        ("--email", "you@example.com", "--email:"),
        ("--website", "ftp://files.example.org", "--website:"),
        (
            "--booking-url",
            "http://squareup.com/book/x",
            "--booking-url: booking URL must use https",
        ),
        (
            "--booking-url",
            "https://buy.stripe.com/abc",
            "--booking-url: booking URL points at a payment site",
        ),
        (
            "--booking-url",
            "https://squareup.com/appointments/book/YOUR_BUSINESS_ID/x",
            "placeholder",
        ),
        ("--allowed-origin", "https://shop.example.com/path", "--allowed-origin:"),
        ("--timezone", "Mars/Olympus", "--timezone:"),
        ("--plan", "platinum", "--plan:"),
        ("--slug", "Bad Slug!", "--slug:"),
        ("--booking-provider", "Acme Pay", "--booking-provider:"),
    ],
)
def test_invalid_input_names_the_field_and_writes_nothing(
    cli, seeded, flag, value, message
) -> None:
    args = {"--template": "barber", "--slug": "good-slug", "--name": "Good Name", flag: value}
    flat = [item for pair in args.items() for item in pair]
    result = cli("clients", "create", *flat)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert count(seeded, Workspace) == 0 and count(seeded, Bot) == 0


def test_unknown_template(cli, seeded) -> None:
    result = cli("clients", "create", "--template", "spaceport", "--slug", "x1", "--name", "X")
    assert result.exit_code == 1
    assert "no template 'spaceport'; see tcai templates list" in result.stderr


def test_lists_and_show(cli, seeded) -> None:
    provision(seeded)
    provision(seeded, template="dental", slug="bright-smile", name="Bright Smile Dental")
    clients = json.loads(cli("clients", "list", "--json").stdout)
    assert [c["client_id"] for c in clients] == ["bright-smile", "fade-factory"]
    bots = json.loads(cli("bots", "list", "--json").stdout)
    assert {"bot_id", "client_id", "name", "status", "template_id"} <= set(bots[0])
    assert {(b["bot_id"], b["client_id"], b["template_id"]) for b in bots} == {
        ("fade-factory_main", "fade-factory", "barber_template"),
        ("bright-smile_main", "bright-smile", "dental_template"),
    }
    only = json.loads(cli("bots", "list", "--client", "bright-smile", "--json").stdout)
    assert [b["bot_id"] for b in only] == ["bright-smile_main"]
    shown = json.loads(cli("bots", "show", "fade-factory_main", "--json").stdout)
    assert shown["config"]["template"]["id"] == "barber_template"
    assert cli("bots", "show", "ghost").exit_code == 1


def test_bots_set_validates_bumps_version_and_audits(cli, seeded) -> None:
    bot_id = provision(seeded)
    secret = "w" * 8 + "hook-signing-key-for-tests"
    result = cli("bots", "set", bot_id, "booking_url=https://booksy.com/en-us/123_fade-factory",
                 "hours.mon=09:00-17:00", "hours.sun=closed", "lead_capture=false",
                 "allowed_origins=https://fadefactory.example.org", f"webhook_secret={secret}",
                 "--reason", "owner asked", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)
    assert change["config_version"] == 2
    assert "booking.url" in change["changed"] and "allowed_origins" in change["changed"]
    bot = _bot(seeded, bot_id)
    config = BotConfig.model_validate(bot.config)
    assert config.booking.url == "https://booksy.com/en-us/123_fade-factory"
    assert config.business.hours == {"mon": ("09:00-17:00",), "sun": ()}
    assert config.lead_capture is False
    assert bot.allowed_origins == ["https://fadefactory.example.org"]
    engine = seeded.engine()
    with Session(engine) as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "bot.update")).one()
        signal = session.exec(select(CacheSignal).where(CacheSignal.name == "bots")).one()
    engine.dispose()
    assert audit.reason == "owner asked" and audit.target == bot_id
    assert audit.after and audit.after["booking.url"] == "https://booksy.com/en-us/123_fade-factory"
    assert secret not in json.dumps(audit.after) and secret not in json.dumps(audit.before)
    assert signal.version >= 1
    shown = cli("bots", "show", bot_id, "--json").stdout
    assert secret not in shown

    same = json.loads(cli("bots", "set", bot_id, "lead_capture=false", "--json").stdout)
    assert same["config_version"] == 2 and same["changed"] == []


@pytest.mark.parametrize(
    ("assignment", "code", "message"),
    [
        ("booking_url=javascript:alert(1)", 1, "booking_url: booking URL must use https"),
        ("hours.mon=9-5", 1, "hours.mon:"),
        ("hours.funday=09:00-17:00", 1, "unknown day"),
        ("phone=abc", 1, "phone:"),
        ("behavior_preset=pushy", 1, "behavior_preset"),
        ("colour=red", 2, "unknown setting 'colour'"),
        ("no-equals-sign", 2, "is not key=value"),
        ("webhook_url=http://hooks.example.org/x", 1, "webhooks must use https"),
    ],
)
def test_bots_set_refuses_bad_values(cli, seeded, assignment, code, message) -> None:
    bot_id = provision(seeded)
    result = cli("bots", "set", bot_id, assignment)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert _bot(seeded, bot_id).config_version == 1


def test_bots_set_from_a_file_adds_automations(cli, seeded, tmp_path) -> None:
    bot_id = provision(seeded)
    patch = tmp_path / "patch.yaml"
    patch.write_text(
        "automations:\n"
        "  - {id: parking, match: contains, pattern: parking, reply: Free parking behind the shop.}\n"
        "business:\n  address: 12 Main St, Stuart, FL\n"
    )
    result = cli("bots", "set", bot_id, "--file", str(patch))
    assert result.exit_code == 0, result.output
    config = BotConfig.model_validate(_bot(seeded, bot_id).config)
    assert config.automations[0].reply == "Free parking behind the shop."
    assert config.business.address == "12 Main St, Stuart, FL"
    assert config.business.name == "Fade Factory"

    bad = tmp_path / "bad.yaml"
    bad.write_text("automations:\n  - {id: r, match: regex, pattern: '(unclosed', reply: x}\n")
    result = cli("bots", "set", bot_id, "--file", str(bad))
    assert result.exit_code == 1
    assert "automations[0]" in result.stderr and "not a valid regular expression" in result.stderr
    tamper = tmp_path / "tamper.yaml"
    tamper.write_text("template:\n  name: Hacked\n")
    assert cli("bots", "set", bot_id, "--file", str(tamper)).exit_code == 1
    assert _bot(seeded, bot_id).config_version == 2


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--booking-provider", "Booksy", "--booking-url", "https://booksy.com.evil.example/x"],
            "--booking-url: booking URL is on booksy.com.evil.example, which Booksy does not "
            "use: Booksy links must be on booksy.com (or a subdomain)",
        ),
        (
            ["--booking-provider", "Vagaro", "--booking-url", "https://fadefactory.example.org/b"],
            "must be on vagaro.com",
        ),
        (
            ["--booking-provider", "Direct Booking", "--booking-url", "https://booksy.com/en-us/1"],
            "name Booksy as the provider",
        ),
        (["--booking-url", "https://b\u043e\u043eksy.com/x"], "look-alike"),
        (["--booking-url", "https://booksy.com:8443/x"], "port 8443"),
    ],
)
def test_a_booking_link_must_live_on_its_providers_domain(cli, seeded, flags, message) -> None:
    result = cli("clients", "create", "--template", "barber", "--slug", "good-slug",
                 "--name", "Good Name", *flags)  # fmt: skip
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert count(seeded, Bot) == 0


@pytest.mark.parametrize(
    ("flags", "provider"),
    [
        (["--booking-url", "https://www.booksy.com/en-us/1_fade"], "Booksy"),
        (["--booking-provider", "booksy", "--booking-url", "https://booksy.com/en-us/1"], "Booksy"),
        (["--booking-url", "https://fadefactory.example.org/book"], None),
        (
            ["--booking-provider", "Direct Booking", "--booking-url", "https://fade.example.org/b"],
            "Direct Booking",
        ),
    ],
)
def test_the_provider_stored_is_the_one_the_link_lives_on(cli, seeded, flags, provider) -> None:
    result = cli("clients", "create", "--template", "barber", "--slug", "good-slug",
                 "--name", "Good Name", *flags, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = BotConfig.model_validate(_bot(seeded, "good-slug_main").config)
    assert config.booking.provider == provider


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (
            ["booking_provider=Booksy"],
            "booking_url: booking URL is on squareup.com, which Booksy does not use",
        ),
        (
            ["booking_url=https://squareup.com.evil.example/x"],
            "which Square Appointments does not use",
        ),
        (["booking_provider=Booksy", "booking_url=https://evilbooksy.com/x"], "evilbooksy.com"),
        (["service_url.Classic Fade=https://squareup-book.example/x"], "service_url.Classic Fade:"),
    ],
)
def test_bots_set_keeps_links_and_their_provider_in_agreement(
    cli, seeded, tmp_path, assignments, message
) -> None:
    bot_id = provision(seeded, booking_url="https://squareup.com/appointments/book/fade")
    config = BotConfig.model_validate(_bot(seeded, bot_id).config)
    assert config.booking.provider == "Square Appointments"
    result = cli("bots", "set", bot_id, *assignments)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert _bot(seeded, bot_id).config_version == 1
    # A look-alike cannot come in through a --file patch either.
    patch = tmp_path / "patch.yaml"
    patch.write_text("booking:\n  url: https://squareup.com.evil.example/x\n")
    result = cli("bots", "set", bot_id, "--file", str(patch))
    assert result.exit_code == 1 and "which Square Appointments does not use" in result.stderr
    # Changing both together is how an operator moves a bot to another provider.
    moved = cli("bots", "set", bot_id, "booking_provider=Booksy",
                "booking_url=https://booksy.com/en-us/1_fade", "--json")  # fmt: skip
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout)["config_version"] == 2
