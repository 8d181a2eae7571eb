"""The published list through the real app: private ranges, exports, offline copies, the filter."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from reputation import lists_api
from reputation.app import create_app
from reputation.appkeys import EXPORT_SLOTS, LOOKUPS, SETTINGS, SWEEPER
from reputation.client import ApiError, AsyncClient, Client
from reputation.errors import InvalidNumber
from reputation.listing import ListVersion, published_category, published_count
from reputation.offline import IncompleteExport, OfflineList
from reputation.settings import Settings
from tests.conftest import TEST_TIMEOUT, CreateApiKey, FakeClock, bearer, wait_ready
from tests.integration.test_openapi import conforms

# National destination codes of Vietnamese mobile networks that libphonenumber accepts.
MOBILE_CODES = (
    "32 33 34 35 36 37 38 39 56 58 59 70 76 77 78 79 81 82 83 84 85 86 88 90 91 93 94 96 97 98"
)
CATEGORIES = ["scam", "impersonation", "spam_call", "spam_sms", "telemarketing", "other"]


async def usable_key(
    client: TestClient, create_api_key: CreateApiKey, role: str, rate: str | None = None
) -> str:
    """A new key of ``role``, once the running node knows it (its NOTIFY takes a moment)."""
    key = await create_api_key(role, rate=rate)
    async with asyncio.timeout(5):
        while (await client.get("/v1/ranges", headers=bearer(key))).status == 401:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return key


def base_url(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


def mobile_numbers(count: int, rng: random.Random) -> list[str]:
    """Distinct valid Vietnamese mobile numbers in E.164."""
    codes = MOBILE_CODES.split()
    found: set[str] = set()
    while len(found) < count:
        found.add(f"+84{rng.choice(codes)}{rng.randrange(10**7):07d}")
    return sorted(found)


class Reporter:
    """Files reports through the API, each from a reporter number never used before."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.next_reporter = 0

    async def report(self, number: str, times: int, category: str = "scam") -> None:
        """``times`` reports on one number, one after the other."""
        await self.reports(number, [category] * times)

    async def reports(self, number: str, categories: list[str]) -> None:
        for category in categories:
            self.next_reporter += 1
            response = await self.client.post(
                "/v1/reports",
                json={
                    "number": number,
                    "reporter": f"0987{self.next_reporter:06d}",
                    "category": category,
                },
            )
            assert response.status == 201, await response.text()


async def seed(client: TestClient, rng: random.Random) -> dict[str, int]:
    """Reported numbers at every verdict (distinct reporters by number), many at once."""
    plan: dict[str, int] = {}
    numbers = mobile_numbers(300, rng)
    for i, number in enumerate(numbers):
        plan[number] = rng.choice([1, 2]) if i < 60 else rng.randint(3, 7) if i < 250 else 11
    reporters = [Reporter(client) for _ in plan]
    for i, reporter in enumerate(reporters):
        reporter.next_reporter = i * 100
    await asyncio.gather(
        *(
            reporter.reports(number, [rng.choice(CATEGORIES[:3]) for _ in range(count)])
            for reporter, (number, count) in zip(reporters, plan.items(), strict=True)
        )
    )
    return plan


async def plain_lookups(client: TestClient, numbers: list[str]) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {}
    for start in range(0, len(numbers), 1000):
        response = await client.post("/v1/lookups", json={"numbers": numbers[start : start + 1000]})
        assert response.status == 200
        for answer in (await response.json())["results"]:
            answers[answer["number"]] = answer
    return answers


def expected_entry(answer: dict[str, Any]) -> dict[str, Any]:
    """The published entry a plain lookup answer implies (Python's rules, not the SQL's)."""
    return {
        "number": answer["number"],
        "verdict": answer["verdict"],
        "category": published_category(answer["categories"]),
        "reports": published_count(answer["reports"]),
        "reporters": published_count(answer["reporters"]),
    }


async def export_lines(client: TestClient, query: str = "") -> list[dict[str, Any]]:
    response = await client.get("/v1/export" + query)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/x-ndjson"
    return [json.loads(line) for line in (await response.read()).splitlines()]


async def test_private_lookups_agree_with_the_plain_lookup_on_10k_numbers(
    client: TestClient, create_api_key: CreateApiKey
) -> None:
    rng = random.Random(9)
    plan = await seed(client, rng)
    probes = sorted(set(plan) | set(mobile_numbers(9_800, rng)))[:10_000]
    probes = sorted(set(probes) | set(plan))
    assert len(probes) >= 10_000
    plain = await plain_lookups(client, probes)
    verdicts = {answer["verdict"] for answer in plain.values()}
    assert verdicts == {"allow", "warn", "block"}

    sent: list[str] = []

    async def on_request_start(
        session: object, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        # The role a phone app holds (without the rate limit, which 10k checks would pass).
        lookup_key = await usable_key(client, create_api_key, "lookup", rate="off")
        private = AsyncClient(
            base_url(client), session=session, api_key=lookup_key, timeout=TEST_TIMEOUT
        )
        answers = {number: await private.check_private(number) for number in probes}
        # The issue's own format, 5 characters, for a sample.
        five = {n: await private.check_private(n, prefix_length=5) for n in probes[::10]}

    for number in probes:
        answer = answers[number]
        assert answer.verdict == plain[number]["verdict"], number
        assert answer.listed == (answer.verdict != "allow")
        if answer.listed:
            expected = expected_entry(plain[number])
            assert (answer.category, answer.reports, answer.reporters) == (
                expected["category"],
                expected["reports"],
                expected["reporters"],
            )
        assert five.get(number, answer) == answer
    # Nothing but hash prefixes left this client: no number, no whole hash.
    assert sent
    for url in sent:
        assert re.fullmatch(r"http://[^/]+/v1/ranges(/[0-9a-f]{3,5})?", url), url
    assert len(sent) < len(probes)  # answers are reused within their max-age


async def test_range_answers_are_padded_cacheable_and_described(client: TestClient) -> None:
    reporter = Reporter(client)
    await reporter.report("+84912345678", 4)
    own = hashlib.sha256(b"+84912345678").hexdigest()
    info = await conforms(await client.get("/v1/ranges"), "GET", "/v1/ranges", 200)
    assert info["prefix_length"] == 3  # one listed number: the shortest prefix
    path = "/v1/ranges/{prefix}"
    listed = await client.get("/v1/ranges/" + own[:4])
    body = await conforms(listed, "GET", path, 200)
    assert body["entries"] == [
        {"suffix": own[4:], "verdict": "warn", "category": "scam", "reports": 2, "reporters": 2}
    ]
    empty = await client.get("/v1/ranges/" + ("0000" if own[:4] != "0000" else "1111"))
    assert (await conforms(empty, "GET", path, 200))["entries"] == []
    # The same size whether the range holds a listed number or none.
    assert len(await listed.read()) == len(await empty.read())
    assert listed.headers["Cache-Control"] == "public, max-age=300, no-transform"
    etag = listed.headers["ETag"]
    again = await client.get("/v1/ranges/" + own[:4].upper(), headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    await reporter.report("+84912345678", 1)
    changed = await client.get("/v1/ranges/" + own[:4], headers={"If-None-Match": etag})
    assert changed.status == 200
    assert (await changed.json())["entries"][0]["reports"] == 5


@pytest.mark.parametrize("prefix", ["ab", "abcdef", "abcg1", "%20abc", "-1234", "0x123"])
async def test_bad_prefixes_are_refused(client: TestClient, prefix: str) -> None:
    response = await client.get("/v1/ranges/" + prefix)
    body = await conforms(response, "GET", "/v1/ranges/{prefix}", 400)
    assert body["error"]["code"] == "invalid_prefix"


async def test_full_export_lists_warn_and_block_with_rounded_counts(client: TestClient) -> None:
    rng = random.Random(5)
    plan = await seed(client, rng)
    lines = await export_lines(client)
    header, entries, end = lines[0], lines[1:-1], lines[-1]
    assert header["full"] is True
    assert header["since"] is None
    assert ListVersion.parse(header["version"]) is not None
    assert end == {"end": True, "entries": len(entries)}
    plain = await plain_lookups(client, sorted(plan))
    expected = [expected_entry(a) for a in plain.values() if a["verdict"] != "allow"]
    assert sorted(entries, key=lambda e: e["number"]) == sorted(expected, key=lambda e: e["number"])
    assert {e["verdict"] for e in entries} == {"warn", "block"}


async def test_a_delta_holds_only_what_changed_and_markers_for_what_left(
    client: TestClient, settings: Settings
) -> None:
    reporter = Reporter(client)
    await reporter.report("+84912345678", 3)
    await reporter.report("+84912345679", 3)
    version = (await export_lines(client))[0]["version"]
    assert (await export_lines(client, f"?since={version}"))[1:-1] == []
    await reporter.report("+84912345678", 1)  # 4 reports: still rounded to 2
    await reporter.report("+84987654321", 1)  # reported, not listed
    assert (await export_lines(client, f"?since={version}"))[1:-1] == []
    await reporter.report("+84912345678", 1)  # 5 reports: a published change
    await clear(client, "+84912345679")
    delta = await export_lines(client, f"?since={version}")
    assert delta[0]["full"] is False
    assert delta[0]["since"] == version
    assert sorted(delta[1:-1], key=lambda e: e["number"]) == [
        {"number": "+84912345678", "verdict": "warn", "category": "scam", "reports": 5,
         "reporters": 5},
        {"number": "+84912345679", "deleted": True},
    ]  # fmt: skip
    assert delta[-1] == {"end": True, "entries": 2}


async def clear(client: TestClient, e164: str) -> None:
    """An analyst clears a number, through the API."""
    response = await client.put(
        f"/v1/numbers/{quote(e164, safe='')}/status",
        json={"status": "cleared", "note": "verified innocent"},
    )
    assert response.status == 200, await response.text()


async def test_offline_copy_synced_by_deltas_equals_a_fresh_full_export(
    client: TestClient, tmp_path: Path, admin_key: str, clock: FakeClock
) -> None:
    """Reports, clearings and decay, round after round: deltas keep the copy exact."""
    rng = random.Random(11)
    numbers = mobile_numbers(120, rng)
    reporter = Reporter(client)
    sweeper = client.server.app[SWEEPER]
    seen: dict[str, set[str]] = {"deleted": set(), "block": set(), "warn": set()}
    async with AsyncClient(base_url(client), api_key=admin_key, timeout=TEST_TIMEOUT) as service:
        offline = OfflineList()
        assert await service.sync_offline(offline) == 0
        for round_ in range(8):
            for number in rng.sample(numbers, 20):
                await reporter.report(number, rng.choice([1, 2, 3, 6, 11]), rng.choice(CATEGORIES))
            for number in rng.sample(sorted(offline.entries) or numbers, 2):
                await clear(client, number)
            clock.advance(days=rng.choice([0, 10, 30, 60]))
            await sweeper.run_once()  # stores the verdicts that decay moved
            before = offline.export_lines()
            version = offline.version
            applied = await service.sync_offline(offline)
            fresh = OfflineList()
            await service.sync_offline(fresh, bloom=False)
            assert offline.export_lines() == fresh.export_lines(), round_
            for line in await export_lines(client, f"?since={version}"):
                if "number" in line:
                    seen["deleted" if line.get("deleted") else line["verdict"]].add(line["number"])
            assert applied <= len(numbers)
            assert before != offline.export_lines() or applied == 0
    assert all(seen.values()), seen  # deltas carried entries of both verdicts, and markers
    assert len(offline) > 10
    # The copy answers without the service, after a restart of the app too.
    offline.save(tmp_path / "list.jsonl")
    reloaded = OfflineList.load(tmp_path / "list.jsonl")
    assert reloaded.export_lines() == offline.export_lines()
    assert reloaded.version == offline.version
    await sweeper.run_once()
    plain = await plain_lookups(client, numbers)
    for number in numbers:
        answer = reloaded.check(number)
        assert answer == offline.check(number)
        assert answer.verdict == plain[number]["verdict"], number
        if plain[number]["reported"]:
            assert answer.known is True
    assert reloaded.check("+84388888888").known is False
    assert reloaded.check("038 888 8888") == reloaded.check("+84388888888")
    with pytest.raises(InvalidNumber):
        reloaded.check("156")


async def test_a_change_committed_after_the_export_began_is_in_the_next_delta(
    client: TestClient, settings: Settings
) -> None:
    """Versions follow commits, not the order in which transactions started."""
    reporter = Reporter(client)
    await reporter.report("+84912345678", 3)
    await reporter.report("+84912345679", 3)
    slow = await asyncpg.connect(settings.database_url)
    fast = await asyncpg.connect(settings.database_url)
    try:
        in_flight = slow.transaction()
        await in_flight.start()
        await slow.execute("UPDATE numbers SET verdict = 'block' WHERE e164 = '+84912345678'")
        await fast.execute("UPDATE numbers SET verdict = 'block' WHERE e164 = '+84912345679'")
        before = await export_lines(client)
        verdicts = {e["number"]: e["verdict"] for e in before[1:-1]}
        assert verdicts == {"+84912345678": "warn", "+84912345679": "block"}
        await in_flight.commit()
    finally:
        await slow.close()
        await fast.close()
    delta = await export_lines(client, f"?since={before[0]['version']}")
    changed = {e["number"]: e["verdict"] for e in delta[1:-1]}
    assert changed["+84912345678"] == "block"


@pytest.mark.parametrize(
    ("since", "status", "code"),
    [
        ("abc", 400, "invalid_version"),
        ("", 400, "invalid_version"),
        ("15381", 400, "invalid_version"),
        ("-1:5:", 400, "invalid_version"),
        ("0:0:", 400, "invalid_version"),
        ("20:10:", 400, "invalid_version"),
        ("10:20:25", 400, "invalid_version"),
        ("10:20:15,12", 400, "invalid_version"),
        ("10:20:12,", 400, "invalid_version"),
        ("10:20:12 ", 400, "invalid_version"),
        ("99999999999999999999:99999999999999999999:", 400, "invalid_version"),
        ("1:" + "9" * 1000 + ":", 400, "invalid_version"),
        ("9223372036854775807:9223372036854775807:", 410, "version_unknown"),
    ],
)
async def test_bad_versions_are_refused(
    client: TestClient, since: str, status: int, code: str
) -> None:
    response = await client.get("/v1/export", params={"since": since})
    body = await conforms(response, "GET", "/v1/export", status)
    assert body["error"]["code"] == code


async def test_an_unknown_version_makes_the_client_download_everything(
    client: TestClient, admin_key: str
) -> None:
    await Reporter(client).report("+84912345678", 3)
    async with AsyncClient(base_url(client), api_key=admin_key, timeout=TEST_TIMEOUT) as service:
        offline = OfflineList()
        offline.version = f"{2**62}:{2**62}:"  # from another database
        offline.entries = {"+84900000000": {"verdict": "block"}}
        await service.sync_offline(offline, bloom=False)
        assert [e["number"] for e in offline.export_lines()] == ["+84912345678"]


async def test_exports_wait_for_a_free_slot_then_are_told_to_retry(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists_api, "EXPORT_SLOT_WAIT_SECONDS", 0.05)
    slots = client.server.app[EXPORT_SLOTS]
    taken = 0
    while not slots.locked():
        await slots.acquire()
        taken += 1
    response = await client.get("/v1/export")
    body = await conforms(response, "GET", "/v1/export", 503)
    assert body["error"]["code"] == "export_busy"
    assert response.headers["Retry-After"] == "10"
    for _ in range(taken):
        slots.release()
    assert (await client.get("/v1/export")).status == 200


def test_an_export_cut_short_changes_nothing() -> None:
    offline = OfflineList()
    offline.apply_export(
        [
            b'{"version":10,"since":null,"full":true}\n',
            b'{"number":"+84912345678","verdict":"warn","category":"scam","reports":2,'
            b'"reporters":2}\n',
            b'{"end":true,"entries":1}\n',
        ]
    )
    before = offline.export_lines()
    for cut in (
        [b'{"version":11,"since":10,"full":false}\n', b'{"number":"+84912345678","deleted":true}'],
        [b'{"version":11,"since":10,"full":false}\n', b'{"end":true,"entries":1}\n'],
        [],
    ):
        with pytest.raises(IncompleteExport):
            offline.apply_export(cut)
        assert offline.export_lines() == before
        assert offline.version == 10


@pytest.fixture
def bloom_settings(settings: Settings) -> Settings:
    """A small, loose filter: many false positives to agree on."""
    return Settings(**{**settings.__dict__, "bloom_capacity": 1_000, "bloom_error_rate": 0.05})


async def test_downloaded_filter_answers_like_the_nodes_on_100k_probes(
    aiohttp_client: Callable[..., Any], bloom_settings: Settings, clock: FakeClock
) -> None:
    rng = random.Random(3)
    known = mobile_numbers(6_000, rng)
    conn = await asyncpg.connect(bloom_settings.database_url)
    try:
        await conn.execute("INSERT INTO numbers (e164) SELECT unnest($1::text[])", known[:5_000])
    finally:
        await conn.close()
    client: TestClient = await aiohttp_client(create_app(bloom_settings, clock=clock))
    await wait_ready(client)
    reporter = Reporter(client)
    for number in known[5_000:5_020]:
        await reporter.report(number, 1)  # added to the node's filter as they come

    response = await client.get("/v1/bloom")
    assert response.status == 200
    assert response.content_type == "application/octet-stream"
    data = await response.read()
    header_line, _, bits = data.partition(b"\n")
    header = json.loads(header_line)
    from tests.unit.test_bloom_file import maybe_known

    node_filter = client.server.app[LOOKUPS].filter
    assert node_filter is not None
    assert header["items"] == len(node_filter) > 5_000  # an add that looks known counts none
    probes = known[:5_020] + mobile_numbers(95_000, random.Random(4))
    node = [number in node_filter for number in probes]
    downloaded = [maybe_known(header, bits, number) for number in probes]
    assert downloaded == node
    assert all(downloaded[:5_020])
    assert sum(downloaded[5_020:]) > 50  # false positives too, bit for bit

    etag = response.headers["ETag"]
    assert (await client.get("/v1/bloom", headers={"If-None-Match": etag})).status == 304
    await reporter.report(known[5_500], 1)
    assert (await client.get("/v1/bloom", headers={"If-None-Match": etag})).status == 200


async def test_a_restarted_node_serves_the_same_ranges(
    aiohttp_client: Callable[..., Any], settings: Settings, clock: FakeClock
) -> None:
    rng = random.Random(7)
    first: TestClient = await aiohttp_client(create_app(settings, clock=clock))
    await wait_ready(first)
    plan = await seed(first, rng)
    prefixes = sorted({hashlib.sha256(n.encode()).hexdigest()[:3] for n in plan})
    before = {p: await (await first.get("/v1/ranges/" + p)).read() for p in prefixes}
    await first.close()
    second: TestClient = await aiohttp_client(create_app(settings, clock=clock))
    await wait_ranges(second)
    after = {p: await (await second.get("/v1/ranges/" + p)).read() for p in prefixes}
    assert after == before
    metrics = await (await second.get("/metrics")).text()
    listed = len((await export_lines(second))[1:-1])
    assert listed > 100
    assert f"reputation_range_index_entries {float(listed)}" in metrics


async def wait_ranges(client: TestClient) -> None:
    await wait_ready(client)
    async with asyncio.timeout(10):
        while (await client.get("/v1/ranges")).status != 200:  # noqa: ASYNC110 (polls HTTP)
            await asyncio.sleep(0.02)


async def test_changes_made_elsewhere_reach_the_ranges_within_the_refresh_interval(
    aiohttp_client: Callable[..., Any], settings: Settings, clock: FakeClock
) -> None:
    quick = dataclasses.replace(settings, ranges_refresh_interval=0.05)
    node_a: TestClient = await aiohttp_client(create_app(quick, clock=clock))
    node_b: TestClient = await aiohttp_client(create_app(quick, clock=clock))
    await wait_ranges(node_a)
    await wait_ranges(node_b)
    prefix = hashlib.sha256(b"+84912345678").hexdigest()[:5]

    async def entries(node: TestClient) -> list[dict[str, Any]]:
        body = await (await node.get("/v1/ranges/" + prefix)).json()
        found: list[dict[str, Any]] = body["entries"]
        return found

    async def eventually(node: TestClient, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(5):
            while len(found := await entries(node)) != count:  # noqa: ASYNC110 (polls HTTP)
                await asyncio.sleep(0.02)
        return found

    await Reporter(node_a).report("+84912345678", 3)
    on_a = await entries(node_a)  # at once on the node that took the report
    assert len(on_a) == 1
    assert await eventually(node_b, 1) == on_a
    await clear(node_a, "+84912345678")  # a decision that is not a report: both follow it
    assert await eventually(node_a, 0) == []
    assert await eventually(node_b, 0) == []


def blocking_private_session(url: str, key: str, numbers: list[str]) -> tuple[list[str], int]:
    with Client(url, api_key=key, timeout=TEST_TIMEOUT) as service:
        verdicts = [service.check_private(n).verdict for n in numbers]
        offline = OfflineList()
        service.sync_offline(offline)
        with pytest.raises(ApiError) as refused:
            service.check_private("0912abc")
        assert refused.value.code == "invalid_characters"
        return verdicts, len(offline)


async def test_blocking_client_checks_privately_and_syncs(
    client: TestClient, create_api_key: CreateApiKey
) -> None:
    reporter = Reporter(client)
    await reporter.report("+84912345678", 10)
    await reporter.report("+84912345679", 3)
    verdicts, listed = await asyncio.to_thread(
        blocking_private_session,
        base_url(client),
        await usable_key(client, create_api_key, "lookup"),
        ["0912 345 678", "+84912345679", "0912345670"],
    )
    assert verdicts == ["block", "warn", "allow"]
    assert listed == 2


@pytest.mark.parametrize("path", ["/v1/ranges", "/v1/ranges/abcde", "/v1/export", "/v1/bloom"])
async def test_the_published_list_is_for_lookup_keys(
    client: TestClient, create_api_key: CreateApiKey, path: str
) -> None:
    lookup_key = await usable_key(client, create_api_key, "lookup")
    report_key = await usable_key(client, create_api_key, "report")
    assert (await client.get(path, headers=bearer(lookup_key))).status == 200
    refused = await client.get(path, headers=bearer(report_key))
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"


async def test_a_client_that_leaves_mid_export_frees_its_slot(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:  # a list long enough not to fit in the socket buffers
        await conn.execute(
            "INSERT INTO numbers (e164, verdict) "
            "SELECT '+8490' || lpad(i::text, 7, '0'), 'warn' FROM generate_series(1, 60000) i"
        )
    finally:
        await conn.close()
    monkeypatch.setattr(lists_api, "EXPORT_SLOT_WAIT_SECONDS", 0.5)
    for _ in range(3 * client.server.app[SETTINGS].export_concurrency):
        response = await client.get("/v1/export")
        assert response.status == 200
        await response.content.readline()
        response.close()  # gone before the end
    lines = await export_lines(client)
    assert lines[-1] == {"end": True, "entries": 60000}
