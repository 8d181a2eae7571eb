"""The SMS parser under hostile input: any Unicode message of a real SMS's length gives a
reading or a coded error, never an exception, and never takes more than a millisecond;
hiding the sender's own number from a message is as bounded.

Length: a concatenated SMS of ten segments holds at most 1530 GSM-7 characters
(670 in UCS-2, which Vietnamese with diacritics needs); 1600 covers both. The
timing rule is that of ``test_hostile_normalize``: the best of up to three
timings of a call counts, so a preempted call is not a failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from reputation.constants import MAX_CONTENT_CHARS, MAX_SMS_TEXT_CHARS
from reputation.normalize import normalize
from reputation.sms import KEYWORDS, SMS_ERRORS, hide_number, parse_sms

MAX_SECONDS_PER_CALL = 0.001
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
SENDER = "+84987654321"
# The sender's number written whole (digits touching others make another number).
SENDER_WRITTEN = re.compile(
    r"(?<![0-9\uff10-\uff19])(?:\+84|0084|84)?0?987654321(?![0-9\uff10-\uff19])"
)

ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=MAX_SMS_TEXT_CHARS)
KEYWORD = st.sampled_from(
    ["LD", "ld", "LĐ", "lđ", "Ld", "V", "S", "\uff2c\uff24", "L D", "LDD", ""]
)
PIECES = st.sampled_from(
    [
        *[" ", "(", ")", "[", "]", ":", "-", ".", ",", "\u00a0", "\u200b", "\n", "\t", "\uff08"],
        *["0", "9", "1", "84", "+84", "0084", "0912345678", "0987654321", "098 765 4321"],
        *["\uff10\uff19\uff18\uff17", "lừa đảo", "😀", "<b>", "http://x.y/?a=1&b=2", "'", '"'],
        *["\u0301", "\ud800", "và", "hoặc", "5 triệu"],
    ]
)
SMS_LIKE = st.builds(
    lambda keyword, pieces: keyword + "".join(pieces),
    KEYWORD,
    st.lists(PIECES, max_size=120),
)


def best_time(call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
        if best <= MAX_SECONDS_PER_CALL:
            break
    return best


def check(text: str) -> None:
    parsed = parse_sms(text, "VN")  # any exception fails the property
    if parsed.error is not None:
        assert parsed.error in SMS_ERRORS, parsed.error
        assert parsed.content is None
    else:
        assert parsed.category in KEYWORDS.values()
        assert parsed.e164 is not None
        assert E164.fullmatch(parsed.e164)
        assert normalize(parsed.e164) == parsed.e164
        assert parsed.content is None or 0 < len(parsed.content) <= MAX_CONTENT_CHARS
    elapsed = best_time(lambda: parse_sms(text, "VN"))
    assert elapsed <= MAX_SECONDS_PER_CALL, f"parse: {elapsed * 1e6:.0f} us for {text[:80]!r}"

    hidden = hide_number(text, SENDER)
    assert not SENDER_WRITTEN.search(hidden), hidden
    elapsed = best_time(lambda: hide_number(text, SENDER))
    assert elapsed <= MAX_SECONDS_PER_CALL, f"hide: {elapsed * 1e6:.0f} us for {text[:80]!r}"


parse_sms("LD 0912345678 warm-up", "VN")
hide_number("warm-up", SENDER)


@settings(max_examples=500, deadline=None)
@given(ANY_TEXT)
@example("")
@example("\ud800" * MAX_SMS_TEXT_CHARS)
@example("LD " + "0 " * 799)
@example("LD " + "(" * 1597)
@example("LD 0912345678 " + "\u0301" * 1586)  # combining marks with nothing to sit on
@example("LD " + "0987654321 " * 145)
@example("LD " + "+" * 1597)
@example("\ufdfa" * MAX_SMS_TEXT_CHARS)  # NFC leaves it, NFKC would make 18 characters of each
def test_any_message(text: str) -> None:
    check(text)


@settings(max_examples=800, deadline=None)
@given(SMS_LIKE)
@example("LD (0912345678)(" + "0987 654 321 " * 100 + ")")
@example("LD 0912345678 gọi lại 0987654321 hoặc +84 987 654 321 hoặc 84987654321")
def test_messages_that_look_like_reports(text: str) -> None:
    check(text)
