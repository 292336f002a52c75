"""Opening hours, as a website writes them, in the bot's own shape: a span list per
weekday (`{"mon": ["09:00-17:00"], "sun": []}`; `tcai.bots.config.BusinessFacts.hours`).

Three sources, most exact first: schema.org `openingHoursSpecification` (`dayOfWeek`,
`opens`, `closes`), schema.org `openingHours` strings ("Mo-Fr 09:00-17:00"), and lines
of page text ("Mon – Fri: 9am – 7pm", "Sunday: Closed", a table row "Tuesday | 11:30 AM
- 9 PM"). A day a source does not mention is closed (schema.org's reading). Free text
never matches the two-letter day codes ("we" is not Wednesday); a span without am/pm
whose end comes before its start is read as ending in the afternoon ("10-4").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tcai.bots.config import WEEKDAYS, parse_span

Hours = dict[str, list[str]]

_DAY_WORDS: dict[str, str] = {}
for _key, _forms in {
    "mon": ("monday", "mon"),
    "tue": ("tuesday", "tues", "tue"),
    "wed": ("wednesday", "weds", "wed"),
    "thu": ("thursday", "thurs", "thur", "thu"),
    "fri": ("friday", "fri"),
    "sat": ("saturday", "sat"),
    "sun": ("sunday", "sun"),
}.items():
    for _form in _forms:
        _DAY_WORDS[_form] = _key
_CODES = {"mo": "mon", "tu": "tue", "we": "wed", "th": "thu", "fr": "fri", "sa": "sat", "su": "sun"}

_DAY = r"(?:" + "|".join(sorted(_DAY_WORDS, key=len, reverse=True)) + r")\.?"
_DASH = r"\s*(?:-|–|—|to|through|thru|until|till)\s*"
_DAYS = rf"\b{_DAY}(?:{_DASH}{_DAY})?(?:\s*(?:,|&|and|/)\s*{_DAY}(?:{_DASH}{_DAY})?)*\b"
_TIME = r"(?:\d{1,2}(?:[:.]\d{2})?\s*(?:[ap]\.?\s?m\.?)?|noon|midnight|midday)"
_SPAN = rf"({_TIME}){_DASH}({_TIME})"
_DAYS_RE = re.compile(_DAYS, re.IGNORECASE)
_SPAN_RE = re.compile(_SPAN, re.IGNORECASE)
_DAY_RE = re.compile(_DAY, re.IGNORECASE)
_CLOSED = re.compile(r"\bclosed\b", re.IGNORECASE)
_ALL_DAY = re.compile(r"\b(?:24\s*(?:hours|hrs|h)|open 24|all day)\b", re.IGNORECASE)
MAX_LINE = 120
_ORDER: list[str] = list(WEEKDAYS)


def _day_key(word: str) -> str | None:
    token = word.strip().rstrip(".").lower()
    if token.startswith(("http://", "https://")):
        token = token.rsplit("/", 1)[-1]
    return _DAY_WORDS.get(token) or _CODES.get(token)


def _expand(first: str, last: str | None) -> list[str]:
    start = _ORDER.index(first)
    if last is None:
        return [first]
    end = _ORDER.index(last)
    span = (end - start) % 7
    return [WEEKDAYS[(start + n) % 7] for n in range(span + 1)]


def _days_of(text: str) -> list[str]:
    """'Mon-Fri, Sun' → ['mon', …, 'fri', 'sun']."""
    days: list[str] = []
    for part in re.split(r"\s*(?:,|&|\band\b|/)\s*", text.strip()):
        pieces = re.split(_DASH, part.strip(), maxsplit=1)
        first = _day_key(pieces[0])
        last = _day_key(pieces[1]) if len(pieces) > 1 else None
        if first is None:
            continue
        for day in _expand(first, last):
            if day not in days:
                days.append(day)
    return days


def _clock(text: str, meridiem: str | None) -> tuple[int, int] | None:
    word = text.strip().lower()
    if word in ("noon", "midday"):
        return 12, 0
    if word == "midnight":
        return 0, 0
    match = re.match(r"(\d{1,2})(?:[:.](\d{2}))?", word)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if meridiem == "a" and hour == 12:
        hour = 0
    elif meridiem == "p" and hour < 12:
        hour += 12
    if hour > 24 or minute > 59:
        return None
    return hour, minute


def _meridiem(text: str) -> str | None:
    match = re.search(r"([ap])\.?\s?m\.?\s*$", text.strip(), re.IGNORECASE)
    return match.group(1).lower() if match else None


def span_of(start_text: str, end_text: str) -> str | None:
    """'9am', '5:30 pm' → '09:00-17:30'; None when it is no valid span."""
    start_m, end_m = _meridiem(start_text), _meridiem(end_text)
    end = _clock(end_text, end_m)
    if end is None:
        return None
    if start_m is None and end_m is not None:
        guess = _clock(start_text, end_m)
        start = guess if guess is not None and guess < end else _clock(start_text, None)
    else:
        start = _clock(start_text, start_m)
    if start is None:
        return None
    if end_m is None and start_m is None and end <= start and end[0] < 12:
        end = (end[0] + 12, end[1])  # "10-4"
    if (end == (0, 0) and start != (0, 0)) or end_text.strip().lower() == "midnight":
        end = (24, 0)
    text = f"{start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}"
    try:
        parse_span(text)
    except ValueError:
        return None
    return text


def _spans_in(text: str) -> list[str]:
    if _ALL_DAY.search(text):
        return ["00:00-24:00"]
    spans = []
    for match in _SPAN_RE.finditer(text):
        span = span_of(match.group(1), match.group(2))
        if span and span not in spans:
            spans.append(span)
    return spans


def hours_from_lines(lines: Iterable[str]) -> Hours:
    """Hours read from short lines of text; the first mention of a day wins. {} when
    fewer than two days are named with a time or 'closed' (a passing 'on Monday' is
    no timetable)."""
    found: Hours = {}
    for raw in lines:
        line = " ".join(raw.split())
        if not line or len(line) > MAX_LINE:
            continue
        groups = list(_DAYS_RE.finditer(line))
        for index, group in enumerate(groups):
            tail_end = groups[index + 1].start() if index + 1 < len(groups) else len(line)
            tail = line[group.end() : tail_end]
            spans = _spans_in(tail)
            if not spans and not _CLOSED.search(tail):
                continue
            for day in _days_of(group.group(0)):
                found.setdefault(day, spans)
    return _complete(found) if len(found) >= 2 else {}


def _complete(found: Hours) -> Hours:
    return {day: list(found.get(day, [])) for day in WEEKDAYS}


def _time_text(value: Any) -> str:
    return str(value or "").strip()[:5]


def hours_from_specification(specs: Iterable[Any]) -> Hours:
    """schema.org OpeningHoursSpecification items → hours; {} when none is usable."""
    found: Hours = {}
    for spec in specs:
        if not isinstance(spec, dict):
            continue
        days_value = spec.get("dayOfWeek")
        days = days_value if isinstance(days_value, list) else [days_value]
        keys = [k for k in (_day_key(str(d)) for d in days if d) if k]
        opens, closes = _time_text(spec.get("opens")), _time_text(spec.get("closes"))
        if not keys:
            continue
        if opens == "00:00" and closes == "00:00":
            span = None  # schema.org: opens and closes at midnight = closed that day
        elif opens and closes:
            span = span_of(opens, "24:00" if closes in ("00:00", "23:59") else closes)
            if span is None:
                continue
        else:
            continue
        for day in keys:
            spans = found.setdefault(day, [])
            if span and span not in spans:
                spans.append(span)
    return _complete(found) if found else {}


def hours_from_opening_hours(values: Iterable[Any]) -> Hours:
    """schema.org openingHours strings ('Mo-Fr 09:00-17:00', 'Sa 10:00-14:00')."""
    found: Hours = {}
    for value in values:
        for item in re.split(r"[;\n]|,(?=\s*[A-Za-z]{2}\b[ -])", str(value)):
            match = re.match(r"\s*([A-Za-z ,\-–]+?)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})", item)
            if match is None:
                continue
            days: list[str] = []
            for part in match.group(1).split(","):
                pieces = re.split(r"\s*[-–]\s*", part.strip(), maxsplit=1)
                first = _day_key(pieces[0])
                last = _day_key(pieces[1]) if len(pieces) > 1 else None
                if first:
                    days.extend(d for d in _expand(first, last) if d not in days)
            span = span_of(match.group(2), match.group(3))
            for day in days:
                if span:
                    spans = found.setdefault(day, [])
                    if span not in spans:
                        spans.append(span)
    return _complete(found) if found else {}


def as_assignments(hours: Hours) -> list[str]:
    """`hours.<day>=…` assignments for `change_bot` (what `tcai bots set` takes)."""
    return [f"hours.{day}={','.join(hours.get(day, [])) or 'closed'}" for day in WEEKDAYS]


def hours_text(hours: Hours) -> str:
    return "; ".join(f"{day} {','.join(hours.get(day, [])) or 'closed'}" for day in WEEKDAYS)


def mentions_day(text: str) -> bool:
    return _DAY_RE.search(text) is not None
