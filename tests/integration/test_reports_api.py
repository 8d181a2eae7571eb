"""Report intake: idempotent replays, bad input refused without a trace."""

from __future__ import annotations

from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from reputation.settings import Settings


async def table_counts(settings: Settings) -> tuple[int, int, int]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM numbers) AS n, (SELECT count(*) FROM reports) AS r,"
            " (SELECT count(*) FROM changes) AS c"
        )
        return row["n"], row["r"], row["c"]
    finally:
        await conn.close()


async def test_idempotency_key_replay_returns_the_first_report(client: TestClient) -> None:
    body = {"number": "0912345678", "reporter": "0987000001", "channel": "app"}
    headers = {"Idempotency-Key": "report-1"}
    first = await client.post("/v1/reports", json=body, headers=headers)
    again = await client.post("/v1/reports", json=body, headers=headers)
    assert first.status == 201
    assert again.status == 200
    first_body, again_body = await first.json(), await again.json()
    assert again_body["report"]["id"] == first_body["report"]["id"]
    assert again_body["number"]["reports"] == 1


async def test_idempotency_key_with_another_body_is_a_conflict(
    client: TestClient, settings: Settings
) -> None:
    headers = {"Idempotency-Key": "report-1"}
    await client.post("/v1/reports", json={"number": "0912345678"}, headers=headers)
    before = await table_counts(settings)
    response = await client.post("/v1/reports", json={"number": "0987654321"}, headers=headers)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "idempotency_conflict"
    assert await table_counts(settings) == before


LOOKUP_ERRORS = [
    (" ", "empty"),
    ("0" * 65, "input_too_long"),
    ("+8491234567890123", "too_long"),
    ("0912345678a", "invalid_characters"),
    ("0912345678, 0987654321", "multiple_numbers"),
    ("156", "short_code"),
    ("VIETTEL", "alphanumeric_sender_id"),
    ("+84123", "short_code"),
    ("0212345", "short_code"),
    ("+1 555 0100 000", "invalid_number"),
]


@pytest.mark.parametrize(("written", "code"), LOOKUP_ERRORS)
async def test_each_lookup_error_code(client: TestClient, written: str, code: str) -> None:
    response = await client.get("/v1/numbers/" + quote(written, safe=""))
    assert response.status == 400
    assert response.content_type == "application/json"
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error["message"]


@pytest.mark.parametrize(("written", "code"), LOOKUP_ERRORS)
async def test_bad_reports_change_nothing(
    client: TestClient, settings: Settings, written: str, code: str
) -> None:
    before = await table_counts(settings)
    response = await client.post("/v1/reports", json={"number": written})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error["field"] == "number"
    assert await table_counts(settings) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"number": "0912345678", "channel": "fax"}, "invalid_channel"),
        ({"number": "0912345678", "category": "rude"}, "invalid_category"),
        ({"number": "0912345678", "content": "x" * 1001}, "content_too_long"),
        ({"number": "0912345678", "content": "a\u0000b"}, "invalid_field"),
        ({"number": "0912345678", "reporter": "0912345678"}, "self_report"),
        ({"number": 912345678}, "invalid_field"),
        ({"reporter": "0912345678"}, "missing_field"),
        ({"number": "0912345678", "reporter": "abc"}, "alphanumeric_sender_id"),
    ],
)
async def test_invalid_report_fields(
    client: TestClient, settings: Settings, body: dict[str, object], code: str
) -> None:
    before = await table_counts(settings)
    response = await client.post("/v1/reports", json=body)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code
    assert await table_counts(settings) == before


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"x"', b"\xff\xfe", b"null"])
async def test_body_that_is_not_a_json_object(client: TestClient, raw: bytes) -> None:
    response = await client.post(
        "/v1/reports", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"


async def test_unknown_route_and_method_are_json_errors(client: TestClient) -> None:
    missing = await client.get("/v1/nothing")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    wrong = await client.delete("/v1/reports")
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"


async def test_oversized_body_is_refused(client: TestClient, settings: Settings) -> None:
    before = await table_counts(settings)
    big = {"number": "0912345678", "content": "x" * 100_000}
    response = await client.post("/v1/reports", json=big)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert await table_counts(settings) == before


async def test_reporter_number_is_not_stored_in_clear(
    client: TestClient, settings: Settings
) -> None:
    await client.post("/v1/reports", json={"number": "0912345678", "reporter": "0987000001"})
    conn = await asyncpg.connect(settings.database_url)
    try:
        dump = await conn.fetchval(
            "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM reports) t"
        ) + await conn.fetchval("SELECT string_agg(t::text, ' ') FROM number_reporters t")
    finally:
        await conn.close()
    assert "987000001" not in dump
