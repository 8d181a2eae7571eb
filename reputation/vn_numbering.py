"""Vietnam's numbering plan changes, as data, and the one rule that applies them.

Citizens still write numbers the way they learnt them before the 2017 area-code
change and the 2018 mobile conversion. ``current_national_number`` turns such a
national number (the digits after the trunk ``0``) into the number that rings
today, or says that no such number exists. Today's plan itself (which numbers
are valid) comes from libphonenumber's metadata, passed in as ``is_valid``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

# Longest national number of a short code or service code (112, 156, 5656,
# 1022, 9090...): not subscriber numbers. Emergency and public-service codes
# (111-115), the 156/5656 reporting lines and carrier service codes are all at
# most this long; 1800/1900 numbers are 8 or 10 digits and count as full
# numbers. Source: Circular 22/2014/TT-BTTTT (national numbering plan).
MAX_SHORT_CODE_DIGITS: Final = 6

# Longest national number in today's plan (landlines: 2-digit or 3-digit area
# code + 8 or 7 digits; 1800/1900 numbers: up to 10). Circular 22/2014/TT-BTTTT.
MAX_NATIONAL_DIGITS: Final = 10

# First digit of today's 9-digit mobile numbers (03x, 05x, 07x, 08x, 09x after
# the 2018 conversion; Circular 22/2014/TT-BTTTT and Decision 798/QĐ-BTTTT).
# A 9-digit national number starting with one of these is read under today's
# plan only: never as an old landline, even when it is not valid today
# (`08 3822 1234` is a mobile today; `054 3822 123` is simply invalid).
CURRENT_MOBILE_LEADING_DIGITS: Final = frozenset("35789")

# 2018: 11-digit mobile numbers became 10 digits; the last 7 digits were kept.
# Old national destination code -> new. Decision 798/QĐ-BTTTT (conversion from
# 15/09/2018, parallel dialling until 14/11/2018). The Vietnamobile rows
# (186 -> 56, 188 -> 58) are printed reversed by one press article; the
# ministry's announcement as reported by several outlets and Vietnamobile's
# own notice agree with this table.
OLD_MOBILE_PREFIXES: Final[Mapping[str, str]] = {
    # Viettel
    "162": "32", "163": "33", "164": "34", "165": "35",
    "166": "36", "167": "37", "168": "38", "169": "39",
    # MobiFone
    "120": "70", "121": "79", "122": "77", "126": "76", "128": "78",
    # VinaPhone
    "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
    # Vietnamobile
    "186": "56", "188": "58",
    # Gmobile
    "199": "59",
}  # fmt: skip

# 2017: landline area codes of 59 provinces changed; every new code starts
# with 2. Old code -> new code, both without the trunk 0. Decision
# 2036/QĐ-BTTTT (implementing Circular 22/2014/TT-BTTTT), three phases:
# 11/02, 15/04 and 17/06/2017, completed 31/08/2017. Vĩnh Phúc (211), Phú Thọ
# (210), Hòa Bình (218) and Hà Giang (219) kept their codes. The old codes of
# phase 3 were checked against a published old/new table of all 59 provinces
# (every row agrees with this one) and against carriers' notices of the phases;
# its new codes match the list of 23 phase-3 provinces published for
# 17/06/2017. No old code is a prefix of another, so the match is unambiguous.
OLD_AREA_CODES: Final[Mapping[str, str]] = {
    # Phase 1 (11/02/2017): Sơn La, Lai Châu, Lào Cai, Điện Biên, Yên Bái,
    # Quảng Bình, Quảng Trị, Thừa Thiên Huế, Quảng Nam, Đà Nẵng, Thanh Hóa,
    # Nghệ An, Hà Tĩnh.
    "22": "212", "231": "213", "20": "214", "230": "215", "29": "216",
    "52": "232", "53": "233", "54": "234", "510": "235", "511": "236",
    "37": "237", "38": "238", "39": "239",
    # Phase 2 (15/04/2017): Quảng Ninh, Bắc Giang, Lạng Sơn, Cao Bằng,
    # Tuyên Quang, Thái Nguyên, Bắc Kạn, Hải Dương, Hưng Yên, Bắc Ninh,
    # Hải Phòng, Hà Nam, Thái Bình, Nam Định, Ninh Bình, Cà Mau, Bạc Liêu,
    # Cần Thơ, Hậu Giang, Trà Vinh, An Giang, Kiên Giang, Sóc Trăng.
    "33": "203", "240": "204", "25": "205", "26": "206", "27": "207",
    "280": "208", "281": "209", "320": "220", "321": "221", "241": "222",
    "31": "225", "351": "226", "36": "227", "350": "228", "30": "229",
    "780": "290", "781": "291", "710": "292", "711": "293", "74": "294",
    "76": "296", "77": "297", "79": "299",
    # Phase 3 (17/06/2017): Hà Nội, TP Hồ Chí Minh, Đồng Nai, Bình Thuận,
    # Bà Rịa-Vũng Tàu, Quảng Ngãi, Bình Định, Phú Yên, Khánh Hòa, Ninh Thuận,
    # Kon Tum, Đắk Nông, Đắk Lắk, Lâm Đồng, Gia Lai, Vĩnh Long, Bình Phước,
    # Long An, Tiền Giang, Bình Dương, Bến Tre, Tây Ninh, Đồng Tháp.
    "4": "24", "8": "28", "61": "251", "62": "252", "64": "254",
    "55": "255", "56": "256", "57": "257", "58": "258", "68": "259",
    "60": "260", "501": "261", "500": "262", "63": "263", "59": "269",
    "70": "270", "651": "271", "72": "272", "73": "273", "650": "274",
    "75": "275", "66": "276", "67": "277",
}  # fmt: skip

# Genuine numbers that libphonenumber's metadata rejects, as (national prefix,
# national length). Keep this table small and give the evidence of each row.
#
# 069: the Ministry of Public Security's own network. libphonenumber knows
# only 7-8 digit national numbers there (069 xxxxx(x)), but the ministry
# publishes 10-digit ones (9 digits after the trunk 0): the ministry's hotline
# 069 232 6555, the anti-corruption hotline 069 234 2593 (announced 12/2018),
# the criminal police duty line 069 234 8560, and Ho Chi Minh City criminal
# police (PC02) 0693 187 200.
PLAN_OVERRIDES: Final[tuple[tuple[str, int], ...]] = (("69", 9),)


def current_national_number(national: str, is_valid: Callable[[str], bool]) -> str | None:
    """The national number that rings today for ``national`` as written, or None.

    Today's plan always wins: an old form is converted only when the number
    is not valid as written, and a converted number must be valid today.
    """
    if is_valid(national) or any(
        national.startswith(prefix) and len(national) == length for prefix, length in PLAN_OVERRIDES
    ):
        return national
    if len(national) == 10 and national[:3] in OLD_MOBILE_PREFIXES:
        converted = OLD_MOBILE_PREFIXES[national[:3]] + national[3:]
    elif len(national) == 9 and national[0] in CURRENT_MOBILE_LEADING_DIGITS:
        return None
    else:
        old_code = next((national[:n] for n in (1, 2, 3) if national[:n] in OLD_AREA_CODES), None)
        if old_code is None:
            return None
        converted = OLD_AREA_CODES[old_code] + national[len(old_code) :]
    return converted if is_valid(converted) else None
