"""Cost of the metrics: on the lookup path, and per scrape of a node of several workers.

Run: ``python -m benchmarks.bench_metrics [--updates N] [--scrapes S] [--repeat R]``.

Prints CPU time (best and median of R rounds):

- per lookup, the metric updates it makes (one counter increment, one
  histogram observation) in a registry of the process's own, as the service
  does, against prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``,
  measured in a child process, since the mode is chosen at import), and
  against an empty loop (the floor);
- per scrape, the exposition of one worker as it was before workers were
  merged (``generate_latest`` of its registry), against the node's exposition
  (``exposition.node_exposition``'s steps: each sibling's families as the
  JSON it sends, read back, merged with the scraped worker's own under a
  ``worker`` label, written; the socket round trip itself is not included)
  for 1, 2 and 4 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from reputation.exposition import NodeFamilies, families_data
from reputation.metrics import LATENCY_BUCKETS, Metrics

CHILD_FLAG = "--updates-only"


def timed(work: Callable[[], None], count: int, repeat: int) -> tuple[float, float]:
    """Best and median CPU seconds per item of ``work`` (which does ``count`` items)."""
    rounds = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        rounds.append((time.process_time() - started) / count)
    return min(rounds), statistics.median(rounds)


def updates(count: int, repeat: int) -> tuple[float, float]:
    registry = CollectorRegistry()
    lookups = Counter("lookups", "", ["layer", "verdict"], registry=registry)
    bound = lookups.labels("bloom", "allow")
    seconds = Histogram("lookup_seconds", "", buckets=LATENCY_BUCKETS, registry=registry)

    def work() -> None:
        for _ in range(count):
            bound.inc()
            seconds.observe(0.000_012)

    return timed(work, count, repeat)


def floor(count: int, repeat: int) -> tuple[float, float]:
    def work() -> None:
        for _ in range(count):
            pass

    return timed(work, count, repeat)


def multiprocess_updates(count: int, repeat: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_metrics", CHILD_FLAG, str(count), str(repeat)],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory},
            capture_output=True,
            text=True,
            check=True,
        )
    best, median = child.stdout.split()
    return float(best), float(median)


def busy_metrics() -> Metrics:
    """A worker's metrics after some traffic: every pre-bound series, a filled histogram."""
    metrics = Metrics()
    for child in metrics.lookup_by.values():
        child.inc(3)
    for child in metrics.report_by.values():
        child.inc()
    for i in range(1000):
        metrics.lookup_seconds.observe(0.000_005 * (i % 40))
    return metrics


def node_scrape(workers: list[Metrics]) -> bytes:
    node = NodeFamilies()
    for index, metrics in enumerate(workers):
        families = families_data(metrics.registry)
        if index > 0:  # a sibling's, sent over its socket
            families = json.loads(json.dumps({"answer": families}).encode())["answer"]
        node.add(index if len(workers) > 1 else None, families)
    merged = CollectorRegistry(auto_describe=False)
    merged.register(node)
    return generate_latest(merged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    print(f"per lookup, counter inc + histogram observe (best / median of {args.repeat}):")
    base_best, _ = floor(args.updates, args.repeat)
    own_best, own_median = updates(args.updates, args.repeat)
    mp_best, mp_median = multiprocess_updates(args.updates, args.repeat)
    print(f"  empty loop (floor)        {base_best * 1e9:7.0f} ns")
    print(f"  own registry (the service){own_best * 1e9:7.0f} / {own_median * 1e9:.0f} ns")
    print(
        f"  multiprocess mode         {mp_best * 1e9:7.0f} / {mp_median * 1e9:.0f} ns   "
        f"x{(mp_best - base_best) / max(own_best - base_best, 1e-12):.2f} the own registry"
    )
    print(f"per scrape (best / median of {args.repeat}, {args.scrapes} scrapes each):")
    one = busy_metrics()

    def unmerged() -> None:
        for _ in range(args.scrapes):
            generate_latest(one.registry)

    before_best, before_median = timed(unmerged, args.scrapes, args.repeat)
    print(
        f"  one worker, unmerged (before) {before_best * 1e3:6.2f} / {before_median * 1e3:.2f} ms"
    )
    for count in (1, 2, 4):
        workers = [busy_metrics() for _ in range(count)]

        def merged(workers: list[Metrics] = workers) -> None:
            for _ in range(args.scrapes):
                node_scrape(workers)

        best, median = timed(merged, args.scrapes, args.repeat)
        size = len(node_scrape(workers))
        print(
            f"  node of {count} worker(s), merged {best * 1e3:6.2f} / {median * 1e3:.2f} ms"
            f"   x{best / before_best:.2f}   {size / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == CHILD_FLAG:
        best, median = updates(int(sys.argv[2]), int(sys.argv[3]))
        print(best, median)
    else:
        main()
