"""A short fuzz run of the whole HTTP API, generated from its OpenAPI description.

Schemathesis reads ``/openapi.json``'s document and, for every operation,
sends valid requests and requests that break the description (wrong types,
missing fields, odd strings, unknown values) to a real node on real
PostgreSQL, with an admin key and, on the SMS webhook, the gateway's
signature. Every answer must be: no 5xx, of a documented status and media
type, valid against its documented schema, and, for every error, the JSON
error shape ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reputation.app import create_app
from reputation.openapi import spec
from reputation.settings import Settings
from reputation.signature import SIGNATURE_HEADER, SIGNED_ROUTES, TIMESTAMP_HEADER, sign
from tests.conftest import TEST_REPORTER_KEY, add_api_key, with_database

# Requests per operation and mode: a short run inside the suite.
EXAMPLES_PER_OPERATION = 40
GATEWAY_SECRET = "fuzz-gateway-secret"

schema = schemathesis.openapi.from_dict(spec())
schema.config.generation.update(
    modes=["positive", "negative"], max_examples=EXAMPLES_PER_OPERATION, deterministic=True
)


@dataclass(frozen=True)
class LiveNode:
    """A node serving on a real port from a thread of its own, for a blocking HTTP client."""

    base_url: str
    admin_key: str
    gateway_key: str


def _run_node(settings: Settings, ready: threading.Event, box: dict[str, Any]) -> None:
    """Serve ``settings`` until ``box["stop"]`` is set (from the test's thread)."""

    async def serve() -> None:
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        box["port"] = server.sockets[0].getsockname()[1]
        box["stop"] = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        ready.set()
        await box["stop"].wait()
        await runner.cleanup()

    asyncio.run(serve())


@pytest.fixture(scope="module")
def live_node(
    postgres_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveNode]:
    name = f"reputation_fuzz_{uuid.uuid4().hex[:10]}"

    async def create() -> tuple[str, str]:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        finally:
            await admin.close()
        url = with_database(postgres_server_url, name)
        admin_key = await add_api_key(url, "admin", "fuzz")
        return admin_key, await add_api_key(url, "sms_gateway", "fuzz gateway")

    async def drop() -> None:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    admin_key, gateway_key = asyncio.run(create())
    settings = Settings(
        database_url=with_database(postgres_server_url, name),
        data_dir=Path(tmp_path_factory.mktemp("fuzz")),
        reporter_key=TEST_REPORTER_KEY,
        bloom_capacity=10_000,
        cache_size=1_000,
        sms_gateway_secret=GATEWAY_SECRET,
        rate_limits="admin=off,sms_gateway=off",
        reporter_rate_limit="off",
        public_rate_limit="off",
    )
    ready = threading.Event()
    box: dict[str, Any] = {}
    thread = threading.Thread(target=_run_node, args=(settings, ready, box), daemon=True)
    thread.start()
    assert ready.wait(30), "the node did not start"
    base_url = f"http://127.0.0.1:{box['port']}"
    deadline = time.monotonic() + 15
    while requests.get(base_url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the node did not get ready"
        time.sleep(0.05)
    try:
        yield LiveNode(base_url, admin_key, gateway_key)
        print("\nfuzzed:", {op: (len(s), sorted(set(s))) for op, s in SENT.items()})
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)
        asyncio.run(drop())


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer is ``{"error": {"code": "...", "message": "..."}}`` in JSON."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None
    found = [v for k, v in response.headers.items() if k.lower() == "content-type"] or [""]
    content_type = found[0][0] if isinstance(found[0], list) else found[0]
    assert content_type.startswith("application/json"), f"error as {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    assert isinstance(body["error"].get("code"), str), body
    assert body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str), body
    return True


SENT: dict[str, list[int]] = defaultdict(list)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_shape,
]


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_the_api_holds_to_its_description(case: Any, live_node: LiveNode) -> None:
    kwargs = case.as_transport_kwargs(
        base_url=live_node.base_url,
        headers={"Authorization": f"Bearer {live_node.admin_key}"},
    )
    if case.path in SIGNED_ROUTES:
        kwargs = signed_by_the_gateway(kwargs, live_node)
    response = requests.request(**kwargs, timeout=30)
    SENT[case.operation.label].append(response.status_code)
    case.validate_response(response, checks=CHECKS)


def signed_by_the_gateway(kwargs: dict[str, Any], node: LiveNode) -> dict[str, Any]:
    """The request with its body fixed as bytes, the gateway's key and its signature."""
    kwargs = dict(kwargs)
    headers = dict(kwargs.get("headers") or {})
    if "json" in kwargs:
        body = json.dumps(kwargs.pop("json")).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        data = kwargs.pop("data", b"") or b""
        body = data if isinstance(data, bytes) else str(data).encode()
    stamp = int(time.time())
    headers["Authorization"] = f"Bearer {node.gateway_key}"
    headers[TIMESTAMP_HEADER] = str(stamp)
    headers[SIGNATURE_HEADER] = sign(GATEWAY_SECRET.encode(), stamp, body)
    kwargs["headers"] = headers
    kwargs["data"] = body
    return kwargs
