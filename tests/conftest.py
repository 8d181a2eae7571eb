"""Shared fixtures: a real PostgreSQL for the session, a fresh database per test.

With ``REPUTATION_TEST_DATABASE_URL`` set, that server is used (the role needs
CREATEDB); otherwise a throwaway embedded PostgreSQL is started for the run.
Each test gets its own database, copied from a migrated template.

Authentication: ``client`` is a node with API keys checked, and its session
sends an ``admin`` key with every request (admin may call everything), so each
test goes through the real key check. ``settings`` itself has authentication
off, explicitly, for nodes that tests build by hand (``create_app(settings)``);
use ``settings_with_auth`` and ``create_api_key`` to build authenticated ones.
Per-reporter and per-address rate limits are off in ``settings`` (tests file
many reports from one reporter); the security tests set their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from reputation.apikeys import SHOWN_KEY_CHARS, key_hash, new_key
from reputation.app import create_app
from reputation.embedded import EmbeddedPostgres
from reputation.migrate import migrate
from reputation.queries import queries
from reputation.settings import Settings
from reputation.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

TEST_REPORTER_KEY = "test-reporter-key"
# Seconds a client in a test waits for an answer: tests check answers, not speed,
# and a loaded machine must not turn into a failure.
TEST_TIMEOUT = 30.0
TEST_GATEWAY_SECRET = "test-gateway-secret"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server for the whole run (an admin URL on it)."""
    given = os.environ.get("REPUTATION_TEST_DATABASE_URL")
    if given:
        yield given
        return
    data_dir = Path(tempfile.mkdtemp(prefix="reputation-test-"))
    data_dir.chmod(0o711)  # the server may run as another user (when tests run as root)
    server = EmbeddedPostgres(data_dir, durable=False)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of the test suite's own, never a shared one.

    For tests that stop and start the server, or that need no foreign
    transaction to hold back the cluster's oldest running transaction id.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="reputation-own-"))
    data_dir.chmod(0o711)  # the server may run as another user (when tests run as root)
    server = EmbeddedPostgres(data_dir, durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def own_database_url(own_postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    """A fresh, migrated database on ``own_postgres`` (restarted first if a test left it down)."""
    if own_postgres.port is None:
        own_postgres.start()
    server_url = own_postgres.dsn()
    name = f"reputation_own_{uuid.uuid4().hex[:12]}"
    admin = await _admin(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield url
    if own_postgres.port is None:
        own_postgres.start()
    admin = await _admin(own_postgres.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url)


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """A database with every migration applied, copied for each test."""
    name = f"reputation_template_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = await _admin(postgres_server_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(postgres_server_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        admin = await _admin(postgres_server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    yield name
    asyncio.run(drop())


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, template: str) -> AsyncIterator[str]:
    """A fresh, migrated database (a copy of ``template``), dropped afterwards."""
    name = f"reputation_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield with_database(server_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(postgres_server_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    async with fresh_database(postgres_server_url, template_database) as url:
        yield url


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def node_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        reporter_key=TEST_REPORTER_KEY,
        bloom_capacity=10_000,
        cache_size=1_000,
        auth=False,
        reporter_rate_limit="off",
        public_rate_limit="off",
    )


def settings_with_auth(settings: Settings, **changes: object) -> Settings:
    """``settings`` with API keys checked (and any other changes)."""
    return dataclasses.replace(settings, auth=True, **changes)  # type: ignore[arg-type]


async def add_api_key(database_url: str, role: str, name: str, rate: str | None = None) -> str:
    """Store a new API key of ``role`` in the database; returns the key itself.

    A node sees a key created while it runs after the NOTIFY reaches it
    (milliseconds); create keys before starting the node to skip that wait.
    """
    key = new_key()
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                queries()["create_api_key"], name, role, key_hash(key), key[:SHOWN_KEY_CHARS], rate
            )
            await conn.execute(queries()["notify_api_keys"])
    finally:
        await conn.close()
    return key


CreateApiKey = Callable[..., Awaitable[str]]


@pytest.fixture
def create_api_key(database_url: str) -> CreateApiKey:
    """``await create_api_key("lookup")`` -> a new key of that role in the test's database."""

    async def create(role: str, name: str | None = None, rate: str | None = None) -> str:
        return await add_api_key(database_url, role, name or f"test {role}", rate)

    return create


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return node_settings(database_url, tmp_path)


@pytest.fixture
def own_settings(own_database_url: str, tmp_path: Path) -> Settings:
    """Settings of a node on a database of ``own_postgres``."""
    return node_settings(own_database_url, tmp_path)


AppFactory = Callable[..., web.Application]


async def wait_ready(client: TestClient) -> None:
    """Wait (at most 15 s) until the node has loaded its Bloom filter and sees Postgres."""
    async with asyncio.timeout(15):
        while (await client.get("/readyz")).status != 200:  # noqa: ASYNC110 (polls HTTP)
            await asyncio.sleep(0.02)


@pytest.fixture
async def admin_key(create_api_key: CreateApiKey) -> str:
    """The admin key that ``client`` sends (for HTTP clients of a test's own)."""
    return await create_api_key("admin", "test suite")


@pytest.fixture
async def client(
    settings: Settings, clock: FakeClock, admin_key: str, aiohttp_client: Callable[..., object]
) -> TestClient:
    """A ready node of the real app, on the test's database, through real HTTP.

    API keys are checked and every request carries ``admin_key`` (override the
    ``Authorization`` header per request to act as another role).
    (``aiohttp_client`` comes last so that the app closes before its database is dropped.)
    """
    app = create_app(settings_with_auth(settings), clock=clock)
    test_client: TestClient = await aiohttp_client(app, headers=bearer(admin_key))  # type: ignore[operator]
    await wait_ready(test_client)
    return test_client


class SmsGateway:
    """The SMS gateway of a test: posts messages to ``/v1/sms/inbound``, keyed and signed."""

    def __init__(self, client: TestClient, key: str, admin_key: str) -> None:
        self.client = client
        self.key = key
        # For the test's other calls (lookups, metrics...) on the same node.
        self.admin = bearer(admin_key)

    async def deliver(self, message: dict[str, Any] | bytes) -> ClientResponse:
        """Deliver ``message`` (or a raw body) as the gateway does: API key and signature."""
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        stamp = int(time.time())
        headers = {
            **bearer(self.key),
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(TEST_GATEWAY_SECRET.encode(), stamp, body),
        }
        return await self.client.post("/v1/sms/inbound", data=body, headers=headers)

    async def post(self, message: dict[str, Any] | bytes) -> tuple[int, dict[str, Any]]:
        """``(status, JSON body)`` of delivering ``message``."""
        response = await self.deliver(message)
        payload: dict[str, Any] = await response.json()
        return response.status, payload


@pytest.fixture
async def sms_gateway(
    aiohttp_client: Callable[..., object],
    settings: Settings,
    clock: FakeClock,
    create_api_key: CreateApiKey,
    admin_key: str,
) -> SmsGateway:
    """A ready node with API keys checked and a gateway secret, and the gateway calling it.

    ``sms_gateway.client`` is the node's HTTP client (it sends no key by itself;
    ``sms_gateway.admin`` holds the headers of an admin key the node knows).
    """
    key = await create_api_key("sms_gateway", "test gateway")
    app = create_app(
        settings_with_auth(settings, sms_gateway_secret=TEST_GATEWAY_SECRET), clock=clock
    )
    test_client: TestClient = await aiohttp_client(app)  # type: ignore[operator]
    await wait_ready(test_client)
    return SmsGateway(test_client, key, admin_key)
