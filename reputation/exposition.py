"""``GET /metrics``: the whole node in one Prometheus exposition, whichever worker is asked.

Each worker counts in its own prometheus-client registry (the lookup path pays
one in-process increment, nothing more). The worker that is scraped adds its
siblings' samples, asked over their sockets (``siblings.py``), and labels
every series with ``worker="<index>"``: counters of different processes are
never added up here, so a restarted worker is a counter reset of its own
series only, which ``rate()`` handles, and Prometheus sees the same series at
every scrape whichever worker answered. A node of one worker (and an app made
by ``create_app`` alone) has no siblings and no ``worker`` label. Queries
aggregate with ``sum without (worker)`` or ``sum by (...)``, which reads both.

prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) was not
chosen: it cannot carry our scrape-time collectors (Bloom filter, cache,
change feed readings) nor function gauges, and it turns every update on the
lookup path into a locked write to a memory-mapped file: a lookup's counter
increment and histogram observation took 4.4-6.0 us in that mode against
2.6-3.2 us in a registry of our own (medians of 5 x 200,000, prometheus-client
0.26, on a shared and loaded 2-core machine; ``python -m benchmarks.bench_metrics``),
about 2 us more per lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reputation.siblings import WorkerLink

WORKER_LABEL = "worker"
METRICS_QUESTION = "metrics"

# One family as siblings send it: name, type, help, unit, samples (name, labels, value).
FamilyData = list[Any]


def families_data(registry: CollectorRegistry) -> list[FamilyData]:
    """This worker's metric families, as plain data for a sibling (JSON)."""
    return [
        [
            family.name,
            family.type,
            family.documentation,
            family.unit,
            [[sample.name, sample.labels, sample.value] for sample in family.samples],
        ]
        for family in registry.collect()
    ]


class NodeFamilies(Collector):
    """Every worker's families merged by name, each sample labelled with its worker."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}

    def add(self, worker: int | None, families: Iterable[FamilyData]) -> None:
        """Add one worker's families; ``worker`` None: the only one, left unlabelled."""
        extra = {} if worker is None else {WORKER_LABEL: str(worker)}
        for name, typ, documentation, unit, samples in families:
            merged = self.families.get(name)
            if merged is None:
                merged = self.families[name] = Metric(name, documentation, typ, unit)
            for sample_name, labels, value in samples:
                merged.add_sample(sample_name, {**labels, **extra}, value)

    def add_gauge(self, name: str, documentation: str, value: float) -> None:
        self.families[name] = GaugeMetricFamily(name, documentation, value=value)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families.values())


async def node_families(link: WorkerLink, registry: CollectorRegistry) -> NodeFamilies:
    """This worker's families and those of every sibling that answers in time."""
    siblings = await link.ask_siblings(METRICS_QUESTION)
    node = NodeFamilies()
    answers = {link.slot.index: families_data(registry), **siblings}
    for worker in sorted(answers):
        node.add(worker if link.slot.count > 1 else None, answers[worker])
    node.add_gauge(
        "reputation_workers",
        "Worker processes this node runs (REPUTATION_WORKERS)",
        link.slot.count,
    )
    node.add_gauge(
        "reputation_workers_scraped",
        "Workers whose series are in this scrape (one being restarted is missing)",
        len(answers),
    )
    return node


async def node_exposition(link: WorkerLink, registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of the whole node."""
    node = await node_families(link, registry)
    merged = CollectorRegistry(auto_describe=False)
    merged.register(node)
    return generate_latest(merged)
