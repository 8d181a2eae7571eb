"""``reputation.client`` against the real service over real HTTP, blocking and asyncio."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from reputation.client import Answer, ApiError, AsyncClient, Client, EntryError
from tests.conftest import TEST_TIMEOUT


def base_url(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


def blocking_session(url: str, api_key: str) -> list[object]:
    """A whole conversation with the blocking client, on one keep-alive connection."""
    seen: list[object] = []
    with Client(url, api_key=api_key, timeout=TEST_TIMEOUT) as service:
        seen.append(service.lookup("0912 345 678"))
        receipts = [
            service.report("0912345678", reporter=f"098700000{i}", category="impersonation")
            for i in range(3)
        ]
        seen.append(receipts)
        seen.append(service.report("0912345678", reporter="0987000009", idempotency_key="k"))
        seen.append(service.report("0912345678", reporter="0987000009", idempotency_key="k"))
        seen.append(service.lookup("+84912345678", attestation="A"))
        seen.append(service.lookup_many(["0912345678", "156", "0987654321"]))
        try:
            service.lookup("0912345678a")
        except ApiError as exc:
            seen.append(exc)
    return seen


async def test_blocking_client(client: TestClient, admin_key: str) -> None:
    clean, receipts, first, replay, reported, batch, error = await asyncio.to_thread(
        blocking_session, base_url(client), admin_key
    )
    assert isinstance(clean, Answer)
    assert clean.number == "+84912345678"
    assert clean.verdict == "allow"
    assert not clean.reported
    assert [r.answer.reporters for r in receipts] == [1, 2, 3]  # type: ignore[attr-defined]
    assert receipts[-1].answer.verdict == "warn"  # type: ignore[index]
    assert not first.replayed  # type: ignore[attr-defined]
    assert replay.replayed  # type: ignore[attr-defined]
    assert replay.id == first.id  # type: ignore[attr-defined]
    assert reported.reports == 4  # type: ignore[attr-defined]
    assert reported.categories == {"impersonation": 3, "scam": 1}  # type: ignore[attr-defined]
    assert reported.raw["verdict"] == reported.verdict  # type: ignore[attr-defined]
    assert isinstance(batch, list)
    assert batch[0].reports == 4
    assert batch[1] == EntryError("156", "short_code", batch[1].message)
    assert batch[2].verdict == "allow"
    assert isinstance(error, ApiError)
    assert error.status == 400
    assert error.code == "invalid_characters"


async def test_async_client(client: TestClient, admin_key: str) -> None:
    async with AsyncClient(base_url(client), api_key=admin_key, timeout=TEST_TIMEOUT) as service:
        assert (await service.lookup("0912345678")).verdict == "allow"
        for i in range(10):
            receipt = await service.report("0912345678", reporter=f"09870000{i:02d}")
        assert receipt.answer.verdict == "block"
        answers = await asyncio.gather(*(service.lookup("0912 345 678") for _ in range(20)))
        assert {a.verdict for a in answers} == {"block"}
        with pytest.raises(ApiError) as refused:
            await service.report("0912345678", channel="fax")
        assert refused.value.code == "invalid_channel"
        assert refused.value.status == 400
        with pytest.raises(ApiError) as too_many:
            await service.lookup_many(["0912345678"] * 1001)
        assert too_many.value.code == "batch_too_large"


def test_client_refuses_urls_that_are_not_http() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Client("ftp://example")
    with pytest.raises(ValueError, match="not an http"):
        AsyncClient("127.0.0.1:8080")


async def test_unreachable_service_raises_connection_errors() -> None:
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(lambda: Client("http://127.0.0.1:9", timeout=0.5).lookup("1"))
