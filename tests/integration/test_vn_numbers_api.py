"""Every way a Vietnamese number is written, through the real HTTP API on real PostgreSQL.

Each rule of the number policy has its table of (as written, expected), the
expectation being the E.164 key or the error code. Every row goes through
``GET /v1/numbers/{number}`` and, in one batch per rule, ``POST /v1/lookups``.
"""

from __future__ import annotations

from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from reputation.settings import Settings
from reputation.vn_numbering import OLD_MOBILE_PREFIXES

Table = list[tuple[str, str]]

INTERNATIONAL_FORMS: Table = [
    ("+84912345678", "+84912345678"),
    ("+84 912 345 678", "+84912345678"),
    ("+84-912-345-678", "+84912345678"),
    ("+84.912.345.678", "+84912345678"),
    ("(+84) 912 345 678", "+84912345678"),
    ("84912345678", "+84912345678"),
    ("84 912 345 678", "+84912345678"),
    ("0084912345678", "+84912345678"),
    ("0084 912 345 678", "+84912345678"),
    ("+84 0912 345 678", "+84912345678"),
    ("+84 (0) 912 345 678", "+84912345678"),
    ("+84(0)912345678", "+84912345678"),
    ("840912345678", "+84912345678"),
    ("+84 24 3822 1234", "+842438221234"),
    ("0084 (0) 24 3822 1234", "+842438221234"),
    ("+84 1900 1234", "+8419001234"),
]

PASTED_FORMS: Table = [
    ("0912345678", "+84912345678"),
    ("0912 345 678", "+84912345678"),
    ("0912.345.678", "+84912345678"),
    ("0912-345-678", "+84912345678"),
    ("0912\u2013345\u2013678", "+84912345678"),  # en dashes
    ("0912\u2014345\u2014678", "+84912345678"),  # em dashes
    ("0912 \u2212 345 \u2212 678", "+84912345678"),  # minus signs
    ("0912\u2011345\u2011678", "+84912345678"),  # non-breaking hyphens
    ("(091) 234.5678", "+84912345678"),
    ("(0912) 345 678", "+84912345678"),
    ("[0912] 345 678", "+84912345678"),
    ("0912\t345\t678", "+84912345678"),
    ("0912\u00a0345\u00a0678", "+84912345678"),  # no-break spaces
    ("0912\u202f345\u202f678", "+84912345678"),  # narrow no-break spaces
    ("0912\u200b345\u200b678", "+84912345678"),  # zero-width spaces
    ("\u202a0912 345 678\u202c", "+84912345678"),  # bidi marks from a phone's contacts
    ("\ufeff0912345678", "+84912345678"),  # byte order mark
    ("091 234 5678", "+84912345678"),
    ("09 12 34 56 78", "+84912345678"),
    ("  0912345678  ", "+84912345678"),
    ("0912345678\n", "+84912345678"),
    ("0912345678.", "+84912345678"),
    ("0912345678,", "+84912345678"),
    ("912345678", "+84912345678"),  # the trunk 0 lost in a spreadsheet
    ("\uff10\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18", "+84912345678"),  # full-width
    ("\uff10\uff19\uff11\uff12\u3000\uff13\uff14\uff15\u3000\uff16\uff17\uff18", "+84912345678"),
    ("\uff0b\uff18\uff14\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18", "+84912345678"),
    ("\u0660\u0669\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "+84912345678"),
    ("0987 654 321", "+84987654321"),
    ("0868.123.456", "+84868123456"),
    ("0703 123 456", "+84703123456"),
    ("0583-123-456", "+84583123456"),
]

LABELS: Table = [
    ("tel:0912345678", "+84912345678"),
    ("tel:+84912345678", "+84912345678"),
    ("TEL: 0912 345 678", "+84912345678"),
    ("Tel. 0912345678", "+84912345678"),
    ("Số: 0912345678", "+84912345678"),
    ("số 0912 345 678", "+84912345678"),
    ("So\u0302\u0301: 0912345678", "+84912345678"),  # "Số" in decomposed Unicode
    ("SĐT: 0912.345.678", "+84912345678"),
    ("sđt 0912345678", "+84912345678"),
    ("SDT:0912345678", "+84912345678"),
    ("ĐT: (028) 3822 1234", "+842838221234"),
    ("Điện thoại: 0912345678", "+84912345678"),
    ("Số điện thoại: 0912 345 678", "+84912345678"),
    ("Hotline: 1900 545 415", "+841900545415"),
    ("Zalo: 0912345678", "+84912345678"),
    ("Phone: +84 912 345 678", "+84912345678"),
]

OLD_MOBILE: Table = [
    (f"0{old}{tail}", f"+84{new}{tail}")
    for (old, new), tail in zip(
        OLD_MOBILE_PREFIXES.items(),
        [f"{(2345678 + i * 1234567) % 10**7:07d}" for i in range(21)],
        strict=True,
    )
] + [
    ("0166 234 5678", "+84362345678"),
    ("+84 166 234 5678", "+84362345678"),
    ("84 1662345678", "+84362345678"),
    ("0084 166 234 5678", "+84362345678"),
    ("01662.345.678", "+84362345678"),
    ("0199 595 9999", "+84595959999"),
    ("0188 855 5888", "+84588555888"),
    ("0186 234 5678", "+84562345678"),
    ("01612345678", "invalid_number"),
    ("01302345678", "invalid_number"),
    ("01702345678", "invalid_number"),
    ("01872345678", "invalid_number"),
    ("01982345678", "invalid_number"),
    ("0166234567", "invalid_number"),
    ("016623456789", "too_long"),
]

LANDLINES: Table = [
    # New codes, as dialled today (the four unchanged provinces included).
    ("024 3822 1234", "+842438221234"),
    ("028 3822 1234", "+842838221234"),
    ("0236 3822 123", "+842363822123"),
    ("0211 3822 123", "+842113822123"),
    ("0210 3822 123", "+842103822123"),
    ("0218 3822 123", "+842183822123"),
    ("0219 3822 123", "+842193822123"),
    # Old codes, converted because the number is not valid today.
    ("04 3822 1234", "+842438221234"),
    ("(04) 3822 1234", "+842438221234"),
    ("+84 4 3822 1234", "+842438221234"),
    ("0511 3822 123", "+842363822123"),
    ("(0511) 3.822.123", "+842363822123"),
    ("0510 386 1234", "+842353861234"),
    ("061 3822 123", "+842513822123"),
    ("0650 3822 123", "+842743822123"),
    ("0651 3822 123", "+842713822123"),
    ("0500 3822 123", "+842623822123"),
    ("0501 3822 123", "+842613822123"),
    ("0710 3822 123", "+842923822123"),
    ("0711 3822 123", "+842933822123"),
    ("0780 3822 123", "+842903822123"),
    ("0781 3822 123", "+842913822123"),
    ("0320 3822 123", "+842203822123"),
    ("0321 3822 123", "+842213822123"),
    ("0350 3822 123", "+842283822123"),
    ("0351 3822 123", "+842263822123"),
    ("022 3822 123", "+842123822123"),
    ("020 3822 123", "+842143822123"),
    ("0230 3822 123", "+842153822123"),
    ("0231 3822 123", "+842133822123"),
    ("0240 3822 123", "+842043822123"),
    ("0241 3822 123", "+842223822123"),
    ("0280 3822 123", "+842083822123"),
    ("0281 3822 123", "+842093822123"),
    ("025 3822 123", "+842053822123"),
    ("026 3822 123", "+842063822123"),
    ("027 3822 123", "+842073822123"),
    ("029 3822 123", "+842163822123"),
    ("060 3822 123", "+842603822123"),
    ("062 3822 123", "+842523822123"),
    ("063 3822 123", "+842633822123"),
    ("064 3822 123", "+842543822123"),
    ("066 3822 123", "+842763822123"),
    ("067 3822 123", "+842773822123"),
    ("068 3822 123", "+842593822123"),
    # The current plan wins: 9-digit numbers in today's mobile blocks.
    ("08 3822 1234", "+84838221234"),
    ("038 3822 123", "+84383822123"),
    ("031 3822 123", "+84313822123"),
    ("052 3822 123", "+84523822123"),
    ("079 3822 123", "+84793822123"),
    ("054 3822 123", "invalid_number"),
    ("0891234567", "invalid_number"),
    ("08 9123 4567", "invalid_number"),
    ("073 3822 123", "invalid_number"),
    ("055 3822 123", "invalid_number"),
    ("057 3822 123", "invalid_number"),
    ("024 3822 123", "invalid_number"),
]

SERVICE_AND_SHORT: Table = [
    ("1800 1091", "+8418001091"),
    ("1800-1091", "+8418001091"),
    ("1800 599 920", "+841800599920"),
    ("1900 545 415", "+841900545415"),
    ("1900.6060", "+8419006060"),
    ("19001234", "+8419001234"),
    ("156", "short_code"),
    ("5656", "short_code"),
    ("111", "short_code"),
    ("112", "short_code"),
    ("113", "short_code"),
    ("114", "short_code"),
    ("115", "short_code"),
    ("1022", "short_code"),
    ("9090", "short_code"),
    ("18001", "short_code"),
    ("1 5 6", "short_code"),
    ("+84 156", "short_code"),
    ("0212345", "short_code"),
    ("*101#", "invalid_characters"),
]

POLICE_OVERRIDES: Table = [
    ("069 234 8560", "+84692348560"),
    ("0692326555", "+84692326555"),
    ("069.234.2593", "+84692342593"),
    ("0693 187 200", "+84693187200"),
    ("+84 69 234 8560", "+84692348560"),
    ("069 234 856", "+8469234856"),
    ("069 234 85601", "invalid_number"),
]

LETTERS_AND_BRANDS: Table = [
    ("O912345678", "invalid_characters"),
    ("0912345678a", "invalid_characters"),
    ("0912 345 67B", "invalid_characters"),
    ("09l2345678", "invalid_characters"),
    ("1900 BIDV", "invalid_characters"),
    ("0912345678 ext 12", "invalid_characters"),
    ("0912#345678", "invalid_characters"),
    ("BIDV", "alphanumeric_sender_id"),
    ("VIETTEL", "alphanumeric_sender_id"),
    ("Vietcombank", "alphanumeric_sender_id"),
    ("MB Bank", "alphanumeric_sender_id"),
    ("FE CREDIT", "alphanumeric_sender_id"),
    ("HOME-CREDIT", "alphanumeric_sender_id"),
    ("\uff22\uff29\uff24\uff36", "alphanumeric_sender_id"),  # full-width BIDV
    ("CÔNG AN", "alphanumeric_sender_id"),
]

SEVERAL_NUMBERS: Table = [
    ("0912345678, 0987654321", "multiple_numbers"),
    ("0912345678;0987654321", "multiple_numbers"),
    ("0912345678/0987654321", "multiple_numbers"),
    ("0912345678 / 0987654321", "multiple_numbers"),
    ("0912345678 và 0987654321", "multiple_numbers"),
    ("0912345678 hoặc 0987654321", "multiple_numbers"),
    ("0912345678 0987654321", "multiple_numbers"),
    ("0912 345 678 0987 654 321", "multiple_numbers"),
    ("+84912345678 +84987654321", "multiple_numbers"),
    ("0912345678\n0987654321", "multiple_numbers"),
    ("0912345678 - 0987654321", "multiple_numbers"),
    ("0912345678/79", "multiple_numbers"),
]

LENGTHS_AND_EMPTY: Table = [
    ("", "empty"),
    (" ", "empty"),
    ("\u200b", "empty"),
    ("()", "empty"),
    ("+", "empty"),
    ("0" * 65, "input_too_long"),
    ("0912345678" + " " * 60, "input_too_long"),
    ("+84 912 345 678 " * 5, "input_too_long"),
    ("+8491234567890123", "too_long"),
    ("091234567890", "too_long"),
    ("+84 9123456789", "invalid_number"),
    ("0912345", "short_code"),
    ("09123456", "invalid_number"),
]

FOREIGN: Table = [
    ("+6591234567", "+6591234567"),
    ("006591234567", "+6591234567"),
    ("+86 138 0013 8000", "+8613800138000"),
    ("+66 81 234 5678", "+66812345678"),
    ("+855 12 345 678", "+85512345678"),
    ("00855 12 345 678", "+85512345678"),
    ("+1 650 253 0000", "+16502530000"),
    ("+44 20 7946 0958", "+442079460958"),
    ("6591234567", "invalid_number"),
    ("66812345678", "too_long"),  # read as Vietnamese: foreign numbers need + or 00
    ("+1 555 0100 000", "invalid_number"),
    ("+999 1234567", "invalid_number"),
    ("+65 1234", "short_code"),
]

RULES: dict[str, Table] = {
    "international_forms": INTERNATIONAL_FORMS,
    "pasted_forms": PASTED_FORMS,
    "labels": LABELS,
    "old_mobile": OLD_MOBILE,
    "landlines": LANDLINES,
    "service_and_short": SERVICE_AND_SHORT,
    "police_overrides": POLICE_OVERRIDES,
    "letters_and_brands": LETTERS_AND_BRANDS,
    "several_numbers": SEVERAL_NUMBERS,
    "lengths_and_empty": LENGTHS_AND_EMPTY,
    "foreign": FOREIGN,
}


def test_the_table_is_large_and_unambiguous() -> None:
    rows = [row for table in RULES.values() for row in table]
    assert len(rows) >= 150
    written = [text for text, _ in rows]
    duplicates = {text for text in written if written.count(text) > 1}
    assert duplicates <= {"0912345678"}, duplicates


def expected_json(expected: str) -> tuple[int, str]:
    return (200, expected) if expected.startswith("+") else (400, expected)


@pytest.mark.parametrize("rule", list(RULES))
async def test_lookup_of_each_written_form(client: TestClient, rule: str) -> None:
    table = RULES[rule]
    wrong = []
    for written, expected in table:
        if not written:
            continue  # an empty path segment is another route; the batch below covers it
        response = await client.get("/v1/numbers/" + quote(written, safe=""))
        body = await response.json()
        got = body["number"] if response.status == 200 else body["error"]["code"]
        if (response.status, got) != expected_json(expected):
            wrong.append((written, expected, response.status, got))
    assert wrong == []


@pytest.mark.parametrize("rule", list(RULES))
async def test_batch_lookup_of_each_written_form(client: TestClient, rule: str) -> None:
    table = RULES[rule]
    response = await client.post("/v1/lookups", json={"numbers": [w for w, _ in table]})
    assert response.status == 200
    results = (await response.json())["results"]
    got = [r["number"] if "number" in r else r["error"]["code"] for r in results]
    assert got == [expected for _, expected in table]


async def numbers_in_database(settings: Settings) -> list[str]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return [row["e164"] for row in await conn.fetch("SELECT e164 FROM numbers ORDER BY e164")]
    finally:
        await conn.close()


async def test_reports_in_old_forms_are_kept_under_todays_number(
    client: TestClient, settings: Settings
) -> None:
    for written in ("0166 234 5678", "+84 166 234 5678", "036 234 5678", "(04) 3822 1234"):
        response = await client.post(
            "/v1/reports", json={"number": written, "reporter": "0987000001"}
        )
        assert response.status == 201, await response.text()
    assert await numbers_in_database(settings) == ["+842438221234", "+84362345678"]
    body = await (await client.get("/v1/numbers/" + quote("84 36 234 5678", safe=""))).json()
    assert body["reports"] == 3
    assert body["reporters"] == 1


@pytest.mark.parametrize(
    ("number", "reporter"),
    [
        ("0362345678", "01662345678"),
        ("01662345678", "+84 36 234 5678"),
        ("0912 345 678", "84912345678"),
    ],
)
async def test_call_centre_self_report_is_seen_through_old_and_new_forms(
    client: TestClient, settings: Settings, number: str, reporter: str
) -> None:
    response = await client.post(
        "/v1/reports", json={"number": number, "reporter": reporter, "channel": "call_center"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "self_report"
    assert await numbers_in_database(settings) == []
