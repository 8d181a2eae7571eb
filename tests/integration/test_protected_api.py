"""Protected numbers and spoofed caller IDs, through the API and the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from reputation.app import create_app
from reputation.appkeys import SWEEPER
from reputation.settings import Settings
from tests.conftest import CreateApiKey, FakeClock, bearer, wait_ready
from tests.integration.test_evidence_api import fetch, lookup, report, reporter_number
from tests.integration.test_lifecycle import metric_value
from tests.integration.test_review_api import history, new_key, set_status

POLICE = "+842438221234"  # a landline shown by the "police are calling you" scam
BANK = "+841900545415"


async def protect(client: TestClient, number: str, name: str, **body: Any) -> dict[str, Any]:
    response = await client.put(f"/v1/protected/{number}", json={"name": name, **body})
    assert response.status in (200, 201), await response.text()
    result: dict[str, Any] = await response.json()
    return result


# (query, verdict, reasons) for a call showing a protected number nobody reported
SPOOFING = [
    ({}, "allow", ["protected_number"]),
    ({"attestation": "A"}, "allow", ["protected_number"]),
    ({"attestation": "B"}, "warn", ["protected_number", "spoofed_protected_number"]),
    ({"attestation": "C"}, "warn", ["protected_number", "spoofed_protected_number"]),
    ({"attestation": "none"}, "warn", ["protected_number", "spoofed_protected_number"]),
    ({"verstat": "TN-Validation-Passed"}, "allow", ["protected_number"]),
    ({"verstat": "TN-Validation-Passed", "attestation": "B"}, "warn",
     ["protected_number", "spoofed_protected_number"]),
    ({"verstat": "TN-Validation-Failed"}, "warn",
     ["protected_number", "failed_validation", "spoofed_protected_number"]),
    ({"verstat": "No-TN-Validation"}, "warn", ["protected_number", "spoofed_protected_number"]),
]  # fmt: skip


@pytest.mark.parametrize(("query", "verdict", "reasons"), SPOOFING)
async def test_spoof_detection_with_each_attestation_value(
    client: TestClient, query: dict[str, str], verdict: str, reasons: list[str]
) -> None:
    await protect(client, "024 3822 1234", "Công an TP Hà Nội")
    body = await lookup(client, POLICE, **query)
    assert (body["verdict"], body["reasons"]) == (verdict, reasons)
    # The same attestation on an ordinary, unreported number changes nothing...
    plain = await lookup(client, "+84987654321", **query)
    assert plain["verdict"] == "allow"
    # ...except a failed validation, which is flagged.
    assert ("failed_validation" in plain["reasons"]) == ("TN-Validation-Failed" in str(query))


async def test_spoofing_can_be_answered_block_by_setting(
    aiohttp_client: Callable[..., Any], settings: Settings, clock: FakeClock
) -> None:
    app = create_app(dataclasses.replace(settings, spoofed_protected_verdict="block"), clock=clock)
    client: TestClient = await aiohttp_client(app)
    await wait_ready(client)
    await protect(client, POLICE, "Công an TP Hà Nội")
    assert (await lookup(client, POLICE, attestation="C"))["verdict"] == "block"
    assert (await lookup(client, POLICE, attestation="A"))["verdict"] == "allow"


async def test_failed_validation_flags_a_reported_number(client: TestClient) -> None:
    number = "+84912345678"
    await report(client, number, reporter_number(1))
    assert (await lookup(client, number))["verdict"] == "allow"
    assert (await lookup(client, number, attestation="C"))["verdict"] == "allow"
    body = await lookup(client, number, verstat="TN-Validation-Failed")
    assert (body["verdict"], body["reasons"]) == ("warn", ["few_reports", "failed_validation"])


@pytest.mark.parametrize(
    ("query", "code"),
    [({"attestation": "D"}, "invalid_attestation"), ({"verstat": "ok"}, "invalid_verstat")],
)
async def test_bad_attestation_is_refused(
    client: TestClient, query: dict[str, str], code: str
) -> None:
    response = await client.get(f"/v1/numbers/{POLICE}", params=query)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code


async def test_a_protected_number_never_reaches_block(
    client: TestClient, settings: Settings
) -> None:
    await protect(client, POLICE, "Công an TP Hà Nội", note="đường dây nóng")
    for i in range(30):
        await report(client, POLICE, reporter_number(i))
    body = await lookup(client, POLICE)
    assert (body["verdict"], body["reasons"]) == ("warn", ["reported_by_many", "protected_number"])
    assert body["score"] == 1.0
    body = await set_status(client, POLICE, "confirmed", note="scam reports are spoofed calls")
    assert body["number"]["verdict"] == "warn"
    stored = await fetch(settings, "SELECT verdict FROM numbers WHERE e164 = $1", POLICE)
    assert stored[0]["verdict"] == "warn"

    response = await client.delete(
        f"/v1/protected/{POLICE}", json={"note": "số đã thu hồi, cấp lại"}
    )
    assert response.status == 200
    assert (await response.json())["protected"]["name"] == "Công an TP Hà Nội"
    assert (await lookup(client, POLICE))["verdict"] == "block"
    stored = await fetch(settings, "SELECT verdict FROM numbers WHERE e164 = $1", POLICE)
    assert stored[0]["verdict"] == "block"
    trail = [(e["action"], e["from"], e["to"], e["note"]) for e in await history(client, POLICE)]
    assert trail == [
        ("protect", None, "Công an TP Hà Nội", "đường dây nóng"),
        ("status", "reported", "confirmed", "scam reports are spoofed calls"),
        ("unprotect", "Công an TP Hà Nội", None, "số đã thu hồi, cấp lại"),
    ]
    kinds = await fetch(
        settings, "SELECT kind FROM changes WHERE e164 = $1 AND kind <> 'report' ORDER BY seq",
        POLICE,
    )  # fmt: skip
    assert [k["kind"] for k in kinds] == ["protected", "status", "protected"]
    again = await client.delete(f"/v1/protected/{POLICE}")
    assert again.status == 404
    assert (await again.json())["error"]["code"] == "not_protected"


async def test_protected_list_management_and_roles(
    client: TestClient, create_api_key: CreateApiKey, settings: Settings
) -> None:
    first = await client.put(f"/v1/protected/{BANK}", json={"name": "Vietcombank"})
    assert first.status == 201
    same = await client.put(f"/v1/protected/{BANK}", json={"name": "Vietcombank"})
    assert same.status == 200
    renamed = await protect(client, "1900 545 415", "Vietcombank (hotline)", note="24/7")
    assert renamed["protected"]["name"] == "Vietcombank (hotline)"
    await protect(client, POLICE, "Công an TP Hà Nội")
    listed = await (await client.get("/v1/protected", params={"limit": "1"})).json()
    assert [p["number"] for p in listed["protected"]] == [BANK]
    rest = await client.get("/v1/protected", params={"cursor": listed["next_cursor"]})
    assert [p["number"] for p in (await rest.json())["protected"]] == [POLICE]
    audit = await fetch(settings, "SELECT action, to_value FROM audit_log WHERE e164 = $1", BANK)
    assert [(a["action"], a["to_value"]) for a in audit] == [
        ("protect", "Vietcombank"),
        ("protect", "Vietcombank (hotline)"),
    ]  # the unchanged PUT left no trace

    analyst = bearer(await new_key(client, create_api_key, "analyst", "analyst"))
    assert (await client.get("/v1/protected", headers=analyst)).status == 200
    refused = await client.put(f"/v1/protected/{BANK}", json={"name": "x"}, headers=analyst)
    assert refused.status == 403
    refused = await client.delete(f"/v1/protected/{BANK}", headers=analyst)
    assert refused.status == 403
    for body, code in [({}, "missing_field"), ({"name": "x" * 201}, "text_too_long")]:
        response = await client.put(f"/v1/protected/{BANK}", json=body)
        assert (response.status, (await response.json())["error"]["code"]) == (400, code)
    short = await client.put("/v1/protected/113", json={"name": "Cảnh sát"})
    assert (await short.json())["error"]["code"] == "short_code"


async def test_spoof_metrics(client: TestClient) -> None:
    await protect(client, POLICE, "Công an TP Hà Nội")
    await lookup(client, POLICE, attestation="C")
    await lookup(client, POLICE, attestation="C")
    scrape = await (await client.get("/metrics")).text()
    assert (
        metric_value(scrape, 'reputation_verdict_reasons_total{reason="spoofed_protected_number"}')
        == 2
    )
    assert metric_value(scrape, "reputation_protected_numbers") == 1


async def run_cli(settings: Settings, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    env = {**os.environ, "REPUTATION_DATABASE_URL": str(settings.database_url)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reputation", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_protected_numbers_load_from_a_csv_file(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    good = tmp_path / "protected.csv"
    good.write_text(
        "\ufeffnumber,name,note\n"  # written by a spreadsheet: BOM and header
        "# emergency and government lines\n"
        '024 3822 1234,Công an TP Hà Nội,"trực ban, 24/7"\n'
        "\n"
        "+84 1900 545 415,Vietcombank\n",
        encoding="utf-8",
    )
    code, out, err = await run_cli(settings, "protected", "load", str(good))
    assert code == 0, err
    assert out.strip() == '{"added": 2, "updated": 0, "unchanged": 0, "removed": 0}'
    await client.app[SWEEPER].run_once()  # a running node picks the list up
    body = await lookup(client, POLICE, attestation="C")
    assert body["reasons"] == ["protected_number", "spoofed_protected_number"]
    rows = await fetch(settings, "SELECT e164, name, note, updated_by FROM protected_numbers")
    assert {(r["e164"], r["note"]) for r in rows} == {(POLICE, "trực ban, 24/7"), (BANK, None)}
    assert all(r["updated_by"].startswith("cli:") for r in rows)

    bad = tmp_path / "bad.csv"
    bad.write_text("0912345678,Ngân hàng A\n113,Cảnh sát\n0912 345 678,Trùng\nchữ,\n")
    code, _, err = await run_cli(settings, "protected", "load", str(bad), "--replace")
    assert code == 1
    assert '"line": 2, "code": "short_code"' in err
    assert '"line": 3, "code": "duplicate_number"' in err
    assert '"line": 4, "code": "missing_field"' in err
    assert "nothing was changed" in err
    assert len(await fetch(settings, "SELECT * FROM protected_numbers")) == 2

    code, out, err = await run_cli(
        settings, "protected", "load", "-", "--replace", stdin=b"1900545415,Vietcombank\n"
    )
    assert code == 0, err
    assert out.strip() == '{"added": 0, "updated": 0, "unchanged": 1, "removed": 1}'
    code, out, _ = await run_cli(settings, "protected", "list")
    assert code == 0
    assert BANK in out
    assert POLICE not in out
