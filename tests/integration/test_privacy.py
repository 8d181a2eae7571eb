"""Reporters' numbers are nowhere in clear: not in any table, not in any log line;
report content is shown to analysts only.

Reports come in through every channel there is: the report API (each channel
value), the SMS webhook (accepted and refused messages, one mentioning its
sender's own number), idempotent replays, and the command line. Then every
table of the database is read whole, as text, and searched for each reporter
number in every way it could be written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from reputation.app import create_app
from reputation.auth import declared_roles
from reputation.constants import CHANNELS, ROLES
from reputation.logs import RedactNumbers, redact_numbers
from reputation.settings import Settings
from tests.conftest import CreateApiKey, SmsGateway, bearer, settings_with_auth, wait_ready

# Reporter numbers (as written) -> the national significant digits they stand for.
API_REPORTERS = {
    "0987 650 001": "987650001",
    "+84987650002": "987650002",
    "84 98 765 0003": "987650003",
    "0084987650004": "987650004",
    "01662650005": "362650005",  # the old 11-digit form of +84362650005
}
SMS_SENDER = "84987650006"
SMS_SELF_REPORTER = "0987650007"
SMS_BAD_SYNTAX_SENDER = "0987650008"
CLI_REPORTER = "0987650009"
ALL_REPORTER_DIGITS = [
    *API_REPORTERS.values(),
    "987650006",
    "987650007",
    "987650008",
    "987650009",
    "1662650005",  # the old form of one of them, written as sent
]
REPORTED = ["0912345678", "0912345679", "0836123456"]
REPORTED_DIGITS = ["912345678", "912345679", "836123456"]
CONTENT_MARKER = "nội dung bí mật 7f3a"


def written_anywhere(digits: str) -> re.Pattern[str]:
    """``digits`` with anything a person or a program might put between them."""
    gap = r"[\s.\-()/\u00a0]?"
    return re.compile(gap.join(digits))


async def every_table_as_text(database_url: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(database_url)
    try:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        ]
        return {t: [r[0] for r in await conn.fetch(f"SELECT t::text FROM {t} t")] for t in tables}
    finally:
        await conn.close()


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reputation", *args],
        env={**os.environ, "REPUTATION_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def until_known(node: TestClient, key: str) -> None:
    """Wait until the node has heard of a key created while it runs (NOTIFY, milliseconds)."""
    async with asyncio.timeout(5):
        while (await node.get("/v1/numbers/0912345678", headers=bearer(key))).status == 401:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def message(message_id: str, text: str, sender: str) -> dict[str, Any]:
    return {"message_id": message_id, "from": sender, "to": "156", "text": text}


async def report_through_every_channel(
    sms_gateway: SmsGateway, settings: Settings, create_api_key: CreateApiKey
) -> None:
    node = sms_gateway.client
    report_key = await create_api_key("report", "app backend")
    await until_known(node, report_key)
    for (written, _), channel in zip(API_REPORTERS.items(), CHANNELS, strict=False):
        for number in REPORTED[:2]:
            body = {
                "number": number,
                "reporter": written,
                "channel": channel,
                "category": "scam",
                "content": f"{CONTENT_MARKER} gọi từ {number}",
            }
            headers = {**bearer(report_key), "Idempotency-Key": f"{channel}-{number}"}
            response = await node.post("/v1/reports", json=body, headers=headers)
            assert response.status == 201, await response.text()
            replay = await node.post("/v1/reports", json=body, headers=headers)
            assert replay.status == 200
    sms = [
        message("m-accepted", f"LD {REPORTED[2]} gọi lại cho tôi số 0987 650 006", SMS_SENDER),
        message("m-self", f"LD {SMS_SELF_REPORTER} tự báo", SMS_SELF_REPORTER),
        message("m-syntax", "lừa đảo 0912345678 số tôi 0987650008", SMS_BAD_SYNTAX_SENDER),
        message("m-sender", "LD 0912345678", "VIETTEL"),
    ]
    for sent in sms:
        status, answer = await sms_gateway.post(sent)
        assert status == 200, answer
    status, answer = await sms_gateway.post(sms[0])  # the gateway retries
    assert answer["accepted"] is True
    assert settings.database_url is not None
    done = await asyncio.to_thread(
        cli, settings.database_url, "report", REPORTED[0], "--reporter", CLI_REPORTER,
        "--channel", "call_center", "--content", CONTENT_MARKER,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert CLI_REPORTER not in done.stderr
    assert "987650009" not in done.stdout


async def test_no_reporter_number_in_clear_in_any_table(
    sms_gateway: SmsGateway, settings: Settings, create_api_key: CreateApiKey
) -> None:
    await report_through_every_channel(sms_gateway, settings, create_api_key)
    assert settings.database_url is not None
    tables = await every_table_as_text(settings.database_url)
    assert len(tables["public.reports"]) == 2 * len(API_REPORTERS) + 1 + 1  # API, SMS, CLI
    assert len(tables["public.sms_messages"]) == 4  # the retry is not kept twice
    searched = 0
    for table, rows in tables.items():
        for row in rows:
            searched += 1
            for digits in ALL_REPORTER_DIGITS:
                found = written_anywhere(digits).search(row)
                assert found is None, f"{table} holds reporter {digits} in clear: {row}"
    assert searched > 20
    # The search would see a number that is there: the reported ones are.
    everything = "\n".join(row for rows in tables.values() for row in rows)
    for digits in REPORTED_DIGITS:
        assert written_anywhere(digits).search(everything)


async def test_logs_carry_no_phone_number(
    sms_gateway: SmsGateway,
    settings: Settings,
    create_api_key: CreateApiKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await report_through_every_channel(sms_gateway, settings, create_api_key)
    node = sms_gateway.client
    admin = sms_gateway.admin
    lookup_key = await create_api_key("lookup")
    await until_known(node, lookup_key)
    # Lookups of every kind, refusals, errors, and malformed HTTP quoting numbers.
    for number in [*REPORTED, "0987650001", "0912345678a", "+84 987 650 002", "156"]:
        await node.get("/v1/numbers/" + number, headers=bearer(lookup_key))
        await node.get("/v1/numbers/" + number)  # no key
    await node.post("/v1/lookups", json={"numbers": [*REPORTED, "0987650003x"]}, headers=admin)
    await node.post("/v1/reports", data=b'{"number": "0987650004", ', headers=admin)
    await node.post(
        "/v1/reports", json={"number": "0987650004", "reporter": "0987650004"}, headers=admin
    )
    await node.get("/healthz", headers={"X-Request-Id": "0987650005"})
    await node.get("/v1/numbers/0987650001?" + "x" * 3000, headers=admin)
    for raw in (
        b"GET /v1/numbers/0987650001" + b"0" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/numbers/0987650002 HTTP/1.1\r\nHost: x\r\nX: " + b"1" * 9000 + b"\r\n\r\n",
        b"GET /v1/numbers/0987650003 HTTP/1.1\r\nHost: x\nBad\r\n\r\n",
        b"0987650004 /x HTTP/1.1\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(node.host, node.port)
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(10):
            await reader.read()
        writer.close()
    lines = [record_text(r) for r in caplog.records]
    assert len(lines) > 10  # the run did log
    for digits in [*ALL_REPORTER_DIGITS, *REPORTED_DIGITS, "987650001", "987650002"]:
        for line in lines:
            assert written_anywhere(digits).search(line) is None, line


def record_text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        text += "\n" + record.exc_text
    return text


def test_the_last_line_of_defence_redacts_numbers_in_any_log_line() -> None:
    """The filter ``setup_logging`` puts on every handler, for lines our code does not write."""
    assert redact_numbers("lookup of +84912345678 failed") == "lookup of <number> failed"
    assert redact_numbers("GET /v1/numbers/%2B84912345678") == "GET /v1/numbers/<number>"
    assert redact_numbers("from 0912345678 and 84912345678.") == "from <number> and <number>."
    kept = "request 3f2a91234567890abcdef took 1.234ms on 127.0.0.1:8080, 2026-01-01 12:00:00"
    assert redact_numbers(kept) == kept
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "reporter %s", ("0987650001",), None
    )
    try:
        raise ValueError("bad number +84987650001")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactNumbers().filter(record)
    assert record.getMessage() == "reporter <number>"
    assert "987650001" not in (record.exc_text or "")
    assert "<number>" in (record.exc_text or "")


# --- report content: analysts only ---


def reachable_get_routes(app: web.Application) -> Iterable[tuple[str, Any]]:
    for route in app.router.routes():
        if route.method == "GET" and route.resource is not None:
            yield route.resource.canonical, route.handler


SAMPLES = {"number": REPORTED[0], "prefix": "a1b2c", "id": "1"}


def fill(pattern: str) -> str:
    return re.sub(r"{(\w+)(?::[^}]*)?}", lambda m: SAMPLES.get(m.group(1), "1"), pattern)


async def test_report_content_reaches_analysts_only(
    aiohttp_client: Callable[..., Any], settings: Settings, create_api_key: CreateApiKey
) -> None:
    keys = {role: await create_api_key(role) for role in ROLES}
    node: TestClient = await aiohttp_client(create_app(settings_with_auth(settings)))
    await wait_ready(node)
    for reporter in ("0987650001", "0987650002"):
        response = await node.post(
            "/v1/reports",
            json={"number": REPORTED[0], "reporter": reporter, "content": CONTENT_MARKER},
            headers=bearer(keys["report"]),
        )
        assert response.status == 201
    checked = 0
    for pattern, handler in reachable_get_routes(node.app):
        roles = declared_roles(handler)
        for role in ("lookup", "report", "sms_gateway", None):
            if roles is not None and role not in roles:
                continue  # refused anyway (test_auth checks that)
            headers = bearer(keys[role]) if role else {}
            response = await node.get(fill(pattern), headers=headers)
            body = await response.read()  # some answers are binary (the Bloom filter)
            assert CONTENT_MARKER.encode() not in body, f"{pattern} shows content to {role}"
            assert b"987650001" not in body, pattern
            assert b"987650002" not in body, pattern
            checked += 1
    batch = await node.post(
        "/v1/lookups", json={"numbers": [REPORTED[0]]}, headers=bearer(keys["lookup"])
    )
    assert (await batch.json())["results"][0]["reports"] == 2
    assert CONTENT_MARKER not in await batch.text()
    assert checked >= 5
