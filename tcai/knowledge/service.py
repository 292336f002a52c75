"""`tcai knowledge import`: read a site or a file, propose the diff, apply it on request.

`import_site` and `import_file` read the bot first (an unknown bot fails before any
request), gather what the source says, compare it with the bot (`merge.propose`) and,
with `apply=True`, write the applied items through `tcai.bots.service.change_bot`: the
validators of `tcai bots set`, one audit row naming the actor and the source, a new
`config_version` and the change signal every daemon watches. The dry run is the
default and writes nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tcai.bots.config import BotConfig
from tcai.bots.service import change_bot, get_bot
from tcai.db.engine import session_scope
from tcai.errors import InvalidInput, UsageError
from tcai.knowledge.extract import PageFindings, read_page
from tcai.knowledge.fetch import Crawler, Limits, Note, Page, user_agent
from tcai.knowledge.files import read_faq_file
from tcai.knowledge.merge import OVERWRITABLE, Knowledge, Proposal, propose

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tcai.config import Settings

MAX_PAGES_LIMIT = 200


@dataclass
class ImportResult:
    bot_id: str
    source: str
    proposal: Proposal
    pages: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    applied: bool = False
    config_version: int = 0
    changed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        proposal = self.proposal
        kinds = ("new", "same", "duplicate", "near_duplicate", "conflict", "info")
        return {
            "bot_id": self.bot_id,
            "source": self.source,
            "mode": "apply" if self.applied else "dry_run",
            "pages": self.pages,
            "notes": [note.as_dict() for note in self.notes],
            "problems": self.problems,
            "summary": {kind: proposal.count(kind) for kind in kinds}
            | {"to_apply": proposal.to_apply},
            "changes": [change.as_dict() for change in proposal.changes],
            "applied": self.applied,
            "config_version": self.config_version,
            "changed": list(self.changed),
        }


def _bot(engine: Engine, bot_id: str) -> tuple[str, BotConfig, list[str], int]:
    with session_scope(engine) as session:
        bot, _workspace = get_bot(session, bot_id)
        return (
            bot.bot_id,
            BotConfig.model_validate(bot.config),
            list(bot.allowed_origins or []),
            bot.config_version,
        )


def check_overwrite(fields: Iterable[str]) -> list[str]:
    chosen = [f.strip() for f in fields if f.strip()]
    unknown = [f for f in chosen if f not in OVERWRITABLE]
    if unknown:
        raise UsageError(
            f"--overwrite: unknown field {', '.join(unknown)}; one of {', '.join(OVERWRITABLE)}"
        )
    return chosen


def check_start_url(url: str, allow_private: bool) -> str:
    parts = urlsplit(url.strip())
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise UsageError(f"--url: '{url}' is not a web address like https://www.business.com")
    return url.strip()


def gather(pages: list[PageFindings], origins: list[str]) -> Knowledge:
    """Every page's findings merged: per fact, structured values first, then text ones,
    in page order."""
    knowledge = Knowledge(origins=origins)
    for structured in (True, False):
        for page in pages:
            for fact, values in page.facts.items():
                for found in values:
                    if found.source.endswith("(text)") == structured:
                        continue
                    bucket = knowledge.facts.setdefault(fact, [])
                    if all(f.value != found.value for f in bucket):
                        bucket.append(found)
            for faq in page.faqs:
                if faq.source.endswith("(text)") != structured:
                    knowledge.faqs.append(faq)
            if structured:
                knowledge.services.extend(page.services)
    return knowledge


def _finish(
    engine: Engine,
    result: ImportResult,
    *,
    apply: bool,
    actor: str,
) -> ImportResult:
    proposal = result.proposal
    if apply and (proposal.assignments or proposal.patch):
        change = change_bot(
            engine,
            result.bot_id,
            assignments=proposal.assignments,
            patch=proposal.patch,
            actor=actor,
            reason=f"knowledge import from {result.source}",
        )
        result.applied, result.config_version, result.changed = (
            True,
            change.config_version,
            change.changed,
        )
    return result


async def import_site(
    engine: Engine,
    settings: Settings,
    bot_id: str,
    url: str,
    *,
    max_pages: int = 20,
    apply: bool = False,
    overwrite: Iterable[str] = (),
    actor: str = "cli",
    limits: Limits | None = None,
    getaddrinfo: Callable[..., Any] = socket.getaddrinfo,
) -> ImportResult:
    """Crawl the business's own site from `url` and propose (or apply) what it says.
    `getaddrinfo` is the system's; tests pass one that names their local sites."""
    if not 1 <= max_pages <= MAX_PAGES_LIMIT:
        raise UsageError(f"--max-pages: between 1 and {MAX_PAGES_LIMIT}")
    fields = check_overwrite(overwrite)
    allow_private = settings.webhook_allow_private
    start = check_start_url(url, allow_private)
    bot, config, origins, version = _bot(engine, bot_id)
    base = limits or Limits()
    crawler = Crawler(
        start,
        limits=Limits(**{**base.__dict__, "max_pages": max_pages}),
        allow_private=allow_private,
        agent=user_agent(settings.public_url),
        getaddrinfo=getaddrinfo,
    )
    findings: list[PageFindings] = []

    def read(page: Page) -> list[str]:
        found = read_page(page.url, page.html)
        findings.append(found)
        return found.links

    crawl = await crawler.run(read)
    if not crawl.pages:
        first = crawl.notes[0].message if crawl.notes else "no page answered"
        raise InvalidInput(
            f"nothing was read from {start}: {first}",
            details=[f"{n.url}: {n.message}" for n in crawl.notes[1:5]],
        )
    knowledge = gather(findings, [page.url for page in crawl.pages])
    problems = [f"{page.url}: {problem}" for page in findings for problem in page.problems]
    logins = [page.url for page in findings if page.login]
    if knowledge.is_empty():
        why = (
            f"; {logins[0]} asks for a password (the import reads public pages only)"
            if logins
            else ""
        )
        raise InvalidInput(
            f"found no facts or FAQs on {len(crawl.pages)} page(s) of {crawl.site}{why}",
            details=[f"{n.url}: {n.message}" for n in crawl.notes[:5]],
        )
    problems += [f"{page}: asks for a password; nothing behind it is read" for page in logins]
    result = ImportResult(
        bot,
        start,
        propose(config, origins, knowledge, overwrite=fields),
        pages=[page.url for page in crawl.pages],
        notes=crawl.notes,
        problems=problems,
        config_version=version,
    )
    return _finish(engine, result, apply=apply, actor=actor)


def import_file(
    engine: Engine,
    bot_id: str,
    path: Path,
    *,
    apply: bool = False,
    overwrite: Iterable[str] = (),
    actor: str = "cli",
) -> ImportResult:
    """FAQs from a CSV or Markdown file, proposed (or applied) like a site's."""
    fields = check_overwrite(overwrite)
    read = read_faq_file(path)
    bot, config, origins, version = _bot(engine, bot_id)
    if not read.faqs:
        raise InvalidInput(f"no FAQ in {path.name} can be imported", details=read.refused[:10])
    knowledge = Knowledge(faqs=read.faqs)
    result = ImportResult(
        bot,
        str(path),
        propose(config, origins, knowledge, overwrite=fields),
        problems=read.refused,
        config_version=version,
    )
    return _finish(engine, result, apply=apply, actor=actor)
