"""The whole benchmark run: seed, start the three servers side by side, load them, report.

    .venv/bin/python -m benchmarks [--size 100k|1m|10m] [--database-url URL] [--write-readme]

See benchmarks/README.md for what each figure means and the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from benchmarks import numbers, report, reports, seed, startup
from benchmarks.load import Header, open_loop, wrk
from benchmarks.processes import ProcessGroup, python_module
from reputation.embedded import EmbeddedPostgres
from reputation.settings import EVENT_LOOP_CHOICES, Settings

HERE = Path(__file__).parent
RESULTS_DIR = HERE / "results"
SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
# Ports of this suite (each server shares its port among its workers).
REDIS_PORT = 18601
FLOOR_PORT = 18610
DIY_PORT = 18620
SERVICE_PORT = 18630
# Distinct numbers asked in each lookup run: more than the normaliser's memo
# (65,536), so that repeated inputs do not flatter the service.
UNREPORTED_ASKED = 100_000
# Reported numbers asked in the cache-hit run: few enough that the warm-up asks
# each of them several times on every worker, and that each is asked many times
# within the cache's 60 s lifetime of an answer, as a campaign's numbers are
# (the rare re-read from PostgreSQL is part of the figure).
REPORTED_ASKED = 1_000
# One reported number in MIX_EVERY: what a switch sees (99% / 1%).
MIX_EVERY = 100
BATCH_SIZE = 1000
REPORT_BODIES = 50_000
SERVICE_READY_TIMEOUT = 300.0


@dataclass(frozen=True)
class Plan:
    """How long and how hard each phase runs."""

    workers: tuple[int, ...]
    duration: float
    sequential: float
    open_loop: float
    warm_up: float
    connections: int
    loop: str


class Bench:
    """One run of the suite: the servers it started and the files it wrote."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.size = SIZES[args.size]
        self.plan = Plan(
            workers=tuple(int(w) for w in args.workers.split(",")),
            duration=args.duration,
            sequential=args.sequential,
            open_loop=args.open_loop,
            warm_up=args.warm_up,
            connections=args.connections,
            loop=args.loop,
        )
        self.header: Header | None = None
        # The embedded PostgreSQL's postmaster (its CPU is measured), if the suite started one.
        self.postmaster: int | None = None
        self.service_env: dict[str, str] = {}
        self.results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "size": self.size,
            "plan": self.plan.__dict__ | {"workers": list(self.plan.workers)},
            "note": args.note,
            "runs": {},
            "ready_seconds": {},
        }

    # -- inputs --------------------------------------------------------------

    def write_inputs(self) -> None:
        """The request files every load generator reads (paths, bodies)."""
        unreported = [numbers.unreported(i) for i in range(UNREPORTED_ASKED)]
        asked = min(REPORTED_ASKED, self.size)
        # Spread over the whole seeded range, not only its first rows.
        reported = [numbers.reported(i * (self.size // asked)) for i in range(asked)]

        def paths(items: list[str]) -> str:
            return "".join(f"/v1/numbers/{quote(n, safe='')}\n" for n in items)

        mix = [
            reported[(i // MIX_EVERY) % asked] if i % MIX_EVERY == 0 else unreported[i]
            for i in range(UNREPORTED_ASKED)
        ]
        self.files = {
            "unreported": self.scratch / "unreported.txt",
            "reported": self.scratch / "reported.txt",
            "mix": self.scratch / "mix.txt",
            "national": self.scratch / "national.txt",
            "batch": self.scratch / "batch.jsonl",
            "reports": self.scratch / "reports.jsonl",
        }
        self.files["unreported"].write_text(paths(unreported))
        self.files["reported"].write_text(paths(reported))
        self.files["mix"].write_text(paths(mix))
        self.files["national"].write_text(paths([numbers.national(n) for n in mix]))
        batches = []
        for b in range(50):
            chunk = mix[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]
            batches.append(json.dumps({"numbers": chunk}))
        self.files["batch"].write_text("\n".join(batches) + "\n")
        reports.write_bodies(self.files["reports"], UNREPORTED_ASKED, REPORT_BODIES)

    # -- servers -------------------------------------------------------------

    def start_floor(self, workers: int) -> ProcessGroup:
        command = python_module(
            "benchmarks.floor", "--port", str(FLOOR_PORT), "--loop", self.plan.loop
        )
        group = ProcessGroup("floor", [command] * workers, log_dir=self.scratch)
        group.wait_until_answers(f"http://127.0.0.1:{FLOOR_PORT}/v1/numbers/1", 30, {})
        return group

    def start_diy(self, workers: int, redis_pid: int) -> ProcessGroup:
        command = python_module("benchmarks.diy", "--port", str(DIY_PORT), "--loop", self.plan.loop)
        group = ProcessGroup(
            "diy",
            [command] * workers,
            env={"BENCH_REDIS_PORT": str(REDIS_PORT)},
            log_dir=self.scratch,
            extra_pids=[redis_pid],
        )
        group.wait_until_answers(f"http://127.0.0.1:{DIY_PORT}/v1/numbers/1", 30, {})
        return group

    def start_service(self, workers: int) -> ProcessGroup:
        command = python_module("benchmarks.service", "--port", str(SERVICE_PORT))
        group = ProcessGroup(
            "service", [command] * workers, env=self.service_env, log_dir=self.scratch
        )
        ready = group.wait_until_answers(
            f"http://127.0.0.1:{SERVICE_PORT}/readyz", SERVICE_READY_TIMEOUT, {}
        )
        self.results["ready_seconds"][str(workers)] = round(ready, 2)
        return group

    # -- measurements --------------------------------------------------------

    def measure(
        self, group: ProcessGroup, port: int, lines: Path, floor_rps: float | None
    ) -> dict[str, Any]:
        """Throughput (wrk), sequential latency, then open-loop latency at half the floor."""
        base = f"http://127.0.0.1:{port}"
        plan = self.plan
        wrk(base, lines, connections=plan.connections, duration=plan.warm_up, header=self.header)
        cpu_before = group.cpu_seconds()
        throughput = wrk(
            base, lines, connections=plan.connections, duration=plan.duration, header=self.header
        )
        cpu = group.cpu_seconds() - cpu_before
        throughput["cpu_us_per_request"] = cpu / max(1, throughput["requests"]) * 1e6
        sequential = wrk(base, lines, connections=1, duration=plan.sequential, header=self.header)
        rate = (floor_rps if floor_rps is not None else throughput["rps"]) / 2
        loaded = open_loop(
            self.openloop_binary,
            port,
            lines,
            rate=rate,
            duration=plan.open_loop,
            header=self.header,
        )
        result = {
            "throughput": throughput,
            "sequential": sequential,
            "open_loop": loaded,
            "rss_mib": group.rss_mib(),
        }
        check_clean(result)
        return result

    def run_workers(self, workers: int, redis_pid: int) -> None:
        log(f"== {workers} worker(s): starting floor, DIY peer and service side by side")
        floor = self.start_floor(workers)
        diy = self.start_diy(workers, redis_pid)
        service = self.start_service(workers)
        runs: dict[str, Any] = {}
        try:
            log("   floor")
            runs["floor"] = self.measure(floor, FLOOR_PORT, self.files["unreported"], None)
            floor_rps = runs["floor"]["throughput"]["rps"]
            log("   DIY peer (Redis SET)")
            runs["diy"] = self.measure(diy, DIY_PORT, self.files["unreported"], floor_rps)
            before = scrape_histogram(SERVICE_PORT) if workers == 1 else None
            for name in ("unreported", "reported", "mix"):
                log(f"   service: {name}")
                runs[name] = self.measure(service, SERVICE_PORT, self.files[name], floor_rps)
            if before is not None:
                after = scrape_histogram(SERVICE_PORT)
                self.results["handler_histogram"] = report.histogram_summary(before, after)
            if workers == 1:
                log("   service: national-format input (0912...)")
                runs["national"] = self.measure(
                    service, SERVICE_PORT, self.files["national"], floor_rps
                )
                log("   batch: POST /v1/lookups with 1000 numbers")
                self.results["batch"] = self.measure_batch(service, workers)
            if workers == max(self.plan.workers):
                log("   reports: POST /v1/reports")
                self.results["reports"] = asyncio.run(self.measure_reports(service, workers))
        finally:
            for group in (floor, diy, service):
                group.stop()
        self.results["runs"][str(workers)] = runs

    def measure_batch(self, service: ProcessGroup, workers: int) -> dict[str, Any]:
        base = f"http://127.0.0.1:{SERVICE_PORT}"
        kwargs: dict[str, Any] = {
            "connections": 2 * workers,
            "method": "POST",
            "path": "/v1/lookups",
            "header": self.header,
        }
        wrk(base, self.files["batch"], duration=self.plan.warm_up, **kwargs)
        cpu_before = service.cpu_seconds()
        result = wrk(base, self.files["batch"], duration=self.plan.duration, **kwargs)
        cpu = service.cpu_seconds() - cpu_before
        result["numbers_per_second"] = result["rps"] * BATCH_SIZE
        result["numbers_per_second_per_worker"] = result["numbers_per_second"] / workers
        result["cpu_us_per_number"] = cpu / max(1, result["requests"] * BATCH_SIZE) * 1e6
        check_clean({"batch": result})
        return result

    async def measure_reports(self, service: ProcessGroup, workers: int) -> dict[str, Any]:
        """Reports accepted per second, then proof that each acknowledged one is in Postgres."""
        return await reports.measure(
            self.database_url,
            service,
            SERVICE_PORT,
            self.files["reports"],
            workers=workers,
            connections=self.plan.connections,
            duration=self.plan.duration,
            header=self.report_key,
            postmaster=self.postmaster,
        )

    # -- the run -------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.openloop_binary = build_openloop(self.scratch)
        with self.postgres() as url, self.redis() as redis_pid:
            self.database_url = url
            log(f"seeding {self.size:,} reported numbers (COPY)")
            self.results["seed_seconds"] = round(asyncio.run(seed.seed_postgres(url, self.size)), 1)
            self.results["redis_seed_seconds"] = round(
                asyncio.run(seed.seed_redis(REDIS_PORT, self.size)), 1
            )
            self.write_inputs()
            self.service_env = {
                "REPUTATION_DATABASE_URL": url,
                "REPUTATION_REPORTER_KEY": "benchmark-reporter-key",
                "REPUTATION_DATA_DIR": str(self.scratch / "data"),
                "REPUTATION_EVENT_LOOP": self.plan.loop,
            }
            self.lookup_key = Header("Authorization", "Bearer " + self.create_key("lookup"))
            self.report_key = Header("Authorization", "Bearer " + self.create_key("report"))
            self.header = self.lookup_key
            log("start-up: first start (filter built from the table), then restart (snapshot)")
            self.results["startup"] = startup.measure(
                url, SERVICE_PORT, self.plan.workers, self.service_env, self.scratch
            )
            for workers in self.plan.workers:
                self.run_workers(workers, redis_pid)
            self.results["normalize"] = run_normalize_bench()
        return self.results

    def create_key(self, role: str) -> str:
        """An API key made with the service's own command (the suite runs with auth on)."""
        completed = subprocess.run(
            [sys.executable, "-m", "reputation", "keys", "create", "--role", role,
             "--name", f"benchmark {role}", "--rate", "off"],
            env={**os.environ, **self.service_env, "REPUTATION_LOG_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
        return completed.stdout.strip().splitlines()[-1]

    @contextlib.contextmanager
    def postgres(self) -> Iterator[str]:
        """A fresh database: on the server given, or on an embedded (durable) PostgreSQL."""
        if self.args.database_url:
            name = f"reputation_bench_{uuid.uuid4().hex[:8]}"
            admin = self.args.database_url
            asyncio.run(admin_execute(admin, f'CREATE DATABASE "{name}"'))
            try:
                yield with_database(admin, name)
            finally:
                asyncio.run(admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        data_dir = Path(tempfile.mkdtemp(prefix="reputation-bench-pg-"))
        data_dir.chmod(0o711)  # the server runs as another user when we are root
        server = EmbeddedPostgres(data_dir, durable=True)
        try:
            log("starting an embedded PostgreSQL (durable: fsync on)")
            url = server.start()
            self.postmaster = int((server.cluster / "postmaster.pid").read_text().split()[0])
            yield url
        finally:
            server.stop()
            shutil.rmtree(data_dir, ignore_errors=True)

    @contextlib.contextmanager
    def redis(self) -> Iterator[int]:
        """A private redis-server (Debian's package) for the DIY peer; its pid."""
        process = subprocess.Popen(
            ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=(self.scratch / "redis.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:
                probe = subprocess.run(
                    ["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True, text=True
                )
                if probe.stdout.strip() == "PONG":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start; see redis.log")
                time.sleep(0.05)
            yield process.pid
        finally:
            process.terminate()
            process.wait(timeout=10)


# -- helpers ----------------------------------------------------------------


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def check_clean(result: dict[str, Any]) -> None:
    """Refuse figures that include failed requests (a wrong key, a crash, a 500)."""
    for name, part in result.items():
        if not isinstance(part, dict):
            continue
        # An open-loop run left with unanswered requests is a finding (overload), not a failure.
        failures = part.get("errors_total", 0) + part.get("non_2xx", 0)
        if failures:
            raise RuntimeError(f"{name}: {failures} requests failed: {part}")


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


async def admin_execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def build_openloop(scratch: Path) -> Path:
    """Compile the open-loop client with the system C compiler."""
    binary = scratch / "openloop"
    subprocess.run(
        ["cc", "-O2", "-o", str(binary), str(HERE / "openloop.c")], check=True, capture_output=True
    )
    return binary


def scrape_histogram(port: int) -> dict[float, float]:
    """Cumulative bucket counts of the service's lookup-duration histogram."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return report.parse_histogram(text, "reputation_lookup_duration_seconds")


def run_normalize_bench() -> dict[str, Any] | None:
    """The normaliser's own micro-benchmark, when it exists."""
    script = HERE / "bench_normalize.py"
    if not script.exists():
        return None
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_normalize"],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    return {"returncode": completed.returncode, "output": completed.stdout.strip()}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    import aiohttp

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def check_tools() -> None:
    missing = [
        tool for tool in ("wrk", "redis-server", "redis-cli", "cc") if not shutil.which(tool)
    ]
    if missing:
        sys.exit(
            f"missing {', '.join(missing)}: apt-get install wrk redis-server gcc "
            "(Debian package names)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Lookup service benchmark against the floor and a DIY Redis peer.",
    )
    parser.add_argument("--size", choices=SIZES, default="100k", help="reported numbers seeded")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="PostgreSQL admin URL to create a scratch database on [env BENCH_DATABASE_URL]; "
        "unset: an embedded durable PostgreSQL",
    )
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of each wrk run")
    parser.add_argument("--sequential", type=float, default=4.0, help="seconds of each c=1 run")
    parser.add_argument(
        "--open-loop", type=float, default=6.0, help="seconds of each fixed-rate run"
    )
    parser.add_argument("--warm-up", type=float, default=2.0, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections")
    parser.add_argument(
        "--loop",
        choices=EVENT_LOOP_CHOICES,
        default=Settings().event_loop,
        help="event loop of all three servers (default: the service's default)",
    )
    parser.add_argument("--note", default="", help="free text kept with the results")
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="rewrite the results table of benchmarks/README.md with this run",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_tools()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reputation-bench-") as scratch:
        results = Bench(args, Path(scratch)).run()
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = results["date"].replace(":", "").replace("-", "")[:15]
    path = RESULTS_DIR / f"{stamp}-{args.size}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(report.render(results, RESULTS_DIR))
    log(f"raw results: {path}")
    if args.write_readme:
        report.write_readme(HERE / "README.md", results, RESULTS_DIR)
        log("benchmarks/README.md updated")
    return 0
