"""Private lookups per second: ``GET /v1/ranges/{prefix}`` against the plain lookup.

Seeds a published list (default 1,000,000 listed numbers), then measures in
the same run:

- the index alone, in this process: build time, memory per listed number, and
  microseconds per answer for prefixes of 5, 4 and 3 characters;
- through HTTP on one worker of the service (wrk, keep-alive connections):
  ranges/s for each prefix length, against the baseline of the same server's
  cheapest plain lookup (``GET /v1/numbers/{number}`` of a number nobody
  reported: normalise, Bloom filter, answer), with the ratio and the bytes
  of each answer.

    python -m benchmarks.ranges [--listed 1000000] [--duration 10]

Uses REPUTATION_BENCH_DATABASE_URL (a server where it may create a database)
or an embedded PostgreSQL; the service listens on port 18910. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.listed import log, scratch_database, scratch_dir, seed_listed, service_node
from benchmarks.load import wrk
from benchmarks.numbers import reported, unreported
from reputation.listing import ListEntry
from reputation.ranges import RangeIndex, recommended_prefix_length

PORT = 18910
CONNECTIONS = 32
PATHS = 100_000


def index_figures(listed: int) -> dict[str, Any]:
    """The range index on its own: build, memory, answers per second by prefix length."""
    entries = [
        ListEntry(reported(i), "block" if i % 3 == 0 else "warn", "scam", 10, 5)
        for i in range(listed)
    ]
    started = time.process_time()
    index = RangeIndex()
    index.load(entries)
    build = time.process_time() - started  # CPU time: the machine may be shared
    tracemalloc.start()  # again, traced (slower): the memory it holds
    traced = RangeIndex()
    traced.load(entries)
    memory, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    rng = random.Random(1)
    answers: dict[str, Any] = {}
    for length in (5, 4, 3):
        prefixes = [f"{rng.getrandbits(4 * length):0{length}x}" for _ in range(2000)]
        started = time.perf_counter()
        sizes = [len(index.answer(prefix).body) for prefix in prefixes]
        seconds = time.perf_counter() - started
        answers[str(length)] = {
            "answers_per_s": round(len(prefixes) / seconds),
            "us_per_answer": round(seconds / len(prefixes) * 1e6, 1),
            "bytes_mean": round(sum(sizes) / len(sizes)),
        }
    return {
        "build_cpu_s": round(build, 2),
        "bytes_per_listed_number": round(memory / listed, 1),
        "answer": answers,
    }


def write_paths(path: Path, items: list[str]) -> Path:
    path.write_text("\n".join(items) + "\n")
    return path


def http_figures(listed: int, duration: float, scratch: Path) -> dict[str, Any]:
    rng = random.Random(2)
    base = f"http://127.0.0.1:{PORT}"
    baseline = write_paths(
        scratch / "lookups.txt",
        ["/v1/numbers/" + quote(unreported(rng.randrange(10**6)), safe="") for _ in range(PATHS)],
    )
    hashes = [
        hashlib.sha256(reported(rng.randrange(listed)).encode()).hexdigest() for _ in range(PATHS)
    ]
    runs = {
        f"ranges_{length}": write_paths(
            scratch / f"ranges-{length}.txt", ["/v1/ranges/" + h[:length] for h in hashes]
        )
        for length in (5, 4, 3)
    }
    with scratch_database() as url:
        log(f"seeding {listed:,} listed numbers")
        seeded = asyncio.run(seed_listed(url, listed))
        log(f"seeded in {seeded:.1f} s")
        with service_node(url, PORT, scratch) as service:
            results: dict[str, Any] = {"seed_s": round(seeded, 1)}
            for name, lines in [("plain_lookup", baseline), *runs.items()]:
                wrk(base, lines, connections=CONNECTIONS, duration=2)  # warm-up
                cpu = service.cpu_seconds()
                run = wrk(base, lines, connections=CONNECTIONS, duration=duration)
                cpu = service.cpu_seconds() - cpu
                if run["errors_total"]:
                    raise RuntimeError(f"{name}: failed requests {run['errors']}")
                results[name] = {
                    "requests_per_s": round(run["rps"]),
                    "bytes_per_answer": round(run["bytes"] / max(1, run["requests"])),
                    "p50_us": run["latency_us"]["p50"],
                    "p99_us": run["latency_us"]["p99"],
                    "server_cpu_us_per_request": round(cpu / max(1, run["requests"]) * 1e6, 1),
                }
                log(f"{name}: {results[name]}")
            results["server_rss_mib"] = service.rss_mib()[0]
    floor = results["plain_lookup"]["requests_per_s"]
    for length in (5, 4, 3):
        run = results[f"ranges_{length}"]
        run["ratio_to_plain_lookup"] = round(run["requests_per_s"] / floor, 2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.ranges", description=__doc__.split("\n")[0])
    parser.add_argument("--listed", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    log(f"range index of {args.listed:,} listed numbers, in process")
    result: dict[str, Any] = {
        "listed": args.listed,
        "recommended_prefix_length": recommended_prefix_length(args.listed),
        "index": index_figures(args.listed),
    }
    log(json.dumps(result["index"]))
    with scratch_dir() as scratch:
        result["http"] = http_figures(args.listed, args.duration, scratch)
    print(json.dumps(result, indent=1))
    print_table(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    http, index = result["http"], result["index"]
    print(f"\n{result['listed']:,} listed numbers; recommended prefix "
          f"{result['recommended_prefix_length']} characters")  # fmt: skip
    print(f"index: built in {index['build_cpu_s']} s of CPU, "
          f"{index['bytes_per_listed_number']} bytes per listed number")  # fmt: skip
    print(
        "| request | requests/s | vs plain lookup | bytes | p50 µs | p99 µs "
        "| server CPU µs | index µs |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    plain = http["plain_lookup"]
    print(f"| plain lookup (unreported) | {plain['requests_per_s']:,} | 1.00 | "
          f"{plain['bytes_per_answer']} | {plain['p50_us']} | {plain['p99_us']} | "
          f"{plain['server_cpu_us_per_request']} | |")  # fmt: skip
    for length in (5, 4, 3):
        run, alone = http[f"ranges_{length}"], index["answer"][str(length)]
        print(f"| range, {length}-character prefix | {run['requests_per_s']:,} | "
              f"{run['ratio_to_plain_lookup']} | {run['bytes_per_answer']} | {run['p50_us']} | "
              f"{run['p99_us']} | {run['server_cpu_us_per_request']} | "
              f"{alone['us_per_answer']} |")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
