"""The SMS syntax as pure code: any text gives a reading or a code, and replies fit one SMS.

Every message of the channel is also tested end to end in
``tests/integration/test_sms_api.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reputation.constants import MAX_CONTENT_CHARS
from reputation.normalize import normalize
from reputation.sms import (
    ACCEPTED_REPLIES,
    ERROR_REPLIES,
    KEYWORDS,
    SENDER_PLACEHOLDER,
    SMS_ERRORS,
    accepted_reply,
    hide_number,
    parse_sms,
    refusal_reply,
)

# One SMS segment of UCS-2, the encoding any Vietnamese text with diacritics needs.
UCS2_SEGMENT = 70
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def segment_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_every_code_has_its_reply() -> None:
    assert set(ERROR_REPLIES) == set(SMS_ERRORS)
    assert set(ACCEPTED_REPLIES) == set(KEYWORDS.values())


@pytest.mark.parametrize("code", sorted(ERROR_REPLIES))
@pytest.mark.parametrize("to", ["156", "5656"])
def test_refusals_fit_one_sms_and_are_in_vietnamese(code: str, to: str) -> None:
    text = refusal_reply(code, to)
    assert segment_units(text) <= UCS2_SEGMENT, text
    assert set(text) - GSM_BASIC, "Vietnamese with diacritics"
    if "Soạn" in text:
        assert text.endswith(f"LD <số điện thoại> <nội dung> gửi {to}")


@pytest.mark.parametrize("category", sorted(ACCEPTED_REPLIES))
@pytest.mark.parametrize("e164", ["+84912345678", "+842438221234", "+8419001234"])
def test_thank_yous_fit_one_sms_with_a_7_digit_reference(category: str, e164: str) -> None:
    text = accepted_reply(category, e164, 9_999_999)
    assert segment_units(text) <= UCS2_SEGMENT, text
    assert "0" + e164[3:] in text
    assert "9999999" in text


@pytest.mark.parametrize(
    "keyword",
    ["LD", "ld", "Ld", "lD", "LĐ", "lđ", "Lđ", "LÐ", "LD\u0335", "\uff2c\uff24", "L\u0189"],
)
def test_keyword_spellings_all_mean_scam(keyword: str) -> None:
    parsed = parse_sms(f"{keyword} 0912345678 lừa đảo", "VN")
    assert (parsed.category, parsed.e164, parsed.content, parsed.error) == (
        "scam",
        "+84912345678",
        "lừa đảo",
        None,
    )


def test_hide_number_masks_every_writing_of_one_number() -> None:
    text = "gọi 0987 000 001, 84987000001 hoặc +84-987-000-001; không phải 0912345678"
    hidden = hide_number(text, "+84987000001")
    assert hidden == (
        f"gọi {SENDER_PLACEHOLDER}, {SENDER_PLACEHOLDER} hoặc {SENDER_PLACEHOLDER}; "
        "không phải 0912345678"
    )


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda keyword, rest: keyword + rest,
            st.sampled_from(["LD ", "ld:", "LĐ", "V(", "S ", "LD [", ""]),
            st.text(alphabet="0123456789 +.-()[],/:abcđ😀\u00a0\u200b\n", max_size=80),
        ),
    )
)
@example("LD 0912345678 " + "x" * 2000)
@example("LD " + "0 " * 500)
@example("LD " + "+" * 100)
def test_any_text_gives_a_reading_or_a_code(text: str) -> None:
    parsed = parse_sms(text, "VN")
    if parsed.error is not None:
        assert parsed.error in SMS_ERRORS
        assert parsed.content is None
        return
    assert parsed.category in KEYWORDS.values()
    assert parsed.e164 is not None
    assert normalize(parsed.e164) == parsed.e164
    assert parsed.content is None or 0 < len(parsed.content) <= MAX_CONTENT_CHARS
