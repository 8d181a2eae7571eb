"""Analysts' statuses, their audit trail, and the reports behind a verdict, through the API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from reputation.constants import STATUSES
from reputation.settings import Settings
from tests.conftest import CreateApiKey, FakeClock, bearer
from tests.integration.test_evidence_api import fetch, lookup, report, reporter_number
from tests.integration.test_lifecycle import metric_value

NUMBER = "+84912345678"


async def set_status(
    client: TestClient, number: str, status: str, note: str = "checked", **kwargs: Any
) -> dict[str, Any]:
    response = await client.put(
        f"/v1/numbers/{number}/status", json={"status": status, "note": note}, **kwargs
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def new_key(client: TestClient, create_api_key: CreateApiKey, role: str, name: str) -> str:
    """A key of ``role``, once the running node knows it (keys reach nodes by NOTIFY)."""
    key = await create_api_key(role, name)
    async with asyncio.timeout(10):
        while (await client.get("/v1/protected", headers=bearer(key))).status == 401:  # noqa: ASYNC110 (polls HTTP)
            await asyncio.sleep(0.01)
    return key


async def history(client: TestClient, number: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/numbers/{number}/history")
    assert response.status == 200, await response.text()
    entries: list[dict[str, Any]] = (await response.json())["history"]
    return entries


async def reported_by(client: TestClient, count: int, first: int = 0) -> None:
    for i in range(first, first + count):
        await report(client, NUMBER, reporter_number(i))


# The verdict of a number reported by ten people, in each status.
VERDICT_IN = {"reported": "block", "confirmed": "block", "cleared": "allow", "allowlisted": "allow"}


@pytest.mark.parametrize("before", STATUSES)
@pytest.mark.parametrize("after", STATUSES)
async def test_each_status_transition_and_its_audit_row(
    client: TestClient, settings: Settings, clock: FakeClock, before: str, after: str
) -> None:
    await reported_by(client, 10)
    if before != "reported":
        await set_status(client, NUMBER, before, note=f"to {before}")
    clock.advance(hours=1)
    scrape = await (await client.get("/metrics")).text()
    sample = f'reputation_status_changes_total{{from_status="{before}",to_status="{after}"}}'
    counted_before = metric_value(scrape, sample)

    body = await set_status(client, NUMBER, after, note="Đã xác minh với nhà mạng")
    assert body["number"]["status"] == after
    assert body["number"]["verdict"] == VERDICT_IN[after]
    assert (await lookup(client, NUMBER))["verdict"] == VERDICT_IN[after]
    change = body["change"]
    assert change["action"] == "status"
    assert (change["from"], change["to"]) == (before, after)
    assert change["actor"] == "test suite"  # the name of the API key that made the change
    assert change["note"] == "Đã xác minh với nhà mạng"
    assert change["at"] == clock.now.isoformat()

    trail = await history(client, NUMBER)
    assert trail[-1] == change
    assert len(trail) == (1 if before == "reported" else 2)
    stored = await fetch(settings, "SELECT status, verdict FROM numbers WHERE e164 = $1", NUMBER)
    assert (stored[0]["status"], stored[0]["verdict"]) == (after, VERDICT_IN[after])
    kinds = await fetch(settings, "SELECT kind FROM changes WHERE e164 = $1 ORDER BY seq", NUMBER)
    assert kinds[-1]["kind"] == "status"
    scrape = await (await client.get("/metrics")).text()
    assert metric_value(scrape, sample) == counted_before + 1


async def test_a_cleared_number_stays_allow_for_its_old_reporters_and_moves_for_new_ones(
    client: TestClient, clock: FakeClock
) -> None:
    await reported_by(client, 10)
    assert (await lookup(client, NUMBER))["verdict"] == "block"
    await set_status(client, NUMBER, "cleared", note="Số của ngân hàng, đã xác minh")
    clock.advance(days=2)
    await reported_by(client, 10)  # the same ten people, on a later day
    body = await lookup(client, NUMBER)
    assert (body["verdict"], body["reasons"]) == ("allow", ["cleared"])
    assert body["reports"] == 20
    await reported_by(client, 2, first=10)  # two new people: still allow
    body = await lookup(client, NUMBER)
    assert body["verdict"] == "allow"
    assert body["reasons"] == ["cleared", "reported_after_clearing", "few_reports"]
    await reported_by(client, 1, first=12)  # a third: warn again
    body = await lookup(client, NUMBER)
    assert body["verdict"] == "warn"
    assert body["reasons"] == ["cleared", "reported_after_clearing", "reported_by_several"]
    assert body["status"] == "cleared"

    # Back to "reported": the old reporters' evidence (decayed 2 days) counts again.
    body = await set_status(client, NUMBER, "reported", note="clearing was a mistake")
    assert body["number"]["verdict"] == "block"
    # Cleared again: only people new since this clearing will count.
    await set_status(client, NUMBER, "cleared", note="owner proved it")
    await reported_by(client, 13)
    assert (await lookup(client, NUMBER))["verdict"] == "allow"


async def test_allowlisted_numbers_keep_their_reports_and_are_never_blocked(
    client: TestClient,
) -> None:
    await set_status(client, NUMBER, "allowlisted", note="hotline of a bank")
    await reported_by(client, 15)
    body = await lookup(client, NUMBER)
    assert (body["verdict"], body["reasons"], body["reports"]) == ("allow", ["allowlisted"], 15)
    body = await set_status(client, NUMBER, "reported", note="no longer allowlisted")
    assert body["number"]["verdict"] == "block"


async def test_history_pages_oldest_first(client: TestClient, clock: FakeClock) -> None:
    sequence = ["confirmed", "cleared", "reported", "allowlisted", "confirmed"]
    for status in sequence:
        clock.advance(minutes=1)
        await set_status(client, NUMBER, status, note=f"now {status}")
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(3):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get(f"/v1/numbers/{NUMBER}/history", params=params)).json()
        seen += page["history"]
        cursor = page["next_cursor"]
    assert cursor is None
    assert [e["to"] for e in seen] == sequence
    assert [e["from"] for e in seen] == ["reported", *sequence[:-1]]
    assert [e["at"] for e in seen] == sorted(e["at"] for e in seen)


async def test_an_unreported_number_can_be_confirmed(client: TestClient) -> None:
    body = await set_status(client, "0987654321", "confirmed", note="police list 2026/11")
    assert body["number"]["verdict"] == "block"
    answer = await lookup(client, "0987654321")  # the Bloom filter now knows it
    assert (answer["verdict"], answer["reported"], answer["confidence"]) == ("block", False, 1.0)


async def test_status_changes_are_made_by_analysts_only(
    client: TestClient, create_api_key: CreateApiKey
) -> None:
    analyst = await new_key(client, create_api_key, "analyst", "Lan (analyst)")
    lookup_key = await new_key(client, create_api_key, "lookup", "carrier switch")
    body = await set_status(client, NUMBER, "confirmed", headers=bearer(analyst))
    assert body["change"]["actor"] == "Lan (analyst)"
    refused = await client.put(
        f"/v1/numbers/{NUMBER}/status",
        json={"status": "cleared", "note": "x"},
        headers=bearer(lookup_key),
    )
    assert refused.status == 403
    assert [e["to"] for e in await history(client, NUMBER)] == ["confirmed"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"note": "x"}, "missing_field"),
        ({"status": "blocked", "note": "x"}, "invalid_status"),
        ({"status": 1, "note": "x"}, "invalid_field"),
        ({"status": "confirmed"}, "missing_field"),
        ({"status": "confirmed", "note": "   "}, "missing_field"),
        ({"status": "confirmed", "note": "x" * 1001}, "text_too_long"),
    ],
)
async def test_bad_status_changes_change_nothing(
    client: TestClient, settings: Settings, body: dict[str, Any], code: str
) -> None:
    await report(client, NUMBER, reporter_number(1))
    response = await client.put(f"/v1/numbers/{NUMBER}/status", json=body)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code
    assert await fetch(settings, "SELECT * FROM audit_log") == []
    assert (await lookup(client, NUMBER))["status"] == "reported"


async def test_status_of_an_invalid_number_is_refused(client: TestClient) -> None:
    response = await client.put("/v1/numbers/156/status", json={"status": "confirmed", "note": "x"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "short_code"


async def test_reports_behind_a_verdict_masked_newest_first_paged(
    client: TestClient, settings: Settings
) -> None:
    await report(client, NUMBER, "0987000001", content="Giả danh công an, đòi chuyển tiền")
    await report(client, NUMBER, "0987000001")  # same reporter, same day: kept, not counted
    await report(client, NUMBER, "0987000002", category="impersonation")
    anonymous = await client.post("/v1/reports", json={"number": NUMBER, "channel": "sms"})
    assert anonymous.status == 201

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/v1/numbers/{NUMBER}/reports", params=params)
        assert response.status == 200
        page = await response.json()
        seen += page["reports"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["id"] for r in seen] == sorted((r["id"] for r in seen), reverse=True)
    assert len(seen) == 4
    oldest = seen[-1]
    assert oldest["reporter"] == "+84 98x xxx x01"
    assert oldest["content"] == "Giả danh công an, đòi chuyển tiền"
    assert [r["counted"] for r in reversed(seen)] == [True, False, True, True]
    assert seen[-1]["reporter_id"] == seen[-2]["reporter_id"] != seen[-3]["reporter_id"]
    assert seen[0]["reporter"] is None  # anonymous
    assert seen[0]["reporter_id"].startswith("r-")
    # Nothing in the answer or the database holds a reporter number in clear.
    text = str(seen) + str(await fetch(settings, "SELECT * FROM reports"))
    assert "987000001" not in text


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "1001"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": "WyJxdWV1ZSIsInJlY2VudCIsbnVsbCwiKzg0Il0"}, "invalid_cursor"),  # queue's
    ],
)
async def test_bad_listing_parameters(client: TestClient, query: dict[str, str], code: str) -> None:
    for path in (f"/v1/numbers/{NUMBER}/reports", f"/v1/numbers/{NUMBER}/history"):
        response = await client.get(path, params=query)
        assert response.status == 400, path
        body = await response.json()
        assert body["error"]["code"] == code
        assert body["error"]["field"] in ("limit", "cursor")


async def test_analyst_answers_match_their_openapi_schemas(client: TestClient) -> None:
    """Every answer of the analysts', appeals' and protected numbers' routes, validated."""
    from tests.integration.test_openapi import conforms

    await reported_by(client, 3)
    path = "/v1/numbers/{number}"
    await conforms(await client.get(f"/v1/numbers/{NUMBER}?attestation=C"), "GET", path, 200)
    await conforms(
        await client.put(f"/v1/numbers/{NUMBER}/status", json={"status": "confirmed", "note": "n"}),
        "PUT",
        path + "/status",
        200,
    )
    await conforms(await client.get(f"/v1/numbers/{NUMBER}/history"), "GET", path + "/history", 200)
    await conforms(
        await client.get(f"/v1/numbers/{NUMBER}/reports?limit=2"), "GET", path + "/reports", 200
    )
    for order in ("recent", "reporters", "heat"):
        await conforms(await client.get(f"/v1/numbers?order={order}"), "GET", "/v1/numbers", 200)
    await conforms(await client.get("/v1/numbers?order=x"), "GET", "/v1/numbers", 400)
    appeal = {"number": NUMBER, "contact": "c", "reason": "r"}
    opened = await conforms(
        await client.post("/v1/appeals", json=appeal), "POST", "/v1/appeals", 201
    )
    await conforms(await client.post("/v1/appeals", json=appeal), "POST", "/v1/appeals", 200)
    await conforms(await client.get("/v1/appeals?status=open"), "GET", "/v1/appeals", 200)
    decision = {"status": "accepted", "note": "ok"}
    await conforms(
        await client.put(f"/v1/appeals/{opened['appeal']['id']}", json=decision),
        "PUT",
        "/v1/appeals/{id}",
        200,
    )
    protected = "/v1/protected/{number}"
    await conforms(
        await client.put(f"/v1/protected/{NUMBER}", json={"name": "n"}), "PUT", protected, 201
    )
    await conforms(await client.get("/v1/protected"), "GET", "/v1/protected", 200)
    await conforms(await client.delete(f"/v1/protected/{NUMBER}"), "DELETE", protected, 200)
    await conforms(await client.delete(f"/v1/protected/{NUMBER}"), "DELETE", protected, 404)
