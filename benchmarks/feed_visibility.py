"""How soon a report taken by one node is answered by another (the change feed's delay).

Starts two ``reputation serve`` nodes, A and B (separate processes, one worker
each), on one PostgreSQL seeded with a published list (``benchmarks.listed``:
verdicts stored, so no start-up sweep adds changes), waits until B applies
nothing more, then posts reports of fresh numbers to A and polls B with batch
lookups (``POST /v1/lookups`` of every number not seen yet, every few
milliseconds) until B's answer counts each report. A report's delay runs from
A's 201 to the first answer of B that counts it (measured by this client: it
includes up to one poll of lateness, and both times wait for this client's
event loop, so a report seen by B just before its 201 is read here counts
slightly negative).

Three phases, each with fresh numbers:

- steady: reports at a fixed rate, whatever the answers do;
- bursts: reports sent together, a group at a time (group commit, one NOTIFY);
- cuts: the steady rate while B's ``LISTEN`` connection is terminated now and
  then (``pg_terminate_backend``): reports committed while B does not listen
  reach it through the read after its reconnection or through its timer.

Baseline: a node that only polled the change log would see a change after up
to ``REPUTATION_FEED_POLL_INTERVAL`` (1 s by default; half of it on average).
Besides its own delays the run reads B's ``reputation_feed_delay_seconds``
(write of a change to its application, as B sees it) and the CPU both nodes
used.

    python -m benchmarks.feed_visibility [--reports 1000] [--rate 50] [--database-url URL]

Without ``--database-url`` (an admin URL: a scratch database is created there
and dropped after) it uses REPUTATION_BENCH_DATABASE_URL, or else an embedded
PostgreSQL. The nodes listen on ports 19300 and 19301. Raw results are kept in
``benchmarks/results/<date>-feed.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from benchmarks import numbers, report
from benchmarks.listed import log, scratch_database, scratch_dir, seed_listed
from benchmarks.processes import ProcessGroup, python_module
from benchmarks.suite import RESULTS_DIR, machine
from reputation.feed import LISTEN_APPLICATION_NAME

PORT_A, PORT_B = 19300, 19301
NODE_READY_TIMEOUT = 300.0
# Fresh numbers of each phase start this far apart in the never-reported set;
# reporters come from further on, one per report (no reporter limit applies).
PHASE_SPAN = 1_000_000
REPORTERS_FROM = 10_000_000
# Numbers asked per poll of B at most (the batch route's limit).
POLL_BATCH = 1000
# A report B has not shown this long after the last one was acknowledged is lost.
SEEN_TIMEOUT = 30.0


@dataclass
class Tracked:
    """One report's timeline, in this process's perf_counter seconds."""

    sent: float
    acknowledged: float | None = None
    seen: float | None = None


@dataclass
class Phase:
    """The reports of one phase and what B answered about them."""

    name: str
    reports: dict[str, Tracked] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    polls: int = 0
    poll_seconds: float = 0.0
    cuts: int = 0

    def waiting(self) -> list[str]:
        return [number for number, t in self.reports.items() if t.seen is None]

    def accept_ms(self) -> list[float]:
        """Time from sending each report to A's 201 (A's write, group commit and fsync)."""
        return sorted(
            (t.acknowledged - t.sent) * 1e3
            for t in self.reports.values()
            if t.acknowledged is not None
        )

    def since_post_ms(self) -> list[float]:
        """Time from sending each report to A to B's first answer counting it (an upper bound)."""
        return sorted((t.seen - t.sent) * 1e3 for t in self.reports.values() if t.seen is not None)

    def delays_ms(self) -> list[float]:
        return sorted(
            (t.seen - t.acknowledged) * 1e3
            for t in self.reports.values()
            if t.seen is not None and t.acknowledged is not None
        )


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


class Run:
    """The two nodes, the database, and the phases measured on them."""

    def __init__(
        self, args: argparse.Namespace, url: str, node_a: ProcessGroup, node_b: ProcessGroup
    ):
        self.args = args
        self.url = url
        self.node_a = node_a
        self.node_b = node_b
        self.base_a = f"http://127.0.0.1:{PORT_A}"
        self.base_b = f"http://127.0.0.1:{PORT_B}"

    async def report(self, session: aiohttp.ClientSession, phase: Phase, index: int) -> None:
        number = numbers.unreported(index)
        body = {
            "number": number,
            "reporter": numbers.unreported(REPORTERS_FROM + index),
            "channel": "app",
            "category": "scam",
        }
        tracked = phase.reports[number] = Tracked(sent=time.perf_counter())
        try:
            async with session.post(self.base_a + "/v1/reports", json=body) as response:
                await response.read()
                outcome = str(response.status)
        except aiohttp.ClientError as exc:
            outcome = exc.__class__.__name__
        if outcome != "201":
            phase.failed.append(f"{number}: {outcome}")
            del phase.reports[number]
            return
        tracked.acknowledged = time.perf_counter()

    async def poll_b(
        self, session: aiohttp.ClientSession, phase: Phase, done: asyncio.Event
    ) -> None:
        """Ask B about every number not seen yet until all are seen (or given up on)."""
        gave_up_at: float | None = None
        while True:
            waiting = phase.waiting()
            if done.is_set():
                if not waiting:
                    return
                gave_up_at = gave_up_at or time.perf_counter() + SEEN_TIMEOUT
                if time.perf_counter() > gave_up_at:
                    return
            if not waiting:
                await asyncio.sleep(self.args.poll_every)
                continue
            started = time.perf_counter()
            async with session.post(
                self.base_b + "/v1/lookups", json={"numbers": waiting[:POLL_BATCH]}
            ) as response:
                results = (await response.json())["results"] if response.status == 200 else []
            answered = time.perf_counter()
            phase.polls += 1
            phase.poll_seconds += answered - started
            for result in results:
                tracked = phase.reports.get(result["number"])
                if tracked is not None and result["reports"] >= 1:
                    tracked.seen = answered
            await asyncio.sleep(self.args.poll_every)

    async def steady(self, session: aiohttp.ClientSession, phase: Phase, first: int) -> None:
        """``--reports`` reports at ``--rate`` per second, each sent when due."""
        started = time.perf_counter()
        tasks = []
        for i in range(self.args.reports):
            due = started + i / self.args.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(self.report(session, phase, first + i)))
        await asyncio.gather(*tasks)

    async def bursts(self, session: aiohttp.ClientSession, phase: Phase, first: int) -> None:
        """``--reports`` reports in groups of ``--burst`` sent at once, ``--burst-gap`` s apart."""
        for start in range(0, self.args.reports, self.args.burst):
            end = min(self.args.reports, start + self.args.burst)
            await asyncio.gather(
                *(self.report(session, phase, first + i) for i in range(start, end))
            )
            await asyncio.sleep(self.args.burst_gap)

    async def cut_listener(self, phase: Phase, stop: asyncio.Event) -> None:
        """Terminate B's LISTEN connection every ``--cut-every`` seconds (jittered)."""
        conn = await asyncpg.connect(self.url)
        rng = random.Random(5)
        try:
            while not stop.is_set():
                pause = self.args.cut_every * rng.uniform(0.5, 1.5)
                try:
                    await asyncio.wait_for(stop.wait(), pause)
                    return
                except TimeoutError:
                    pass
                ports = tcp_ports(self.node_b.pids[0])
                phase.cuts += await conn.fetchval(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = $1 AND client_port = ANY($2::int[])",
                    LISTEN_APPLICATION_NAME,
                    sorted(ports),
                )
        finally:
            await conn.close()

    async def phase(
        self,
        name: str,
        first: int,
        send: Callable[[aiohttp.ClientSession, Phase, int], Awaitable[None]],
        cut: bool = False,
    ) -> dict[str, Any]:
        log(f"phase {name}: {self.args.reports} reports")
        phase = Phase(name)
        metrics_before = scrape(PORT_B)
        cpu_a, cpu_b = self.node_a.cpu_seconds(), self.node_b.cpu_seconds()
        load_before = os.getloadavg()
        wall = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=max(64, self.args.burst))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            done, stop_cutting = asyncio.Event(), asyncio.Event()
            poller = asyncio.create_task(self.poll_b(session, phase, done))
            cutter = asyncio.create_task(self.cut_listener(phase, stop_cutting)) if cut else None
            try:
                await send(session, phase, first)
            finally:
                stop_cutting.set()
                if cutter is not None:
                    await cutter
                done.set()
                await poller
        wall = time.perf_counter() - wall
        cpu_a, cpu_b = self.node_a.cpu_seconds() - cpu_a, self.node_b.cpu_seconds() - cpu_b
        metrics_after = scrape(PORT_B)
        return summarise(phase, self.args, metrics_before, metrics_after) | {
            "seconds": round(wall, 1),
            "cpu_seconds": {"node_a": round(cpu_a, 2), "node_b": round(cpu_b, 2)},
            "node_a_cpu_ms_per_report": round(cpu_a / max(1, len(phase.reports)) * 1e3, 2),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }

    async def measure(self) -> dict[str, Any]:
        phases: dict[str, Any] = {}
        phases["steady"] = await self.phase("steady", 0, self.steady)
        phases["bursts"] = await self.phase("bursts", PHASE_SPAN, self.bursts)
        phases["cuts"] = await self.phase("cuts", 2 * PHASE_SPAN, self.steady, cut=True)
        return phases


def summarise(phase: Phase, args: argparse.Namespace, before: str, after: str) -> dict[str, Any]:
    delays, accepted, since_post = phase.delays_ms(), phase.accept_ms(), phase.since_post_ms()
    fed = report.parse_histogram(after, "reputation_feed_delay_seconds")
    fed_before = report.parse_histogram(before, "reputation_feed_delay_seconds")
    fed_delta = {bound: fed[bound] - fed_before.get(bound, 0.0) for bound in fed}
    return {
        "acknowledged": len(phase.reports),
        "refused": phase.failed,
        "seen_on_b": len(delays),
        "never_seen_on_b": len(phase.reports) - len(delays),
        "delay_ms": {
            "p50": round(percentile(delays, 0.50), 1),
            "p90": round(percentile(delays, 0.90), 1),
            "p99": round(percentile(delays, 0.99), 1),
            "max": round(delays[-1], 1) if delays else None,
            "min": round(delays[0], 1) if delays else None,
            "mean": round(statistics.fmean(delays), 1) if delays else None,
        },
        "delays_ms": [round(d, 2) for d in delays],
        "since_post_ms": {
            "p50": round(percentile(since_post, 0.50), 1),
            "p99": round(percentile(since_post, 0.99), 1),
            "max": round(since_post[-1], 1) if since_post else None,
        },
        "accepted_by_a_ms": {
            "p50": round(percentile(accepted, 0.50), 1),
            "p99": round(percentile(accepted, 0.99), 1),
        },
        "polls_of_b": phase.polls,
        "poll_round_trip_ms": round(phase.poll_seconds / max(1, phase.polls) * 1e3, 2),
        "listen_connections_terminated": phase.cuts,
        "node_b_feed_delay_ms": {
            "changes": fed_delta.get(float("inf"), 0.0),
            "p50": round(report.quantile(fed_delta, 0.50) * 1e3, 1),
            "p99": round(report.quantile(fed_delta, 0.99) * 1e3, 1),
        },
        "node_b_reconnects": metric(after, "reputation_feed_reconnects_total")
        - metric(before, "reputation_feed_reconnects_total"),
    }


def tcp_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process ``pid`` holds (its client ends of connections)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def settle(port: int, quiet_for: float = 3.0, timeout: float = 300.0) -> None:
    """Wait until the node has applied no change for ``quiet_for`` seconds (start-up work done)."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        applied = metric(scrape(port), "reputation_feed_changes_total")
        if applied != last:
            last, since = applied, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the node on port {port} kept applying changes for {timeout} s")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def start_node(name: str, port: int, url: str, scratch: Path, poll_interval: float) -> ProcessGroup:
    """One ``reputation serve`` process (one worker) with its own data directory (spool)."""
    env = {
        "REPUTATION_DATABASE_URL": url,
        "REPUTATION_HOST": "127.0.0.1",
        "REPUTATION_AUTH": "off",
        "REPUTATION_DATA_DIR": str(scratch / name),
        "REPUTATION_LOG_LEVEL": "WARNING",
        "REPUTATION_FEED_POLL_INTERVAL": str(poll_interval),
        "REPUTATION_RATE_LIMITS": "lookup=off,report=off,analyst=off,admin=off",
        "REPUTATION_REPORTER_RATE_LIMIT": "off",
        "REPUTATION_PUBLIC_RATE_LIMIT": "off",
    }
    command = python_module("reputation", "serve", "--workers", "1", "--port", str(port))
    return ProcessGroup(name, [command], env=env, log_dir=scratch)


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": vars(args) | {"database_url": "given" if args.database_url else "embedded"},
    }
    with scratch_dir() as scratch, scratch_database(args.database_url) as url:
        log(f"seeding {args.seeded:,} reported numbers (COPY)")
        results["seed_seconds"] = round(asyncio.run(seed_listed(url, args.seeded)), 1)
        node_a = start_node("node-a", PORT_A, url, scratch, args.poll_interval)
        node_b = start_node("node-b", PORT_B, url, scratch, args.poll_interval)
        try:
            for node, port in ((node_a, PORT_A), (node_b, PORT_B)):
                ready = node.wait_until_answers(
                    f"http://127.0.0.1:{port}/readyz", NODE_READY_TIMEOUT, {}
                )
                log(f"{node.name} ready after {ready:.1f} s")
            settle(PORT_B)
            results["phases"] = asyncio.run(Run(args, url, node_a, node_b).measure())
            results["rss_mib"] = {"node_a": node_a.rss_mib(), "node_b": node_b.rss_mib()}
        finally:
            node_a.stop()
            node_b.stop()
    return results


def print_table(results: dict[str, Any]) -> None:
    plan = results["plan"]
    poll_ms = plan["poll_interval"] * 1e3
    print(
        f"\nvisibility on node B of reports accepted by node A ({results['date']}, "
        f"{plan['seeded']:,} numbers seeded, load average at start "
        f"{', '.join(f'{x:.2f}' for x in results['machine']['load_average_at_start'])})"
    )
    print(
        "| phase | reports | seen on B | p50 ms | p99 ms | max ms | p99 / poll interval "
        "| since the POST p50 / p99 / max ms | A's 201 p50 / p99 ms "
        "| B's own feed delay p50 / p99 ms | LISTEN cut | A CPU ms/report | load avg |"
    )
    print("| --- " + "| ---: " * 12 + "|")
    for name, phase in results["phases"].items():
        delay, fed, post = phase["delay_ms"], phase["node_b_feed_delay_ms"], phase["since_post_ms"]
        print(
            f"| {name} | {phase['acknowledged']} | {phase['seen_on_b']} | {delay['p50']} "
            f"| {delay['p99']} | {delay['max']} | {delay['p99'] / poll_ms:.2f} "
            f"| {post['p50']} / {post['p99']} / {post['max']} "
            f"| {phase['accepted_by_a_ms']['p50']} / {phase['accepted_by_a_ms']['p99']} "
            f"| {fed['p50']} / {fed['p99']} | {phase['listen_connections_terminated']} "
            f"| {phase['node_a_cpu_ms_per_report']} | {phase['load_average_after'][0]:.1f} |"
        )
    print(
        f"baseline: a node that only polled would see a change within {poll_ms:.0f} ms "
        f"(REPUTATION_FEED_POLL_INTERVAL), {poll_ms / 2:.0f} ms on average; B was polled every "
        f"{plan['poll_every'] * 1e3:.0f} ms (round trip "
        f"{results['phases']['steady']['poll_round_trip_ms']} ms). Delays run from A's 201; "
        "'since the POST' includes A's write; B's own delay runs from the change row's write "
        "inside A's transaction (before its commit) to its application on B"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.feed_visibility", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--reports", type=int, default=1000, help="reports per phase")
    parser.add_argument("--rate", type=float, default=50.0, help="reports/s of the steady phases")
    parser.add_argument("--burst", type=int, default=100, help="reports sent at once in a burst")
    parser.add_argument("--burst-gap", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument(
        "--cut-every", type=float, default=1.0, help="mean seconds between LISTEN terminations"
    )
    parser.add_argument(
        "--poll-every", type=float, default=0.005, help="seconds between two polls of node B"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="the nodes' REPUTATION_FEED_POLL_INTERVAL (the baseline)",
    )
    parser.add_argument("--seeded", type=int, default=100_000, help="reported numbers seeded")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REPUTATION_BENCH_DATABASE_URL"),
        help="admin URL of a PostgreSQL to create a scratch database on "
        "[env REPUTATION_BENCH_DATABASE_URL]; unset: an embedded durable PostgreSQL",
    )
    parser.add_argument("--note", default="", help="free text kept with the results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = results["date"].replace(":", "").replace("-", "")[:15]
    path = RESULTS_DIR / f"{stamp}-feed.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print_table(results)
    log(f"raw results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
