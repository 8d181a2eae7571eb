"""``/metrics`` and ``/`` of ``reputation serve --workers 2`` speak for the whole node.

The kernel hands each connection to either worker; whichever answers, a
scrape holds every worker's series (labelled ``worker``), their sum is every
lookup made, and no counter goes down from one scrape to the next, not even
while a worker is killed and restarted.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_monitoring import (
    GRAFANA_VARIABLES,
    alert_rules,
    dashboard_queries,
    prometheus_query,
    running_prometheus,
)
from tests.integration.test_serve import (
    _kill,
    _until_ready,
    free_port,
    serve,
    serve_env,
    worker_pids,
)
from tests.tools import require

WORKERS = 2
# Lookups made between two scrapes, each on a connection of its own.
ROUND = 40
ROUNDS = 4
SCRAPES_PER_ROUND = 6

# Samples that never decrease, by family type.
MONOTONIC_SUFFIXES = {"counter": {"_total"}, "histogram": {"_bucket", "_count"}}

Series = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Node:
    base: str
    pid: int
    data_dir: Path
    port: int


@pytest.fixture
async def node(own_database_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    port = free_port()
    env = serve_env(own_database_url, tmp_path)
    server = await serve(env, port, tmp_path / "serve.log", workers=WORKERS)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await _until_ready(session, base)
        # Ready on one worker: wait until both answer for the node.
        async with asyncio.timeout(60):
            while (await scrape(base))[1] < WORKERS:  # noqa: ASYNC110 (polls HTTP)
                await asyncio.sleep(0.2)
        yield Node(base, server.pid, tmp_path, port)
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await server.wait() == 0
    finally:
        await _kill(server)


async def fresh_get(base: str, path: str) -> str:
    """GET on a new connection, so that the kernel picks a worker again."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(base + path) as response,
    ):
        assert response.status == 200, path
        return await response.text()


async def lookups(base: str, count: int, start: int) -> None:
    await asyncio.gather(
        *(fresh_get(base, f"/v1/numbers/0912{start + i:06d}") for i in range(count))
    )


def parse(exposition: str) -> tuple[dict[Series, float], dict[str, str]]:
    """Every sample by series, and every family's type; fails on an invalid exposition."""
    samples: dict[Series, float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(exposition):
        assert family.name not in types, f"family {family.name} twice"
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"series {key} twice"
            samples[key] = sample.value
    return samples, types


async def scrape(base: str) -> tuple[str, int]:
    text = await fresh_get(base, "/metrics")
    scraped = re.search(r"^reputation_workers_scraped (\S+)$", text, re.MULTILINE)
    assert scraped is not None
    return text, int(float(scraped.group(1)))


def lookups_by_worker(samples: dict[Series, float]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == "reputation_lookups_total":
            worker = dict(labels)["worker"]
            totals[worker] = totals.get(worker, 0.0) + value
    return totals


def counters(samples: dict[Series, float], types: dict[str, str]) -> dict[Series, float]:
    """The samples that may never decrease: counters, and histogram buckets, counts, sums."""
    names = {
        family + suffix
        for family, typ in types.items()
        for suffix in MONOTONIC_SUFFIXES.get(typ, ())
    }
    return {key: value for key, value in samples.items() if key[0] in names}


def check_never_decreases(
    before: dict[Series, float], after: dict[Series, float], *, except_worker: str | None = None
) -> None:
    for key, value in before.items():
        if except_worker is not None and ("worker", except_worker) in key[1]:
            continue
        if key in after:
            assert after[key] >= value, f"{key} went from {value} to {after[key]}"


async def test_every_scrape_holds_the_whole_node(node: Node) -> None:
    promtool = require("prometheus", "promtool")["promtool"]
    made = 0
    previous: dict[Series, float] = {}
    for _ in range(ROUNDS):
        await lookups(node.base, ROUND, made)
        made += ROUND
        for _ in range(SCRAPES_PER_ROUND):
            text, scraped = await scrape(node.base)
            samples, types = parse(text)
            assert scraped == WORKERS
            by_worker = lookups_by_worker(samples)
            # Every worker's series, and together every lookup made, whoever answered.
            assert set(by_worker) == {"0", "1"}
            assert sum(by_worker.values()) == made
            assert all(count > 0 for count in by_worker.values()), by_worker
            assert (
                sum(
                    v
                    for (n, _), v in samples.items()
                    if n == "reputation_lookup_duration_seconds_count"
                )
                == made
            )
            # One HELP and one TYPE per family, and no series without its worker
            # (but the node's own two gauges).
            help_lines = re.findall(r"^# HELP (\S+)", text, re.MULTILINE)
            assert len(help_lines) == len(set(help_lines))
            for name, labels in samples:
                if name not in ("reputation_workers", "reputation_workers_scraped"):
                    assert dict(labels).get("worker") in ("0", "1"), name
            checked = await asyncio.to_thread(
                subprocess.run,
                [promtool, "check", "metrics"],
                input=text,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr
            current = counters(samples, types)
            check_never_decreases(previous, current)
            previous = current
    # The sockets: private to the user running the node.
    run = node.data_dir / "run"
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    sockets = sorted(run.iterdir())
    assert [s.name for s in sockets] == [f"worker-{node.port}-{i}.sock" for i in range(WORKERS)]
    assert all(stat.S_IMODE(s.stat().st_mode) == 0o600 for s in sockets)


async def test_status_page_counts_every_worker(node: Node) -> None:
    await lookups(node.base, ROUND, 0)
    # Both workers answered some: a page from either one alone would miss some.
    by_worker = lookups_by_worker(parse((await scrape(node.base))[0])[0])
    assert sorted(by_worker) == ["0", "1"]
    assert all(0 < count < ROUND for count in by_worker.values()), by_worker
    for _ in range(6):
        page = await fresh_get(node.base, "/")
        card = re.search(r'Lookups, last hour</div><div class="figure">([\d,]+)</div>', page)
        assert card is not None
        assert int(card.group(1).replace(",", "")) == ROUND
        mix = re.search(r"<title>allow: ([\d.]+)%</title>", page)
        assert mix is not None
        assert float(mix.group(1)) == 100.0
        assert f"on {WORKERS} of {WORKERS} workers" in page
        assert f'Workers answering</th><td><span class="badge ok">all</span> {WORKERS} of' in page


async def test_a_restarted_worker_resets_only_its_own_series(node: Node) -> None:
    await lookups(node.base, ROUND, 0)
    samples, types = parse((await scrape(node.base))[0])
    before = counters(samples, types)
    assert sum(lookups_by_worker(samples).values()) == ROUND
    assert all(count > 0 for count in lookups_by_worker(samples).values())
    pids = await asyncio.to_thread(worker_pids, node.pid)
    assert len(pids) == WORKERS
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    async with asyncio.timeout(60):
        while True:
            try:
                text, scraped = await scrape(node.base)
            except aiohttp.ClientError:
                continue  # accepted by the worker just killed

            samples, types = parse(text)
            after = counters(samples, types)
            workers_seen = set(lookups_by_worker(samples))
            assert len(workers_seen) == scraped
            survivors = await asyncio.to_thread(worker_pids, node.pid)
            if scraped == WORKERS and victim not in survivors and len(survivors) == WORKERS:
                break
            await asyncio.sleep(0.1)
    # The other worker's counters went on; the restarted one starts from zero.
    totals = lookups_by_worker(samples)
    restarted = {w for w, n in totals.items() if n == 0}
    assert len(restarted) == 1, totals
    (fresh,) = restarted
    check_never_decreases(before, after, except_worker=fresh)
    assert sum(totals.values()) == sum(
        v
        for (n, labels), v in before.items()
        if n == "reputation_lookups_total" and ("worker", fresh) not in labels
    )
    # Its socket is back, named as before.
    assert (node.data_dir / "run" / f"worker-{node.port}-{fresh}.sock").exists()


async def test_prometheus_reads_the_node_as_one_through_the_dashboard(
    node: Node, tmp_path: Path
) -> None:
    await lookups(node.base, ROUND, 0)
    async with running_prometheus(node.port, tmp_path) as base, aiohttp.ClientSession() as session:
        # Both workers' series are stored, and the node's total is every lookup.
        per_worker = await prometheus_query(
            session, base, "sum by (worker) (reputation_lookups_total)"
        )
        assert {series["metric"]["worker"] for series in per_worker} == {"0", "1"}
        total = await prometheus_query(session, base, "sum(reputation_lookups_total)")
        assert float(total[0]["value"][1]) == ROUND
        # Every query of the dashboard and every rule speaks of nodes, never of one worker.
        expressions = [*dashboard_queries(), *(rule["expr"] for rule in alert_rules())]
        for query in expressions:
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)
            for series in await prometheus_query(session, base, query):
                assert "worker" not in series["metric"], query
        scraped = await prometheus_query(session, base, "min(reputation_workers_scraped)")
        assert float(scraped[0]["value"][1]) == WORKERS
