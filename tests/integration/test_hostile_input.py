"""What anyone on the internet will send: each gets a coded JSON error or is kept verbatim.

SQL injection in every field, invalid UTF-8, JSON that is not an object or is
nested without end, numbers as JSON numbers, header injection, oversized
content. Nothing here may answer 500, and nothing refused may change the data.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from reputation.settings import Settings

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE numbers; --",
    "0912345678'; DELETE FROM reports; --",
    "0912345678' OR 1=1 --",
    "1; SELECT pg_sleep(3)",
    "0912345678); SELECT pg_sleep(3); --",
    '" OR ""="',
    "\\'; --",
    "$1",
    "0912345678 UNION SELECT e164 FROM numbers",
    "%' AND 1=0 UNION SELECT NULL--",
    "0912345678\x00",
]


async def snapshot(settings: Settings) -> dict[str, Any]:
    """Every table's row count, and the list of tables itself."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        tables = [
            row[0]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
    finally:
        await conn.close()


def assert_coded_error(status: int, body: dict[str, Any], expected_status: int = 400) -> str:
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    assert body["error"]["message"]
    code: str = body["error"]["code"]
    return code


async def test_sql_injection_in_every_field_changes_nothing(
    client: TestClient, settings: Settings
) -> None:
    await client.post("/v1/reports", json={"number": "0912345678", "reporter": "0987000001"})
    before = await snapshot(settings)
    started = time.monotonic()
    for attack in INJECTIONS:
        response = await client.get("/v1/numbers/" + quote(attack, safe=""))
        assert_coded_error(response.status, await response.json())

        batch = await client.post("/v1/lookups", json={"numbers": [attack, "0912345678"]})
        results = (await batch.json())["results"]
        assert batch.status == 200
        assert "error" in results[0]
        assert results[1]["reports"] == 1

        for field in ("number", "reporter", "channel", "category"):
            body = {"number": "0912345678", field: attack}
            response = await client.post("/v1/reports", json=body)
            code = assert_coded_error(response.status, await response.json())
            assert code != "internal_error"

        response = await client.get("/healthz?" + quote(attack, safe="=&"))
        assert response.status == 200
    assert time.monotonic() - started < 10  # no pg_sleep ran
    assert await snapshot(settings) == before


async def test_free_text_fields_keep_injections_verbatim(
    client: TestClient, settings: Settings
) -> None:
    """Content and Idempotency-Key are free text: stored as sent, never executed."""
    sent = []
    for i, attack in enumerate(a for a in INJECTIONS if "\x00" not in a):
        response = await client.post(
            "/v1/reports",
            json={"number": "0912345678", "content": f"{attack} <b>{i}</b>"},
            headers={"Idempotency-Key": attack},
        )
        assert response.status == 201, await response.text()
        sent.append((attack, f"{attack} <b>{i}</b>"))
    conn = await asyncpg.connect(settings.database_url)
    try:
        stored = await conn.fetch("SELECT idempotency_key, content FROM reports ORDER BY id")
    finally:
        await conn.close()
    assert [(r["idempotency_key"], r["content"]) for r in stored] == sent
    snap = await snapshot(settings)
    assert snap["numbers"] == 1
    assert snap["reports"] == len(sent)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\xfd",
        b'{"number": "0912\xff345678"}',
        b'{"number": "0912345678", "content": "\xc3\x28"}',  # a broken two-byte sequence
        b'{"number": "0912345678", "content": "\xed\xa0\x80"}',  # an encoded surrogate
        b"\xef\xbb\xbf" + b'{"number": "0912345678"',  # BOM, then cut off
    ],
)
async def test_invalid_utf8_bodies(client: TestClient, settings: Settings, body: bytes) -> None:
    before = await snapshot(settings)
    for path in ("/v1/reports", "/v1/lookups"):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert assert_coded_error(response.status, await response.json()) == "invalid_json"
    assert await snapshot(settings) == before


async def test_lone_surrogates_in_json_strings(client: TestClient, settings: Settings) -> None:
    before = await snapshot(settings)
    for field in ("number", "reporter", "content", "category"):
        body = '{"number": "0912345678", "' + field + '": "abc\\ud800def"}'
        response = await client.post(
            "/v1/reports", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400
    batch = await client.post(
        "/v1/lookups",
        data='{"numbers": ["\\udfff0912345678"]}',
        headers={"Content-Type": "application/json"},
    )
    assert batch.status == 200
    assert (await batch.json())["results"][0]["error"]["code"]
    assert await snapshot(settings) == before


async def test_invalid_utf8_and_odd_bytes_in_the_url(client: TestClient) -> None:
    for path in ("%FF%FE", "0912%C3%28345678", "%00", "%ED%A0%80", "..%2F..%2Fetc%2Fpasswd"):
        response = await client.get("/v1/numbers/" + path)
        assert_coded_error(response.status, await response.json())


@pytest.mark.parametrize("body", ["[]", '"0912345678"', "912345678", "null", "true", "[{}]", ""])
async def test_json_that_is_not_an_object(client: TestClient, body: str) -> None:
    for path in ("/v1/reports", "/v1/lookups"):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert assert_coded_error(response.status, await response.json()) == "invalid_json"


async def test_deeply_nested_json(client: TestClient, settings: Settings) -> None:
    before = await snapshot(settings)
    depth = 30_000  # as deep as fits in the body limit
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        for path in ("/v1/reports", "/v1/lookups"):
            response = await client.post(
                path, data=body, headers={"Content-Type": "application/json"}
            )
            assert response.status in (400, 413)
            assert_coded_error(response.status, await response.json(), response.status)
    nested_field = {"number": {"a": [[[["0912345678"]]]]}}
    response = await client.post("/v1/reports", json=nested_field)
    assert assert_coded_error(response.status, await response.json()) == "invalid_field"
    response = await client.post("/v1/lookups", json={"numbers": [[["0912345678"]]]})
    assert response.status == 200
    assert (await response.json())["results"][0]["error"]["code"] == "invalid_field"
    assert await snapshot(settings) == before


async def test_numbers_as_json_numbers(client: TestClient, settings: Settings) -> None:
    before = await snapshot(settings)
    for body in (
        {"number": 912345678},
        {"number": 84912345678},
        {"number": 9.12345678e8},
        {"number": "0912345678", "reporter": 987000001},
        {"number": "0912345678", "content": 12345},
        {"number": "0912345678", "channel": 1},
        {"number": True},
        {"number": ["0912345678"]},
    ):
        response = await client.post("/v1/reports", json=body)
        assert assert_coded_error(response.status, await response.json()) == "invalid_field"
    batch = await client.post(
        "/v1/lookups", json={"numbers": [912345678, 1e308, -1, None, 2**70, "0912345678"]}
    )
    results = (await batch.json())["results"]
    assert [r.get("error", {}).get("code") for r in results] == ["invalid_field"] * 5 + [None]
    assert results[0]["input"] == 912345678  # the input is echoed back as it came
    huge = await client.post(
        "/v1/lookups",
        data='{"numbers": [' + "9" * 5000 + "]}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status in (200, 400)  # Python reads big integers; never a 500
    assert await snapshot(settings) == before


async def test_a_report_with_a_megabyte_of_content(client: TestClient, settings: Settings) -> None:
    before = await snapshot(settings)
    megabyte = json.dumps({"number": "0912345678", "content": "lừa đảo " * 100_000}).encode()
    assert len(megabyte) > 1_000_000
    response = await client.post(
        "/v1/reports", data=io.BytesIO(megabyte), headers={"Content-Type": "application/json"}
    )
    assert assert_coded_error(response.status, await response.json(), 413) == "payload_too_large"
    long = await client.post("/v1/reports", json={"number": "0912345678", "content": "x" * 1001})
    assert assert_coded_error(long.status, await long.json()) == "content_too_long"
    assert await snapshot(settings) == before
    emoji = "🚨" * 1000  # 1000 characters, 4000 bytes: allowed
    accepted = await client.post("/v1/reports", json={"number": "0912345678", "content": emoji})
    assert accepted.status == 201
    assert (await accepted.json())["report"]["content"] == emoji


async def raw_request(client: TestClient, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            body = await reader.readexactly(int(headers.get("Content-Length", "0")))
        return int(lines[0].split(" ")[1]), headers, body
    finally:
        writer.close()


async def test_header_injection(client: TestClient, admin_key: str) -> None:
    auth = f"Authorization: Bearer {admin_key}\r\n".encode()
    # A request id carrying a line break, markup or a phone number is not echoed.
    for given in (b"abc\rX-Injected: 1", b"<script>", b"0912345678", b"a" * 65, "khóa".encode()):
        status, headers, _ = await raw_request(
            client, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + given + b"\r\n\r\n"
        )
        if status == 200:
            assert headers["X-Request-Id"].encode() != given
            assert "X-Injected" not in headers
            assert len(headers["X-Request-Id"]) == 32
        else:
            assert status == 400  # the HTTP parser refuses a bare CR
    # Bare line feeds and CRs cannot smuggle a header or a second request.
    for smuggled in (
        b"GET /healthz HTTP/1.1\r\nHost: x\nX-Injected: 1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\rb\r\n\r\n",
        b"POST /v1/reports HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ):
        status, headers, _ = await raw_request(client, smuggled)
        assert status == 400
        assert "X-Injected" not in headers
    # Header values in other encodings reach handlers as text and get coded errors.
    status, _, body = await raw_request(
        client,
        b"POST /v1/reports HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/json\r\n"
        b"Idempotency-Key: " + b"k" * 300 + b"\r\nContent-Length: 27\r\n\r\n"
        b'{"number": "0912345678"}   ',
    )
    assert status == 400
    assert json.loads(body)["error"]["code"] == "invalid_idempotency_key"
    status, _, body = await raw_request(
        client,
        b"POST /v1/reports HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/json\r\n"
        b"Idempotency-Key: \xff\xfe\r\nContent-Length: 24\r\n\r\n"
        b'{"number": "0912345678"}',
    )
    assert status == 400
    assert json.loads(body)["error"]["code"] == "invalid_idempotency_key"
