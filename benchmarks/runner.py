"""Start one worker process of a benchmark server, sharing its port through ``SO_REUSEPORT``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

from aiohttp import web


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The event loop the service runs on too, so that the comparison is fair."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def serve_forever(create_app: Callable[[], web.Application], name: str) -> None:
    parser = argparse.ArgumentParser(prog=f"benchmarks.{name}")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    web.run_app(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        reuse_port=True,
        access_log=None,
        print=None,
        loop=new_loop(args.loop),
    )
