"""The status page at ``/``: real figures, masked numbers, and a look at it in headless Chromium."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from reputation.app import create_app
from reputation.appkeys import STATUS_PAGE, STORE
from reputation.records import NewReport
from reputation.settings import Settings
from reputation.statuspage import COLORS
from tests.conftest import CreateApiKey, FakeClock, bearer, wait_ready
from tests.png import read_png
from tests.tools import require

# Set to a directory to keep the screenshot there (docs/ holds the README's).
SCREENSHOT_DIR_ENV = "REPUTATION_SCREENSHOT_DIR"
SCREENSHOT_SIZE = (1100, 1340)


async def report(client: TestClient, number: str, reporter: int) -> None:
    response = await client.post(
        "/v1/reports", json={"number": number, "reporter": f"+8497{reporter:07d}"}
    )
    assert response.status == 201, await response.text()


async def busy_hour(client: TestClient, clock: FakeClock, minutes: int = 60) -> None:
    """An hour of traffic, minute by minute: reports and lookups of every verdict."""
    rng = random.Random(8)
    blocked = [f"+8491200{i:04d}" for i in range(3)]
    warned = [f"+8498700{i:04d}" for i in range(4)]
    for i, number in enumerate(blocked):
        for reporter in range(10 + 3 * i):
            await report(client, number, reporter)
    for number in warned:
        for reporter in range(3):
            await report(client, number, reporter)
    page = client.app[STATUS_PAGE]  # type: ignore[index]
    for minute in range(minutes):
        clock.advance(minutes=1)
        wave = 1 + 0.6 * (minute % 20) / 20
        for _ in range(int(rng.randint(1, 4) * wave)):
            target = rng.choice([*blocked, f"+8496{rng.randrange(10**7):07d}"])
            await report(client, target, rng.randrange(100, 10_000))
        calls = [f"+8493{rng.randrange(10**7):07d}" for _ in range(int(18 * wave))]
        calls += rng.sample(warned, 2) + rng.sample(blocked, 1)
        response = await client.post("/v1/lookups", json={"numbers": calls})
        assert response.status == 200
        page.activity.sample()


async def test_page_shows_the_figures(client: TestClient, clock: FakeClock) -> None:
    await busy_hour(client, clock, minutes=5)
    store = client.app[STORE]  # type: ignore[index]
    async with asyncio.timeout(20):  # the node records itself on the change feed at start
        while not await store.feed_nodes():  # noqa: ASYNC110 (polls the database)
            await asyncio.sleep(0.1)
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    # Lookups by verdict, drawn as bars, and the same totals in the cards.
    for verdict in ("allow", "warn", "block"):
        assert f'class="bar-{verdict}"' in page
        assert f'class="mix-{verdict}"' in page
    assert 'class="bar-reports"' in page
    # The bars add up to this node's lookup counters.
    metrics = await (await client.get("/metrics")).text()
    for verdict in ("allow", "warn", "block"):
        bars = re.findall(rf'class="bar-{verdict}"[^>]*><title>[^<]*: (\d+) {verdict}<', page)
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("reputation_lookups_total{") and f'verdict="{verdict}"' in line
        )
        assert len(bars) == 5
        assert sum(int(b) for b in bars) == counted > 0
    # The most reported number of the day is listed first, with its verdict.
    top = re.search(r"<tr><td class='n'>1</td><td><code>([^<]+)</code>", page)
    assert top is not None
    assert top.group(1) == "+84912000002"  # the client sends an admin key: numbers in clear
    assert '<span class="badge bad">block</span>' in page
    assert "Bloom filter" in page
    assert ">loaded<" in page
    # This node, as the change feed knows it.
    assert f"<code>{socket.gethostname()}</code> <span class='muted'>pid {os.getpid()}" in page
    assert ">alive<" in page
    assert ">up<" in page
    # Nothing from elsewhere.
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "url(" not in page


async def add_reported_number(client: TestClient) -> None:
    store = client.app[STORE]  # type: ignore[index]
    for reporter in range(3):
        await store.record_report(
            NewReport(
                e164="+84912345678",
                reporter=f"+849870000{reporter:02d}",
                channel="app",
                category="scam",
                content=None,
            )
        )


@pytest.mark.parametrize(
    ("authorization", "clear"),
    [("admin", True), ("analyst", True), ("lookup", False), ("none", False), ("wrong", False)],
)
async def test_numbers_are_in_clear_only_for_analysts(
    client: TestClient, create_api_key: CreateApiKey, authorization: str, clear: bool
) -> None:
    await add_reported_number(client)
    if authorization in ("analyst", "lookup"):
        headers = bearer(await create_api_key(authorization, "status page"))
    elif authorization == "wrong":
        headers = {"Authorization": "Bearer not-a-key"}
    elif authorization == "none":
        headers = {"Authorization": ""}
    else:
        headers = {}  # the client's own admin key
    response = await client.get("/", headers=headers)
    assert response.status == 200
    page = await response.text()
    assert ("+84912345678" in page) is clear
    assert ("+84 91x xxx x78" in page) is not clear
    assert ">on<" in page


async def test_numbers_are_in_clear_when_authentication_is_off(
    aiohttp_client: Callable[..., object], settings: Settings, clock: FakeClock
) -> None:
    client: TestClient = await aiohttp_client(create_app(settings, clock=clock))  # type: ignore[operator]
    await wait_ready(client)
    await add_reported_number(client)
    page = await (await client.get("/")).text()
    assert "+84912345678" in page
    assert ">OFF<" in page


async def test_page_survives_a_database_that_cannot_be_read(client: TestClient) -> None:
    await client.app[STORE].pool.close()  # type: ignore[index]
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    assert ">down<" in page
    assert "The database cannot be read right now." in page


async def test_headless_chromium_renders_the_page(
    aiohttp_client: Callable[..., object], settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    chromium = require("chromium", "chromium")["chromium"]
    app = create_app(settings, clock=clock)
    server = TestServer(app, host="127.0.0.1")
    client: TestClient = await aiohttp_client(server)  # type: ignore[operator]
    await wait_ready(client)
    await busy_hour(client, clock)
    shot = tmp_path / "status-page.png"
    width, height = SCREENSHOT_SIZE
    process = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={width},{height}",
        f"--screenshot={shot}",
        str(server.make_url("/")),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(90):
        output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    image = await asyncio.to_thread(read_png, shot)
    assert (image.width, image.height) == SCREENSHOT_SIZE
    # The charts were drawn: each verdict's colour and the reports' colour cover real area.
    for name in ("allow", "warn", "block", "reports"):
        assert image.count_near(COLORS[name]) > 500, name
    # And the page is not one flat colour: text, cards, tables.
    assert len(image.colours()) > 200
    keep = os.environ.get(SCREENSHOT_DIR_ENV)
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)


@pytest.mark.parametrize("minutes", [0, 3])
async def test_activity_counts_lookups_per_minute(
    client: TestClient, clock: FakeClock, minutes: int
) -> None:
    activity = client.app[STATUS_PAGE].activity  # type: ignore[index]
    for _ in range(minutes):
        clock.advance(minutes=1)
        for _ in range(4):
            await client.get("/v1/numbers/0911111111")
        activity.sample()
    per_minute = activity.per_minute()
    assert len(per_minute) == 60
    assert [m.total for m in per_minute] == [0.0] * (60 - minutes) + [4.0] * minutes
    assert activity.since_start()["allow"] == 4 * minutes
