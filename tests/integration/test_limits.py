"""Abuse limits through real HTTP: rates per key and per reporter, sizes, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from reputation.app import create_app
from reputation.auth import public
from reputation.settings import Settings
from tests.conftest import CreateApiKey, bearer, settings_with_auth, wait_ready


def metric(exposition: str, sample: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def start(
    aiohttp_client: Callable[..., Any], settings: Settings, app: web.Application | None = None
) -> TestClient:
    node: TestClient = await aiohttp_client(app or create_app(settings))
    await wait_ready(node)
    return node


def allowed_by_a_bucket(times: list[float], rate: float, burst: float) -> int:
    """How many requests sent at ``times`` a token bucket lets through (the reference)."""
    tokens, last, allowed = burst, times[0], 0
    for moment in times:
        tokens = min(burst, tokens + (moment - last) * rate)
        last = moment
        if tokens >= 1:
            tokens -= 1
            allowed += 1
    return allowed


async def test_rate_limit_answers_429_at_the_configured_rate(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    """A client going as fast as it can gets the burst, then the rate, measured.

    The count is compared with a reference bucket fed the same send times, so
    that a pause of the shared machine (which lets tokens pile up to the burst
    and no further) does not make the figure wrong; and it never exceeds the
    burst plus the rate times the time taken.
    """
    key = await create_api_key("lookup")
    node = await start(aiohttp_client, settings_with_auth(settings, rate_limits="lookup=50/s"))
    statuses: list[int] = []
    sent: list[float] = []
    retry_afters: set[str] = set()
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        sent.append(time.monotonic())
        response = await node.get("/v1/numbers/0912345678", headers=bearer(key))
        statuses.append(response.status)
        if response.status == 429:
            retry_afters.add(response.headers["Retry-After"])
            assert (await response.json())["error"]["code"] == "rate_limited"
    allowed, limited = statuses.count(200), statuses.count(429)
    assert allowed + limited == len(statuses)
    elapsed = sent[-1] - sent[0]
    reference = allowed_by_a_bucket(sent, rate=50, burst=50)
    print(f"\n{len(statuses)} requests in {elapsed:.2f} s: {allowed} allowed "
          f"({(allowed - 50) / elapsed:.1f}/s after the burst of 50; configured 50/s), "
          f"{limited} refused; reference bucket: {reference}")  # fmt: skip
    assert limited > allowed  # the client really went faster than its rate
    assert allowed <= 50 + 50 * elapsed + 1
    assert abs(allowed - reference) <= 3 + 0.03 * reference
    assert retry_afters == {"1"}
    exposition = await (await node.get("/metrics")).text()
    assert metric(exposition, 'reputation_rate_limited_total{key="1",role="lookup"}') == limited


async def test_a_lookup_key_walking_the_number_space_is_stopped_and_seen(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    key = await create_api_key("lookup", "scraper")
    # A day's budget: the walk ends long before one token comes back, however slow the machine.
    node = await start(aiohttp_client, settings_with_auth(settings, rate_limits="lookup=200/day"))
    walked = 0
    for suffix in range(1000):
        response = await node.get(f"/v1/numbers/0912{suffix:06d}", headers=bearer(key))
        if response.status == 429:
            break
        walked += 1
    assert walked == 200
    assert 420 <= int(response.headers["Retry-After"]) <= 432  # one more number in 432 s
    # A batch is charged one per number: the walk cannot continue by batches.
    batch = await node.post(
        "/v1/lookups",
        json={"numbers": [f"0913{i:06d}" for i in range(100)]},
        headers=bearer(key),
    )
    assert batch.status == 429
    exposition = await (await node.get("/metrics")).text()
    assert metric(exposition, 'reputation_rate_limited_total{key="1",role="lookup"}') == 2


async def test_a_batch_costs_one_token_per_number(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    key = await create_api_key("lookup")
    big = await create_api_key("lookup", "big batch")
    node = await start(aiohttp_client, settings_with_auth(settings, rate_limits="lookup=100/h"))
    numbers = [f"0912{i:06d}" for i in range(60)]

    async def batch() -> Any:
        return await node.post("/v1/lookups", json={"numbers": numbers}, headers=bearer(key))

    assert (await batch()).status == 200  # 100 -> 40 tokens
    assert (await batch()).status == 200  # 40 left: goes through and owes 20
    third = await batch()
    assert third.status == 429
    assert 740 <= int(third.headers["Retry-After"]) <= 756  # back to one token: 21 at 100/h
    # A batch bigger than the whole burst goes through too, and is paid for after.
    whole = [f"0914{i:06d}" for i in range(1000)]
    assert (
        await node.post("/v1/lookups", json={"numbers": whole}, headers=bearer(big))
    ).status == 200
    owed = await node.get("/v1/numbers/0912345678", headers=bearer(big))
    assert owed.status == 429
    assert 32_000 <= int(owed.headers["Retry-After"]) <= 32_436  # 900 owed + 1 at 100/h


async def test_each_key_has_its_own_bucket_and_may_have_its_own_rate(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    small = await create_api_key("lookup", "small")
    other = await create_api_key("lookup", "other")
    carrier = await create_api_key("lookup", "carrier", rate="20/h")
    admin = await create_api_key("admin")
    node = await start(aiohttp_client, settings_with_auth(settings, rate_limits="lookup=5/h"))

    async def allowed(key: str, count: int) -> int:
        statuses = [
            (await node.get("/v1/numbers/0912345678", headers=bearer(key))).status
            for _ in range(count)
        ]
        return statuses.count(200)

    assert await allowed(small, 8) == 5
    assert await allowed(other, 8) == 5
    assert await allowed(carrier, 25) == 20
    assert await allowed(admin, 50) == 50  # admin: off by default


async def test_reports_are_limited_per_reporter_number(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    key = await create_api_key("report")
    node = await start(aiohttp_client, settings_with_auth(settings, reporter_rate_limit="3/h"))

    async def report(number: str, reporter: str | None, channel: str = "app") -> Any:
        body = {"number": number, "reporter": reporter, "channel": channel}
        return await node.post("/v1/reports", json=body, headers=bearer(key))

    for number in ("0912345671", "0912345672", "0912345673"):
        assert (await report(number, "0987000001")).status == 201
    # The same reporter in another written form, through another channel: same person.
    refused = await report("0912345674", "+84 987 000 001", channel="call_center")
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "reporter_rate_limited"
    assert 1100 <= int(refused.headers["Retry-After"]) <= 1200  # one report per 20 minutes
    assert (await report("0912345674", "0987000002")).status == 201
    for _ in range(5):
        assert (await report("0912345675", None)).status == 201  # anonymous: the key's rate only

    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM reports") == 9
        assert await conn.fetchval("SELECT count(*) FROM numbers WHERE e164 = '+84912345674'") == 1
    finally:
        await conn.close()
    exposition = await (await node.get("/metrics")).text()
    assert metric(exposition, 'reputation_reporter_rate_limited_total{channel="call_center"}') == 1
    rejected = (
        'reputation_reports_rejected_total{channel="call_center",reason="reporter_rate_limited"}'
    )
    assert metric(exposition, rejected) == 1


async def test_public_writes_are_limited_per_client_address(
    aiohttp_client: Callable[..., Any], settings: Settings
) -> None:
    app = create_app(settings_with_auth(settings, public_rate_limit="3/min"))

    @public
    async def write(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_post("/test/public-write", write)
    node = await start(aiohttp_client, settings, app)
    statuses = [(await node.post("/test/public-write", json={})).status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    # Reads of public routes are not limited (load balancers and Prometheus poll them).
    assert {(await node.get("/healthz")).status for _ in range(10)} == {200}


# --- sizes and slow clients, on a raw socket where a client library would not misbehave ---


async def raw_exchange(
    node: TestClient, request: bytes, *, pause: float = 0.0, rest: bytes = b""
) -> bytes:
    """Send ``request`` (then ``rest`` after ``pause`` s); everything the server answers."""
    reader, writer = await asyncio.open_connection(node.host, node.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = asyncio.create_task(reader.read())  # until the server closes
        if pause:
            await asyncio.wait([answer], timeout=pause)
        if rest and not answer.done():
            with contextlib.suppress(ConnectionError):
                writer.write(rest)
                await writer.drain()
        async with asyncio.timeout(10):
            return await answer
    finally:
        writer.close()


def status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
async def node(aiohttp_client: Callable[..., Any], settings: Settings) -> TestClient:
    """A node with short client timeouts (authentication off: sizes and times apply anyway)."""
    return await start(
        aiohttp_client, dataclasses.replace(settings, body_timeout=0.3, idle_timeout=0.5)
    )


async def test_a_declared_huge_body_is_refused_before_it_is_sent(node: TestClient) -> None:
    head = (
        b"POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    started = time.monotonic()
    raw = await raw_exchange(node, head)
    status, body = status_and_body(raw)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    # Answered at once, closed after at most LINGER_SECONDS without waiting for the body.
    assert time.monotonic() - started < 2.0


async def test_a_body_larger_than_declared_limits_is_cut_off(node: TestClient) -> None:
    response = await node.post("/v1/reports", data=b"x" * (64 * 1024 + 1))
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    chunked = await node.post("/v1/reports", data=chunks())  # no Content-Length
    assert chunked.status == 413


async def test_a_slow_body_is_cut_off(node: TestClient) -> None:
    head = (
        b"POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 40\r\n\r\n{"number": '
    )
    started = time.monotonic()
    raw = await raw_exchange(node, head, pause=3.0, rest=b'"0912345678"}')
    status, body = status_and_body(raw)
    assert status == 408
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert time.monotonic() - started < 2.5


async def test_slow_headers_are_cut_off(node: TestClient) -> None:
    started = time.monotonic()
    raw = await raw_exchange(node, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", pause=3.0, rest=b"\r\n")
    assert raw == b""  # closed without an answer
    assert time.monotonic() - started < 2.0


async def test_an_idle_connection_is_closed(node: TestClient) -> None:
    reader, writer = await asyncio.open_connection(node.host, node.port)
    try:
        started = time.monotonic()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        assert 0.4 < time.monotonic() - started < 2.0
    finally:
        writer.close()


async def test_long_urls_get_414_as_json(node: TestClient) -> None:
    response = await node.get("/v1/numbers/" + "1" * 2100)
    assert response.status == 414
    assert (await response.json())["error"]["code"] == "uri_too_long"
    query = await node.get("/healthz?" + "a=1&" * 600)
    assert query.status == 414


async def test_oversized_request_lines_and_headers_are_refused_by_the_parser(
    node: TestClient,
) -> None:
    for request in (
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(100))
        + b"\r\n",
    ):
        status, _ = status_and_body(await raw_exchange(node, request))
        assert status == 400
    assert (await node.get("/healthz")).status == 200  # the node carries on


async def test_compressed_bodies_are_not_inflated(node: TestClient) -> None:
    bomb = gzip.compress(b'{"number": "' + b"0" * 10_000_000 + b'"}')
    assert len(bomb) < 64 * 1024
    response = await node.post(
        "/v1/reports",
        data=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"
