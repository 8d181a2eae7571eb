"""A node's state survives restarts; readiness, health and metrics tell the truth."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp.test_utils import TestClient

from reputation.app import create_app
from reputation.settings import Settings
from tests.conftest import FakeClock, wait_ready


async def test_restart_rebuilds_the_filter_from_postgres(
    settings: Settings, clock: FakeClock, aiohttp_client: Callable[..., object]
) -> None:
    first: TestClient = await aiohttp_client(create_app(settings, clock=clock))  # type: ignore[operator]
    await wait_ready(first)
    for i in range(3):
        response = await first.post(
            "/v1/reports", json={"number": "0912345678", "reporter": f"098700000{i}"}
        )
        assert response.status == 201
    await first.close()

    second: TestClient = await aiohttp_client(create_app(settings, clock=clock))  # type: ignore[operator]
    await wait_ready(second)
    body = await (await second.get("/v1/numbers/0912345678")).json()
    assert body["reports"] == 3
    assert body["verdict"] == "warn"
    metrics = await (await second.get("/metrics")).text()
    assert "reputation_bloom_items 1.0" in metrics


async def test_health_and_readiness(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["bloom_filter"] == "loaded"


def metric_value(exposition: str, sample: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_move_with_lookups(client: TestClient) -> None:
    await client.post("/v1/reports", json={"number": "0912345678", "reporter": "0987000001"})
    before = await (await client.get("/metrics")).text()
    await client.get("/v1/numbers/0987654321")  # never reported: the filter answers
    await client.get("/v1/numbers/0912345678")  # reported: the cache answers
    await client.get("/v1/numbers/0912345678a")  # refused
    after = await (await client.get("/metrics")).text()
    bloom = 'reputation_lookups_total{layer="bloom",verdict="allow"}'
    cache = 'reputation_lookups_total{layer="cache",verdict="allow"}'
    assert metric_value(after, bloom) == metric_value(before, bloom) + 1
    assert metric_value(after, cache) == metric_value(before, cache) + 1
    errors = 'reputation_lookup_errors_total{code="invalid_characters"}'
    assert metric_value(after, errors) == metric_value(before, errors) + 1
    count = "reputation_lookup_duration_seconds_count"
    assert metric_value(after, count) == metric_value(before, count) + 2
    reports = 'reputation_reports_total{category="scam",channel="api"}'
    assert metric_value(after, reports) == 1
    assert "+8491" not in after
    assert "0912345678" not in after


def lookups_counted(exposition: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("reputation_lookups_total{")
    )


async def test_a_report_is_not_counted_as_a_lookup(client: TestClient) -> None:
    before = lookups_counted(await (await client.get("/metrics")).text())
    response = await client.post("/v1/reports", json={"number": "0912345678"})
    assert response.status == 201
    assert (await response.json())["number"]["reports"] == 1
    assert lookups_counted(await (await client.get("/metrics")).text()) == before
