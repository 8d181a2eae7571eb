"""The 156/5656 SMS syntax: ``LD <number> <content>``, as citizens really type it.

Pure code, no I/O: ``parse_sms`` reads one message into a keyword's
category, a number and the content, or the code of what is wrong with it;
``accepted_reply`` and ``refusal_reply`` are the texts sent back to the
citizen. The syntax is the Ministry of Information and Communications' (``LD``
a scam call, ``V`` a spam call, ``S`` a spam SMS), with the official bracket
template ``LD (0912345678)(nội dung)``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from reputation.constants import MAX_CONTENT_CHARS
from reputation.errors import NUMBER_ERROR_MESSAGES, InvalidNumber
from reputation.normalize import (
    INVISIBLE,
    LABEL,
    MAX_INPUT_CHARS,
    MAX_WRITTEN_DIGITS,
    MIN_WRITTEN_DIGITS,
    normalize,
)
from reputation.vn_numbering import OLD_MOBILE_PREFIXES

# Keyword -> report category. "LD" is "lừa đảo" (scam).
KEYWORDS: Final = {"LD": "scam", "V": "spam_call", "S": "spam_sms"}

# Why a message makes no report: the message's own codes, then the number's
# (the same as a lookup's; "empty" cannot happen once a number was found).
MESSAGE_ERRORS: Final = (
    "empty_message",
    "missing_keyword",
    "no_number",
    "multiple_numbers",
    "self_report",
    "invalid_sender",
    "reporter_rate_limited",
)
SMS_ERRORS: Final = MESSAGE_ERRORS + tuple(
    code for code in NUMBER_ERROR_MESSAGES if code not in MESSAGE_ERRORS and code != "empty"
)

# Longest first word that can still be a keyword: "LĐ" decomposed with a mark or two.
MAX_KEYWORD_CHARS: Final = 8
# How the sender's own number is shown when the message mentions it.
SENDER_PLACEHOLDER: Final = "[số người gửi]"

# Letters that stand for "đ" on keyboards and in fonts: đ, Icelandic eth,
# African D (all look the same in an SMS).
_D_LOOKALIKES = str.maketrans({"đ": "d", "ð": "d", "ɖ": "d"})
# Between the keyword and the number, and between the number and the content:
# spaces, ":" and dashes, the template's brackets, list punctuation.
_LEAD_IN: Final = re.compile(rf"[\s{INVISIBLE}:\-\u2010-\u2015=#.,;(\[{{<]*")
_LEAD_OUT: Final = re.compile(rf"[\s{INVISIBLE}:\-\u2010-\u2015=#.,;/|&)\]}}>]*")
# Words that join two numbers: "0912345678 và 0987654321".
_CONNECTOR: Final = re.compile(r"(?:và|va|hoặc|hoac|hay|or|and)\s+", re.IGNORECASE)
_WHITESPACE: Final = re.compile(r"\s+")
# Full-width forms of ASCII (U+FF01..U+FF5E) and the ideographic space, one to one.
_FULL_WIDTH: Final = {0xFF01 + i: 0x21 + i for i in range(94)} | {0x3000: 0x20}
# What may stand between the digits of one written number, besides spaces
# (hyphens and dashes, minus sign, dots, brackets).
_GAP_CHARS: Final = ".-()[]\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_TEMPLATE_BRACKETS: Final = {"(": ")", "[": "]", "{": "}", "<": ">"}
# A brand-name sender id where a number should be: capitals (and digits), up to
# the 11 characters an alphanumeric sender id may have.
_BRAND: Final = re.compile(r"[A-Z][A-Z0-9&.\-]{1,10}")


@dataclass(frozen=True, slots=True)
class ParsedSms:
    """What a message says: a category, a number and content, or why it makes no report."""

    category: str | None
    e164: str | None
    content: str | None
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.error is None


def parse_sms(text: str, region: str) -> ParsedSms:
    """Read ``LD <number> <content>`` (or ``V``, ``S``) from one message."""
    text = unicodedata.normalize("NFC", text).strip(" \t\r\n" + INVISIBLE)
    if not text:
        return ParsedSms(None, None, None, "empty_message")
    word_end = _word_end(text)
    category = KEYWORDS.get(_keyword(text[:word_end]))
    if category is None:
        return ParsedSms(None, None, None, "missing_keyword")
    # Full-width punctuation (U+FF1A colon, U+FF08 bracket...) is read as
    # ASCII at the same positions, so the content is still cut as sent.
    rest = text[word_end:]
    folded = rest.translate(_FULL_WIDTH)
    start = _LEAD_IN.match(folded).end()  # type: ignore[union-attr]
    label = LABEL.match(folded, start)
    if label is not None:
        start = _LEAD_IN.match(folded, label.end()).end()  # type: ignore[union-attr]
    found = _read_number(folded, start, region)
    if isinstance(found, str):
        return ParsedSms(category, None, None, found)
    e164, end = found
    if _starts_with_number(folded[end:], region):
        return ParsedSms(category, e164, None, "multiple_numbers")
    return ParsedSms(category, e164, _content(rest[end:], folded[end:]), None)


def _word_end(text: str) -> int:
    """End of the run of letters (and their combining marks) that starts the text."""
    end = 0
    while end < len(text) and (text[end].isalpha() or unicodedata.combining(text[end])):
        end += 1
    return end


def _keyword(word: str) -> str:
    """A keyword in one spelling: ``Lđ``, ``LĐ``, full-width letters, ``D`` + stroke: ``LD``."""
    if len(word) > MAX_KEYWORD_CHARS:  # not a keyword; and NFKD could make it 18 times longer
        return ""
    folded = unicodedata.normalize("NFKD", word).casefold().translate(_D_LOOKALIKES)
    return "".join(c for c in folded if not unicodedata.combining(c)).upper()


def _kind(char: str) -> str:
    """``digit``, ``plus``, ``separator`` (inside a written number) or ``other``."""
    folded = unicodedata.normalize("NFKC", char)
    if folded.isdecimal():
        return "digit"
    if folded == "+":
        return "plus"
    if folded.isspace() or folded in _GAP_CHARS + INVISIBLE:
        return "separator"
    return "other"


def _read_number(text: str, start: int, region: str) -> tuple[str, int] | str:
    """The number written at ``start`` and where it ends, or the error code.

    A written number may hold spaces, dots and dashes, and digits may follow
    it in the content ("0912 345 678 5 triệu đồng"): it is the longest run of
    digit groups, from ``start``, that is a valid number.
    """
    if start >= len(text) or _kind(text[start]) not in ("digit", "plus"):
        return _not_a_number(text, start)
    ends = []  # after each group of digits, with the digits up to there
    end, digits = start, 0
    limit = min(len(text), start + MAX_INPUT_CHARS)
    while end < limit and (kind := _kind(text[end])) != "other":
        end += 1
        digits += kind == "digit"
        if kind == "digit" and (end == len(text) or _kind(text[end]) != "digit"):
            ends.append((end, digits))
    for candidate, count in reversed(ends):
        if MIN_WRITTEN_DIGITS <= count <= MAX_WRITTEN_DIGITS:
            try:
                return normalize(text[start:candidate], region), candidate
            except InvalidNumber:
                pass
    if not ends:
        return "no_number"
    # Nothing valid: the code of the number as written, with any letters glued to it.
    stop = ends[-1][0]
    while stop < len(text) and _kind(text[stop]) == "other" and not text[stop].isspace():
        stop += 1
    try:
        normalize(text[start:stop][:MAX_INPUT_CHARS], region)
    except InvalidNumber as exc:
        return "no_number" if exc.code == "empty" else exc.code
    return "invalid_number"  # valid only past the length a number can have


def _not_a_number(text: str, start: int) -> str:
    """Why the word at ``start`` is not a number: letters in a number, a brand, or nothing."""
    word = text[start:].split(maxsplit=1)[0] if text[start:].strip() else ""
    folded = unicodedata.normalize("NFKC", word).rstrip(".,;:")
    if any(c.isdecimal() for c in folded):
        try:
            normalize(folded[:MAX_INPUT_CHARS])
        except InvalidNumber as exc:
            return "no_number" if exc.code == "empty" else exc.code
        return "invalid_characters"
    if _BRAND.fullmatch(folded):
        return "alphanumeric_sender_id"
    return "no_number"


def _starts_with_number(tail: str, region: str) -> bool:
    """True when another number follows the first ("0912345678, 0987654321").

    Only a number written with its trunk 0 or a "+" counts: content often
    starts with an amount ("300.000.000 đồng"), which reads like a number
    without its trunk 0.
    """
    start = _LEAD_OUT.match(tail).end()  # type: ignore[union-attr]
    connector = _CONNECTOR.match(tail, start)
    if connector is not None:
        start = connector.end()
    if unicodedata.normalize("NFKC", tail[start : start + 1]) not in ("0", "+"):
        return False
    return not isinstance(_read_number(tail, start, region), str)


def _content(tail: str, folded: str) -> str | None:
    """The content: separators and template brackets around it removed, spaces made single.

    ``folded`` is ``tail`` with full-width punctuation as ASCII, where the
    bounds are found; the content itself is cut from ``tail``, as sent.
    """
    start = _LEAD_OUT.match(folded).end()  # type: ignore[union-attr]
    end = len(folded.rstrip())
    closing = _TEMPLATE_BRACKETS.get(folded[start : start + 1])
    if closing is not None and end - start >= 2 and folded[end - 1] == closing:
        inner = folded[start + 1 : end - 1]
        if folded[start] not in inner and closing not in inner:
            start, end = start + 1, end - 1
    return _cut(_WHITESPACE.sub(" ", tail[start:end]).strip()) or None


def _cut(content: str) -> str:
    """At most ``MAX_CONTENT_CHARS`` characters, never splitting a letter from its marks."""
    if len(content) <= MAX_CONTENT_CHARS:
        return content
    cut = MAX_CONTENT_CHARS
    while cut > 0 and (unicodedata.combining(content[cut]) or content[cut] in "\u200d\ufe0f"):
        cut -= 1
    return content[:cut].rstrip()


def hide_number(text: str, e164: str) -> str:
    """``text`` with every writing of ``e164`` replaced by a placeholder (the sender's own)."""
    return _writings(e164).sub(SENDER_PLACEHOLDER, text)


_GAP: Final = rf"[\s{re.escape(_GAP_CHARS)}]*"
# Old 11-digit national prefix of each converted mobile block (Decision 798/QĐ-BTTTT).
_OLD_PREFIX_OF: Final = {new: old for old, new in OLD_MOBILE_PREFIXES.items()}


@lru_cache(maxsize=4096)
def _writings(e164: str) -> re.Pattern[str]:
    """Every way ``e164`` may be written: with or without +84/84/0084/0, spaced, full-width,
    and a Vietnamese mobile also in its old 11-digit form. One linear pass over any text."""
    if e164.startswith("+84"):
        national = e164[3:]
        forms = [national]
        if len(national) == 9 and national[:2] in _OLD_PREFIX_OF:
            forms.append(_OLD_PREFIX_OF[national[:2]] + national[2:])
        prefix = rf"(?:(?:[+\uff0b]|{_spelt('00')}){_GAP})?(?:{_spelt('84')}{_GAP})?"
        prefix += rf"(?:{_spelt('0')}{_GAP})?"
    else:
        forms = [e164[1:]]
        prefix = rf"(?:(?:[+\uff0b]|{_spelt('00')}){_GAP})?"
    body = "|".join(_spelt(form) for form in forms)
    return re.compile(rf"(?<![0-9\uff10-\uff19]){prefix}(?:{body})(?![0-9\uff10-\uff19])")


def _spelt(digits: str) -> str:
    """A regex for ``digits`` written in ASCII or full-width, with gaps between them."""
    return _GAP.join(f"[{d}{chr(0xFF10 + int(d))}]" for d in digits)


# The syntax taught in every error reply; "{to}" is the short code the citizen used.
SYNTAX: Final = "LD <số điện thoại> <nội dung> gửi {to}"
# Replies fit one SMS segment (70 characters of UCS-2, the encoding Vietnamese
# with diacritics needs) with a report id of up to 7 digits.
ACCEPTED_REPLIES: Final = {
    "scam": "Đã nhận phản ánh lừa đảo số {number}, mã {report_id}. Cảm ơn bạn!",
    "spam_call": "Đã nhận phản ánh cuộc gọi rác số {number}, mã {report_id}. Cảm ơn!",
    "spam_sms": "Đã nhận phản ánh tin nhắn rác số {number}, mã {report_id}. Cảm ơn!",
}
# While PostgreSQL is down the message waits in the spool: no reference yet.
QUEUED_REPLIES: Final = {
    "scam": "Đã nhận phản ánh lừa đảo số {number}. Cảm ơn bạn!",
    "spam_call": "Đã nhận phản ánh cuộc gọi rác số {number}. Cảm ơn!",
    "spam_sms": "Đã nhận phản ánh tin nhắn rác số {number}. Cảm ơn!",
}
ERROR_REPLIES: Final = {
    "empty_message": "Tin nhắn trống. Soạn: " + SYNTAX,
    "missing_keyword": "Sai cú pháp. Soạn: " + SYNTAX,
    "no_number": "Thiếu số điện thoại. Soạn: " + SYNTAX,
    "multiple_numbers": "Mỗi tin chỉ báo 1 số. Soạn: " + SYNTAX,
    "self_report": "Bạn không thể phản ánh chính số điện thoại của mình.",
    "invalid_sender": "Không xác định được số gửi tin, phản ánh chưa được ghi nhận.",
    "reporter_rate_limited": "Bạn đã gửi quá nhiều phản ánh. Vui lòng thử lại sau.",
    "short_code": "Đầu số ngắn không hợp lệ. Soạn: " + SYNTAX,
    "alphanumeric_sender_id": "Chỉ nhận số điện thoại, không nhận tên thương hiệu (VD: BIDV).",
    "invalid_characters": "Số điện thoại có chữ hoặc ký tự lạ. Vui lòng kiểm tra lại.",
    "invalid_number": "Số không hợp lệ. Soạn: " + SYNTAX,
    "too_long": "Số điện thoại quá dài. Vui lòng kiểm tra lại.",
    "input_too_long": "Số điện thoại quá dài. Vui lòng kiểm tra lại.",
}


def accepted_reply(category: str, e164: str, report_id: int) -> str:
    """The thank-you sent back to the citizen, with the reference of the report."""
    return ACCEPTED_REPLIES[category].format(number=national_form(e164), report_id=report_id)


def queued_reply(category: str, e164: str) -> str:
    """The thank-you for a report taken while the database is down (its reference comes later)."""
    return QUEUED_REPLIES[category].format(number=national_form(e164))


def refusal_reply(error: str, to: str) -> str:
    """What is wrong and the right syntax, for the short code the citizen wrote to."""
    return ERROR_REPLIES[error].format(to="5656" if "5656" in to else "156")


def national_form(e164: str) -> str:
    """How a citizen writes a number: ``0912345678`` for Vietnam, E.164 otherwise."""
    return "0" + e164[3:] if e164.startswith("+84") else e164
