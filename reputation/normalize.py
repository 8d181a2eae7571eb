"""Phone numbers in, one E.164 key out.

``normalize(text, region)`` is the single seam through which every number
enters the service (lookups, reports, SMS, imports). It returns the E.164 form
(``+84912345678``) or raises ``InvalidNumber`` with one of the codes listed in
``errors.NUMBER_ERROR_MESSAGES``.

What counts as a valid Vietnamese number is libphonenumber's metadata
(compiled once into one regular expression), corrected by the renumbering
tables of ``vn_numbering``. Two fast paths answer the forms a switch or an app
sends most (``+84912345678``, ``0912 345 678``) without the full clean-up;
they only ever accept what the full path accepts, with the same result.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

from reputation.errors import InvalidNumber, invalid_number
from reputation.vn_numbering import (
    MAX_NATIONAL_DIGITS,
    MAX_SHORT_CODE_DIGITS,
    current_national_number,
)

__all__ = [
    "INVISIBLE",
    "LABEL",
    "MAX_INPUT_CHARS",
    "MAX_WRITTEN_DIGITS",
    "MIN_WRITTEN_DIGITS",
    "normalize",
    "normalize_fully",
    "valid_in_plan",
]

# Longest input we try to read; anything longer is not one phone number.
MAX_INPUT_CHARS: Final = 64
# E.164 allows at most 15 digits after the "+".
MAX_E164_DIGITS: Final = 15
# Digits a written number can hold: more than a short code, at most "00" + 15.
MIN_WRITTEN_DIGITS: Final = MAX_SHORT_CODE_DIGITS + 1
MAX_WRITTEN_DIGITS: Final = MAX_E164_DIGITS + 2
VIETNAM: Final = "VN"
VIETNAM_COUNTRY_CODE: Final = "84"

# Fast paths: E.164 for Vietnam, and the national form with plain separators.
_E164_VN = re.compile(r"\+84([1-9][0-9]{6,9})")
_NATIONAL_VN = re.compile(r"0([1-9][0-9]{6,9})")

# Invisible format characters that copying from contacts, chat apps and web
# pages leaves around numbers: soft hyphen, zero-width space/joiners,
# left-to-right and bidi marks (phones wrap numbers in U+202A..U+202C),
# word joiner, byte order mark.
INVISIBLE: Final = "".join(
    chr(c)
    for first, last in (
        (0x00AD, 0x00AD), (0x061C, 0x061C), (0x180E, 0x180E), (0x200B, 0x200F),
        (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF),
    )
    for c in range(first, last + 1)
)  # fmt: skip
_INVISIBLE = re.compile(f"[{INVISIBLE}]")
# Labels in front of a number, removed when a number follows them.
LABEL: Final = re.compile(
    r"\s*(?:tel|phone|mobile|hotline|fax|zalo"
    r"|số\s*điện\s*thoại|so\s*dien\s*thoai|điện\s*thoại|dien\s*thoai"
    r"|số\s*đt|so\s*dt|sđt|sdt|đtdđ|dtdd|đt|dt|dđ|di\s*động|di\s*dong|số|so)"
    r"\s*[:.]?\s*(?=[+(\[0-9])",
    re.IGNORECASE,
)
# Between two numbers in one field: "0912345678, 0987654321", "... / ...", "... và ...".
_LIST_SEPARATORS = re.compile(r"[,;/|&\n]|\s(?:và|va|hoặc|hoac|hay|or|and)\s", re.IGNORECASE)
# Everything people put between the digits of one number (dashes include the
# en and em dashes and the minus sign); list separators with a single number
# around them are only punctuation ("0912345678,").
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212()\[\]{},;/|&]+")
_LETTER = re.compile(r"[^\W\d_]")
# Errors that two numbers written side by side also produce.
_MAYBE_TWO_NUMBERS = frozenset({"too_long", "invalid_number", "invalid_characters"})


def _desc_pattern(desc: PhoneNumberDesc | None) -> str | None:
    """A regex fragment accepting exactly what libphonenumber's ``desc`` accepts."""
    if desc is None or desc.national_number_pattern is None:
        return None
    lengths = desc.possible_length or ()
    if -1 in lengths:  # the type has no numbers in this region
        return None
    length_check = "|".join(rf"[0-9]{{{n}}}" for n in lengths)
    guard = rf"(?=(?:{length_check})\Z)" if length_check else ""
    return rf"{guard}(?:{desc.national_number_pattern})\Z"


def _plan_regex(region: str) -> re.Pattern[str]:
    """Valid national numbers of ``region``, as ``phonenumbers.is_valid_number`` decides.

    A number is valid when it matches the general description and one of the
    number types (libphonenumber's ``_number_type_helper``); doing that in one
    compiled expression costs a fraction of a ``parse``.
    """
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise ValueError(f"libphonenumber has no metadata for region {region!r}")
    general = _desc_pattern(metadata.general_desc)
    types = [
        _desc_pattern(getattr(metadata, name))
        # Most numbers are mobiles, then landlines: try those first (order
        # does not change the result, only the time to find it).
        for name in (
            "mobile", "fixed_line", "premium_rate", "toll_free", "shared_cost",
            "voip", "personal_number", "pager", "uan", "voicemail",
        )
    ]  # fmt: skip
    alternatives = "|".join(f"(?:{t})" for t in types if t is not None)
    return re.compile(rf"(?={general})(?:{alternatives})")


_VIETNAM_PLAN = _plan_regex(VIETNAM)


def valid_in_plan(national: str) -> bool:
    """True when libphonenumber's metadata holds ``national`` as a valid Vietnamese number."""
    return _VIETNAM_PLAN.match(national) is not None


def normalize(text: str, region: str = VIETNAM) -> str:
    """The E.164 key of ``text``, or ``InvalidNumber`` with a code saying why not."""
    match = _E164_VN.fullmatch(text)
    if match is not None and valid_in_plan(match[1]):
        return text
    if region == VIETNAM and len(text) <= MAX_INPUT_CHARS:
        match = _NATIONAL_VN.fullmatch(text.replace(" ", "").replace(".", "").replace("-", ""))
        if match is not None and valid_in_plan(match[1]):
            return "+84" + match[1]
    return normalize_fully(text, region)


def normalize_fully(text: str, region: str = VIETNAM) -> str:
    """``normalize`` without the fast paths: clean up what people paste, then read the digits."""
    if len(text) > MAX_INPUT_CHARS:
        raise invalid_number("input_too_long")
    written = _unify(text)
    if not written:
        raise invalid_number("empty")
    if sum(1 for part in _LIST_SEPARATORS.split(written) if _has_digit(part)) > 1:
        raise invalid_number("multiple_numbers")
    try:
        return _from_digits(_digits_only(_SEPARATORS.sub("", written)), region)
    except InvalidNumber as exc:
        if exc.code in _MAYBE_TWO_NUMBERS and _holds_two_numbers(written, region):
            raise invalid_number("multiple_numbers") from None
        raise


def _unify(text: str) -> str:
    """The text with one spelling per character and no label in front."""
    # NFKC folds full-width digits, "+" and brackets, and odd spaces into ASCII.
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    if not text.isascii():
        # Digits of other scripts (e.g. Arabic-Indic) that NFKC leaves alone.
        text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    label = LABEL.match(text)
    return (text[label.end() :] if label else text).strip()


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


def _digits_only(compact: str) -> str:
    """``compact`` when it is digits with an optional leading "+"; the coded error otherwise."""
    body = compact.removeprefix("+")
    if body.isascii() and body.isdigit():
        return compact
    if not body:
        raise invalid_number("empty")
    if not _has_digit(body) and _LETTER.search(body):
        raise invalid_number("alphanumeric_sender_id")
    raise invalid_number("invalid_characters")


def _from_digits(compact: str, region: str) -> str:
    if compact.startswith("+"):
        return _international(compact[1:])
    if region != VIETNAM:
        return _parse_with_library(compact, region)
    if compact.startswith("00"):
        return _international(compact[2:])
    if compact.startswith("0"):
        return _vietnamese(compact[1:])
    if compact.startswith(VIETNAM_COUNTRY_CODE):
        # "84912345678": the country code without "+", unless the whole is
        # itself a national number written without its trunk 0 ("841234567").
        try:
            return _vietnamese(compact)
        except InvalidNumber:
            return _vietnamese(compact[2:], after_country_code=True)
    return _vietnamese(compact)  # the trunk 0 left out ("912345678", "19001234")


def _international(digits: str) -> str:
    if not digits[:1].isdigit() or digits[0] == "0":  # country codes start with 1-9
        raise invalid_number("invalid_number")
    if digits.startswith(VIETNAM_COUNTRY_CODE):
        return _vietnamese(digits[2:], after_country_code=True)
    return _parse_with_library("+" + digits, None)


def _vietnamese(national: str, *, after_country_code: bool = False) -> str:
    """The E.164 form of a Vietnamese national number as written (old forms included)."""
    if after_country_code and national.startswith("0"):
        national = national[1:]  # "+84 (0) 912 345 678", "+84 0912..."
    if not national:
        raise invalid_number("invalid_number")
    if len(national) <= MAX_SHORT_CODE_DIGITS:
        raise invalid_number("short_code")
    if len(national) > MAX_NATIONAL_DIGITS:
        raise invalid_number("too_long")
    current = None if national[0] == "0" else current_national_number(national, valid_in_plan)
    if current is None:
        raise invalid_number("invalid_number")
    return "+" + VIETNAM_COUNTRY_CODE + current


def _parse_with_library(number: str, region: str | None) -> str:
    """Numbers of other countries: only what libphonenumber holds valid."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.TOO_LONG:
            raise invalid_number("too_long") from None
        raise invalid_number("invalid_number") from None
    national = phonenumbers.national_significant_number(parsed)
    country_code = str(parsed.country_code)
    if country_code == VIETNAM_COUNTRY_CODE:
        return _vietnamese(national)
    if len(national) <= MAX_SHORT_CODE_DIGITS:
        raise invalid_number("short_code")
    if len(national) + len(country_code) > MAX_E164_DIGITS:
        raise invalid_number("too_long")
    if not phonenumbers.is_valid_number(parsed):
        raise invalid_number("invalid_number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _holds_two_numbers(written: str, region: str) -> bool:
    """True when ``written`` is two valid numbers side by side ("0912345678 0987654321")."""
    groups = [group for group in _SEPARATORS.split(written) if group]
    digits = [sum(c.isdigit() for c in group) for group in groups]
    left = 0
    for cut in range(1, len(groups)):
        left += digits[cut - 1]
        if not (_could_be_a_number(left) and _could_be_a_number(sum(digits) - left)):
            continue
        try:
            _from_digits(_digits_only("".join(groups[:cut])), region)
            _from_digits(_digits_only("".join(groups[cut:])), region)
        except InvalidNumber:
            continue
        return True
    return False


def _could_be_a_number(digits: int) -> bool:
    return MIN_WRITTEN_DIGITS <= digits <= MAX_WRITTEN_DIGITS
