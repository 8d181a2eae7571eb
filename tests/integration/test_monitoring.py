"""The monitoring of deploy/: alert rules, the Grafana dashboard, a real Prometheus, compose.

The dashboard and the rules cannot rot silently: every metric they name must
be exported by the service, and a real Prometheus scraping a running node must
answer every query of the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from reputation.app import create_app
from reputation.settings import Settings
from tests.conftest import FakeClock, settings_with_auth, wait_ready
from tests.tools import find, require

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "reputation.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
METRIC_NAME = re.compile(r"\breputation_[a-z0-9_]+\b")
# Grafana's variables, as the dashboard is evaluated here.
GRAFANA_VARIABLES = {"$instance": ".*", "$__rate_interval": "10s", "$__range": "1m"}
PROMETHEUS_PACKAGE = "prometheus"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", ())
    ]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    binary = require(PROMETHEUS_PACKAGE, "promtool")["promtool"]
    return subprocess.run(
        [binary, *arguments], capture_output=True, text=True, timeout=60, cwd=ALERTS.parent
    )


def test_alert_rules_are_valid() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout


def test_alert_rules_fire_when_they_should() -> None:
    tested = promtool("test", "rules", str(ALERT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert is exercised by the unit tests.
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    exercised = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert exercised == {rule["alert"] for rule in alert_rules()}


def test_prometheus_config_is_valid() -> None:
    checked = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    datasource_uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    assert board["uid"] == "reputation"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource_uid
            assert METRIC_NAME.search(target["expr"]) or "up{" in target["expr"]
    # What analysts asked for is on the board.
    queries = " ".join(dashboard_queries())
    for needed in (
        "reputation_lookups_total",
        "reputation_lookup_duration_seconds_bucket",
        "reputation_reports_total",
        "reputation_sms_rejected_total",
        "reputation_verdict_reasons_total",
        "reputation_bloom_fill_ratio",
        "reputation_bloom_false_positive_rate",
        "reputation_cache_hits_total",
        "reputation_feed_delay_seconds_bucket",
        "reputation_database_errors_total",
    ):
        assert needed in queries, needed


def exported_names(exposition: str) -> set[str]:
    """Every series name a scrape of this exposition can give, declared families included."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "summary": ("_count", "_sum"),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


async def test_every_metric_of_the_dashboard_and_rules_is_exported(client: TestClient) -> None:
    exposition = await (await client.get("/metrics")).text()
    exported = exported_names(exposition)
    used = {
        name
        for text in [*dashboard_queries(), *(rule["expr"] for rule in alert_rules())]
        for name in METRIC_NAME.findall(text)
    }
    assert len(used) > 15
    missing = used - exported
    assert missing == set(), f"used by deploy/ but not exported by the service: {missing}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prometheus_query(session: aiohttp.ClientSession, base: str, query: str) -> Any:
    async with session.get(f"{base}/api/v1/query", params={"query": query}) as response:
        body = await response.json()
        assert body["status"] == "success", (query, body)
        return body["data"]["result"]


@contextlib.asynccontextmanager
async def running_prometheus(target_port: int, tmp_path: Path) -> AsyncIterator[str]:
    """A real Prometheus (Debian's package) with our alert rules, scraping
    127.0.0.1:``target_port`` every second, until 4 scrapes succeeded; its base URL."""
    binary = require(PROMETHEUS_PACKAGE, "prometheus")["prometheus"]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": "reputation",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
            stdout=log,
            stderr=log,
        )
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(60):
            while True:
                await asyncio.sleep(1)
                try:
                    found = await prometheus_query(
                        session, base, 'sum_over_time(up{job="reputation"}[1m])'
                    )
                except aiohttp.ClientError:
                    continue  # Prometheus is still starting
                if found and float(found[0]["value"][1]) >= 4:
                    break
        yield base
    finally:
        process.terminate()
        await process.wait()


async def test_a_real_prometheus_scrapes_a_node_and_answers_the_dashboard(
    aiohttp_client: Callable[..., object], settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    server = TestServer(create_app(settings_with_auth(settings), clock=clock), host="127.0.0.1")
    node: TestClient = await aiohttp_client(server)  # type: ignore[operator]
    await wait_ready(node)
    # Traffic for the series to move: lookups (every layer the node has), a refused one.
    await node.get("/v1/numbers/0912345678", headers={"Authorization": "Bearer wrong"})
    async with (
        running_prometheus(server.port, tmp_path) as base,
        aiohttp.ClientSession() as session,
    ):
        up = await prometheus_query(session, base, 'up{job="reputation"}')
        assert up[0]["value"][1] == "1"
        # Every query of the dashboard is valid PromQL on real data...
        for query in dashboard_queries():
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)
            await prometheus_query(session, base, query)
        # ... and the series it draws exist.
        for name in (
            "reputation_lookups_total",
            "reputation_lookup_duration_seconds_bucket",
            "reputation_reports_total",
            "reputation_verdict_reasons_total",
            "reputation_sms_rejected_total",
            "reputation_bloom_fill_ratio",
            "reputation_bloom_false_positive_rate",
            "reputation_bloom_design_error_rate",
            "reputation_cache_hits_total",
            "reputation_cache_misses_total",
            "reputation_feed_seconds_since_read",
            "reputation_database_up",
            "reputation_open_appeals",
        ):
            assert await prometheus_query(session, base, name), f"no series {name}"
        # The alert rules are loaded and evaluate cleanly.
        async with session.get(f"{base}/api/v1/rules") as response:
            groups = (await response.json())["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alert_rules()}
        assert {rule["health"] for rule in rules} <= {"ok", "unknown"}


def test_compose_file_describes_the_deployment() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "node1", "node2", "prometheus", "grafana"}
    for name in ("node1", "node2"):
        node = services[name]
        assert (COMPOSE.parent / node["build"]["context"] / node["build"]["dockerfile"]).exists()
        assert node["environment"]["REPUTATION_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in node["environment"]["REPUTATION_DATABASE_URL"]
        assert node["depends_on"]["postgres"]["condition"] == "service_healthy"
        # Several workers per node: the scrape must answer for all of them.
        assert int(node["environment"]["REPUTATION_WORKERS"]) > 1
    # Files mounted from the repository exist.
    for service in services.values():
        for volume in service.get("volumes", ()):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), source
    # Prometheus scrapes both nodes by their service names.
    targets = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][0]
    assert targets["static_configs"][0]["targets"] == ["node1:8080", "node2:8080"]


def compose_command() -> list[str] | None:
    """``docker compose`` when the plugin is there, else Debian's ``docker-compose``."""
    docker = find("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = find("docker-compose")
    return [legacy] if legacy else None


def test_compose_accepts_the_file() -> None:
    # Without either, require() skips (or fails under CI) naming Debian's package.
    command = compose_command() or [require("docker-compose", "docker-compose")["docker-compose"]]
    checked = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
