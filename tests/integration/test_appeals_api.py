"""Appeals from a number's owner, the appeal URL of lookups, and the analysts' decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from reputation.app import create_app
from reputation.appkeys import SWEEPER
from reputation.settings import Settings
from tests.conftest import FakeClock, wait_ready
from tests.integration.test_evidence_api import lookup, report, reporter_number
from tests.integration.test_lifecycle import metric_value
from tests.integration.test_review_api import history

NUMBER = "+84912345678"
APPEAL = {"number": "0912 345 678", "contact": "chu.so@example.vn", "reason": "Số của tôi"}


async def flagged(client: TestClient, reporters: int = 10) -> None:
    for i in range(reporters):
        await report(client, NUMBER, reporter_number(i))


async def appeal_without_a_key(client: TestClient, body: dict[str, Any]) -> aiohttp.ClientResponse:
    """The owner of a number has no API key: a plain HTTP client, no Authorization."""
    async with aiohttp.ClientSession() as session:
        response = await session.post(client.make_url("/v1/appeals"), json=body)
        await response.read()
        return response


async def test_an_owner_appeals_without_an_api_key_and_a_retry_is_safe(
    client: TestClient,
) -> None:
    await flagged(client)
    first = await appeal_without_a_key(client, APPEAL)
    assert first.status == 201
    appeal = (await first.json())["appeal"]
    assert (appeal["number"], appeal["status"], appeal["submitted_by"]) == (
        NUMBER,
        "open",
        "anonymous",
    )
    again = await appeal_without_a_key(client, APPEAL)
    assert again.status == 200
    assert (await again.json())["appeal"]["id"] == appeal["id"]
    other = await appeal_without_a_key(client, {**APPEAL, "reason": "another reason"})
    assert other.status == 409
    error = (await other.json())["error"]
    assert (error["code"], error["appeal_id"]) == ("appeal_already_open", appeal["id"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**APPEAL, "number": "0987654321"}, 404, "number_not_listed"),
        ({**APPEAL, "number": "156"}, 400, "short_code"),
        ({"contact": "x", "reason": "y"}, 400, "missing_field"),
        ({**APPEAL, "contact": ""}, 400, "missing_field"),
        ({**APPEAL, "reason": "r" * 2001}, 400, "text_too_long"),
        ({**APPEAL, "contact": 12}, 400, "invalid_field"),
    ],
)
async def test_bad_appeals_change_nothing(
    client: TestClient, body: dict[str, Any], status: int, code: str
) -> None:
    await flagged(client, 1)
    response = await client.post("/v1/appeals", json=body)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    listed = await (await client.get("/v1/appeals")).json()
    assert listed["appeals"] == []


async def test_open_appeals_show_in_the_queue_and_an_accepted_one_clears_the_number(
    client: TestClient, clock: FakeClock
) -> None:
    await flagged(client)
    await report(client, "+84987654321", reporter_number(99))
    appeal = (await (await client.post("/v1/appeals", json=APPEAL)).json())["appeal"]

    queue = await (await client.get("/v1/numbers", params={"appeal": "open"})).json()
    assert [(n["number"], n["open_appeal_id"]) for n in queue["numbers"]] == [
        (NUMBER, appeal["id"])
    ]
    await client.app[SWEEPER].run_once()
    scrape = await (await client.get("/metrics")).text()
    assert metric_value(scrape, "reputation_open_appeals") == 1
    listed = await (await client.get("/v1/appeals", params={"status": "open"})).json()
    assert [a["id"] for a in listed["appeals"]] == [appeal["id"]]

    clock.advance(hours=3)
    response = await client.put(
        f"/v1/appeals/{appeal['id']}",
        json={"status": "accepted", "note": "Chủ thuê bao đã chứng minh"},
    )
    assert response.status == 200
    decided = await response.json()
    assert decided["appeal"]["status"] == "accepted"
    assert decided["appeal"]["resolved_by"] == "test suite"
    assert decided["number"]["status"] == "cleared"
    assert decided["change"]["to"] == "cleared"
    assert (await lookup(client, NUMBER))["verdict"] == "allow"
    trail = [(e["action"], e["from"], e["to"]) for e in await history(client, NUMBER)]
    assert trail == [
        ("appeal", None, "open"),
        ("appeal", "open", "accepted"),
        ("status", "reported", "cleared"),
    ]
    queue = await (await client.get("/v1/numbers", params={"appeal": "open"})).json()
    assert queue["numbers"] == []
    scrape = await (await client.get("/metrics")).text()
    assert metric_value(scrape, "reputation_open_appeals") == 0
    assert metric_value(scrape, 'reputation_appeals_total{outcome="accepted"}') == 1

    again = await client.put(
        f"/v1/appeals/{appeal['id']}", json={"status": "rejected", "note": "x"}
    )
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "appeal_resolved"
    # The owner may appeal again later: a new appeal, not the closed one.
    reopened = await client.post("/v1/appeals", json=APPEAL)
    assert reopened.status == 201
    assert (await reopened.json())["appeal"]["id"] != appeal["id"]


async def test_a_rejected_appeal_leaves_the_number_as_it_was(client: TestClient) -> None:
    await flagged(client)
    appeal = (await (await client.post("/v1/appeals", json=APPEAL)).json())["appeal"]
    response = await client.put(
        f"/v1/appeals/{appeal['id']}", json={"status": "rejected", "note": "reports confirmed"}
    )
    body = await response.json()
    assert (body["number"], body["change"]) == (None, None)
    assert (await lookup(client, NUMBER))["verdict"] == "block"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/appeals/999", {"status": "accepted", "note": "x"}, 404, "appeal_not_found"),
        ("/v1/appeals/99999999999999999999", {"status": "accepted", "note": "x"}, 404,
         "appeal_not_found"),
        ("/v1/appeals/abc", {"status": "accepted", "note": "x"}, 404, "not_found"),
        ("/v1/appeals/1", {"status": "open", "note": "x"}, 400, "invalid_status"),
        ("/v1/appeals/1", {"status": "accepted"}, 400, "missing_field"),
    ],
)  # fmt: skip
async def test_bad_decisions(
    client: TestClient, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    response = await client.put(path, json=body)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_lookups_carry_the_appeal_url_for_flagged_numbers(
    aiohttp_client: Callable[..., Any], settings: Settings, clock: FakeClock
) -> None:
    base = "https://156.example.vn/khieu-nai"
    app = create_app(dataclasses.replace(settings, appeal_base_url=base), clock=clock)
    client: TestClient = await aiohttp_client(app)
    await wait_ready(client)
    assert (await lookup(client, NUMBER))["appeal_url"] is None  # allow: nothing to appeal
    await flagged(client, 3)
    body = await lookup(client, NUMBER)
    assert body["verdict"] == "warn"
    assert body["appeal_url"] == base + "?number=%2B84912345678"
