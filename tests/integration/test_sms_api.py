"""The 156/5656 SMS channel through ``POST /v1/sms/inbound``, on real PostgreSQL.

Every message goes through the real HTTP webhook (API key and gateway
signature included); what it became is read back from the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from reputation.appkeys import STORE
from reputation.constants import MAX_SMS_TEXT_CHARS
from reputation.records import NewReport
from reputation.settings import Settings
from reputation.sms import SENDER_PLACEHOLDER, accepted_reply, refusal_reply
from reputation.sms_intake import InboundSms, process_sms
from tests.conftest import TEST_REPORTER_KEY, SmsGateway
from tests.integration.test_openapi import conforms

SENDER = "84987000001"  # the citizen, as gateways write numbers
SENDER_E164 = "+84987000001"

# (text, number, category, stored content)
ACCEPTED: list[tuple[str, str, str, str | None]] = [
    ("LD 0912345678 goi gia danh cong an", "+84912345678", "scam", "goi gia danh cong an"),
    ("LD 0912.345.678 goi tu xung cong an", "+84912345678", "scam", "goi tu xung cong an"),
    ("ld:0912345678", "+84912345678", "scam", None),
    ("LĐ 84912345678 lừa đảo chuyển tiền", "+84912345678", "scam", "lừa đảo chuyển tiền"),
    ("lđ 0912345678 giả danh ngân hàng", "+84912345678", "scam", "giả danh ngân hàng"),
    ("Ld 0912 345 678 nhắn tin trúng thưởng", "+84912345678", "scam", "nhắn tin trúng thưởng"),
    ("LD0912345678", "+84912345678", "scam", None),
    ("LD0912345678 lừa đảo", "+84912345678", "scam", "lừa đảo"),
    ("LD (0912345678)(nội dung)", "+84912345678", "scam", "nội dung"),
    ("V(0812341213) lua dao", "+84812341213", "spam_call", "lua dao"),
    (
        "V (0987654321)(quảng cáo bất động sản)",
        "+84987654321",
        "spam_call",
        "quảng cáo bất động sản",
    ),
    ("S 0912345678 tin nhắn rác quảng cáo", "+84912345678", "spam_sms", "tin nhắn rác quảng cáo"),
    ("s:0912345678 nhắn tin cờ bạc", "+84912345678", "spam_sms", "nhắn tin cờ bạc"),
    ("v 0912345678", "+84912345678", "spam_call", None),
    ("LD [0912345678] [giả danh shipper]", "+84912345678", "scam", "giả danh shipper"),
    ("LD: 0912345678 - gọi mạo danh điện lực", "+84912345678", "scam", "gọi mạo danh điện lực"),
    (
        "  LD \t 0912   345   678 \n\n  nhiều   khoảng\ttrắng  ",
        "+84912345678",
        "scam",
        "nhiều khoảng trắng",
    ),
    ("LD 0912 345 678 5 trieu dong", "+84912345678", "scam", "5 trieu dong"),
    (
        "LD 0912345678 300.000.000 đồng chuyển khoản",
        "+84912345678",
        "scam",
        "300.000.000 đồng chuyển khoản",
    ),
    (
        "LD +84 (0) 912 345 678 giả danh viện kiểm sát",
        "+84912345678",
        "scam",
        "giả danh viện kiểm sát",
    ),
    ("LD +84 912 345 678 x", "+84912345678", "scam", "x"),
    ("LD 0084912345678 lừa đảo", "+84912345678", "scam", "lừa đảo"),
    (
        "\uff2c\uff24 \uff10\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18 lừa đảo",
        "+84912345678",
        "scam",
        "lừa đảo",
    ),
    (
        unicodedata.normalize("NFD", "LD 0912345678 gọi giả công an"),
        "+84912345678",
        "scam",
        "gọi giả công an",
    ),
    ("LD\u0335 0912345678 lừa", "+84912345678", "scam", "lừa"),  # "Đ" typed as D + stroke
    # Full-width colon and brackets from an East Asian keyboard.
    ("LD\uff1a0912345678\uff08lừa đảo\uff09", "+84912345678", "scam", "lừa đảo"),
    ("LD 01662345678 lừa đảo", "+84362345678", "scam", "lừa đảo"),
    ("LD 0166 234 5678 gọi giả danh", "+84362345678", "scam", "gọi giả danh"),
    ("LD 04 3822 1234 giả danh tòa án", "+842438221234", "scam", "giả danh tòa án"),
    ("LD 024 3822 1234 giả danh tòa án", "+842438221234", "scam", "giả danh tòa án"),
    ("LD 1900 545 415 lừa phí", "+841900545415", "scam", "lừa phí"),
    ("LD 069 234 8560 mạo danh", "+84692348560", "scam", "mạo danh"),
    ("LD +6591234567 scam from abroad", "+6591234567", "scam", "scam from abroad"),
    (
        'LD 0912345678 "Chúng tôi là công an" <b>khẩn</b>',
        "+84912345678",
        "scam",
        '"Chúng tôi là công an" <b>khẩn</b>',
    ),
    (
        "LD 0912345678 link https://vn-dichvu.example/login?id=1&x=2 😀👍",
        "+84912345678",
        "scam",
        "link https://vn-dichvu.example/login?id=1&x=2 😀👍",
    ),
    ("LD 0912345678 gửi mã OTP 123456 cho họ", "+84912345678", "scam", "gửi mã OTP 123456 cho họ"),
    ("LD 0912345678lừa đảo", "+84912345678", "scam", "lừa đảo"),
    ("LD sđt 0912345678 gọi lừa", "+84912345678", "scam", "gọi lừa"),
    ("LD SĐT: 0912.345.678 giả danh", "+84912345678", "scam", "giả danh"),
    ("LD\u00a00912345678\u00a0mạo\u00a0danh", "+84912345678", "scam", "mạo danh"),
    ("LD 0912345678 (gọi nhiều lần)", "+84912345678", "scam", "gọi nhiều lần"),
    ("LD 0912345678 ()", "+84912345678", "scam", None),
    ("LD 0912345678.", "+84912345678", "scam", None),
    ("LD 0912345678 lúc 9:30 ngày 12/5 gọi", "+84912345678", "scam", "lúc 9:30 ngày 12/5 gọi"),
    ("LD 0912345678 0987 gọi lại", "+84912345678", "scam", "0987 gọi lại"),
    ("LD 0912\u2013345\u2013678 \u2013 mạo danh", "+84912345678", "scam", "mạo danh"),
    ("LD <0912345678> <lừa đảo>", "+84912345678", "scam", "lừa đảo"),
    (
        "LD 0912345678 \u2014 cuộc gọi từ nước ngoài",
        "+84912345678",
        "scam",
        "cuộc gọi từ nước ngoài",
    ),
    (
        "LD 0912345678 <script>alert(1)</script>",
        "+84912345678",
        "scam",
        "<script>alert(1)</script>",
    ),
    (
        "LD 0912345678 '; DROP TABLE reports; --",
        "+84912345678",
        "scam",
        "'; DROP TABLE reports; --",
    ),
]

# (text, error, category, number)
REFUSED: list[tuple[str, str, str | None, str | None]] = [
    ("", "empty_message", None, None),
    ("   \n ", "empty_message", None, None),
    ("\u200b", "empty_message", None, None),
    ("LD", "no_number", "scam", None),
    ("LD   :  ", "no_number", "scam", None),
    ("0912345678 lừa đảo", "missing_keyword", None, None),
    ("Lừa đảo 0912345678", "missing_keyword", None, None),
    ("TC 0912345678", "missing_keyword", None, None),
    ("HELP", "missing_keyword", None, None),
    ("😀 LD 0912345678", "missing_keyword", None, None),
    ("LD lừa đảo qua điện thoại", "no_number", "scam", None),
    ("LD BIDV giả mạo tin nhắn", "alphanumeric_sender_id", "scam", None),
    ("S VIETTEL tin rác", "alphanumeric_sender_id", "spam_sms", None),
    ("LD 156 lừa", "short_code", "scam", None),
    ("V 113", "short_code", "spam_call", None),
    ("LD 0161 234 5678 x", "invalid_number", "scam", None),
    ("LD 0891234567 x", "invalid_number", "scam", None),
    ("LD 6591234567 x", "invalid_number", "scam", None),
    ("LD O912345678 x", "invalid_characters", "scam", None),
    ("LD 09l2345678 x", "invalid_characters", "scam", None),
    ("LD 091234567890 x", "too_long", "scam", None),
    ("LD 0912345678, 0987654321 lừa đảo", "multiple_numbers", "scam", "+84912345678"),
    ("LD 0912345678 0987654321", "multiple_numbers", "scam", "+84912345678"),
    ("LD 0912345678/0987654321 x", "multiple_numbers", "scam", "+84912345678"),
    ("LD 0912345678 và 0987654321 cùng gọi", "multiple_numbers", "scam", "+84912345678"),
    ("S 0912345678; +84987654321", "multiple_numbers", "spam_sms", "+84912345678"),
    ("LD 0987000001 tự báo", "self_report", "scam", None),
    ("LD 0987 000 001", "self_report", "scam", None),
    ("LD +84987000001 x", "self_report", "scam", None),
]


async def fetch(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


def message(message_id: str, text: str, sender: str = SENDER, **extra: Any) -> dict[str, Any]:
    return {"message_id": message_id, "from": sender, "to": "156", "text": text, **extra}


def sender_hash(e164: str) -> bytes:
    return hmac.new(TEST_REPORTER_KEY.encode(), e164.encode(), hashlib.sha256).digest()


def test_the_tables_hold_at_least_50_messages() -> None:
    assert len(ACCEPTED) + len(REFUSED) >= 50


async def test_accepted_messages_make_reports(sms_gateway: SmsGateway, settings: Settings) -> None:
    wrong = []
    for i, (text, number, category, content) in enumerate(ACCEPTED):
        status, body = await sms_gateway.post(message(f"ok-{i}", text))
        expected = {
            "accepted": True,
            "report_id": body.get("report_id"),
            "number": number,
            "category": category,
            "content": content,
            "reply": accepted_reply(category, number, body.get("report_id", 0)),
        }
        if status != 200 or body != expected:
            wrong.append((text, status, body))
            continue
        [report] = await fetch(
            settings,
            "SELECT e164, channel, category, content, reporter_hash FROM reports WHERE id = $1",
            body["report_id"],
        )
        stored = (report["e164"], report["channel"], report["category"], report["content"])
        if stored != (number, "sms", category, content):
            wrong.append((text, "stored", stored))
        if report["reporter_hash"] != sender_hash(SENDER_E164):
            wrong.append((text, "reporter_hash"))
    assert wrong == []
    rows = await fetch(settings, "SELECT error, report_id FROM sms_messages")
    assert len(rows) == len(ACCEPTED)
    assert all(row["error"] is None and row["report_id"] for row in rows)


async def test_refused_messages_are_recorded_without_a_report(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    wrong = []
    for i, (text, error, category, number) in enumerate(REFUSED):
        status, body = await sms_gateway.post(message(f"no-{i}", text))
        expected = {
            "accepted": False,
            "report_id": None,
            "number": number,
            "category": category,
            "content": None,
            "error": error,
            "reply": refusal_reply(error, "156"),
        }
        if status != 200 or body != expected:
            wrong.append((text, status, body))
            continue
        [row] = await fetch(
            settings,
            "SELECT error, category, e164, report_id, sender_hash, answer"
            " FROM sms_messages WHERE message_id = $1",
            f"no-{i}",
        )
        if (row["error"], row["category"], row["e164"], row["report_id"]) != (
            error,
            category,
            number,
            None,
        ):
            wrong.append((text, "stored", dict(row)))
        if row["sender_hash"] != sender_hash(SENDER_E164) or row["answer"] != expected:
            wrong.append((text, "sender_hash or answer"))
    assert wrong == []
    assert await fetch(settings, "SELECT id FROM reports") == []


@pytest.mark.parametrize("sender", ["VIETTEL", "", "156", "0912 345 67x", "+1 555 0100 000"])
async def test_a_sender_that_is_not_a_number(
    sms_gateway: SmsGateway, settings: Settings, sender: str
) -> None:
    status, body = await sms_gateway.post(message("m-1", "LD 0912345678 lừa đảo", sender))
    assert status == 200
    assert body["accepted"] is False
    assert body["error"] == "invalid_sender"
    assert body["number"] == "+84912345678"
    [row] = await fetch(settings, "SELECT sender_hash, error, text FROM sms_messages")
    assert row["sender_hash"] is None
    assert row["error"] == "invalid_sender"
    assert row["text"] == "LD 0912345678 lừa đảo"
    assert await fetch(settings, "SELECT id FROM reports") == []


@pytest.mark.parametrize(
    ("sender", "text"),
    [
        ("84362345678", "LD 01662345678 tự báo"),
        ("0362345678", "LD 0166 234 5678"),
        ("+84 36 234 5678", "LD (01662345678)(x)"),
        ("01662345678", "LD 036 234 5678 x"),
    ],
)
async def test_self_reports_through_the_old_11_digit_form(
    sms_gateway: SmsGateway, settings: Settings, sender: str, text: str
) -> None:
    status, body = await sms_gateway.post(message("m-1", text, sender))
    assert (status, body["error"], body["number"]) == (200, "self_report", None)
    [row] = await fetch(settings, "SELECT e164, text FROM sms_messages")
    assert row["e164"] is None
    assert "2345678" not in row["text"]
    assert SENDER_PLACEHOLDER in row["text"]


async def test_a_retry_returns_the_first_answer_and_counts_once(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    first = await sms_gateway.post(message("m-1", "LD 0912345678 lừa đảo"))
    again = await sms_gateway.post(message("m-1", "LD 0912345678 lừa đảo"))
    # Even a retry that carries another text gets the first answer.
    other = await sms_gateway.post(message("m-1", "LD 0987654321 khác"))
    assert first == again == other
    assert first[1]["accepted"] is True
    assert len(await fetch(settings, "SELECT id FROM reports")) == 1
    assert len(await fetch(settings, "SELECT message_id FROM sms_messages")) == 1
    [number] = await fetch(settings, "SELECT reports FROM numbers")
    assert number["reports"] == 1
    metrics = await (await sms_gateway.client.get("/metrics")).text()
    assert 'reputation_sms_accepted_total{category="scam"} 1.0' in metrics
    assert 'reputation_reports_total{category="scam",channel="sms"} 1.0' in metrics


async def test_a_refusal_retried_is_recorded_once(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    first = await sms_gateway.post(message("m-1", "LD 156"))
    again = await sms_gateway.post(message("m-1", "LD 156"))
    assert first == again
    assert first[1]["error"] == "short_code"
    assert len(await fetch(settings, "SELECT message_id FROM sms_messages")) == 1
    metrics = await (await sms_gateway.client.get("/metrics")).text()
    assert 'reputation_sms_rejected_total{reason="short_code"} 1.0' in metrics


async def test_concurrent_deliveries_of_one_message_count_once(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    deliveries = await asyncio.gather(
        *(sms_gateway.post(message("m-1", "LD 0912345678 lừa đảo")) for _ in range(8))
    )
    assert all(delivery == deliveries[0] for delivery in deliveries)
    assert deliveries[0][0] == 200
    assert deliveries[0][1]["accepted"] is True
    assert len(await fetch(settings, "SELECT id FROM reports")) == 1
    assert len(await fetch(settings, "SELECT message_id FROM sms_messages")) == 1
    [number] = await fetch(settings, "SELECT reports, reporters FROM numbers")
    assert (number["reports"], number["reporters"]) == (1, 1)
    metrics = await (await sms_gateway.client.get("/metrics")).text()
    assert 'reputation_sms_accepted_total{category="scam"} 1.0' in metrics


async def test_process_sms_outside_a_request_then_the_gateway_retries(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    """What a replay of a message kept while PostgreSQL was down does."""
    app = sms_gateway.client.app
    assert app is not None
    inbound = InboundSms("m-1", SENDER, "156", "LD 0912345678 lừa đảo", None)
    outcome = await process_sms(app, inbound)
    assert outcome.replayed is False
    assert outcome.answer["accepted"] is True
    again = await process_sms(app, inbound)
    assert again.replayed is True
    assert again.answer == outcome.answer
    status, body = await sms_gateway.post(message("m-1", "LD 0912345678 lừa đảo"))
    assert (status, body) == (200, outcome.answer)
    assert len(await fetch(settings, "SELECT id FROM reports")) == 1


async def test_a_report_kept_before_a_crash_is_not_counted_again(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    """The report was committed but the process died before recording the message."""
    app = sms_gateway.client.app
    assert app is not None
    kept = await app[STORE].record_report(
        NewReport("+84912345678", SENDER_E164, "sms", "scam", "lừa đảo", "sms:m-1")
    )
    status, body = await sms_gateway.post(message("m-1", "LD 0912345678 lừa đảo"))
    assert status == 200
    assert body["report_id"] == kept.report.id
    [number] = await fetch(settings, "SELECT reports FROM numbers")
    assert number["reports"] == 1


async def test_the_node_sees_the_report_at_once(sms_gateway: SmsGateway) -> None:
    lookup = sms_gateway.admin
    before = await sms_gateway.client.get("/v1/numbers/0912345678", headers=lookup)
    assert (await before.json())["reported"] is False
    for i, sender in enumerate(["84987000001", "84987000002", "84987000003"]):
        await sms_gateway.post(message(f"m-{i}", "LD 0912 345 678 giả danh công an", sender))
    after = await sms_gateway.client.get(
        "/v1/numbers/" + quote("+84912345678", safe=""), headers=lookup
    )
    body = await after.json()
    assert body["reported"] is True
    assert (body["reports"], body["reporters"]) == (3, 3)
    assert body["categories"] == {"scam": 3}


async def test_the_sender_number_is_nowhere_in_clear(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    texts = [
        "LD 0912345678 gọi lại cho tôi 0987 000 001 hoặc +84987000001",
        "LD 0987000001 tự báo",
        "LD 0987000001, 0912345678",
        "LD 156 gọi cho tôi 0987000001",
        "xin chào 84987000001",
    ]
    for i, text in enumerate(texts):
        await sms_gateway.post(message(f"m-{i}", text))
    dump = ""
    for table in ("reports", "number_reporters", "numbers", "sms_messages", "changes"):
        rows = await fetch(settings, f"SELECT t::text AS row FROM {table} t")
        dump += " ".join(row["row"] for row in rows)
    assert "987000001" not in dump
    assert "987 000 001" not in dump
    [report] = await fetch(settings, "SELECT content FROM reports")
    assert report["content"] == (f"gọi lại cho tôi {SENDER_PLACEHOLDER} hoặc {SENDER_PLACEHOLDER}")


async def test_long_content_is_cut_at_1000_characters(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    text = "LD 0912345678 " + "lừa đảo " * 150
    status, body = await sms_gateway.post(message("m-1", text))
    assert status == 200
    assert body["accepted"] is True
    assert len(body["content"]) == 999  # 1000, less the space the cut left at the end
    assert body["content"] == ("lừa đảo " * 150)[:1000].rstrip()
    [report] = await fetch(settings, "SELECT content FROM reports")
    assert report["content"] == body["content"]
    [row] = await fetch(settings, "SELECT text FROM sms_messages")
    assert row["text"] == text  # the message itself is kept whole for analysts


async def test_text_beyond_ten_segments_is_not_read(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    text = "LD 0912345678 " + "x" * 60_000
    status, body = await sms_gateway.post(message("m-1", text))
    assert status == 200
    assert body["accepted"] is True
    assert body["content"] == "x" * 1000
    [row] = await fetch(settings, "SELECT text FROM sms_messages")
    assert row["text"] == text[:MAX_SMS_TEXT_CHARS]


async def test_replies_name_the_short_code_written_to(sms_gateway: SmsGateway) -> None:
    _, to_156 = await sms_gateway.post(message("m-1", "XYZ"))
    _, to_5656 = await sms_gateway.post({**message("m-2", "XYZ"), "to": "5656"})
    assert to_156["reply"].endswith("gửi 156")
    assert to_5656["reply"].endswith("gửi 5656")
    assert "LD <số điện thoại> <nội dung>" in to_5656["reply"]


@pytest.mark.parametrize(
    ("received_at", "stored"),
    [
        ("2026-01-01T09:30:00+07:00", datetime(2026, 1, 1, 2, 30, tzinfo=UTC)),
        ("2026-01-01T02:30:00Z", datetime(2026, 1, 1, 2, 30, tzinfo=UTC)),
        ("2026-01-01 09:30:00", datetime(2026, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=7)))),
        (1767231000, datetime(2026, 1, 1, 1, 30, tzinfo=UTC)),
        (None, None),
    ],
)
async def test_the_gateways_receipt_time_is_kept(
    sms_gateway: SmsGateway, settings: Settings, received_at: object, stored: datetime | None
) -> None:
    status, _ = await sms_gateway.post(message("m-1", "LD 0912345678", received_at=received_at))
    assert status == 200
    [row] = await fetch(settings, "SELECT gateway_received_at FROM sms_messages")
    assert row["gateway_received_at"] == stored


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"from": SENDER, "text": "LD 0912345678"}, "missing_field", "message_id"),
        ({"message_id": "", "from": SENDER, "text": "x"}, "invalid_field", "message_id"),
        ({"message_id": "m" * 201, "from": SENDER, "text": "x"}, "invalid_field", "message_id"),
        ({"message_id": 17, "from": SENDER, "text": "x"}, "invalid_field", "message_id"),
        ({"message_id": "m-1", "text": "LD 0912345678"}, "missing_field", "from"),
        ({"message_id": "m-1", "from": 84987000001, "text": "x"}, "invalid_field", "from"),
        ({"message_id": "m-1", "from": SENDER, "text": 5}, "invalid_field", "text"),
        ({"message_id": "m-1", "from": SENDER, "to": ["156"]}, "invalid_field", "to"),
        (
            {"message_id": "m-1", "from": SENDER, "text": "x", "received_at": "yesterday"},
            "invalid_field",
            "received_at",
        ),
    ],
)
async def test_a_malformed_gateway_call_is_refused_and_changes_nothing(
    sms_gateway: SmsGateway, settings: Settings, body: dict[str, Any], code: str, field: str
) -> None:
    status, answer = await sms_gateway.post(body)
    assert status == 400
    assert answer["error"]["code"] == code
    assert answer["error"]["field"] == field
    assert await fetch(settings, "SELECT message_id FROM sms_messages") == []


async def test_a_missing_text_is_an_empty_message(sms_gateway: SmsGateway) -> None:
    status, body = await sms_gateway.post({"message_id": "m-1", "from": SENDER, "to": "156"})
    assert (status, body["error"]) == (200, "empty_message")


async def test_text_postgres_cannot_keep_is_kept_as_far_as_possible(
    sms_gateway: SmsGateway, settings: Settings
) -> None:
    # JSON may carry NUL and lone surrogates (escaped); PostgreSQL text cannot.
    raw = json.dumps(message("m-1", "LD 0912345678 lừa\x00 đảo \ud800!")).encode()
    status, body = await sms_gateway.post(raw)
    assert status == 200
    assert body["content"] == "lừa đảo ?!"
    [row] = await fetch(settings, "SELECT text FROM sms_messages")
    assert row["text"] == "LD 0912345678 lừa đảo ?!"


async def test_answers_match_the_openapi_description(sms_gateway: SmsGateway) -> None:
    for i, text in enumerate(["LD 0912345678 lừa đảo", "LD 156", "", "XYZ 0912345678"]):
        response = await sms_gateway.deliver(message(f"m-{i}", text))
        await conforms(response, "POST", "/v1/sms/inbound", 200)
