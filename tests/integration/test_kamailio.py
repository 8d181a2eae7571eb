"""A real SIP switch at call setup: Debian's Kamailio with the example config, sipp phones.

The service runs in this process on a throwaway database; Kamailio
(examples/kamailio/kamailio.cfg) asks it about each caller over HTTP; sipp
places the calls and answers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reputation.app import create_app
from reputation.settings import Settings
from tests import sip
from tests.conftest import CreateApiKey, FakeClock, bearer, settings_with_auth
from tests.tools import require

APPEAL_URL = "https://reputation.example.vn/appeals"
BLOCKED = "+84912345678"  # ten reporters: block
WARNED = "0987654321"  # three reporters: warn
CLEAN = "+84911111111"  # nobody reported it: allow
# What the switch does when the service cannot answer (examples/kamailio/kamailio.cfg).
LOOKUP_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    return require(
        "kamailio kamailio-utils-modules kamailio-extra-modules sip-tester",
        "kamailio",
        "sipp",
        files=(
            "/usr/lib/*/kamailio/modules/http_client.so",
            "/usr/lib/*/kamailio/modules/jansson.so",
        ),
    )


@dataclass
class Service:
    """The service under test, and the lookups it was asked (number, query)."""

    server: TestServer
    lookup_key: str
    headers: dict[str, str]
    asked: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{sip.HOST}:{self.server.port}"

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, headers=self.headers, **kwargs) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json()


@pytest.fixture
async def service(
    settings: Settings, clock: FakeClock, create_api_key: CreateApiKey
) -> AsyncIterator[Service]:
    """The service on a real port, with one blocked and one warned number.

    API keys are checked: the switch sends a ``lookup`` key, as in production.
    """
    asked: list[tuple[str, dict[str, str]]] = []

    @web.middleware
    async def record(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        if request.path.startswith("/v1/numbers/"):
            asked.append((request.match_info.get("number", ""), dict(request.query)))
        return await handler(request)

    admin_key = await create_api_key("admin")
    lookup_key = await create_api_key("lookup", "switch")
    app = create_app(settings_with_auth(settings), clock=clock)
    app.middlewares.append(record)
    server = TestServer(app, host=sip.HOST)
    await server.start_server()
    running = Service(server, lookup_key, bearer(admin_key), asked)
    try:
        async with asyncio.timeout(15), aiohttp.ClientSession() as session:
            # Ready: the Bloom filter is loaded and PostgreSQL answers.
            while True:
                async with session.get(running.url + "/readyz") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.05)
        for number, reporters in ((BLOCKED, 10), (WARNED, 3)):
            for i in range(reporters):
                await running.call(
                    "POST", "/v1/reports", json={"number": number, "reporter": f"09870000{i:02d}"}
                )
        assert (await running.call("GET", "/readyz"))["status"] == "ready"
        asked.clear()
        yield running
    finally:
        await server.close()


@dataclass(frozen=True)
class Switch:
    proxy_port: int
    callee_port: int
    workdir: Path
    sipp: str

    async def call(self, caller: str, scenario: str, pai: str = sip.NO_PAI) -> sip.Calls:
        return await sip.place_calls(
            self.sipp,
            self.workdir / "caller",
            scenario=scenario,
            proxy_port=self.proxy_port,
            callee_port=self.callee_port,
            callers=[caller],
            pai=pai,
            timeout_s=15,
        )


@contextlib.asynccontextmanager
async def switch(
    tools: dict[str, str], workdir: Path, service_url: str, api_key: str | None = None
) -> AsyncIterator[Switch]:
    """A sipp callee behind the example Kamailio, which asks ``service_url``."""
    async with (
        sip.callee(tools["sipp"], workdir) as callee_port,
        sip.kamailio(
            tools["kamailio"],
            workdir,
            service_url=service_url,
            appeal_url=APPEAL_URL,
            workers=2,
            api_key=api_key,
        ) as proxy_port,
    ):
        yield Switch(proxy_port, callee_port, workdir, tools["sipp"])


def header_seen(calls: sip.Calls, status: str, header: str) -> list[str]:
    """The values of ``header`` logged by the caller scenario for answers ``status``."""
    marker = f" {status} {header}:"
    return [line.split(marker, 1)[1].strip() for line in calls.log.splitlines() if marker in line]


def assert_completed(calls: sip.Calls) -> None:
    assert calls.returncode == 0, f"sipp failed ({calls.returncode}):\n{calls.errors[-2000:]}"
    assert len(calls.delays_ms) == 1


# Where carriers put the caller's number and the STIR/SHAKEN verification result.
IDENTITIES = [
    # A tel URI parameter inside a SIP URI with user=phone (3GPP TS 24.229).
    f"<sip:{BLOCKED};verstat=TN-Validation-Passed@carrier.vn;user=phone>",
    # A tel URI, as IMS cores send it.
    f"<tel:{BLOCKED};verstat=TN-Validation-Passed>",
    # A SIP URI parameter, as some equipment sends it.
    f'"Cong an" <sip:{BLOCKED}@carrier.vn;user=phone;verstat=TN-Validation-Passed>',
]


@pytest.mark.parametrize("identity", IDENTITIES)
async def test_reported_caller_is_rejected_with_608_and_where_to_appeal(
    tools: dict[str, str], tmp_path: Path, service: Service, identity: str
) -> None:
    answer = await service.call("GET", "/v1/numbers/" + BLOCKED.replace("+", "%2B"))
    assert answer["verdict"] == "block"
    appeal = answer.get("appeal_url") or APPEAL_URL
    service.asked.clear()
    async with switch(tools, tmp_path, service.url, service.lookup_key) as sw:
        # The network-asserted identity is the caller, whatever the From header says.
        calls = await sw.call(CLEAN, "rejected.xml", pai=f"P-Asserted-Identity: {identity}")
    assert_completed(calls)
    assert header_seen(calls, "608", "Call-Info") == [f"<{appeal}>;purpose=jwscard"]
    assert service.asked == [(BLOCKED, {"verstat": "TN-Validation-Passed"})]


async def test_clean_caller_reaches_the_callee(
    tools: dict[str, str], tmp_path: Path, service: Service
) -> None:
    async with switch(tools, tmp_path, service.url, service.lookup_key) as sw:
        calls = await sw.call(CLEAN, "caller.xml")
    assert_completed(calls)
    assert header_seen(calls, "200", "X-Reputation") == ["allow"]
    assert service.asked == [(CLEAN, {})]


async def test_warned_caller_reaches_the_callee_with_a_warning(
    tools: dict[str, str], tmp_path: Path, service: Service
) -> None:
    # A caller cannot bring its own verdict: the proxy drops it.
    async with switch(tools, tmp_path, service.url, service.lookup_key) as sw:
        calls = await sw.call(WARNED, "caller.xml", pai="X-Reputation: allow")
    assert_completed(calls)
    assert header_seen(calls, "200", "X-Reputation") == ["warn;reporters=3"]


async def test_stopped_service_lets_calls_through_at_once(
    tools: dict[str, str], tmp_path: Path, service: Service
) -> None:
    async with switch(tools, tmp_path, service.url, service.lookup_key) as sw:
        await service.server.close()
        calls = await sw.call(BLOCKED, "caller.xml")
    assert_completed(calls)
    assert header_seen(calls, "200", "X-Reputation") == ["unknown"]
    # Connection refused is known at once: no timeout is waited for.
    assert calls.delays_ms[0] < LOOKUP_TIMEOUT_S * 1000 / 2


async def test_hung_service_lets_calls_through_after_the_timeout(
    tools: dict[str, str], tmp_path: Path
) -> None:
    # A service that accepts connections and never answers.
    with socket.create_server((sip.HOST, 0)) as hung:
        url = f"http://{sip.HOST}:{hung.getsockname()[1]}"
        async with switch(tools, tmp_path, url) as sw:
            calls = await sw.call(BLOCKED, "caller.xml")
    assert_completed(calls)
    assert header_seen(calls, "200", "X-Reputation") == ["unknown"]
    assert LOOKUP_TIMEOUT_S * 1000 * 0.9 <= calls.delays_ms[0] < LOOKUP_TIMEOUT_S * 1000 * 3


async def test_a_refused_api_key_lets_calls_through_and_is_logged(
    tools: dict[str, str], tmp_path: Path, service: Service
) -> None:
    async with switch(tools, tmp_path, service.url, "not-a-key") as sw:
        calls = await sw.call(BLOCKED, "caller.xml")
    assert_completed(calls)
    assert header_seen(calls, "200", "X-Reputation") == ["unknown"]
    log = (tmp_path / "kamailio.log").read_text()
    assert "reputation lookup failed (status 401)" in log
