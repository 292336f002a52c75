"""Typed keys for the application's shared state (aiohttp's AppKey, no globals)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.engine import Engine

from tcai.chat.directory import BotDirectory
from tcai.chat.pipeline import ChatEngine
from tcai.config import Settings
from tcai.daemon.metrics import Metrics
from tcai.daemon.probe import DatabaseProbe
from tcai.daemon.ratelimit import RateLimits
from tcai.daemon.remote import ClientAddresses

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
DIRECTORY = web.AppKey("directory", BotDirectory)
CHAT = web.AppKey("chat", ChatEngine)
METRICS = web.AppKey("metrics", Metrics)
LIMITS = web.AppKey("limits", RateLimits)
CLIENTS = web.AppKey("clients", ClientAddresses)
DEMO = web.AppKey("demo", bool)
PROBE = web.AppKey("probe", DatabaseProbe)
ORIGIN_REFUSALS = web.AppKey("origin_refusals", dict)
"""(bot id, origin) → when its last "widget origin refused" line was written
(tcai/daemon/origins.py, `log_refused_origin`)."""
