"""Prometheus instruments, who may read them, and how several workers add up.

Labels are canonical routes, statuses and small enums — never paths, ids or visitors.

- **One process** (`tcai serve`, `tcai demo`): the instruments live in this `Metrics`'s
  own registry and `/metrics` renders it.
- **Several workers** (`tcai serve --workers N`): before any worker starts, the parent
  points `PROMETHEUS_MULTIPROC_DIR` at a fresh private directory (`use_multiprocess`).
  Each process then keeps its instruments in its own files there, and `/metrics` in any
  worker renders them all, merged by prometheus-client's `MultiProcessCollector`: one
  document for the whole daemon. Counters and histograms of a worker that has exited
  keep counting; its gauges go when the parent calls `mark_process_dead`, so the
  in-flight gauge is the sum over live workers.
- **Who may read them** (`metrics_access`): with `METRICS_TOKEN` set, only a request
  carrying `Authorization: Bearer <token>`; unset, only a loopback peer that is not a
  reverse proxy relaying someone else. Anyone else gets the 404 of an unknown path.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
"""A loopback peer sending one of these is a reverse proxy relaying someone else."""

Access = Literal["allow", "unauthorized", "hidden"]
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Any other method a client invents is counted as OTHER: labels stay a small set."""
SERVED_CACHE_MAX = 2048


def use_multiprocess(directory: Path) -> None:
    """Make this process's instruments prometheus-client's multiprocess kind, kept in
    `directory`. Call it before the process's first `Metrics()`: the library picks its
    value class from the environment when it is first imported (in `tcai serve`, long
    before the directory existed), so it is picked again here."""
    os.environ[MULTIPROC_ENV] = str(directory)
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]


def use_single_process() -> None:
    """One process keeps its own registry, even if PROMETHEUS_MULTIPROC_DIR came in from
    the environment (that directory could hold other processes' stale counts)."""
    if os.environ.pop(MULTIPROC_ENV, None) is not None:
        prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    """The shared directory when this process is one of several workers, else None."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "replace")).digest()


def metrics_access(token: str | None, headers: Mapping[str, str], remote: str | None) -> Access:
    """May this request read `/metrics`? `token` is METRICS_TOKEN (None when unset)."""
    if token is not None:
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        # Digests of equal length, compared in constant time: neither the token's
        # content nor its length leaks through timing.
        matched = hmac.compare_digest(_digest(given.strip()), _digest(token))
        return "allow" if scheme.lower() == "bearer" and matched else "unauthorized"
    proxied = any(name.lower() in PROXY_HEADERS for name in headers)
    return "allow" if is_loopback(remote) and not proxied else "hidden"


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    multiprocess: str | None = field(default_factory=multiprocess_dir)
    """The shared directory of a several-worker daemon (see the module's docstring)."""

    def served(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request: its labelled children are looked up once per (route,
        method, status) and kept, since `labels()` takes a lock and builds a key."""
        key = (route, method if method in HTTP_METHODS else "OTHER", status)
        children = self._served.get(key)
        if children is None:
            children = (
                self.requests.labels(key[0], key[1], str(status)),
                self.latency.labels(route),
            )
            if len(self._served) < SERVED_CACHE_MAX:
                self._served[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def __post_init__(self) -> None:
        self._served: dict[tuple[str, str, int], tuple[Any, Any]] = {}
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
        self.in_flight = Gauge(
            "tcai_http_in_flight",
            "Requests being served",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.workers = Gauge(
            "tcai_daemon_workers",
            "Daemon processes serving",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.workers.set(1)
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
        self.connections_refused = Counter(
            "tcai_connections_refused_total",
            "Connections closed at once: their client address held too many",
            registry=r,
        )
        self.connections_evicted = Counter(
            "tcai_connections_evicted_total",
            "Connections waiting for a request, closed to keep file descriptors free",
            registry=r,
        )
        self.kill_switch = Counter(
            "tcai_paused_answers_total", "Chats answered by a paused bot", registry=r
        )
        self.canaries = Counter(
            "tcai_canary_runs_total",
            "Canary runs of a bot by result: pass, fail, paused (docs/canaries.md)",
            ["result"],
            registry=r,
        )

    def render(self) -> bytes:
        if self.multiprocess is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
