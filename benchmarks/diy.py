"""The DIY peer: what a carrier engineer writes in an afternoon instead of this service.

A minimal aiohttp app that looks the number (given in E.164) up in a Redis SET
of reported numbers with the usual client (``redis`` with ``hiredis``).

    python -m benchmarks.diy --port 18620 --redis-port 18601 [--loop uvloop]
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from benchmarks.runner import serve_forever
from benchmarks.seed import REDIS_KEY

REDIS = web.AppKey("redis", aioredis.Redis)


async def lookup(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    reported = await request.app[REDIS].sismember(REDIS_KEY, number)
    return web.json_response({"number": number, "reported": bool(reported)})


async def redis_client(app: web.Application) -> AsyncIterator[None]:
    client = aioredis.Redis(host="127.0.0.1", port=int(os.environ["BENCH_REDIS_PORT"]))
    app[REDIS] = client
    yield
    await client.aclose()


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/v1/numbers/{number}", lookup)
    app.cleanup_ctx.append(redis_client)
    return app


if __name__ == "__main__":
    serve_forever(create_app, "diy")
