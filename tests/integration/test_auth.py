"""Who may call what: every registered route, every role, through real HTTP.

The route tests read the app's own routes and the roles each handler declares,
so a route added later is covered without touching this file; a route that
declares nothing is admin-only and fails ``test_every_route_declares_its_callers``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from reputation.app import create_app
from reputation.auth import declared_roles, requires
from reputation.constants import ROLES
from reputation.settings import Settings
from reputation.signature import SIGNATURE_HEADER, SIGNED_ROUTES, TIMESTAMP_HEADER, sign
from tests.conftest import CreateApiKey, bearer, settings_with_auth, wait_ready

GATEWAY_SECRET = "test-gateway-secret"
# A value for each path parameter, so that the path matches its route.
SAMPLE_PARAMETERS = {"number": "0912345678", "prefix": "a1b2c", "id": "1"}
# The powers of each role, as the service promises them; routes not listed here
# are checked against what their handlers declare.
PROMISED_ROLES: dict[tuple[str, str], set[str]] = {
    ("GET", "/v1/numbers/{number}"): {"lookup", "analyst", "admin"},
    ("POST", "/v1/lookups"): {"lookup", "analyst", "admin"},
    ("POST", "/v1/reports"): {"report", "analyst", "admin"},
    ("POST", "/v1/sms/inbound"): {"sms_gateway", "admin"},
    ("GET", "/v1/ranges"): {"lookup", "analyst", "admin"},
    ("GET", "/v1/ranges/{prefix}"): {"lookup", "analyst", "admin"},
    ("GET", "/v1/export"): {"lookup", "analyst", "admin"},
    ("GET", "/v1/bloom"): {"lookup", "analyst", "admin"},
    ("GET", "/v1/numbers"): {"analyst", "admin"},
    ("PUT", "/v1/numbers/{number}/status"): {"analyst", "admin"},
    ("GET", "/v1/numbers/{number}/history"): {"analyst", "admin"},
    ("GET", "/v1/numbers/{number}/reports"): {"analyst", "admin"},
    ("GET", "/v1/appeals"): {"analyst", "admin"},
    ("PUT", "/v1/appeals/{id}"): {"analyst", "admin"},
    ("GET", "/v1/protected"): {"analyst", "admin"},
    ("PUT", "/v1/protected/{number}"): {"admin"},
    ("DELETE", "/v1/protected/{number}"): {"admin"},
    # Public: the owner of a flagged number has no key (rate-limited per address).
    ("POST", "/v1/appeals"): set(),
    ("GET", "/healthz"): set(),
    ("GET", "/readyz"): set(),
    ("GET", "/metrics"): set(),
    ("GET", "/"): set(),
    ("GET", "/openapi.json"): set(),
    ("GET", "/docs"): set(),
}
AUTH_CODES = {"missing_api_key", "invalid_api_key", "forbidden"}


def routes_of(app: web.Application) -> list[tuple[str, str, Any]]:
    """``(method, route pattern, handler)`` of every route the app serves."""
    found = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "*":
            continue
        found.append((route.method, resource.canonical, route.handler))
    return found


# Built without starting anything, only to list the routes for parametrisation.
APP_ROUTES = routes_of(create_app(Settings(database_url="postgresql://unused", auth=True)))


def sample_path(pattern: str) -> str:
    names = re.findall(r"{(\w+)(?::[^}]*)?}", pattern)
    missing = [n for n in names if n not in SAMPLE_PARAMETERS]
    if missing:
        pytest.fail(f"give SAMPLE_PARAMETERS a value for {missing} (route {pattern})")
    return re.sub(r"{(\w+)(?::[^}]*)?}", lambda m: SAMPLE_PARAMETERS[m.group(1)], pattern)


def signed(body: bytes) -> dict[str, str]:
    stamp = int(time.time())
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(GATEWAY_SECRET.encode(), stamp, body),
    }


def test_every_route_declares_its_callers() -> None:
    undeclared = [
        f"{method} {pattern}"
        for method, pattern, handler in APP_ROUTES
        if not hasattr(handler, "roles") and not getattr(handler, "public", False)
    ]
    assert not undeclared, f"declare @requires(...) or @public on: {undeclared}"


def test_declared_roles_keep_the_promises() -> None:
    for method, pattern, handler in APP_ROUTES:
        promised = PROMISED_ROLES.get((method, pattern))
        roles = declared_roles(handler)
        if promised is not None:
            assert (roles or set()) == promised, f"{method} {pattern}"
        # The gateway's key opens the signed webhook and nothing else.
        if roles is not None and pattern not in SIGNED_ROUTES:
            assert "sms_gateway" not in roles, f"{method} {pattern}"


@pytest.fixture
async def keys_of_every_role(create_api_key: CreateApiKey) -> dict[str, str]:
    return {role: await create_api_key(role) for role in ROLES}


@pytest.fixture
async def guarded(
    aiohttp_client: Callable[..., Any],
    settings: Settings,
    keys_of_every_role: dict[str, str],
) -> TestClient:
    """A node with keys checked, no default key, and a gateway secret."""
    app = create_app(settings_with_auth(settings, sms_gateway_secret=GATEWAY_SECRET))
    client: TestClient = await aiohttp_client(app)
    await wait_ready(client)
    return client


async def call(
    client: TestClient, method: str, pattern: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any] | None]:
    path = sample_path(pattern)
    request = make_mocked_request(method, path, app=client.app)
    match = await client.app.router.resolve(request)
    assert match.route.resource is not None
    assert match.route.resource.canonical == pattern, (
        f"{path} misses {pattern}: see SAMPLE_PARAMETERS"
    )
    body = b"{}" if method in ("POST", "PUT", "PATCH") else b""
    all_headers = {"Content-Type": "application/json", **signed(body), **headers}
    response = await client.request(method, path, data=body or None, headers=all_headers)
    text = await response.text()
    error = None
    if method != "HEAD" and response.status >= 400:
        assert response.content_type == "application/json", text
        error = json.loads(text)["error"]
    return response.status, error


@pytest.mark.parametrize(
    ("method", "pattern"), [(m, p) for m, p, _ in APP_ROUTES], ids=lambda v: str(v)
)
async def test_each_role_is_allowed_or_refused_on_each_route(
    guarded: TestClient, keys_of_every_role: dict[str, str], method: str, pattern: str
) -> None:
    handler = next(h for m, p, h in APP_ROUTES if (m, p) == (method, pattern))
    roles = declared_roles(handler)

    status, error = await call(guarded, method, pattern, {})
    if roles is None:
        assert status not in (401, 403), f"public {method} {pattern} refused without a key"
    else:
        assert status == 401
        assert error is None or error["code"] == "missing_api_key"

    status, error = await call(guarded, method, pattern, bearer("rep_" + "x" * 43))
    if roles is not None:
        assert status == 401
        assert error is None or error["code"] == "invalid_api_key"

    for role, key in keys_of_every_role.items():
        status, error = await call(guarded, method, pattern, bearer(key))
        if roles is None or role in roles:
            assert status < 500, f"{role} on {method} {pattern}: {status} {error}"
            assert status != 403, f"{role} refused on {method} {pattern}: {error}"
            assert error is None or error["code"] not in AUTH_CODES, f"{role}: {error}"
        else:
            assert status == 403, f"{role} allowed on {method} {pattern}"
            assert error is None or error["code"] == "forbidden"


async def test_refusals_say_why(guarded: TestClient, keys_of_every_role: dict[str, str]) -> None:
    missing = await guarded.get("/v1/numbers/0912345678")
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert (await missing.json())["error"]["code"] == "missing_api_key"

    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "bearer nonsense", "Token x"):
        response = await guarded.get("/v1/numbers/0912345678", headers={"Authorization": header})
        assert response.status == 401, header
        assert (await response.json())["error"]["code"] == "invalid_api_key"

    lowercase_scheme = {"Authorization": "bearer " + keys_of_every_role["lookup"]}
    assert (await guarded.get("/v1/numbers/0912345678", headers=lowercase_scheme)).status == 200

    forbidden = await guarded.post(
        "/v1/reports", json={"number": "0912345678"}, headers=bearer(keys_of_every_role["lookup"])
    )
    assert forbidden.status == 403
    error = (await forbidden.json())["error"]
    assert error["code"] == "forbidden"
    assert "lookup" in error["message"]
    metrics = await (await guarded.get("/metrics")).text()
    assert 'reputation_auth_refused_total{reason="forbidden"} 1.0' in metrics
    assert 'reputation_auth_refused_total{reason="missing_api_key"} 1.0' in metrics


async def test_a_refused_report_changes_nothing(
    guarded: TestClient, keys_of_every_role: dict[str, str], settings: Settings
) -> None:
    for headers in ({}, bearer(keys_of_every_role["lookup"])):
        response = await guarded.post(
            "/v1/reports", json={"number": "0912345678", "reporter": "0987000001"}, headers=headers
        )
        assert response.status in (401, 403)
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM reports") == 0
        assert await conn.fetchval("SELECT count(*) FROM numbers") == 0
    finally:
        await conn.close()


async def test_the_default_client_is_an_admin(client: TestClient) -> None:
    response = await client.post("/v1/reports", json={"number": "0912345678"})
    assert response.status == 201
    ready = await (await client.get("/readyz")).json()
    assert ready["auth"] == "on"


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``reputation`` command, in its own process, as an operator runs it."""
    env = {**os.environ, "REPUTATION_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "reputation", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def poll_until_status(client: TestClient, key: str, status: int, deadline: float) -> float:
    """Seconds until a lookup with ``key`` answers ``status`` (fails past ``deadline`` s)."""
    started = time.monotonic()
    while True:
        response = await client.get("/v1/numbers/0912345678", headers=bearer(key))
        if response.status == status:
            return time.monotonic() - started
        assert time.monotonic() - started < deadline, f"still {response.status}"
        await asyncio.sleep(0.005)


async def test_keys_from_the_command_line(
    aiohttp_client: Callable[..., Any], settings: Settings
) -> None:
    assert settings.database_url is not None
    created = await asyncio.to_thread(
        cli,
        settings.database_url,
        "keys",
        "create",
        "--role",
        "lookup",
        "--name",
        "Carrier X switch",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[-1]
    assert re.fullmatch(r"rep_[A-Za-z0-9_\-]{43}", key)

    node: TestClient = await aiohttp_client(create_app(settings_with_auth(settings)))
    await wait_ready(node)
    assert (await node.get("/v1/numbers/0912345678", headers=bearer(key))).status == 200

    listed = await asyncio.to_thread(cli, settings.database_url, "keys", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["role"], r["name"], r["revoked_at"]) for r in rows] == [
        ("lookup", "Carrier X switch", None)
    ]
    assert key not in listed.stdout
    assert key[8:] not in listed.stdout
    assert key.startswith(rows[0]["key_prefix"])
    table = await asyncio.to_thread(cli, settings.database_url, "keys", "list")
    assert "Carrier X switch" in table.stdout
    assert key not in table.stdout

    conn = await asyncpg.connect(settings.database_url)
    try:
        stored = await conn.fetch("SELECT * FROM api_keys")
    finally:
        await conn.close()
    assert key not in str([dict(r) for r in stored])

    revoked = await asyncio.to_thread(
        cli, settings.database_url, "keys", "revoke", str(rows[0]["id"])
    )
    assert revoked.returncode == 0, revoked.stderr
    await poll_until_status(node, key, 401, deadline=1.0)

    unknown = await asyncio.to_thread(cli, settings.database_url, "keys", "revoke", "999")
    assert unknown.returncode == 1
    bad_rate = await asyncio.to_thread(
        cli, settings.database_url, "keys", "create", "--role", "lookup", "--name", "x",
        "--rate", "fast",
    )  # fmt: skip
    assert bad_rate.returncode == 2
    assert "--rate" in bad_rate.stderr


async def test_revocation_is_seen_by_a_second_node_within_a_second(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    assert settings.database_url is not None
    key = await create_api_key("lookup", "doomed")
    nodes: list[TestClient] = []
    for _ in range(2):
        node: TestClient = await aiohttp_client(create_app(settings_with_auth(settings)))
        await wait_ready(node)
        nodes.append(node)
        assert (await node.get("/v1/numbers/0912345678", headers=bearer(key))).status == 200

    revoked = await asyncio.to_thread(cli, settings.database_url, "keys", "revoke", "1")
    assert revoked.returncode == 0, revoked.stderr
    # The command has committed and exited: each node must refuse the key now.
    delays = await asyncio.gather(*(poll_until_status(n, key, 401, 1.0) for n in nodes))
    assert max(delays) < 1.0


async def test_a_key_created_while_nodes_run_works_at_once(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    node: TestClient = await aiohttp_client(create_app(settings_with_auth(settings)))
    await wait_ready(node)
    key = await create_api_key("lookup")
    assert await poll_until_status(node, key, 200, deadline=1.0) < 1.0


async def test_revocation_without_notifications_still_lands_within_the_refresh_interval(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    """A node whose LISTEN connection died learns of the revocation from its timer."""
    key = await create_api_key("lookup")
    node: TestClient = await aiohttp_client(
        create_app(settings_with_auth(settings, key_refresh_interval=0.5))
    )
    await wait_ready(node)
    conn = await asyncpg.connect(settings.database_url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%api_keys%'"
        )
        assert killed == 1
        # Revoke without NOTIFY: only the timer can tell the node.
        await conn.execute("UPDATE api_keys SET revoked_at = now()")
    finally:
        await conn.close()
    assert await poll_until_status(node, key, 401, deadline=1.0) < 1.0


async def test_authentication_off_only_on_loopback(settings: Settings) -> None:
    for host in ("0.0.0.0", "192.0.2.10", "::", "example.org"):
        with pytest.raises(ValueError, match="loopback"):
            create_app(Settings(database_url=settings.database_url, auth=False, host=host))
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        create_app(Settings(database_url=settings.database_url, auth=False, host=host))


def test_serve_refuses_no_auth_on_a_public_address() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPUTATION_")}
    result = subprocess.run(
        [sys.executable, "-m", "reputation", "serve", "--no-auth", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr


async def test_authentication_off_is_stated_loudly(
    aiohttp_client: Callable[..., Any], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert settings.auth is False
    node: TestClient = await aiohttp_client(create_app(settings))
    await wait_ready(node)
    body = await (await node.get("/readyz")).json()
    assert body["auth"] == "off"
    assert "authentication is off" in body["warning"]
    assert any(
        r.levelname == "WARNING" and "AUTHENTICATION IS OFF" in r.getMessage()
        for r in caplog.records
    )
    assert "reputation_auth_enabled 0.0" in await (await node.get("/metrics")).text()
    # Off means every call goes through without a key.
    assert (await node.post("/v1/reports", json={"number": "0912345678"})).status == 201


def with_sms_route(app: web.Application) -> web.Application:
    """The app, with a stand-in SMS webhook if it has none of its own yet."""
    if any(route.resource.canonical == "/v1/sms/inbound" for route in app.router.routes()):  # type: ignore[union-attr]
        return app

    @requires("sms_gateway")
    async def stand_in(request: web.Request) -> web.Response:
        return web.json_response({"received": len(await request.read())})

    app.router.add_post("/v1/sms/inbound", stand_in)
    return app


SMS_BODY = json.dumps(
    {"message_id": "m-1", "from": "0987000001", "to": "156", "text": "LD 0912345678 lừa đảo"},
    ensure_ascii=False,
).encode()


async def test_the_sms_webhook_needs_the_gateway_signature(
    aiohttp_client: Callable[..., Any], settings: Settings, keys_of_every_role: dict[str, str]
) -> None:
    app = create_app(settings_with_auth(settings, sms_gateway_secret=GATEWAY_SECRET))
    node: TestClient = await aiohttp_client(with_sms_route(app))
    await wait_ready(node)
    gateway = bearer(keys_of_every_role["sms_gateway"])
    json_type = {"Content-Type": "application/json"}

    async def post(headers: dict[str, str], body: bytes = SMS_BODY) -> tuple[int, str | None]:
        response = await node.post(
            "/v1/sms/inbound", data=body, headers={**json_type, **gateway, **headers}
        )
        payload = await response.json()
        return response.status, payload.get("error", {}).get("code")

    assert (await post(signed(SMS_BODY)))[0] == 200
    assert await post({}) == (401, "missing_signature")
    stale = int(time.time()) - 301
    old = {
        TIMESTAMP_HEADER: str(stale),
        SIGNATURE_HEADER: sign(GATEWAY_SECRET.encode(), stale, SMS_BODY),
    }
    assert await post(old) == (401, "stale_signature")
    assert await post(signed(SMS_BODY), SMS_BODY.replace(b"0912345678", b"0912345679")) == (
        401,
        "invalid_signature",
    )
    # The signature does not replace the key: a valid signature without a key is refused.
    response = await node.post(
        "/v1/sms/inbound", data=SMS_BODY, headers={**json_type, **signed(SMS_BODY)}
    )
    assert response.status == 401
    metrics = await (await node.get("/metrics")).text()
    assert 'reputation_auth_refused_total{reason="stale_signature"} 1.0' in metrics


async def test_the_sms_webhook_is_closed_without_a_secret(
    aiohttp_client: Callable[..., Any], settings: Settings, keys_of_every_role: dict[str, str]
) -> None:
    app = create_app(settings_with_auth(settings))
    node: TestClient = await aiohttp_client(with_sms_route(app))
    await wait_ready(node)
    response = await node.post(
        "/v1/sms/inbound",
        data=SMS_BODY,
        headers={**bearer(keys_of_every_role["sms_gateway"]), **signed(SMS_BODY)},
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "60"
    assert (await response.json())["error"]["code"] == "gateway_secret_unset"
