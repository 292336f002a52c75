"""The dashboard's chart, drawn on the server: conversations and leads per day as an SVG
bar chart (no script, no chart library, nothing from a CDN).

`activity_chart` turns the core's `DayCount` rows into shapes with coordinates; the
template (`dashboard.html`) only writes them out. Colours come from the stylesheet (bars
by class), so the page's CSP needs no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tcai.records.activity import DayCount

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 16, 36
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # "conversations" or "leads"
    label: str  # what a screen reader or a tooltip says


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: float
    baseline: float
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    labels: tuple[DayLabel, ...]
    total_conversations: int
    total_leads: int
    summary: str


def say_day(count: DayCount) -> str:
    return f"{MONTHS[count.day.month - 1]} {count.day.day}"


def nice_top(peak: int) -> tuple[int, int]:
    """The axis' top and its step: 4 to 5 ticks at round numbers."""
    if peak <= 4:
        return 4, 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if peak / step <= 5:
            top = -(-peak // step) * step
            return top, step
    step = 10 ** len(str(peak))
    return -(-peak // step) * step, step


def activity_chart(days: Sequence[DayCount]) -> Chart:
    peak = max([1, *(d.conversations for d in days), *(d.leads for d in days)])
    top, step = nice_top(peak)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_h
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, slot * 0.36)
    bars: list[Bar] = []
    labels: list[DayLabel] = []
    for index, count in enumerate(days):
        x0 = LEFT + index * slot + (slot - 2 * bar_w) / 2
        for offset, kind, value in (
            (0.0, "conversations", count.conversations),
            (bar_w, "leads", count.leads),
        ):
            height = plot_h * value / top
            bars.append(
                Bar(
                    round(x0 + offset, 1),
                    round(baseline - height, 1),
                    round(bar_w, 1),
                    round(height, 1),
                    kind,
                    f"{say_day(count)}: {value} {kind if value != 1 else kind[:-1]}",
                )
            )
        if index % 5 == 0 or index == len(days) - 1:
            labels.append(DayLabel(round(LEFT + index * slot + slot / 2, 1), say_day(count)))
    ticks = tuple(
        Tick(value, round(baseline - plot_h * value / top, 1)) for value in range(0, top + 1, step)
    )
    conversations = sum(d.conversations for d in days)
    leads = sum(d.leads for d in days)
    summary = f"{conversations} conversations and {leads} leads in the last {len(days)} days" + (
        f", from {say_day(days[0])} to {say_day(days[-1])}." if days else "."
    )
    return Chart(
        WIDTH,
        HEIGHT,
        LEFT,
        WIDTH - RIGHT,
        baseline,
        tuple(bars),
        ticks,
        tuple(labels),
        conversations,
        leads,
        summary,
    )
