"""``reputation serve`` as a real process: N nodes on one port, stopped in a burst, in an outage."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from reputation.embedded import EmbeddedPostgres
from reputation.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from reputation.spool import pending_records
from tests.conftest import TEST_GATEWAY_SECRET

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


def serve_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a node started by a test: none of the caller's ``REPUTATION_*``,
    the given database and data directory, and ``settings`` (``reporter_rate_limit="off"``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPUTATION_")}
    env |= {
        "REPUTATION_DATABASE_URL": database_url,
        "REPUTATION_DATA_DIR": str(data_dir),
        "REPUTATION_LOG_LEVEL": "WARNING",
    }
    env |= {f"REPUTATION_{name.upper()}": value for name, value in settings.items()}
    return env


async def serve(
    env: dict[str, str], port: int, log: Path, workers: int = 1
) -> asyncio.subprocess.Process:
    """``reputation serve`` (keys not checked) in a process of its own, its output in ``log``."""
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reputation", "serve", "--no-auth", "--workers", str(workers),
            "--port", str(port), env=env, stdout=output, stderr=output,
        )  # fmt: skip


async def test_sigterm_during_a_burst_of_reports_loses_none(
    own_database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = serve_env(own_database_url, tmp_path, reporter_rate_limit="off")
    server = await serve(env, port, tmp_path / "serve.log", workers=2)
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
        await _kill(server)

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


async def test_sigterm_while_postgres_is_down_keeps_the_spool_for_the_next_start(
    own_postgres: EmbeddedPostgres, own_database_url: str, tmp_path: Path
) -> None:
    """Reports spooled during an outage survive a stop; the next start writes each once."""
    port = free_port()
    env = serve_env(
        own_database_url,
        tmp_path,
        reporter_rate_limit="off",
        sms_gateway_secret=TEST_GATEWAY_SECRET,
    )
    base = f"http://127.0.0.1:{port}"
    pg_port = own_postgres.port
    async with aiohttp.ClientSession() as session:
        first = await serve(env, port, tmp_path / "first.log")
        try:
            await _until_ready(session, base)
            await asyncio.to_thread(own_postgres.stop)
            statuses = []
            for i in range(3):
                body = {"number": "0912000020", "reporter": f"098700002{i}"}
                headers = {"Idempotency-Key": f"outage-{i}"}
                for _ in range(2 if i == 0 else 1):  # the first one retried by its client
                    async with session.post(
                        base + "/v1/reports", json=body, headers=headers
                    ) as response:
                        statuses.append(response.status)
            for i in range(2):
                message = {
                    "message_id": f"stopped-{i}",
                    "from": f"8498700004{i}",
                    "to": "156",
                    "text": "LD 0912000021 lừa đảo",
                }
                for _ in range(2 if i == 0 else 1):  # the first one delivered twice
                    answer = await _deliver_sms(session, base, message)
                    assert answer["accepted"] is True, answer
                    assert answer["queued"] is True, answer
            assert statuses == [202] * 4
            first.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                assert await first.wait() == 0
        finally:
            await _kill(first)
        kept = [
            record
            for path in (tmp_path / "spool").glob("spool-*.log")
            for record in pending_records(path)
        ]
        assert len(kept) == 4 + 3  # the retries too: their keys make them harmless

        await asyncio.to_thread(own_postgres.start, pg_port)
        second = await serve(env, port, tmp_path / "second.log")
        try:
            await _until_ready(session, base)
            conn = await asyncpg.connect(own_database_url)
            try:
                async with asyncio.timeout(30):
                    while await conn.fetchval("SELECT count(*) FROM reports") < 5:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                await asyncio.sleep(1)  # anything replayed twice would show by now
                counts = dict(await conn.fetch("SELECT e164, count(*) FROM reports GROUP BY e164"))
                messages = await conn.fetchval(
                    "SELECT count(*) FROM sms_messages WHERE message_id LIKE 'stopped-%'"
                )
            finally:
                await conn.close()
            assert counts == {"+84912000020": 3, "+84912000021": 2}
            assert messages == 2
        finally:
            second.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await second.wait()
            await _kill(second)
    remaining = [
        record
        for path in (tmp_path / "spool").glob("spool-*.log")
        for record in pending_records(path)
    ]
    assert remaining == []


async def _kill(server: asyncio.subprocess.Process) -> None:
    if server.returncode is None:
        server.kill()
        await server.wait()


async def _deliver_sms(
    session: aiohttp.ClientSession, base: str, message: dict[str, str]
) -> dict[str, Any]:
    """Deliver ``message`` as the gateway does (signed); the node's JSON answer."""
    body = json.dumps(message).encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(TEST_GATEWAY_SECRET.encode(), stamp, body),
    }
    async with session.post(base + "/v1/sms/inbound", data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer
