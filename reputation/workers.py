"""``reputation serve``: one node per process, several processes on one port.

With ``--workers N`` (default: one per CPU core) the parent starts N worker
processes that all listen on the same port (``SO_REUSEPORT``: the kernel
spreads connections among them). Each worker is a complete node: its own
pool, Bloom filter, cache, change feed and spool. The parent owns what must
exist once: the embedded PostgreSQL (when no database URL is given). It
restarts a worker that dies, and on SIGTERM or SIGINT it asks every worker to
stop (each stops accepting, finishes its in-flight requests, flushes its
spool and closes its pool), then stops the database it started.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import AsyncIterator
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from reputation.app import create_app
from reputation.logs import access_log_options, setup_logging
from reputation.settings import Settings
from reputation.siblings import WorkerSlot, check_socket_paths

logger = logging.getLogger(__name__)

# A worker that dies sooner than this after its start is restarted after a
# growing pause (up to the maximum), so that a node that cannot start does not
# spin.
STABLE_SECONDS = 30.0
RESTART_DELAY_MAX_SECONDS = 10.0
# Beyond the workers' own shutdown timeout, how long the parent waits for them.
EXIT_GRACE_SECONDS = 10.0
# How often a worker checks that its parent is still there.
PARENT_CHECK_SECONDS = 1.0


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The event loop a node runs on: uvloop where it is installed, else asyncio's."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            logger.warning("uvloop is not installed; serving on the asyncio event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_node(settings: Settings, *, reuse_port: bool = False) -> None:
    """Serve one node in this process until SIGTERM or SIGINT, then shut down gracefully."""
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=reuse_port,
        shutdown_timeout=settings.shutdown_timeout,
        print=lambda text: logger.info("%s", text.strip()),
        loop=new_event_loop(settings.event_loop),
        **access_log_options(settings),
    )


def serve_workers(settings: Settings) -> int:
    """Run ``settings.workers`` worker processes on one port until asked to stop; exit status."""
    check_socket_paths(settings)
    context = multiprocessing.get_context("spawn")
    count = settings.workers
    workers: list[BaseProcess | None] = [None] * count
    started = [0.0] * count
    delays = [0.0] * count
    stopping = False

    def start(index: int) -> None:
        process = context.Process(
            target=_worker_main,
            args=(settings, index, os.getpid()),
            name=f"reputation-worker-{index}",
        )
        process.start()
        workers[index], started[index] = process, time.monotonic()
        logger.info("worker %d started (pid %d)", index, process.pid)

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            logger.info("%s: stopping %d workers", signal.Signals(signum).name, count)
        stopping = True
        for process in workers:
            if process is not None and process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        start(index)
    deadline: float | None = None
    failed = False
    while True:
        alive = [p for p in workers if p is not None and p.is_alive()]
        if stopping:
            if not alive:
                break
            if deadline is None:
                deadline = time.monotonic() + settings.shutdown_timeout + EXIT_GRACE_SECONDS
            elif time.monotonic() > deadline:
                for process in alive:
                    logger.error("worker pid %d did not stop in time; killing it", process.pid)
                    process.kill()
                failed = True
                break
        multiprocessing.connection.wait([p.sentinel for p in alive], timeout=0.5)
        if stopping:
            continue
        for index, worker in enumerate(workers):
            if worker is None or worker.is_alive():
                continue
            lived = time.monotonic() - started[index]
            delays[index] = (
                0.0
                if lived > STABLE_SECONDS
                else min(max(delays[index] * 2, 0.5), RESTART_DELAY_MAX_SECONDS)
            )
            logger.error(
                "worker %d (pid %d) exited with %s after %.1f s; restarting in %.1f s",
                index,
                worker.pid,
                worker.exitcode,
                lived,
                delays[index],
            )
            workers[index] = None
            time.sleep(delays[index])
            if not stopping:
                start(index)
    for ended in workers:
        if ended is not None:
            ended.join()
            failed = failed or ended.exitcode not in (0, -signal.SIGTERM)
    logger.info("all workers stopped")
    return 1 if failed else 0


def _worker_main(settings: Settings, index: int, parent: int) -> None:
    """The entry point of a worker process."""
    setup_logging(settings.log_level)
    logger.info("worker %d serving on %s:%d", index, settings.host, settings.port)
    app = create_app(settings, worker=WorkerSlot(index, settings.workers))

    async def watch_parent(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(_stop_when_orphaned(parent))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.insert(0, watch_parent)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=True,
        shutdown_timeout=settings.shutdown_timeout,
        print=None,
        loop=new_event_loop(settings.event_loop),
        **access_log_options(settings),
    )


async def _stop_when_orphaned(parent: int) -> None:
    """Shut down gracefully if the parent died without stopping us (no one else would)."""
    # Nothing signals a parent's death to a child: poll.
    while os.getppid() == parent:  # noqa: ASYNC110
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    logger.error("the parent process is gone; stopping this worker")
    os.kill(os.getpid(), signal.SIGTERM)
