"""Turn raw results into the printed table, the targets verdicts and the README section."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from benchmarks.startup import READY_TARGETS, verdicts

TARGETS_NAMES = {
    "floor": "floor (fixed JSON)",
    "diy": "DIY peer (Redis SET)",
    "unreported": "service, unreported (Bloom negative)",
    "reported": "service, reported (cache hit)",
    "mix": "service, 99% unreported / 1% reported",
    "national": "service, mix written 0912... (full parse)",
}
SERVICE_RUNS = ("unreported", "reported", "mix")
# Targets (see the README of this folder for where they come from).
MIN_SHARE_OF_FLOOR = 0.85
MIN_TIMES_DIY = 1.5
MAX_SEQUENTIAL_P99_OVER_FLOOR_US = 50
MAX_OPEN_LOOP_P99_US = 1000
MAX_HANDLER_P99_US = 20
MIN_BATCH_NUMBERS_PER_WORKER = 250_000
MIN_REPORTS_PER_SECOND = 2000
MAX_READY_SECONDS_10M = 30
MAX_RSS_MIB_10M = 1024
MAX_SCALE_DROP = 0.10
# The floor's unloaded p99 on a quiet machine is about 200 µs; far above that,
# the machine was busy and latency targets cannot be judged from the run.
MAX_QUIET_FLOOR_P99_US = 1000
_NOISY = "; not judged: the floor itself was slow, the machine was busy"

_BUCKET = re.compile(r'^(\w+)_bucket\{le="([^"]+)"\} ([0-9.e+-]+)$', re.MULTILINE)


def parse_histogram(text: str, name: str) -> dict[float, float]:
    """Cumulative counts by upper bound of one histogram in Prometheus text format."""
    return {
        float(bound): float(value)
        for metric, bound, value in _BUCKET.findall(text)
        if metric == name
    }


def quantile(buckets: dict[float, float], share: float) -> float:
    """Like PromQL ``histogram_quantile``: linear within the bucket that holds the rank."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return math.nan
    rank = share * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def histogram_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Quantiles of the observations made between two scrapes."""
    delta = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    total = delta.get(math.inf, 0.0)
    within = {
        f"share_le_{round(b * 1e6)}us": delta[b] / total for b in sorted(delta) if b <= 2.5e-5
    }
    return {
        "observations": total,
        "p50_us": quantile(delta, 0.50) * 1e6,
        "p99_us": quantile(delta, 0.99) * 1e6,
        "p999_us": quantile(delta, 0.999) * 1e6,
        **within,
    }


def _latency(part: dict[str, Any]) -> str:
    lat = part["latency_us"]
    text = f"{lat['p50']:.0f} / {lat['p99']:.0f} / {lat['p999']:.0f}"
    if part.get("unanswered"):
        text += f" (overloaded: {part['achieved_rps']:,.0f}/s answered)"
    return text


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| workers | server | req/s | x floor | x DIY | sequential p50 / p99 / p99.9 (µs) "
        "| open loop p50 / p99 / p99.9 (µs) | CPU µs/req | x floor by CPU | RSS MiB per worker |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workers, runs in results["runs"].items():
        floor = runs["floor"]["throughput"]["rps"]
        diy = runs["diy"]["throughput"]["rps"]
        rate = runs["floor"]["throughput"]["rps"] / 2
        floor_cpu = runs["floor"]["throughput"]["cpu_us_per_request"]
        for name, run in runs.items():
            rps = run["throughput"]["rps"]
            cpu = run["throughput"]["cpu_us_per_request"]
            lines.append(
                f"| {workers} | {TARGETS_NAMES.get(name, name)} | {rps:,.0f} | {rps / floor:.2f} "
                f"| {rps / diy:.2f} | {_latency(run['sequential'])} "
                f"| {_latency(run['open_loop'])} @ {rate:,.0f}/s "
                f"| {cpu:.0f} | {floor_cpu / cpu:.2f} "
                f"| {', '.join(f'{r:.0f}' for r in run['rss_mib'])} |"
            )
    return lines


def _verdict(met: bool | None) -> str:
    return "not judged" if met is None else ("**met**" if met else "**not met**")


def targets(
    results: dict[str, Any], results_dir: Path | None
) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target the run can speak to."""
    out: list[tuple[str, str, bool | None]] = []
    runs = results["runs"]
    for workers, run in runs.items():
        floor = run["floor"]["throughput"]["rps"]
        diy = run["diy"]["throughput"]["rps"]
        floor_cpu = run["floor"]["throughput"]["cpu_us_per_request"]
        for name in ("unreported", "reported"):
            rps = run[name]["throughput"]["rps"]
            by_cpu = floor_cpu / run[name]["throughput"]["cpu_us_per_request"]
            # Both must reach the target: on a shared machine a starved floor run
            # can flatter the throughput ratio, never the CPU each request costs.
            out.append(
                (
                    f"{name}, {workers} worker(s): ≥ {MIN_SHARE_OF_FLOOR:.0%} of the floor",
                    f"{rps:,.0f} req/s = {rps / floor:.0%} of {floor:,.0f}; "
                    f"by CPU per request {by_cpu:.0%}",
                    min(rps / floor, by_cpu) >= MIN_SHARE_OF_FLOOR,
                )
            )
            out.append(
                (
                    f"{name}, {workers} worker(s): ≥ {MIN_TIMES_DIY}x the DIY peer",
                    f"{rps / diy:.2f}x ({diy:,.0f} req/s)",
                    rps / diy >= MIN_TIMES_DIY,
                )
            )
        floor_p99 = run["floor"]["sequential"]["latency_us"]["p99"]
        for name in SERVICE_RUNS:
            p99 = run[name]["sequential"]["latency_us"]["p99"]
            out.append(
                (
                    f"{name}, {workers} worker(s): sequential p99 ≤ floor p99 + "
                    f"{MAX_SEQUENTIAL_P99_OVER_FLOOR_US} µs",
                    f"{p99:.0f} µs vs floor {floor_p99:.0f} µs ({p99 - floor_p99:+.0f})"
                    + (_NOISY if floor_p99 > MAX_QUIET_FLOOR_P99_US else ""),
                    None
                    if floor_p99 > MAX_QUIET_FLOOR_P99_US
                    else p99 - floor_p99 <= MAX_SEQUENTIAL_P99_OVER_FLOOR_US,
                )
            )
        floor_loaded_p99 = run["floor"]["open_loop"]["latency_us"]["p99"]
        for name in SERVICE_RUNS:
            loaded = run[name]["open_loop"]
            met = loaded["latency_us"]["p99"] < MAX_OPEN_LOOP_P99_US and not loaded.get(
                "unanswered"
            )
            out.append(
                (
                    f"{name}, {workers} worker(s): open-loop p99 < 1 ms at half the floor's rate",
                    f"{loaded['latency_us']['p99']:,.0f} µs at {loaded['target_rps']:,.0f}/s "
                    f"(floor itself: {floor_loaded_p99:,.0f} µs)"
                    + (_NOISY if floor_loaded_p99 > MAX_OPEN_LOOP_P99_US and not met else ""),
                    # A floor that cannot keep its own p99 under 1 ms says the machine was busy.
                    None if floor_loaded_p99 > MAX_OPEN_LOOP_P99_US and not met else met,
                )
            )
    histogram = results.get("handler_histogram")
    if histogram:
        out.append(
            (
                f"handler time p99 < {MAX_HANDLER_P99_US} µs (own histogram, E.164 input)",
                f"p99 {histogram['p99_us']:.1f} µs, p50 {histogram['p50_us']:.1f} µs "
                f"({histogram['observations']:,.0f} lookups)",
                histogram["p99_us"] < MAX_HANDLER_P99_US,
            )
        )
    batch = results.get("batch")
    if batch:
        out.append(
            (
                "batch of 1000: ≥ 250k numbers/s per worker",
                f"{batch['numbers_per_second_per_worker']:,.0f} numbers/s "
                f"({batch['cpu_us_per_number']:.2f} µs CPU per number)",
                batch["numbers_per_second_per_worker"] >= MIN_BATCH_NUMBERS_PER_WORKER,
            )
        )
    reports = results.get("reports")
    if reports:
        out.append(
            (
                "reports: ≥ 2,000 accepted/s, each durable when acknowledged",
                f"{reports['accepted_per_second']:,.0f}/s with {reports['workers']} worker(s); "
                f"{reports['stored']:,} stored for {reports['accepted']:,} acknowledged, "
                f"in {reports.get('transactions', 0):,} transactions; "
                f"{reports.get('service_cpu_ms_per_report', 0):.2f} ms service CPU per report"
                + (
                    f", {reports['postgres_cpu_ms_per_report']:.2f} ms PostgreSQL CPU; "
                    if reports.get("postgres_cpu_ms_per_report") is not None
                    else "; "
                )
                + f"fsync={reports['postgres']['fsync']}, "
                f"synchronous_commit={reports['postgres']['synchronous_commit']}",
                reports["accepted_per_second"] >= MIN_REPORTS_PER_SECOND
                and reports["all_acknowledged_stored"],
            )
        )
    size, started = results["size"], results.get("startup")
    if started and size in READY_TARGETS:
        out += verdicts(size, started)
    if size >= 10_000_000:
        if not started:  # runs from before first start and restart were told apart
            ready = max(results["ready_seconds"].values())
            out.append(("10M: node ready < 30 s", f"{ready:.1f} s", ready < MAX_READY_SECONDS_10M))
        rss = max(sum(run["mix"]["rss_mib"]) for run in runs.values())
        out.append(("10M: node RSS < 1 GB", f"{rss:,.0f} MiB (all workers)", rss < MAX_RSS_MIB_10M))
        baseline = latest(results_dir, 100_000) if results_dir else None
        if baseline is None:
            out.append(("10M: lookups within 10% of 100k", "no 100k run to compare", None))
        else:
            worst = 1.0
            for workers, run in runs.items():
                for name in SERVICE_RUNS:
                    if workers in baseline["runs"]:
                        base = baseline["runs"][workers][name]["throughput"]["rps"]
                        worst = min(worst, run[name]["throughput"]["rps"] / base)
            out.append(
                (
                    "10M: lookup req/s within 10% of the 100k run",
                    f"worst {worst:.0%} of the 100k figure ({baseline['date']})",
                    worst >= 1 - MAX_SCALE_DROP,
                )
            )
    return out


def latest(results_dir: Path, size: int) -> dict[str, Any] | None:
    found = None
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("size") == size:
            found = data
    return found


def render(results: dict[str, Any], results_dir: Path | None) -> str:
    m = results["machine"]
    lines = [
        f"Run of {results['date']}, {results['size']:,} reported numbers, "
        f"event loop {results['plan']['loop']}, {results['elapsed_seconds']:.0f} s in all",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, aiohttp {m['aiohttp']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}",
    ]
    if results.get("note"):
        lines.append(f"Note: {results['note']}")
    lines += ["", *table(results), ""]
    lines += [
        f"Seeding: {results['size']:,} numbers in {results['seed_seconds']} s (COPY); "
        "ready after start: "
        + ", ".join(f"{w} worker(s) {s} s" for w, s in results["ready_seconds"].items()),
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
    ]
    for name, measured, met in targets(results, results_dir):
        lines.append(f"| {name} | {measured} | {_verdict(met)} |")
    normalize = results.get("normalize")
    if normalize:
        lines += ["", "Normaliser micro-benchmark:", "", "```", normalize["output"], "```"]
    return "\n".join(lines)


def write_readme(readme: Path, results: dict[str, Any], results_dir: Path) -> None:
    """Replace the section of this size between its markers (added at the end if absent)."""
    label = {100_000: "100k", 1_000_000: "1m", 10_000_000: "10m"}.get(
        results["size"], str(results["size"])
    )
    begin, end = f"<!-- results:{label}:begin -->", f"<!-- results:{label}:end -->"
    text = readme.read_text() if readme.exists() else ""
    section = f"{begin}\n{render(results, results_dir)}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    readme.write_text(text)
