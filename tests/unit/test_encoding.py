"""The prepared bytes of lookup answers say exactly what the plain encoding says."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import orjson
import pytest

from reputation.encoding import encode_answer, encode_results, encode_unreported
from reputation.lookup import Answer, answer_body
from reputation.records import NumberRecord
from reputation.verdict import NOT_REPORTED, judge

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("e164", ["+84912345678", "+84241234567", "+14155552671", "+10000000000"])
def test_unreported_answer_is_byte_for_byte_the_plain_encoding(e164: str) -> None:
    answer = Answer(e164, None, "bloom")
    judgement = judge(None, NOW)
    assert judgement is NOT_REPORTED  # the case the prepared bytes stand for
    encoded = encode_answer(answer, judgement)
    assert encoded == orjson.dumps(answer_body(answer, judgement))
    assert json.loads(encoded) == answer_body(answer, judgement)
    assert json.loads(encoded)["number"] == e164


def test_a_number_that_would_need_escaping_is_encoded_the_plain_way() -> None:
    answer = Answer('+8491"2', None, "bloom")
    encoded = encode_answer(answer, NOT_REPORTED)
    assert json.loads(encoded)["number"] == '+8491"2'


@pytest.mark.parametrize("e164", ["+84912345678", "+10000000000", '+8491"2', "+84\u00e9"])
def test_the_unreported_shortcut_encodes_what_the_answer_would(e164: str) -> None:
    answer = Answer(e164, None, "bloom")
    assert encode_unreported(e164) == encode_answer(answer, NOT_REPORTED)
    assert json.loads(encode_unreported(e164)) == answer_body(answer, NOT_REPORTED)


def _record(reporters: int, reports: int | None = None) -> NumberRecord:
    reports = reporters if reports is None else reports
    return NumberRecord(
        e164="+84912345678",
        status="reported",
        reports=reports,
        reporters=reporters,
        categories={"scam": reports} if reports else {},
        first_reported_at=datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC) if reports else None,
        last_reported_at=datetime(2026, 2, 28, 9, 30, tzinfo=UTC) if reports else None,
        weights={"scam": float(reporters)} if reporters else {},
        weights_at=datetime(2026, 2, 28, 9, 30, tzinfo=UTC) if reporters else None,
        heat_key=-math.inf,
    )


@pytest.mark.parametrize("reporters", [1, 3, 12])
def test_reported_answer_is_the_same_object_as_answer_body(reporters: int) -> None:
    record = _record(reporters)
    answer = Answer(record.e164, record, "cache")
    judgement = judge(record, NOW)
    assert judgement is not NOT_REPORTED
    appeal = (
        "https://appeal.example/?number=%2B84912345678" if judgement.verdict != "allow" else None
    )
    encoded = encode_answer(answer, judgement, appeal)
    assert json.loads(encoded) == answer_body(answer, judgement, appeal)


def test_a_record_with_no_reports_left_is_encoded_from_its_record() -> None:
    record = _record(0)
    answer = Answer(record.e164, record, "database")
    judgement = judge(record, NOW)
    assert json.loads(encode_answer(answer, judgement)) == answer_body(answer, judgement)


def test_degraded_protected_or_appealable_answers_are_encoded_from_scratch() -> None:
    degraded = Answer("+84912345678", None, "fail_open", degraded=True)
    assert json.loads(encode_answer(degraded, NOT_REPORTED))["degraded"] is True
    protected = judge(None, NOW, protected=True)
    assert protected is not NOT_REPORTED
    plain = Answer("+84912345678", None, "bloom")
    assert json.loads(encode_answer(plain, protected)) == answer_body(plain, protected)
    with_url = encode_answer(plain, NOT_REPORTED, "https://appeal.example/")
    assert json.loads(with_url)["appeal_url"] == "https://appeal.example/"


def test_results_are_the_plain_encoding_of_the_list() -> None:
    items = [
        answer_body(Answer("+84912345678", None, "bloom"), NOT_REPORTED),
        {"input": "abc", "error": {"code": "invalid_characters", "message": "Nope."}},
    ]
    encoded = encode_results([orjson.dumps(item) for item in items])
    assert encoded == orjson.dumps({"results": items})
    assert encode_results([]) == orjson.dumps({"results": []})
