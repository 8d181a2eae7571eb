"""Phone numbers in, one E.164 key out.

``normalize(text, region)`` is the single seam through which every number
enters the service (lookups, reports, SMS, imports). It returns the E.164 form
(``+84912345678``) or raises ``InvalidNumber`` with one of the codes listed in
``errors.NUMBER_ERROR_MESSAGES``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from reputation.errors import invalid_number

# Longest input we try to read; anything longer is not one phone number.
MAX_INPUT_CHARS = 64
# E.164 allows at most 15 digits after the "+".
MAX_E164_DIGITS = 15
# A national number this short is a short code or service code (156, 5656, 1022).
MAX_SHORT_CODE_DIGITS = 6

# Characters people put between digits when they write or paste a number.
_SEPARATORS = re.compile(r"[\s\u00a0\u200b\u200c\u200d\u2060\ufeff.\-\u2010-\u2015()\[\]/]+")
# Labels in front of a number: "tel:", "Số:", "SĐT:", "ĐT:", "phone:".
_LABEL = re.compile(r"^\s*(?:tel|sđt|sdt|số|so|đt|dt|phone|điện thoại)\s*[:.]?\s*", re.IGNORECASE)
# Already in E.164: "+" then 7 to 15 digits, the first not zero.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_LETTERS = re.compile(r"[^\W\d_]")
_LIST_SEPARATORS = re.compile(r"[,;|\n]|\s(?:và|va|or|and|hoặc|hoac)\s", re.IGNORECASE)


def normalize(text: str, region: str = "VN") -> str:
    """The E.164 key of ``text``, or ``InvalidNumber`` with a code saying why not."""
    if _E164.fullmatch(text):
        return _normalize_clean(text, region)
    if len(text) > MAX_INPUT_CHARS:
        raise invalid_number("input_too_long")
    return _normalize_clean(_clean(text), region)


def _clean(text: str) -> str:
    """The number as a run of digits with an optional leading "+"."""
    # NFKC folds full-width digits and compatibility forms into ASCII.
    text = unicodedata.normalize("NFKC", text).strip()
    text = _LABEL.sub("", text).strip()
    if not text:
        raise invalid_number("empty")
    if _LIST_SEPARATORS.search(text) and sum(c.isdigit() for c in text) > MAX_SHORT_CODE_DIGITS:
        parts = [p for p in _LIST_SEPARATORS.split(text) if any(c.isdigit() for c in p)]
        if len(parts) > 1:
            raise invalid_number("multiple_numbers")
    compact = _SEPARATORS.sub("", text)
    if _LETTERS.search(compact):
        if not any(c.isdigit() for c in compact):
            raise invalid_number("alphanumeric_sender_id")
        raise invalid_number("invalid_characters")
    body = compact[1:] if compact.startswith("+") else compact
    if not body:
        raise invalid_number("empty")
    if not body.isascii() or not body.isdigit():
        raise invalid_number("invalid_characters")
    return compact


@lru_cache(maxsize=65_536)
def _normalize_clean(compact: str, region: str) -> str:
    """Parse a cleaned number; memoised because callers repeat themselves."""
    digits = compact.lstrip("+")
    if len(digits) > MAX_E164_DIGITS + 2:  # room for a "00" international prefix
        raise invalid_number("too_long")
    if not compact.startswith("+") and len(digits.lstrip("0")) <= MAX_SHORT_CODE_DIGITS:
        raise invalid_number("short_code")
    try:
        parsed = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.TOO_LONG:
            raise invalid_number("too_long") from None
        raise invalid_number("invalid_number") from None
    national = str(parsed.national_number)
    if len(national) <= MAX_SHORT_CODE_DIGITS:
        raise invalid_number("short_code")
    if len(national) + len(str(parsed.country_code)) > MAX_E164_DIGITS:
        raise invalid_number("too_long")
    if not phonenumbers.is_valid_number(parsed):
        raise invalid_number("invalid_number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
