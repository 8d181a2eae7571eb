"""Export throughput: ``GET /v1/export`` streaming a published list of a million numbers.

Seeds a published list (default 1,000,000 listed numbers), starts one worker
of the service, then measures in the same run:

- baseline: PostgreSQL alone, ``COPY`` of the same rows (``list_entries``) to
  this process: the fastest the rows can leave the database;
- full export over HTTP, plain: MB/s and entries/s as the client reads them,
  against the baseline, and how much the server's memory grew while it
  streamed (a streamed export does not grow with the list);
- full export with ``Accept-Encoding: gzip``: bytes on the wire and MB/s of
  JSON delivered;
- a delta after 1,000 published entries changed: its size and time;
- the reference client applying the whole export (``OfflineList``).

    python -m benchmarks.export [--listed 1000000]

Uses REPUTATION_BENCH_DATABASE_URL (a server where it may create a database)
or an embedded PostgreSQL; the service listens on port 18911.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import zlib
from typing import Any

import aiohttp
import asyncpg

from benchmarks.listed import log, scratch_database, scratch_dir, seed_listed, service_node
from benchmarks.processes import ProcessGroup, rss_mib
from reputation.client import AsyncClient
from reputation.offline import OfflineList

PORT = 18911
MB = 1_000_000
CHANGED = 1000
# zlib window bits by Content-Encoding (gzip wrapper, zlib wrapper).
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class CountingSink:
    def __init__(self) -> None:
        self.bytes = 0

    async def __call__(self, data: bytes) -> None:
        self.bytes += len(data)


async def baseline(url: str) -> dict[str, Any]:
    """COPY of the published rows to this process (the database's own speed)."""
    conn = await asyncpg.connect(url)
    try:
        sink = CountingSink()
        started = time.perf_counter()
        await conn.copy_from_query(
            "SELECT e164, listed, verdict, category, reports, reporters "
            "FROM list_entries WHERE listed",
            output=sink,
        )
        seconds = time.perf_counter() - started
        rows = await conn.fetchval("SELECT count(*) FROM list_entries WHERE listed")
    finally:
        await conn.close()
    return {
        "seconds": round(seconds, 2),
        "mb": round(sink.bytes / MB, 1),
        "mb_per_s": round(sink.bytes / MB / seconds, 1),
        "rows_per_s": round(rows / seconds),
    }


class PeakRss:
    """The largest resident memory of a process while a block runs (sampled every 20 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_mib(pid)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def fetch(session: aiohttp.ClientSession, path: str, *, gzip: bool) -> dict[str, Any]:
    """Read an export as it arrives; what it held, how fast it came, and its version."""
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    started = time.perf_counter()
    wire = body = lines = 0
    first_line = b""
    async with session.get(f"http://127.0.0.1:{PORT}{path}", headers=headers) as response:
        assert response.status == 200, await response.text()
        encoding = response.headers.get("Content-Encoding", "identity")
        inflate = zlib.decompressobj(WBITS[encoding]) if encoding in WBITS else None
        async for chunk in response.content.iter_any():
            wire += len(chunk)
            data = inflate.decompress(chunk) if inflate else chunk
            if not first_line:
                first_line = data.split(b"\n", 1)[0]
            body += len(data)
            lines += data.count(b"\n")
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "entries": lines - 2,
        "mb": round(body / MB, 1),
        "mb_on_the_wire": round(wire / MB, 1),
        "encoding": encoding,
        "mb_per_s": round(body / MB / seconds, 1),
        "entries_per_s": round((lines - 2) / seconds),
        "version": json.loads(first_line)["version"],
    }


async def change_entries(url: str, count: int) -> None:
    """Move ``count`` listed numbers from warn to block (their published entries change)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE numbers SET verdict = 'block' WHERE e164 IN "
            "(SELECT e164 FROM numbers WHERE verdict = 'warn' ORDER BY e164 LIMIT $1)",
            count,
        )
    finally:
        await conn.close()


async def measure(url: str, service: ProcessGroup) -> dict[str, Any]:
    results: dict[str, Any] = {"baseline_copy": await baseline(url)}
    log(f"baseline: {results['baseline_copy']}")
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        with PeakRss(service.pids[0]) as memory:
            results["full"] = await fetch(session, "/v1/export", gzip=False)
        results["full"]["server_rss_growth_mib"] = round(memory.peak - memory.before, 1)
        results["full"]["mb_ratio_to_baseline"] = round(
            results["full"]["mb_per_s"] / results["baseline_copy"]["mb_per_s"], 2
        )
        results["full"]["rows_ratio_to_baseline"] = round(
            results["full"]["entries_per_s"] / results["baseline_copy"]["rows_per_s"], 2
        )
        log(f"full: {results['full']}")
        results["full_gzip"] = await fetch(session, "/v1/export", gzip=True)
        log(f"full, gzip: {results['full_gzip']}")
        version = results["full_gzip"]["version"]
        await change_entries(url, CHANGED)
        results["delta"] = await fetch(session, f"/v1/export?since={version}", gzip=False)
        log(f"delta after {CHANGED} changes: {results['delta']}")
        offline = OfflineList()
        started = time.perf_counter()
        async with AsyncClient(f"http://127.0.0.1:{PORT}", timeout=60) as client:
            await client.sync_offline(offline, bloom=False)
        results["client_full_sync"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "entries": len(offline),
        }
        log(f"client sync: {results['client_full_sync']}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.export", description=__doc__.split("\n")[0])
    parser.add_argument("--listed", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with scratch_dir() as scratch, scratch_database() as url:
        log(f"seeding {args.listed:,} listed numbers")
        seeded = asyncio.run(seed_listed(url, args.listed))
        log(f"seeded in {seeded:.1f} s")
        with service_node(url, PORT, scratch) as service:
            result = {"listed": args.listed, "seed_s": round(seeded, 1)}
            result.update(asyncio.run(measure(url, service)))
    print(json.dumps(result, indent=1))
    print_table(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    base, full, gz, delta = (
        result["baseline_copy"], result["full"], result["full_gzip"], result["delta"]
    )  # fmt: skip
    print(f"\nexport of {result['listed']:,} listed numbers")
    print("| what | seconds | MB | MB/s | entries/s | vs COPY (MB/s, rows/s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| PostgreSQL COPY of the rows (baseline) | {base['seconds']} | {base['mb']} | "
          f"{base['mb_per_s']} | {base['rows_per_s']:,} | 1.00, 1.00 |")  # fmt: skip
    print(f"| GET /v1/export | {full['seconds']} | {full['mb']} | {full['mb_per_s']} | "
          f"{full['entries_per_s']:,} | {full['mb_ratio_to_baseline']}, "
          f"{full['rows_ratio_to_baseline']} |")  # fmt: skip
    print(f"| GET /v1/export, gzip ({gz['mb_on_the_wire']} MB on the wire) | {gz['seconds']} | "
          f"{gz['mb']} | {gz['mb_per_s']} | {gz['entries_per_s']:,} | |")  # fmt: skip
    print(f"| delta after {CHANGED} changes | {delta['seconds']} | {delta['mb']} | | "
          f"{delta['entries']} entries | |")  # fmt: skip
    print(
        f"server memory growth during the full export: {full['server_rss_growth_mib']} MiB; "
        f"client applying the whole list: {result['client_full_sync']['seconds']} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
