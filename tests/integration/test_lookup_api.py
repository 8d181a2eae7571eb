"""Report, then look up, through the real HTTP app on a real PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

WRITTEN_FORMS = [
    "+84912345678",
    "0912345678",
    "0912 345 678",
    "84-912-345-678",
    "0084912345678",
    "(091) 234.5678",
    "+84 912 345 678",
]


async def report(client: TestClient, number: str, **fields: object) -> dict[str, object]:
    response = await client.post("/v1/reports", json={"number": number, **fields})
    assert response.status == 201, await response.text()
    body: dict[str, object] = await response.json()
    return body


async def lookup(client: TestClient, number: str) -> dict[str, object]:
    response = await client.get("/v1/numbers/" + quote(number, safe=""))
    assert response.status == 200, await response.text()
    body: dict[str, object] = await response.json()
    return body


async def test_unreported_number_is_allowed(client: TestClient) -> None:
    body = await lookup(client, "0987654321")
    assert body["number"] == "+84987654321"
    assert body["reported"] is False
    assert body["verdict"] == "allow"
    assert body["reports"] == 0


@pytest.mark.parametrize("written", WRITTEN_FORMS)
async def test_report_is_seen_in_every_written_form(client: TestClient, written: str) -> None:
    await report(client, written, reporter="0987000001", category="scam", channel="app")
    for form in WRITTEN_FORMS:
        body = await lookup(client, form)
        assert body["number"] == "+84912345678"
        assert body["reported"] is True
        assert body["reports"] == 1
        assert body["reporters"] == 1
        assert body["categories"] == {"scam": 1}
        assert body["status"] == "reported"
        assert body["first_reported_at"] is not None


async def test_report_answer_carries_the_number_after_the_report(client: TestClient) -> None:
    body = await report(client, "0912345678", reporter="0987000001", content="  gọi giả công an ")
    assert body["report"]["number"] == "+84912345678"  # type: ignore[index]
    assert body["report"]["content"] == "gọi giả công an"  # type: ignore[index]
    assert isinstance(body["report"]["id"], int)  # type: ignore[index]
    assert body["number"]["reports"] == 1  # type: ignore[index]


async def test_distinct_reporters_are_counted_once_each(client: TestClient) -> None:
    for _ in range(3):
        await report(client, "0912345678", reporter="0987000001")
    await report(client, "0912345678", reporter="0987000002", category="spam_call")
    body = await lookup(client, "0912345678")
    assert body["reports"] == 4
    assert body["reporters"] == 2
    assert body["categories"] == {"scam": 3, "spam_call": 1}


async def test_verdict_rises_with_distinct_reporters(client: TestClient) -> None:
    verdicts = []
    for i in range(10):
        body = await report(client, "0912345678", reporter=f"09870000{i:02d}")
        verdicts.append(body["number"]["verdict"])  # type: ignore[index]
    assert verdicts[0] == "allow"
    assert verdicts[2] == "warn"
    assert verdicts[9] == "block"
    assert (await lookup(client, "+84912345678"))["verdict"] == "block"


async def test_batch_lookup_keeps_order_and_isolates_bad_entries(client: TestClient) -> None:
    await report(client, "0912345678", reporter="0987000001")
    numbers = ["0912345678", "hello", "0987654321", 12345, "156", "+84912345678"]
    response = await client.post("/v1/lookups", json={"numbers": numbers})
    assert response.status == 200
    results = (await response.json())["results"]
    assert len(results) == len(numbers)
    assert results[0]["number"] == "+84912345678"
    assert results[0]["reported"] is True
    assert results[1] == {
        "input": "hello",
        "error": {"code": "alphanumeric_sender_id", "message": results[1]["error"]["message"]},
    }
    assert results[2]["reported"] is False
    assert results[3]["input"] == 12345
    assert results[3]["error"]["code"] == "invalid_field"
    assert results[4]["error"]["code"] == "short_code"
    assert results[5]["reports"] == 1


async def test_batch_over_the_limit_is_refused(client: TestClient) -> None:
    response = await client.post("/v1/lookups", json={"numbers": ["0912345678"] * 1001})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "batch_too_large"


async def test_lookup_answers_are_utf8_json_with_a_request_id(client: TestClient) -> None:
    for path in ("/v1/numbers/0987654321", "/v1/numbers/%2B84987654321"):
        response = await client.get(path)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert len(response.headers["X-Request-Id"]) == 32
    response = await client.post("/v1/lookups", json={"numbers": ["0987654321"]})
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_batch_answers_equal_single_lookups(client: TestClient) -> None:
    await report(client, "0912345678", reporter="0987000001", category="scam", channel="app")
    numbers = ["0912345678", "+84987654321", "0912 345 678", "", 12]
    response = await client.post("/v1/lookups", json={"numbers": numbers})
    assert response.status == 200
    results = (await response.json())["results"]
    assert results[0] == await lookup(client, "0912345678")
    assert results[1] == await lookup(client, "+84987654321")
    assert results[2] == results[0]
    assert results[3]["input"] == ""
    assert results[3]["error"]["code"] == "empty"
    assert results[4] == {
        "input": 12,
        "error": {"code": "invalid_field", "message": "Each number must be a string."},
    }
