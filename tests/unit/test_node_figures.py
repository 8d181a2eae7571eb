"""Merging the workers' figures: metric families for /metrics, activity for the status page."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reputation.activity import FilterFigures, Minute, NodeActivity, WorkerActivity
from reputation.exposition import NodeFamilies, families_data
from reputation.metrics import Metrics

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def exposition(node: NodeFamilies) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(node)
    return generate_latest(registry).decode()


def test_families_of_two_workers_merge_into_one_valid_exposition() -> None:
    first, second = Metrics(), Metrics()
    first.lookup_by["bloom", "allow"].inc(3)
    second.lookup_by["bloom", "allow"].inc(5)
    second.lookup_seconds.observe(0.000_01)
    second.range_index_entries.set(math.nan)  # NaN survives the trip through JSON
    node = NodeFamilies()
    node.add(0, families_data(first.registry))
    node.add(1, json.loads(json.dumps(families_data(second.registry))))
    text = exposition(node)
    assert text.count("# TYPE reputation_lookups_total counter") == 1
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = ("reputation_lookups_total", (("layer", "bloom"), ("verdict", "allow")))
    assert samples[key[0], (*key[1], ("worker", "0"))] == 3
    assert samples[key[0], (*key[1], ("worker", "1"))] == 5
    assert samples["reputation_lookup_duration_seconds_count", (("worker", "1"),)] == 1
    assert samples["reputation_lookup_duration_seconds_count", (("worker", "0"),)] == 0
    assert math.isnan(samples["reputation_range_index_entries", (("worker", "1"),)])


def test_the_only_worker_keeps_its_series_unlabelled() -> None:
    metrics = Metrics()
    metrics.lookup_by["cache", "block"].inc()
    node = NodeFamilies()
    node.add(None, families_data(metrics.registry))
    text = exposition(node)
    assert 'reputation_lookups_total{layer="cache",verdict="block"} 1.0' in text
    assert "worker=" not in text


def worker(minutes: dict[int, float], *, loaded: bool = True, hits: int = 0) -> WorkerActivity:
    frame = [T0 + timedelta(minutes=m) for m in range(-2, 1)]
    return WorkerActivity(
        minutes=[
            Minute(start, {"allow": minutes.get(int((start - T0).total_seconds() // 60), 0.0)})
            for start in frame
        ],
        since_start={"allow": sum(minutes.values()), "warn": 1.0},
        up_seconds=60.0 * len(minutes),
        filter=FilterFigures(10, 100, 0.1, 0.001) if loaded else None,
        cache_entries=4,
        cache_hits=hits,
        cache_misses=1,
    )


def test_node_activity_adds_up_every_worker() -> None:
    own = worker({0: 2.0})
    sibling = WorkerActivity.from_json(
        json.loads(json.dumps(worker({0: 3.0}, loaded=False, hits=3).to_json()))
    )
    node = NodeActivity([own, sibling], worker_count=2)
    per_minute = node.per_minute()
    assert [m.start for m in per_minute] == [m.start for m in own.minutes]
    assert per_minute[-1].lookups == {"allow": 5.0, "warn": 0.0, "block": 0.0}
    assert node.since_start() == {"allow": 5.0, "warn": 2.0, "block": 0.0}
    assert node.filters_loaded == 1
    assert node.cache_entries == 8
    assert node.cache_hit_ratio == 3 / 5


def test_minutes_outside_this_workers_hour_are_left_out() -> None:
    own = worker({0: 1.0})
    late = worker({0: 7.0})
    shifted = WorkerActivity(
        minutes=[Minute(m.start + timedelta(minutes=5), m.lookups) for m in late.minutes],
        since_start=late.since_start,
        up_seconds=late.up_seconds,
        filter=late.filter,
        cache_entries=0,
        cache_hits=0,
        cache_misses=0,
    )
    node = NodeActivity([own, shifted], worker_count=2)
    assert sum(m.total for m in node.per_minute()) == 1.0
