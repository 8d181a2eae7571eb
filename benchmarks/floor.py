"""The floor: the least an aiohttp server can do for a lookup-shaped request.

Same route shape, same event loop, same ``SO_REUSEPORT`` worker layout as the
service, and a fixed small JSON body. Nothing can be faster on this stack, so
every figure of the service is read as a share of this one.

    python -m benchmarks.floor --port 18610 [--loop uvloop]
"""

from __future__ import annotations

from aiohttp import web

from benchmarks.runner import serve_forever

BODY = b'{"number":"+84912345678","reported":false,"verdict":"allow"}'


async def lookup(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/v1/numbers/{number}", lookup)
    return app


if __name__ == "__main__":
    serve_forever(create_app, "floor")
