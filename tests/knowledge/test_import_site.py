"""`tcai knowledge import --url`: the fixture sites, read through the real crawler, the
real parsers and the real database (docs/knowledge-import.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tcai.bots.config import BotConfig
from tcai.config import load_settings
from tcai.db.models import AuditLog, Bot
from tcai.errors import InvalidInput, NotFound
from tcai.knowledge.fetch import Limits
from tcai.knowledge.service import ImportResult, import_site
from tests.conftest import CliFn, Database, provision
from tests.helpers import rows
from tests.knowledge.conftest import SiteServer, closed_port, local_names

pytestmark = pytest.mark.usefixtures("seeded")


def run_import(
    database: Database,
    bot: str,
    url: str,
    *,
    allow_private: bool = True,
    limits: Limits | None = None,
    **kw: Any,
) -> ImportResult:
    settings = load_settings().model_copy(update={"webhook_allow_private": allow_private})
    engine = database.engine()
    try:
        return asyncio.run(
            import_site(engine, settings, bot, url, getaddrinfo=local_names, limits=limits, **kw)
        )
    finally:
        engine.dispose()


def changes(result: ImportResult, field: str) -> list[dict[str, Any]]:
    return [c.as_dict() for c in result.proposal.changes if c.field == field]


def bot_config(database: Database, bot: str) -> tuple[BotConfig, Bot]:
    row = rows(database, Bot, Bot.bot_id == bot)[0]
    return BotConfig.model_validate(row.config), row


def test_the_barber_site_is_read_structured_data_first_and_nothing_is_written(
    seeded: Database, sites: SiteServer
) -> None:
    bot = provision(seeded, name="Fade Factory", phone="(772) 555-0100")
    result = run_import(seeded, bot, sites.url("barber.test"))
    kinds = {c.field: c.kind for c in result.proposal.changes if c.field not in ("faq", "service")}
    assert kinds == {
        "name": "same",  # "Fade Factory Barbershop" starts with the bot's name
        "phone": "same",
        "email": "new",
        "address": "new",
        "website": "new",
        "hours": "new",
        "booking_url": "new",
        "geo": "info",
        "allowed_origins": "new",
    }
    assert changes(result, "hours")[0]["proposed"] == (
        "mon closed; tue 09:00-19:00; wed 09:00-19:00; thu 09:00-19:00; fri 09:00-19:00; "
        "sat 08:00-16:00; sun closed"
    )
    assert changes(result, "address")[0]["proposed"] == "1200 SE Ocean Blvd, Stuart, FL 34996"
    faqs = {c["proposed"]["question"]: c for c in changes(result, "faq")}
    assert faqs["Do you take walk-ins?"]["kind"] == "new"
    assert faqs["Do you take walk-ins?"]["source"].endswith("(json-ld)")  # before <details>
    assert faqs["How long does a haircut take?"]["kind"] == "duplicate"
    assert faqs["What forms of payment do you take?"]["kind"] == "duplicate"  # J = 0.75
    assert faqs["What forms of payment do you take?"]["current"]["question"] == (
        "What forms of payment do you accept?"
    )
    near = faqs["Can I ask for a specific barber?"]  # J = 0.625
    assert near["kind"] == "near_duplicate" and not near["apply"]
    assert faqs["Is there parking?"]["kind"] == "new"  # from <details>, text only
    assert "Is this page private?" not in faqs
    services = {c["proposed"]["name"]: c for c in changes(result, "service")}
    assert services["Haircuts"]["kind"] == "duplicate"
    assert "Price: $30." in services["Haircuts"]["proposed"]["description"]
    assert services["Skin Fade"]["kind"] == "new"
    # robots.txt forbade /private/: never requested, and said so
    assert "/private/staff.html" not in sites.paths("barber.test")
    assert [n.kind for n in result.notes] == ["robots"]
    assert "/logo.png" not in sites.paths("barber.test")
    agents = {ua for _h, _p, ua in sites.hits}
    assert len(agents) == 1 and agents.pop().startswith("tcai-knowledge-import/")
    # a dry run writes nothing
    _config, row = bot_config(seeded, bot)
    assert row.config_version == 1 and not result.applied


def test_apply_writes_through_change_bot_audited_and_keeps_conflicts(
    seeded: Database, sites: SiteServer
) -> None:
    bot = provision(
        seeded, template="restaurant", slug="luna", name="Luna Trattoria", phone="+1 772 555 0142"
    )
    result = run_import(seeded, bot, sites.url("restaurant.test"), apply=True, actor="cli:ana")
    phone = changes(result, "phone")[0]
    assert phone["kind"] == "conflict" and not phone["apply"]
    assert "--overwrite phone" in phone["note"]
    config, row = bot_config(seeded, bot)
    assert config.business.phone == "+17725550142"  # never overwritten silently
    assert config.business.address == "88 Ocean Blvd, Vero Beach, FL 32963"
    assert config.business.hours["mon"] == ()
    assert config.business.hours["fri"] == ("11:30-22:30",)
    assert config.business.hours["sun"] == ("12:00-20:00",)
    questions = {f.question for f in config.business.faqs}
    assert {"Do you take reservations?", "Is there outdoor seating?"} <= questions
    assert "Gift cards" not in questions  # a heading that asks nothing is no FAQ
    outdoor = next(f for f in config.business.faqs if f.question == "Is there outdoor seating?")
    assert (
        outdoor.answer == "Yes, our patio seats 30 and is dog friendly. Heaters are on in winter."
    )
    assert row.config_version == 2 and result.config_version == 2
    audit = rows(seeded, AuditLog, AuditLog.action == "bot.update")
    assert [(a.actor, a.target) for a in audit] == [("cli:ana", bot)]
    assert audit[0].reason and "knowledge import from" in audit[0].reason
    assert sorted((n.kind, n.url.rsplit("/", 1)[1]) for n in result.notes) == [
        ("http_error", "gallery"),  # a dead link: reported, the rest goes on
        ("not_html", "menu.pdf"),
    ]

    again = run_import(seeded, bot, sites.url("restaurant.test"), apply=True, overwrite=["phone"])
    assert changes(again, "phone")[0]["apply"]
    config, row = bot_config(seeded, bot)
    assert config.business.phone == "+17725550199" and row.config_version == 3
    assert {c.kind for c in again.proposal.changes if c.field == "faq"} == {"same"}


def test_redirects_are_followed_within_the_domain_only(seeded: Database, sites: SiteServer) -> None:
    bot = provision(seeded)
    result = run_import(seeded, bot, sites.url("redirect.test"))
    assert result.pages == [sites.url("www.redirect.test", "/home")]
    off = [n for n in result.notes if n.kind == "off_site_redirect"]
    assert len(off) == 1 and "evil.test" in off[0].message and "not followed" in off[0].message
    assert sites.paths("evil.test") == []
    assert changes(result, "faq")[0]["proposed"]["question"] == "Do you cut curly hair?"


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("redirect.test", "/away", "outside redirect.test; not followed"),
        ("login.test", "/", "asks for a password"),
        ("evil.test", "/", "HTTP 404"),
    ],
)
def test_a_site_that_gives_nothing_is_a_clear_error(
    seeded: Database, sites: SiteServer, host: str, path: str, expected: str
) -> None:
    bot = provision(seeded)
    with pytest.raises(InvalidInput) as caught:
        run_import(seeded, bot, sites.url(host, path))
    assert expected in caught.value.message
    assert sites.paths("evil.test") in ([], ["/robots.txt", "/"])


def test_a_site_that_is_down_or_slow_is_reported(seeded: Database, sites: SiteServer) -> None:
    bot = provision(seeded)
    with pytest.raises(InvalidInput) as down:
        run_import(seeded, bot, f"http://down.test:{closed_port()}/")
    assert "cannot connect" in down.value.message
    with pytest.raises(InvalidInput) as slow:
        run_import(seeded, bot, sites.url("slow.test"), limits=Limits(request_timeout_s=0.5))
    assert "no complete answer within 0.5 s" in slow.value.message


def test_a_huge_page_is_capped_and_a_non_html_one_skipped(
    seeded: Database, sites: SiteServer
) -> None:
    bot = provision(seeded)
    huge = run_import(seeded, bot, sites.url("huge.test"))
    assert [n.kind for n in huge.notes] == ["page_capped"]
    assert changes(huge, "faq")[0]["proposed"]["question"] == "Do you sell gift cards?"
    files = run_import(seeded, bot, sites.url("files.test"))
    skipped = {n.url.rsplit("/", 1)[1]: n.message for n in files.notes if n.kind == "not_html"}
    assert skipped == {
        "menu.pdf": "application/pdf, not an HTML page; skipped",
        "photo": "image/jpeg, not an HTML page; skipped",
    }


def test_the_page_cap_stops_the_crawl(seeded: Database, sites: SiteServer) -> None:
    bot = provision(seeded)
    result = run_import(seeded, bot, sites.url("barber.test"), max_pages=1)
    assert len(result.pages) == 1
    assert [n.kind for n in result.notes] == ["page_cap"]
    assert sites.paths("barber.test") == ["/robots.txt", "/"]


def test_the_ssrf_guard_refuses_private_addresses_without_the_allowance(
    seeded: Database, sites: SiteServer
) -> None:
    bot = provision(seeded)
    with pytest.raises(InvalidInput) as caught:
        run_import(seeded, bot, f"https://barber.test:{sites.port}/", allow_private=False)
    assert "resolves to a loopback address (127.0.0.1); refused" in caught.value.message
    assert sites.hits == []


def test_an_unknown_bot_fails_before_any_request(seeded: Database, sites: SiteServer) -> None:
    with pytest.raises(NotFound):
        run_import(seeded, "nobody", sites.url("barber.test"))
    assert sites.hits == []


def check(cli: CliFn, bot: str) -> tuple[int, dict[str, Any]]:
    result = cli("bots", "check", bot, "--json")
    return result.exit_code, json.loads(result.stdout)


def test_after_an_import_a_client_made_from_a_name_a_phone_and_a_website_goes_live(
    seeded: Database, barber_site: SiteServer, cli: CliFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's done criterion, through the CLI as an operator runs it."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")  # the fixture site is on 127.0.0.1
    website = barber_site.url().rstrip("/")
    made = cli(
        "clients", "create", "--template", "barber", "--slug", "fade",
        "--name", "Fade Factory", "--phone", "(772) 555-0100", "--website", website,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    code, before = check(cli, "fade_main")
    blockers = {b["code"] for b in before["bots"][0]["blockers"]}
    assert code == 1 and {"no_hours", "no_address", "no_booking_link"} <= blockers

    dry = cli("knowledge", "import", "fade_main", "--url", barber_site.url())
    assert dry.exit_code == 0, dry.output
    assert "dry run:" in dry.stdout and "nothing written" in dry.stdout
    assert check(cli, "fade_main")[0] == 1

    applied = cli(
        "knowledge", "import", "fade_main", "--url", barber_site.url(), "--apply", "--json"
    )
    assert applied.exit_code == 0, applied.output
    document = json.loads(applied.stdout)
    assert document["applied"] is True and document["config_version"] == 2
    assert document["summary"]["near_duplicate"] == 1
    code, after = check(cli, "fade_main")
    assert code == 0, after["bots"][0]["blockers"]
    assert after["bots"][0]["blockers"] == []


def test_the_cli_refuses_contradictory_options(seeded: Database, cli: CliFn) -> None:
    bot = provision(seeded)
    both = cli("knowledge", "import", bot, "--url", "https://a.example.com", "--file", "x.csv")
    assert both.exit_code == 2 and "exactly one of --url" in both.stderr
    modes = cli(
        "knowledge", "import", bot, "--url", "https://a.example.com", "--dry-run", "--apply"
    )
    assert modes.exit_code == 2 and "contradict" in modes.stderr
    plain = cli("knowledge", "import", bot, "--url", "http://a.example.com/")
    assert plain.exit_code == 2 and "is not a web address like https://" in plain.stderr
    unknown = cli(
        "knowledge", "import", bot, "--url", "https://a.example.com", "--overwrite", "colour"
    )
    assert unknown.exit_code == 2 and "--overwrite: unknown field colour" in unknown.stderr
    for result in (both, modes, plain, unknown):
        assert "Traceback" not in result.output
