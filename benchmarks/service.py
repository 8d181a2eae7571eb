"""One worker of the service, started as ``reputation serve`` does, sharing its port.

Used while ``reputation serve`` has no worker count of its own: the suite starts
N of these on one port (``SO_REUSEPORT``). Settings come from ``REPUTATION_*``
(the event loop from ``REPUTATION_EVENT_LOOP``, as for ``serve``).

    REPUTATION_DATABASE_URL=... python -m benchmarks.service --port 18630
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from reputation.app import create_app
from reputation.cli import access_log_options, new_event_loop
from reputation.logs import setup_logging
from reputation.settings import Settings

logger = logging.getLogger("reputation")


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.service")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings.from_env(port=args.port)
    setup_logging(settings.log_level)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=True,
        **access_log_options(settings),
        print=lambda text: logger.info("%s", text.strip()),
        loop=new_event_loop(settings.event_loop),
    )


if __name__ == "__main__":
    main()
