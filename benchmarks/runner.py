"""Start one worker process of a benchmark server, sharing its port through ``SO_REUSEPORT``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from aiohttp import web

from reputation.cli import new_event_loop


def serve_forever(create_app: Callable[[], web.Application], name: str) -> None:
    parser = argparse.ArgumentParser(prog=f"benchmarks.{name}")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    args = parser.parse_args()
    web.run_app(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        reuse_port=True,
        access_log=None,
        print=None,
        # The same loop as the service's (``reputation serve``), for a fair floor.
        loop=new_event_loop(args.loop),
    )
