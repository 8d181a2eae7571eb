"""The application factory and the lifecycle of everything a node owns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from aiohttp import web

from reputation import api
from reputation.appkeys import CLOCK, LOOKUPS, METRICS, SETTINGS, STORE
from reputation.constants import MAX_BODY_BYTES
from reputation.logs import request_id_middleware
from reputation.lookup import Lookups
from reputation.metrics import Metrics
from reputation.migrate import migrate
from reputation.settings import Settings
from reputation.store import Store, create_pool

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> web.Application:
    """A node of the service for ``settings.database_url`` (which must be set)."""
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url; `reputation serve` sets it")
    app = web.Application(
        middlewares=[request_id_middleware, api.error_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    api.setup_routes(app)
    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(lookup_state)
    return app


async def database(app: web.Application) -> AsyncIterator[None]:
    """The connection pool, with the schema migrated before the first query."""
    settings = app[SETTINGS]
    assert settings.database_url is not None
    async with create_pool(settings.database_url, settings) as pool:
        async with pool.acquire() as conn:
            await migrate(conn)
        key = await Store.load_reporter_key(pool, settings.reporter_key)
        app[STORE] = Store(pool, key, app[CLOCK])
        yield


async def lookup_state(app: web.Application) -> AsyncIterator[None]:
    """The Bloom filter and hot cache, filled in the background while the node starts."""
    lookups = Lookups(app[SETTINGS], app[STORE], app[METRICS], app[CLOCK])
    app[LOOKUPS] = lookups
    loading = asyncio.get_running_loop().create_task(lookups.load_with_retry())
    yield
    loading.cancel()
    await asyncio.gather(loading, return_exceptions=True)
