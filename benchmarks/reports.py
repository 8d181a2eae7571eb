"""Reports accepted per second through ``POST /v1/reports``, and what each one costs.

Run by the suite (its report part), or alone, which is quicker:

    python -m benchmarks.reports [--workers 2] [--runs 3] [--duration 8] [--port 19130]
                                 [--py-spy PREFIX]

Alone, it starts a durable embedded PostgreSQL (fsync on; its processes serve
this run only, so their CPU is measured too), seeds it as the suite does,
starts the service's workers on one port and loads them with wrk: every
report about a fresh number from a reporter of its own (the per-reporter rate
limit is not under test). Each run prints accepted reports/s, the CPU per
report of the service and of PostgreSQL, reports per transaction, and checks
that every acknowledged report is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import numbers, seed
from benchmarks.load import Header, wrk
from benchmarks.processes import CLOCK_TICKS, ProcessGroup, cpu_seconds, python_module
from reputation.embedded import EmbeddedPostgres
from reputation.store import POLICY_STATE

# Report bodies per run file: more than a run at 2,000/s for 8 s sends.
BODIES = 50_000
# Where the report bodies' numbers start among the never-reported numbers
# (above those the suite's lookup runs ask).
FIRST_NUMBER = 100_000
READY_TIMEOUT = 300.0


def write_bodies(path: Path, first: int, count: int = BODIES) -> None:
    """One JSON report body per line: a fresh number and a reporter of its own each."""
    bodies = []
    for i in range(count):
        bodies.append(
            json.dumps(
                {
                    # Fresh numbers: every report creates or grows an aggregate.
                    "number": numbers.unreported(first + i),
                    # A reporter each: the per-reporter rate limit is not under test.
                    "reporter": numbers.unreported(first + count + i),
                    "channel": "app",
                    "category": "scam",
                    "content": "Gọi giả danh công an, yêu cầu chuyển tiền",
                },
                ensure_ascii=False,
            )
        )
    path.write_text("\n".join(bodies) + "\n")


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU used so far by a PostgreSQL server: its postmaster and every live child."""
    total = cpu_seconds(postmaster)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(stat[1]) == postmaster:
            total += (int(stat[11]) + int(stat[12])) / CLOCK_TICKS
    return total


async def measure(
    database_url: str,
    service: ProcessGroup,
    port: int,
    bodies: Path,
    *,
    workers: int,
    connections: int,
    duration: float,
    header: Header,
    postmaster: int | None = None,
) -> dict[str, Any]:
    """Reports accepted per second, their CPU, then proof that each acknowledged one is stored."""
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetchval("SELECT count(*) FROM reports")
        cpu_before = service.cpu_seconds()
        pg_before = postgres_cpu_seconds(postmaster) if postmaster else 0.0
        result = await asyncio.to_thread(
            wrk,
            f"http://127.0.0.1:{port}",
            bodies,
            connections=connections,
            duration=duration,
            method="POST",
            path="/v1/reports",
            header=header,
        )
        cpu = service.cpu_seconds() - cpu_before
        pg_cpu = postgres_cpu_seconds(postmaster) - pg_before if postmaster else None
        stored = await conn.fetchval("SELECT count(*) FROM reports") - before
        transactions = await conn.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM reports "
            "ORDER BY id DESC LIMIT $1) AS recent",
            stored,
        )
        settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("fsync", "synchronous_commit", "wal_sync_method")
        }
    finally:
        await conn.close()
    accepted = result["requests"] - result["errors"]["status"]
    requests = max(1, result["requests"])
    result.update(
        accepted=accepted,
        accepted_per_second=accepted / (result["duration_us"] / 1e6),
        stored=stored,
        transactions=transactions,
        reports_per_transaction=stored / max(1, transactions),
        all_acknowledged_stored=stored >= accepted,
        service_cpu_ms_per_report=cpu / requests * 1e3,
        postgres_cpu_ms_per_report=pg_cpu / requests * 1e3 if pg_cpu is not None else None,
        postgres=settings,
        workers=workers,
    )
    return result


def summary(result: dict[str, Any]) -> str:
    pg = result["postgres_cpu_ms_per_report"]
    latency = result["latency_us"]
    return (
        f"{result['accepted_per_second']:,.0f} accepted/s ({result['accepted']:,} in "
        f"{result['duration_us'] / 1e6:.1f} s, {result['workers']} worker(s)); CPU per report: "
        f"service {result['service_cpu_ms_per_report']:.3f} ms"
        + (f", PostgreSQL {pg:.3f} ms" if pg is not None else "")
        + f"; {result['reports_per_transaction']:.1f} reports per transaction; "
        f"p50 {latency['p50'] / 1e3:.1f} ms, p99 {latency['p99'] / 1e3:.1f} ms; "
        + (
            f"all {result['accepted']:,} acknowledged stored"
            if result["all_acknowledged_stored"]
            else f"ONLY {result['stored']:,} STORED FOR {result['accepted']:,} ACKNOWLEDGED"
        )
    )


async def wait_for_rejudging(url: str) -> None:
    """Wait until a node has judged the seeded numbers once (a start-up task, not report work)."""
    conn = await asyncpg.connect(url)
    try:
        query = "SELECT value FROM server_state WHERE name = $1"
        while await conn.fetchval(query, POLICY_STATE) is None:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def py_spy(pid: int, output: Path, duration: float) -> subprocess.Popen[bytes]:
    """A sampling profile of one worker (collapsed stacks, one per line) while a run loads it."""
    command = ["py-spy", "record", "--pid", str(pid), "--duration", str(round(duration)),
               "--format", "raw", "--output", str(output), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def create_key(env: dict[str, str]) -> str:
    """A report API key made with the service's own command."""
    completed = subprocess.run(
        [sys.executable, "-m", "reputation", "keys", "create", "--role", "report",
         "--name", "benchmark report", "--rate", "off"],
        env={**os.environ, **env, "REPUTATION_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    return completed.stdout.strip().splitlines()[-1]


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="reputation-reports-") as tmp:
        scratch = Path(tmp)
        data_dir = scratch / "pg"
        data_dir.mkdir()
        data_dir.chmod(0o711)  # the server runs as another user when we are root
        scratch.chmod(0o711)
        server = EmbeddedPostgres(data_dir, durable=True)
        url = server.start(args.port + 1)
        try:
            postmaster = int((server.cluster / "postmaster.pid").read_text().split()[0])
            seconds = asyncio.run(seed.seed_postgres(url, args.size))
            print(f"seeded {args.size:,} reported numbers in {seconds:.1f} s", flush=True)
            env = {
                "REPUTATION_DATABASE_URL": url,
                "REPUTATION_REPORTER_KEY": "benchmark-reporter-key",
                "REPUTATION_DATA_DIR": str(scratch / "data"),
            }
            header = Header("Authorization", "Bearer " + create_key(env))
            command = python_module("benchmarks.service", "--port", str(args.port))
            service = ProcessGroup("service", [command] * args.workers, env=env, log_dir=scratch)
            try:
                service.wait_until_answers(
                    f"http://127.0.0.1:{args.port}/readyz", READY_TIMEOUT, {}
                )
                asyncio.run(wait_for_rejudging(url))
                warm_up = scratch / "warm-up.jsonl"
                write_bodies(warm_up, FIRST_NUMBER, 5_000)
                wrk(
                    f"http://127.0.0.1:{args.port}",
                    warm_up,
                    connections=args.connections,
                    duration=2,
                    method="POST",
                    path="/v1/reports",
                    header=header,
                )
                for number in range(args.runs):
                    bodies = scratch / f"reports-{number}.jsonl"
                    write_bodies(bodies, FIRST_NUMBER + (number + 1) * 2 * BODIES)
                    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
                    spies = [
                        py_spy(pid, Path(f"{args.py_spy}-{index}.txt"), args.duration)
                        for index, pid in enumerate(service.pids)
                        if args.py_spy and number == 0
                    ]
                    result = asyncio.run(
                        measure(
                            url,
                            service,
                            args.port,
                            bodies,
                            workers=args.workers,
                            connections=args.connections,
                            duration=args.duration,
                            header=header,
                            postmaster=postmaster,
                        )
                    )
                    for spy in spies:
                        spy.wait()
                    print(f"run {number + 1}: {summary(result)}", flush=True)
                    if not result["all_acknowledged_stored"]:
                        return 1
                    time.sleep(1)
            finally:
                service.stop()
        finally:
            server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reports", description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="service workers on the port")
    parser.add_argument("--runs", type=int, default=3, help="measured runs, one after the other")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of each run")
    parser.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections")
    parser.add_argument(
        "--port", type=int, default=19130, help="service port (PostgreSQL listens on the next)"
    )
    parser.add_argument("--size", type=int, default=100_000, help="reported numbers seeded")
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="profile each worker during the first run with py-spy (PREFIX-<worker>.txt)",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
