"""Numbers as analysts see them: masked, never whole."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from reputation.privacy import mask, reporter_hash


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+84912345678", "+84 91x xxx x78"),  # mobile, 9 national digits: 3-3-3
        ("+84362345678", "+84 36x xxx x78"),
        ("+842438221234", "+84 24x xxx xx34"),  # Hanoi landline, 10 digits: 3-3-4
        ("+8419001234", "+84 19x xxx 34"),  # 1900 service number, 8 digits
        ("+14155550100", "+1 41x xxx xx00"),
        ("+441632960123", "+44 16x xxx xx23"),
        ("+8619912345678", "+86 19x xxx xxx 78"),
        ("+84123456", "+84 12x x56"),
        ("+8412345", "+84 xxx 45"),  # too short to show both ends
    ],
)
def test_mask(e164: str, masked: str) -> None:
    assert mask(e164) == masked


def test_mask_hides_the_middle_digits() -> None:
    masked = mask("+84912345678")
    for hidden in ("2345", "345", "456"):
        assert hidden not in masked.replace(" ", "")


@pytest.mark.parametrize(
    "text", ["0912345678", "84912345678", "+84 912 345 678", "", "+0912345678"]
)
def test_mask_takes_only_e164(text: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        mask(text)


def test_mask_reads_the_country_code_as_a_full_parse_does() -> None:
    rng = random.Random(84)
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for length in range(7, 16):
            e164 = f"+{code}" + "".join(rng.choice("0123456789") for _ in range(15))
            e164 = e164[: length + 1]
            country = str(phonenumbers.parse(e164).country_code)
            assert mask(e164).split(" ")[0] == "+" + country, e164


def test_unknown_country_code_is_refused() -> None:
    with pytest.raises(ValueError, match="country"):
        mask("+9991234567")


def test_reporter_hash_is_keyed() -> None:
    one = reporter_hash(b"key-1", "+84987000001", "app")
    assert one == reporter_hash(b"key-1", "+84987000001", "sms")
    assert one != reporter_hash(b"key-2", "+84987000001", "app")
    assert reporter_hash(b"key-1", None, "app") != reporter_hash(b"key-1", None, "sms")
