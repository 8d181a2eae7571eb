"""``reputation serve --workers N`` as a real process: one port, N nodes, a graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import asyncpg

BURST = 400
CONCURRENCY = 40
# Responses received before the SIGTERM: the stop lands in the middle of the burst.
SIGNAL_AFTER = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def worker_pids(parent: int) -> list[int]:
    """The worker processes of ``parent`` (its multiprocessing children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


async def test_sigterm_during_a_burst_of_reports_loses_none(
    own_database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPUTATION_")}
    env |= {
        "REPUTATION_DATABASE_URL": own_database_url,
        "REPUTATION_DATA_DIR": str(tmp_path),
        "REPUTATION_REPORTER_RATE_LIMIT": "off",
        "REPUTATION_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "serve.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reputation",
        "serve",
        "--no-auth",
        "--workers",
        "2",
        "--port",
        str(port),
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONCURRENCY)
        ) as session:
            await _until_ready(session, base)
            assert len(await asyncio.to_thread(worker_pids, server.pid)) == 2

            received = 0
            outcomes: dict[str, int | str] = {}
            signalled = asyncio.Event()

            async def report(i: int) -> None:
                nonlocal received
                key = f"burst-{i}"
                body = {"number": f"0913{i:06d}", "reporter": f"0987{i:06d}"}
                try:
                    async with session.post(
                        base + "/v1/reports", json=body, headers={"Idempotency-Key": key}
                    ) as response:
                        await response.read()
                        outcomes[key] = response.status
                except aiohttp.ClientError as exc:
                    outcomes[key] = exc.__class__.__name__
                received += 1
                if received == SIGNAL_AFTER:
                    server.send_signal(signal.SIGTERM)
                    signalled.set()

            await asyncio.gather(*(report(i) for i in range(BURST)))
            assert signalled.is_set()
        async with asyncio.timeout(60):
            assert await server.wait() == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        log.close()

    acknowledged = {key for key, outcome in outcomes.items() if outcome == 201}
    statuses = {outcome for outcome in outcomes.values() if isinstance(outcome, int)}
    assert statuses <= {201}, outcomes  # refused connections are errors, never a 5xx
    assert SIGNAL_AFTER <= len(acknowledged) < BURST
    conn = await asyncpg.connect(own_database_url)
    try:
        kept = {row[0] for row in await conn.fetch("SELECT idempotency_key FROM reports")}
    finally:
        await conn.close()
    # Every acknowledged report is kept, and nothing was kept without its answer.
    assert kept == acknowledged


async def _until_ready(session: aiohttp.ClientSession, base: str) -> None:
    async with asyncio.timeout(60):
        while True:
            try:
                async with session.get(base + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
