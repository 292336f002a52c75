"""What one page says about the business: structured data first, then the page's text.

Structured data is schema.org in JSON-LD and microdata, read by `extruct` (uniform
output, so both look alike): a LocalBusiness (or any subtype, or any item carrying a
telephone, an address or opening hours) gives name, telephone, e-mail, address,
opening hours, geo and url; an FAQPage gives questions and accepted answers;
Service/Product/Offer items give services with prices; a ReserveAction gives a booking
link. The text comes second, parsed with lxml and turned to text by `html-text`:
<details>/<summary> pairs, <dt>/<dd> pairs and h2–h4 headings ending in "?" with what
follows them up to the next heading (and, inside an FAQ section, short paragraphs
ending in "?"), `tel:` and `mailto:` links, the <address> element, hours in table rows
and lines of text, and links to a known booking provider. A page with a password field
is flagged as a login page. Nothing here compares with the bot: that is `merge`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tcai.knowledge.hours import (
    Hours,
    hours_from_lines,
    hours_from_opening_hours,
    hours_from_specification,
)
from tcai.knowledge.site import absolute
from tcai.text.contacts import normalise_email, normalise_phone
from tcai.text.normalise import normalise

if TYPE_CHECKING:
    from lxml.html import HtmlElement

MAX_QUESTION = 200
MAX_ANSWER = 4000
MAX_NAME = 200
NOT_BUSINESS = {
    "PostalAddress",
    "GeoCoordinates",
    "Person",
    "ContactPoint",
    "WebSite",
    "WebPage",
    "FAQPage",
    "Question",
    "Answer",
    "Offer",
    "Service",
    "Product",
    "BreadcrumbList",
    "ImageObject",
    "OpeningHoursSpecification",
    "AggregateRating",
    "Review",
    "Rating",
}
BUSINESS_KEYS = ("telephone", "address", "openingHours", "openingHoursSpecification")
DROP_TAGS = ("script", "style", "noscript", "template", "svg", "iframe")
FAQ_SECTION = re.compile(r"\b(faq|faqs|frequently asked|questions)\b", re.IGNORECASE)
CURRENCY = {"USD": "$", "CAD": "CA$", "AUD": "A$", "EUR": "€", "GBP": "£"}


@dataclass(frozen=True)
class Found:
    """One value a page gives for a fact, and where it was read."""

    value: Any
    source: str


@dataclass(frozen=True)
class FoundFaq:
    question: str
    answer: str
    source: str


@dataclass(frozen=True)
class FoundService:
    name: str
    description: str
    price: str | None
    source: str


@dataclass
class PageFindings:
    url: str
    facts: dict[str, list[Found]] = field(default_factory=dict)
    faqs: list[FoundFaq] = field(default_factory=list)
    services: list[FoundService] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    login: bool = False
    problems: list[str] = field(default_factory=list)

    def add(self, fact: str, value: Any, source: str) -> None:
        if value in (None, "", {}, []):
            return
        values = self.facts.setdefault(fact, [])
        if all(found.value != value for found in values):
            values.append(Found(value, source))


def clean(text: str | None, limit: int = MAX_ANSWER) -> str:
    squashed = " ".join(str(text or "").split())
    return squashed[:limit].strip()


def _text(element: HtmlElement) -> str:
    import html_text

    return str(html_text.etree_to_text(element))


def _types(item: dict[str, Any]) -> list[str]:
    value = item.get("@type", [])
    values = value if isinstance(value, list) else [value]
    return [str(v).rsplit("/", 1)[-1] for v in values if v]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema.org item in a document, nested ones and @graph members included."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, dict):
        if "@type" in node:
            yield node
        for key, value in node.items():
            if key != "@context":
                yield from _walk(value)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _string(value: Any) -> str:
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or value.get("text") or ""
    return clean(str(value or ""), MAX_NAME)


def _address(value: Any) -> str | None:
    value = _first(value)
    if isinstance(value, str):
        return clean(value, 300) or None
    if not isinstance(value, dict):
        return None
    street = clean(value.get("streetAddress"), 200)
    town = clean(value.get("addressLocality"), 100)
    region = clean(value.get("addressRegion"), 50)
    postcode = clean(value.get("postalCode"), 20)
    tail = " ".join(part for part in (region, postcode) if part)
    text = ", ".join(part for part in (street, town, tail) if part)
    return text[:300] or None


def price_text(price: Any, currency: Any = None, minimum: bool = False) -> str | None:
    """35 / '35.00' / '$35' with USD → '$35'; None when it is no amount."""
    raw = str(_first(price) or "").strip()
    match = re.search(r"\d+(?:[.,]\d{1,2})?", raw.replace(",", "") if "." in raw else raw)
    if match is None:
        return None
    amount = float(match.group(0).replace(",", "."))
    symbol = CURRENCY.get(str(currency or "USD").upper(), f"{currency} ")
    shown = f"{amount:.0f}" if amount == int(amount) else f"{amount:.2f}"
    return f"{'from ' if minimum else ''}{symbol}{shown}"


def _offer_price(offer: Any) -> str | None:
    offer = _first(offer)
    if not isinstance(offer, dict):
        return None
    spec = _first(offer.get("priceSpecification"))
    if isinstance(spec, dict) and spec.get("minPrice") is not None and not offer.get("price"):
        return price_text(spec.get("minPrice"), spec.get("priceCurrency"), minimum=True)
    if offer.get("lowPrice") is not None and not offer.get("price"):
        return price_text(offer.get("lowPrice"), offer.get("priceCurrency"), minimum=True)
    currency = offer.get("priceCurrency") or (isinstance(spec, dict) and spec.get("priceCurrency"))
    price = offer.get("price")
    if price is None and isinstance(spec, dict):
        price = spec.get("price")
    return price_text(price, currency) if price is not None else None


def _service(item: dict[str, Any], source: str, price: str | None = None) -> FoundService | None:
    name = _string(item.get("name"))
    if not name:
        return None
    price = price or _offer_price(item.get("offers"))
    description = clean(item.get("description"), 3000)
    return FoundService(name, description, price, source)


def _business(item: dict[str, Any], findings: PageFindings, source: str) -> None:
    findings.add("name", _string(item.get("name")) or None, source)
    phone = _string(item.get("telephone"))
    if phone:
        e164 = normalise_phone(phone)
        if e164:
            findings.add("phone", e164, source)
        else:
            findings.problems.append(f"telephone '{phone}' is not a valid number; ignored")
    email = _string(item.get("email")).removeprefix("mailto:")
    if email and normalise_email(email) is None:
        findings.problems.append(f"e-mail '{email}' is not a usable address; ignored")
    findings.add("email", normalise_email(email) if email else None, source)
    findings.add("address", _address(item.get("address")), source)
    hours: Hours = {}
    spec = item.get("openingHoursSpecification")
    if spec:
        hours = hours_from_specification(spec if isinstance(spec, list) else [spec])
    if not hours and item.get("openingHours"):
        value = item["openingHours"]
        hours = hours_from_opening_hours(value if isinstance(value, list) else [value])
    findings.add("hours", hours, source)
    geo = _first(item.get("geo"))
    if isinstance(geo, dict) and geo.get("latitude") is not None:
        try:
            findings.add(
                "geo", {"lat": float(geo["latitude"]), "lon": float(geo["longitude"])}, source
            )
        except (TypeError, ValueError, KeyError):
            findings.problems.append("geo coordinates are not numbers; ignored")
    url = _string(item.get("url"))
    findings.add("website", url if url.startswith(("http://", "https://")) else None, source)
    catalog = _first(item.get("hasOfferCatalog"))
    offers = [*_walk(catalog)] if isinstance(catalog, dict) else []
    offers += [*_walk(item.get("makesOffer"))]
    for offer in offers:
        if "Offer" not in _types(offer):
            continue
        offered = _first(offer.get("itemOffered"))
        if isinstance(offered, dict):
            service = _service(offered, source, _offer_price(offer))
            if service:
                findings.services.append(service)
    for action in _walk(item.get("potentialAction")):
        if "ReserveAction" in _types(action):
            target = _first(action.get("target"))
            link = target.get("urlTemplate") if isinstance(target, dict) else target
            findings.add("booking_url", str(link) if link else None, source)


def _structured(tree: HtmlElement, url: str, findings: PageFindings) -> None:
    import extruct

    try:
        data = extruct.extract(tree, base_url=url, syntaxes=["json-ld", "microdata"], uniform=True)
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        findings.problems.append(f"structured data could not be read ({type(exc).__name__})")
        return
    for syntax in ("json-ld", "microdata"):
        source = f"{url} ({syntax})"
        for item in _walk(data.get(syntax, [])):
            types = _types(item)
            if "FAQPage" in types:
                for question in _walk(item.get("mainEntity")):
                    if "Question" not in _types(question):
                        continue
                    answer = _first(question.get("acceptedAnswer"))
                    text = answer.get("text") if isinstance(answer, dict) else answer
                    _add_faq(findings, question.get("name"), _html_to_text(text), source)
            elif any(t in ("Service", "Product") for t in types):
                service = _service(item, source)
                known = {normalise(s.name) for s in findings.services}
                if service and normalise(service.name) not in known:
                    findings.services.append(service)
            elif not set(types) & NOT_BUSINESS and any(item.get(k) for k in BUSINESS_KEYS):
                _business(item, findings, source)


def _html_to_text(value: Any) -> str:
    """An accepted answer's text, which schema.org allows to carry HTML."""
    text = str(_first(value) or "")
    if "<" not in text:
        return clean(text)
    import lxml.html

    try:
        return clean(_text(lxml.html.fragment_fromstring(text, create_parent="div")))
    except (ValueError, TypeError):
        return clean(re.sub(r"<[^>]+>", " ", text))


def _add_faq(findings: PageFindings, question: Any, answer: Any, source: str) -> None:
    q = clean(str(question or ""), MAX_QUESTION + 1)
    a = clean(str(answer or ""))
    if not q or not a or len(q) > MAX_QUESTION or not normalise(q):
        return
    if all(normalise(f.question) != normalise(q) for f in findings.faqs):
        findings.faqs.append(FoundFaq(q, a, source))


def _following_text(heading: HtmlElement) -> str:
    """The text after a question heading, up to the next heading."""
    parts: list[str] = []
    for sibling in heading.itersiblings():
        if not isinstance(sibling.tag, str):
            continue
        if re.fullmatch(r"h[1-6]", sibling.tag) or sibling.tag in ("section", "details"):
            break
        if sibling.find(".//h2") is not None or sibling.find(".//h3") is not None:
            break
        text = clean(_text(sibling))
        if text:
            parts.append(text)
        if sum(len(p) for p in parts) > MAX_ANSWER:
            break
    return clean(" ".join(parts))


def _in_nav(element: HtmlElement) -> bool:
    return any(a.tag == "nav" for a in element.iterancestors())


def _page_faqs(body: HtmlElement, findings: PageFindings, source: str) -> None:
    for details in body.iter("details"):
        summary = details.find("summary")
        if summary is None:
            continue
        question = clean(_text(summary))
        whole = clean(_text(details))
        answer = clean(whole[len(question) :]) if whole.startswith(question) else whole
        if question.endswith("?") or FAQ_SECTION.search(_context_heading(details)):
            _add_faq(findings, question, answer, source)
    for dt in body.iter("dt"):
        question = clean(_text(dt))
        dd = dt.getnext()
        if question.endswith("?") and dd is not None and dd.tag == "dd":
            _add_faq(findings, question, clean(_text(dd)), source)
    for heading in body.iter("h2", "h3", "h4"):
        question = clean(_text(heading))
        if question.endswith("?") and not _in_nav(heading):
            _add_faq(findings, question, _following_text(heading), source)
    for section in body.iter("section", "div"):
        heading = section.find(".//h2") if section.tag == "section" else None
        marker = " ".join(filter(None, [section.get("id"), section.get("class")]))
        title = clean(_text(heading)) if heading is not None else ""
        if not (FAQ_SECTION.search(marker) or FAQ_SECTION.search(title)):
            continue
        for paragraph in section.iter("p"):
            question = clean(_text(paragraph))
            if question.endswith("?") and len(question) <= MAX_QUESTION:
                _add_faq(findings, question, _following_text(paragraph), source)


def _context_heading(element: HtmlElement) -> str:
    for ancestor in element.iterancestors():
        marker = " ".join(filter(None, [ancestor.get("id"), ancestor.get("class")]))
        heading = ancestor.find(".//h2")
        if marker or heading is not None:
            return marker + " " + (clean(_text(heading)) if heading is not None else "")
    return ""


def _text_facts(tree: HtmlElement, body: HtmlElement, url: str, findings: PageFindings) -> None:
    from tcai.templates.providers import classify_booking_url, load_registry

    source = f"{url} (text)"
    registry = load_registry()
    for anchor in body.iter("a"):
        href = (anchor.get("href") or "").strip()
        lowered = href.lower()
        if lowered.startswith("tel:"):
            phone = normalise_phone(href[4:])
            findings.add("phone", phone, source)
        elif lowered.startswith("mailto:"):
            address = href[7:].split("?", 1)[0]
            findings.add("email", normalise_email(address), source)
        else:
            link = absolute(url, href)
            if link is None:
                continue
            findings.links.append(link)
            verdict = classify_booking_url(link)
            provider = registry.get(verdict.provider) if verdict.provider else None
            if verdict.ok and not verdict.placeholder and provider and provider.hosts:
                findings.add("booking_url", link, source)
    for element in body.iter("address"):
        kept = [
            line
            for line in (clean(raw, 200) for raw in _text(element).splitlines())
            if line and "@" not in line and not normalise_phone(line) and "http" not in line
        ]
        # The business's name often heads the block: the address starts at the first
        # line with a number in it (the street number).
        first = next((i for i, line in enumerate(kept) if any(c.isdigit() for c in line)), None)
        if first is not None:
            findings.add("address", ", ".join(kept[first:])[:300], source)
            break
    lines: list[str] = []
    for row in body.iter("tr"):
        lines.append(" ".join(clean(_text(cell), 200) for cell in row if isinstance(cell.tag, str)))
    import html_text

    lines.extend(str(html_text.etree_to_text(body)).splitlines())
    findings.add("hours", hours_from_lines(lines), source)
    if body.xpath(".//input[@type='password']"):
        findings.login = True


def read_page(url: str, html: str) -> PageFindings:
    """Everything one page says about the business, and its links."""
    import lxml.etree
    import lxml.html

    findings = PageFindings(url)
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        findings.problems.append("the page is not readable HTML")
        return findings
    _structured(tree, url, findings)
    for element in list(tree.iter(*DROP_TAGS)):
        if element.getparent() is not None:
            element.drop_tree()
    body = tree.find("body")
    if body is None:
        body = tree
    _page_faqs(body, findings, f"{url} (text)")
    _text_facts(tree, body, url, findings)
    return findings
