"""Typed keys of the application state (``app[KEY]``), shared by handlers and lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from reputation.activity import StatusState
from reputation.auth import Guard
from reputation.feed import ChangeFeed
from reputation.filters import FilterKeeper
from reputation.health import DatabaseHealth
from reputation.lookup import Lookups
from reputation.metrics import Metrics
from reputation.ranges import RangeKeeper
from reputation.settings import Settings
from reputation.siblings import WorkerLink
from reputation.spool import Spool
from reputation.store import Store
from reputation.sweeper import Sweeper

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
LOOKUPS = web.AppKey("lookups", Lookups)
GUARD = web.AppKey("guard", Guard)
CLOCK = web.AppKey[Callable[[], datetime]]("clock")
SWEEPER = web.AppKey("sweeper", Sweeper)
FEED = web.AppKey("feed", ChangeFeed)
FILTERS = web.AppKey("filters", FilterKeeper)
HEALTH = web.AppKey("health", DatabaseHealth)
STATUS_PAGE = web.AppKey("status_page", StatusState)
RANGES = web.AppKey("ranges", RangeKeeper)
# Exports streamed at once (each holds a database connection).
EXPORT_SLOTS = web.AppKey("export_slots", asyncio.Semaphore)
SPOOL = web.AppKey("spool", Spool)
# This worker's place among the node's workers, and its socket to them.
WORKER_LINK = web.AppKey("worker_link", WorkerLink)
