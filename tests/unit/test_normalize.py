"""Normalisation as pure code: the tables, the compiled plan, and the fast paths.

The end-to-end table of written forms lives in
``tests/integration/test_vn_numbers_api.py`` (through HTTP); these tests prove
the parts it relies on, over every prefix rather than over examples.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reputation.errors import InvalidNumber
from reputation.normalize import MAX_INPUT_CHARS, normalize, normalize_fully, valid_in_plan
from reputation.vn_numbering import (
    CURRENT_MOBILE_LEADING_DIGITS,
    OLD_AREA_CODES,
    OLD_MOBILE_PREFIXES,
    PLAN_OVERRIDES,
    current_national_number,
)


def library_says_valid(national: str) -> bool:
    number = phonenumbers.PhoneNumber(country_code=84, national_number=int(national))
    return phonenumbers.is_valid_number(number)


def outcome(function: object, text: str) -> str:
    """The E.164 result, or the error code, of a normalise function."""
    try:
        return function(text)  # type: ignore[operator, no-any-return]
    except InvalidNumber as exc:
        return "error:" + exc.code


def test_compiled_plan_agrees_with_phonenumbers_on_every_prefix() -> None:
    """Every 4-digit leading block, every length a national number can have."""
    rng = random.Random(84)
    disagreements = []
    for prefix in range(1000, 10_000):
        for length in range(5, 12):
            for fill in ("0" * 8, "9" * 8, "".join(rng.choices("0123456789", k=8))):
                national = (str(prefix) + fill)[:length]
                if valid_in_plan(national) != library_says_valid(national):
                    disagreements.append(national)
    assert disagreements == []


def test_the_21_old_mobile_prefixes() -> None:
    assert len(OLD_MOBILE_PREFIXES) == 21
    assert len(set(OLD_MOBILE_PREFIXES.values())) == 21
    for old, new in OLD_MOBILE_PREFIXES.items():
        national = old + "2345678"
        assert not library_says_valid(national), "old numbers are invalid today"
        assert current_national_number(national, valid_in_plan) == new + "2345678"
        assert library_says_valid(new + "2345678")


def test_no_other_11_digit_mobile_prefix_is_converted() -> None:
    for old in range(100, 200):
        national = f"{old}2345678"
        if str(old) not in OLD_MOBILE_PREFIXES:
            assert current_national_number(national, valid_in_plan) is None, national


def test_old_area_codes_are_prefix_free_and_lead_to_valid_landlines() -> None:
    codes = list(OLD_AREA_CODES)
    assert len(codes) == 59
    for code in codes:
        assert not any(other != code and other.startswith(code) for other in codes), code
        new = OLD_AREA_CODES[code]
        assert new.startswith("2")
        subscriber = "38221234" if len(new) == 2 else "3822123"
        assert library_says_valid(new + subscriber), new


def test_old_landlines_convert_unless_the_number_is_a_mobile_block() -> None:
    for code, new in OLD_AREA_CODES.items():
        subscriber = "38221234" if len(code) == 1 else "3822123"
        national = code + subscriber
        converted = current_national_number(national, valid_in_plan)
        if library_says_valid(national):
            assert converted == national, "today's plan wins"
        elif len(national) == 9 and national[0] in CURRENT_MOBILE_LEADING_DIGITS:
            assert converted is None, f"{national} is never read as an old landline"
        else:
            assert converted == new + national[len(code) :], national


def test_override_rows_are_numbers_the_library_rejects() -> None:
    for prefix, length in PLAN_OVERRIDES:
        national = (prefix + "2348560")[:length]
        assert len(national) == length
        assert not library_says_valid(national), "drop the row once the metadata knows it"
        assert current_national_number(national, valid_in_plan) == national


def written_forms(national: str) -> list[str]:
    """Ways the fast paths may see a number, and a few they must leave to the full path."""
    grouped = f"{national[:3]} {national[3:6]} {national[6:]}"
    return [
        "+84" + national,
        "0" + national,
        "0" + grouped,
        ("0" + grouped).replace(" ", "."),
        ("0" + grouped).replace(" ", "-"),
        " 0" + national + " ",
        "+84 " + grouped,
        "84" + national,
        "0" + national + "a",
        "0" + grouped + " " * MAX_INPUT_CHARS,
    ]


def test_fast_paths_match_the_full_path_over_all_prefixes() -> None:
    """Every 3-digit leading block at lengths 7 to 11, in every form the fast paths read."""
    for prefix in range(100, 1000):
        for length in range(7, 12):
            national = (str(prefix) + "23456789")[:length]
            for text in written_forms(national):
                assert outcome(normalize, text) == outcome(normalize_fully, text), repr(text)


# Digits, separators, letters that look like digits, full-width 8 and 4.
NUMBERISH = st.text(alphabet="0123456789+ .-()\t\u00a0\u200b,/aOl\uff18\uff14", max_size=24)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(NUMBERISH, st.text(max_size=70)))
@example("+84912345678")
@example("0912 345 678")
@example("0" * 70)
def test_fast_paths_never_accept_what_the_full_path_rejects(text: str) -> None:
    assert outcome(normalize, text) == outcome(normalize_fully, text)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(["+84", "0", "84", "0084"]), st.integers(10**8, 10**10 - 1))
def test_every_result_is_e164_and_stable(prefix: str, digits: int) -> None:
    try:
        e164 = normalize(prefix + str(digits))
    except InvalidNumber:
        return
    assert e164.startswith("+")
    assert e164[1:].isdigit()
    assert len(e164) <= 16
    assert normalize(e164) == e164


@pytest.mark.parametrize("region", ["VN", "TH", "US"])
def test_e164_input_is_region_independent(region: str) -> None:
    assert normalize("+84912345678", region) == "+84912345678"
    assert normalize("+84 166 234 5678", region) == "+84362345678"
