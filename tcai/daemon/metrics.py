"""Prometheus instruments, one registry per process (each worker serves its own
`/metrics`). Labels are canonical routes, statuses and small enums — never paths, ids
or visitors."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "tcai_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "tcai_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
            registry=r,
        )
        self.in_flight = Gauge("tcai_http_in_flight", "Requests being served", registry=r)
        self.answers = Counter(
            "tcai_chat_answers_total", "Chat answers by source", ["source"], registry=r
        )
        self.llm_errors = Counter(
            "tcai_llm_errors_total", "LLM failures by kind", ["kind"], registry=r
        )
        self.failsafe = Counter(
            "tcai_failsafe_answers_total",
            "Answers given without the LLM after it failed",
            registry=r,
        )
        self.leads = Counter(
            "tcai_leads_captured_total", "Turns that captured or updated a lead", registry=r
        )
        self.rate_limited = Counter(
            "tcai_rate_limited_total", "Requests refused by a rate limit", ["scope"], registry=r
        )
        self.kill_switch = Counter(
            "tcai_paused_answers_total", "Chats answered by a paused bot", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
