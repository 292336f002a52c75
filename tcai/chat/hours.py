"""Opening hours said like a person: "Saturday 10 am – 4 pm", "closed on Sunday".

Owns reading a business's hours (`BusinessFacts.hours`, spans per weekday in the
business's time zone) as a week, a day, today, or right now, and phrasing each in English
or Spanish. The sentences around these phrases are canned texts in
`tcai/data/chat_rules.yaml`; deciding which question was asked is `tcai.chat.facts`'s.
Nothing here guesses: a business without hours gets no hours phrase at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from tcai.bots.config import WEEKDAYS, BusinessFacts, parse_span

DAY_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
_AND = {"en": " and ", "es": " y "}
_ALL_DAY = {"en": "open 24 hours", "es": "abierto las 24 horas"}
_CLOSED = {"en": "closed", "es": "cerrado"}
_END_OF_DAY = time(23, 59, 59)  # how parse_span stores "24:00"


def say_time(moment: time) -> str:
    """09:00 → "9 am", 13:30 → "1:30 pm", 12:00 → "12 pm", 24:00 → "midnight"."""
    if moment == _END_OF_DAY or moment == time(0, 0):
        return "midnight"
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes} {'am' if moment.hour < 12 else 'pm'}"


def say_spans(spans: tuple[tuple[time, time], ...], language: str = "en") -> str:
    """The day's spans: "9 am – 12 pm and 1 pm – 6 pm"; "closed" for none."""
    if not spans:
        return _CLOSED[language]
    if len(spans) == 1 and spans[0] == (time(0, 0), _END_OF_DAY):
        return _ALL_DAY[language]
    return _AND[language].join(f"{say_time(a)} – {say_time(b)}" for a, b in spans)


@dataclass(frozen=True)
class Week:
    """A business's opening spans per weekday, parsed once."""

    spans: tuple[tuple[tuple[time, time], ...], ...]  # index 0 = Monday
    timezone: ZoneInfo

    @classmethod
    def of(cls, business: BusinessFacts) -> Week | None:
        if not business.hours:
            return None
        spans = tuple(
            tuple(sorted(parse_span(s) for s in business.hours.get(day, ()))) for day in WEEKDAYS
        )
        return cls(spans, ZoneInfo(business.timezone))

    def local(self, now: datetime) -> datetime:
        return now.astimezone(self.timezone)

    def is_open_at(self, moment: datetime) -> bool:
        local = self.local(moment)
        clock = local.time()
        return any(a <= clock < b for a, b in self.spans[local.weekday()])

    def closes_at(self, moment: datetime) -> time | None:
        """When the span open at `moment` ends (None when closed)."""
        local = self.local(moment)
        clock = local.time()
        return next((b for a, b in self.spans[local.weekday()] if a <= clock < b), None)

    def next_opening(self, moment: datetime) -> tuple[int, time] | None:
        """(days from today, opening time) of the next opening after `moment`."""
        local = self.local(moment)
        clock = local.time()
        for offset in range(8):
            weekday = (local.weekday() + offset) % 7
            for start, _end in self.spans[weekday]:
                if offset > 0 or start > clock:
                    return offset, start
        return None

    def summary(self, language: str = "en") -> str:
        """The week, with runs of days that keep the same hours joined:
        "Monday–Friday 9 am – 5 pm, Saturday 10 am – 4 pm, closed Sunday"."""
        names = DAY_NAMES[language]
        groups: list[tuple[int, int]] = []
        for index in range(7):
            if groups and self.spans[groups[-1][0]] == self.spans[index]:
                groups[-1] = (groups[-1][0], index)
            else:
                groups.append((index, index))
        parts = []
        for first, last in groups:
            label = names[first] if first == last else f"{names[first]}–{names[last]}"
            if self.spans[first]:
                parts.append(f"{label} {say_spans(self.spans[first], language)}")
            elif language == "es":
                parts.append(f"{label} cerrado")
            else:
                parts.append(f"closed {label}")
        return "; ".join(parts)
