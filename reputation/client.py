"""A small Python client of the HTTP API, blocking (``Client``) or asyncio (``AsyncClient``).

    from reputation.client import Client
    with Client("http://127.0.0.1:8080", api_key="...") as service:
        answer = service.lookup("0912 345 678")
        if answer.verdict == "block": ...

Both keep their HTTP connection open between calls (a lookup then costs one
round trip). A ``Client`` is for one thread at a time; an ``AsyncClient`` is
shared freely by the tasks of one event loop. Errors of the service raise
``ApiError`` with its ``code``; a report without an ``idempotency_key`` gets a
generated one, so that the one automatic retry after a dropped keep-alive
connection can never count a report twice.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

from reputation.errors import InvalidNumber
from reputation.normalize import normalize
from reputation.offline import (
    ListedAnswer,
    OfflineList,
    RangeCache,
    find_in_range,
    number_hash,
)

__all__ = [
    "Answer",
    "ApiError",
    "AsyncClient",
    "Client",
    "EntryError",
    "ListedAnswer",
    "OfflineList",
    "ReportReceipt",
]

DEFAULT_URL = "http://127.0.0.1:8080"
# Bytes read at a time from an export stream.
EXPORT_CHUNK_BYTES = 1 << 16
# Seconds a call may take before it fails; a switch at call setup wants less.
DEFAULT_TIMEOUT = 2.0


class ApiError(Exception):
    """The service refused a request: ``status`` and the machine-readable ``code``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_answer(cls, status: int, body: bytes) -> ApiError:
        try:
            error = json.loads(body)["error"]
            return cls(status, str(error["code"]), str(error["message"]), error.get("field"))
        except (ValueError, KeyError, TypeError):
            text = body[:200].decode("utf-8", "replace")
            return cls(status, "http_error", text or http.client.responses.get(status, ""))


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer of a lookup (``raw`` keeps every field, newer ones included)."""

    number: str
    verdict: str
    reported: bool
    score: float
    reports: int
    reporters: int
    categories: Mapping[str, int]
    status: str | None
    reasons: tuple[str, ...]
    confidence: float
    heat: float
    appeal_url: str | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Answer:
        return cls(
            number=body["number"],
            verdict=body["verdict"],
            reported=body["reported"],
            score=body["score"],
            reports=body["reports"],
            reporters=body["reporters"],
            categories=body["categories"],
            status=body["status"],
            reasons=tuple(body["reasons"]),
            confidence=body.get("confidence", 0.0),
            heat=body.get("heat", 0.0),
            appeal_url=body.get("appeal_url"),
            raw=body,
        )


@dataclass(frozen=True, slots=True)
class EntryError:
    """A batch entry the service could not read as a number."""

    input: Any
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ReportReceipt:
    """A report as kept (``id`` to quote) and its number's new answer."""

    id: int
    replayed: bool
    answer: Answer
    raw: Mapping[str, Any] = field(repr=False)


def number_path(number: str) -> str:
    return "/v1/numbers/" + quote(number, safe="")


def lookup_query(attestation: str | None, verstat: str | None) -> str:
    """The STIR/SHAKEN attestation or verstat of the call, when the caller has one."""
    params = {k: v for k, v in (("attestation", attestation), ("verstat", verstat)) if v}
    return "?" + urlencode(params) if params else ""


def report_body(
    number: str,
    reporter: str | None,
    channel: str | None,
    category: str | None,
    content: str | None,
) -> dict[str, str]:
    fields = {
        "number": number,
        "reporter": reporter,
        "channel": channel,
        "category": category,
        "content": content,
    }
    return {k: v for k, v in fields.items() if v is not None}


def batch_results(body: Mapping[str, Any]) -> list[Answer | EntryError]:
    return [
        EntryError(r["input"], r["error"]["code"], r["error"]["message"])
        if "error" in r
        else Answer.from_json(r)
        for r in body["results"]
    ]


def receipt(status: int, body: Mapping[str, Any]) -> ReportReceipt:
    return ReportReceipt(
        id=body["report"]["id"],
        replayed=status == 200,
        answer=Answer.from_json(body["number"]),
        raw=body,
    )


def private_key(number: str, region: str) -> tuple[str, str]:
    """The E.164 form of a number and its hash, computed here (the number is never sent)."""
    try:
        e164 = normalize(number, region)
    except InvalidNumber as exc:
        raise ApiError(400, exc.code, exc.message) from None
    return e164, number_hash(e164)


def cache_range(
    cache: RangeCache,
    prefix: str,
    status: int,
    headers: Mapping[str, str] | http.client.HTTPMessage,
    data: bytes,
) -> Mapping[str, Any]:
    """The body of a range answer (or of the cached one it confirmed), kept in ``cache``."""
    cache_control = headers.get("Cache-Control")
    if status == 304:
        return cache.revalidated(prefix, cache_control)
    if status != 200:
        raise ApiError.from_answer(status, data)
    body: Mapping[str, Any] = json.loads(data)
    cache.store(prefix, body, headers.get("ETag"), cache_control)
    return body


def export_path(since: str | None) -> str:
    return "/v1/export" + ("" if since is None else "?" + urlencode({"since": since}))


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "reputation-client"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class Client:
    """Blocking client on one keep-alive connection (not for several threads at once)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._headers = _headers(api_key)
        self._connection: http.client.HTTPConnection | None = None
        self._ranges = RangeCache()
        self._prefix_length: int | None = None

    def _connect(self) -> http.client.HTTPConnection:
        kind = (
            http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        )
        return kind(self._host, self._port, timeout=self._timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """``(status, parsed JSON)`` of a 2xx answer; ``ApiError`` otherwise."""
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {**self._headers, **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        status, _, data = self.request_raw(method, path, payload, all_headers)
        if not 200 <= status < 300:
            raise ApiError.from_answer(status, data)
        return status, json.loads(data) if data else None

    def request_raw(
        self, method: str, path: str, payload: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """``(status, headers, body)`` of any answer, on the keep-alive connection."""
        reused = self._connection is not None
        try:
            try:
                return self._exchange(method, path, payload, headers)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # The server had closed the idle keep-alive connection: one fresh try
                # (safe: lookups change nothing, reports carry an Idempotency-Key).
                self.close()
                return self._exchange(method, path, payload, headers)
        except BaseException:
            self.close()
            raise

    def _exchange(
        self, method: str, path: str, payload: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        if self._connection is None:
            self._connection = self._connect()
        self._connection.request(method, self._prefix + path, body=payload, headers=dict(headers))
        response = self._connection.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return response.status, response.headers, data

    def lookup(
        self, number: str, *, attestation: str | None = None, verstat: str | None = None
    ) -> Answer:
        """What is known about one number, and what to do with its call."""
        _, body = self.request("GET", number_path(number) + lookup_query(attestation, verstat))
        return Answer.from_json(body)

    def lookup_many(self, numbers: Sequence[str]) -> list[Answer | EntryError]:
        """Answers in the order asked (at most 1000 numbers per call)."""
        _, body = self.request("POST", "/v1/lookups", {"numbers": list(numbers)})
        return batch_results(body)

    def report(
        self,
        number: str,
        *,
        reporter: str | None = None,
        channel: str | None = None,
        category: str | None = None,
        content: str | None = None,
        idempotency_key: str | None = None,
    ) -> ReportReceipt:
        """File a report; retrying with the same ``idempotency_key`` counts it once."""
        key = idempotency_key or uuid.uuid4().hex
        status, body = self.request(
            "POST",
            "/v1/reports",
            report_body(number, reporter, channel, category, content),
            {"Idempotency-Key": key},
        )
        return receipt(status, body)

    def check_private(
        self, number: str, *, region: str = "VN", prefix_length: int | None = None
    ) -> ListedAnswer:
        """The verdict for a number without telling the service which number it is.

        Only the first characters of the number's hash are sent (the length the
        service recommends, unless ``prefix_length`` says otherwise); the range
        answer is searched here, and kept as long as the service allows.
        """
        e164, full_hash = private_key(number, region)
        prefix = full_hash[: prefix_length or self._range_prefix_length()]
        body = self._ranges.fresh(prefix)
        if body is None:
            etag = self._ranges.etag(prefix)
            headers = {**self._headers, **({"If-None-Match": etag} if etag else {})}
            status, answer_headers, data = self.request_raw(
                "GET", "/v1/ranges/" + prefix, None, headers
            )
            body = cache_range(self._ranges, prefix, status, answer_headers, data)
        return ListedAnswer.from_entry(e164, find_in_range(body, full_hash))

    def _range_prefix_length(self) -> int:
        if self._prefix_length is None:
            _, info = self.request("GET", "/v1/ranges")
            self._prefix_length = int(info["prefix_length"])
        return self._prefix_length

    def export(self, since: str | None = None) -> Iterator[bytes]:
        """The lines of ``/v1/export`` as they arrive, on a connection of their own."""
        connection = self._connect()
        try:
            connection.request("GET", self._prefix + export_path(since), headers=self._headers)
            response = connection.getresponse()
            if response.status != 200:
                raise ApiError.from_answer(response.status, response.read())
            yield from response
        finally:
            connection.close()

    def sync_offline(self, offline: OfflineList, *, bloom: bool = True) -> int:
        """Bring an offline copy up to date; returns the entries and markers applied."""
        try:
            applied = offline.apply_export(self.export(offline.version))
        except ApiError as exc:
            if exc.code != "version_unknown":
                raise
            offline.version = None
            applied = offline.apply_export(self.export(None))
        if bloom:
            headers = {**self._headers}
            if offline.bloom_etag:
                headers["If-None-Match"] = offline.bloom_etag
            status, answer_headers, data = self.request_raw("GET", "/v1/bloom", None, headers)
            if status == 200:
                offline.set_bloom(data, answer_headers.get("ETag"))
            elif status != 304:
                raise ApiError.from_answer(status, data)
        return applied

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """asyncio client on an aiohttp session (its own, or one passed in)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._base = base_url.rstrip("/")
        self._headers = _headers(api_key)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self._ranges = RangeCache()
        self._prefix_length: int | None = None

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """``(status, parsed JSON)`` of a 2xx answer; ``ApiError`` otherwise."""
        async with self._session_or_new().request(
            method,
            self._base + path,
            json=body,
            headers={**self._headers, **(headers or {})},
            timeout=self._timeout,
        ) as response:
            data = await response.read()
            if not 200 <= response.status < 300:
                raise ApiError.from_answer(response.status, data)
            return response.status, json.loads(data) if data else None

    async def lookup(
        self, number: str, *, attestation: str | None = None, verstat: str | None = None
    ) -> Answer:
        """What is known about one number, and what to do with its call."""
        path = number_path(number) + lookup_query(attestation, verstat)
        _, body = await self.request("GET", path)
        return Answer.from_json(body)

    async def lookup_many(self, numbers: Sequence[str]) -> list[Answer | EntryError]:
        """Answers in the order asked (at most 1000 numbers per call)."""
        _, body = await self.request("POST", "/v1/lookups", {"numbers": list(numbers)})
        return batch_results(body)

    async def report(
        self,
        number: str,
        *,
        reporter: str | None = None,
        channel: str | None = None,
        category: str | None = None,
        content: str | None = None,
        idempotency_key: str | None = None,
    ) -> ReportReceipt:
        """File a report; retrying with the same ``idempotency_key`` counts it once."""
        key = idempotency_key or uuid.uuid4().hex
        status, body = await self.request(
            "POST",
            "/v1/reports",
            report_body(number, reporter, channel, category, content),
            {"Idempotency-Key": key},
        )
        return receipt(status, body)

    async def check_private(
        self, number: str, *, region: str = "VN", prefix_length: int | None = None
    ) -> ListedAnswer:
        """The verdict for a number without telling the service which number it is.

        Only the first characters of the number's hash are sent (the length the
        service recommends, unless ``prefix_length`` says otherwise); the range
        answer is searched here, and kept as long as the service allows.
        """
        e164, full_hash = private_key(number, region)
        prefix = full_hash[: prefix_length or await self._range_prefix_length()]
        body = self._ranges.fresh(prefix)
        if body is None:
            etag = self._ranges.etag(prefix)
            async with self._session_or_new().get(
                self._base + "/v1/ranges/" + prefix,
                headers={**self._headers, **({"If-None-Match": etag} if etag else {})},
                timeout=self._timeout,
            ) as response:
                data = await response.read()
                body = cache_range(self._ranges, prefix, response.status, response.headers, data)
        return ListedAnswer.from_entry(e164, find_in_range(body, full_hash))

    async def _range_prefix_length(self) -> int:
        if self._prefix_length is None:
            _, info = await self.request("GET", "/v1/ranges")
            self._prefix_length = int(info["prefix_length"])
        return self._prefix_length

    async def export(self, since: str | None = None) -> AsyncIterator[bytes]:
        """The lines of ``/v1/export`` as they arrive (gzip if the service offers it)."""
        async with self._session_or_new().get(
            self._base + export_path(since),
            headers=self._headers,
            # A whole list takes a while: only a stalled read is a failure.
            timeout=aiohttp.ClientTimeout(total=None, sock_read=self._timeout.total),
        ) as response:
            if response.status != 200:
                raise ApiError.from_answer(response.status, await response.read())
            # Whole chunks split here: much cheaper than reading line by line.
            rest = b""
            async for chunk in response.content.iter_chunked(EXPORT_CHUNK_BYTES):
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    yield line
            if rest:
                yield rest

    async def _apply_export(self, offline: OfflineList, since: str | None) -> int:
        reader = offline.reader()
        async for line in self.export(since):
            reader.feed(line)
        return reader.finish()

    async def sync_offline(self, offline: OfflineList, *, bloom: bool = True) -> int:
        """Bring an offline copy up to date; returns the entries and markers applied."""
        try:
            applied = await self._apply_export(offline, offline.version)
        except ApiError as exc:
            if exc.code != "version_unknown":
                raise
            offline.version = None
            applied = await self._apply_export(offline, None)
        if bloom:
            headers = {**self._headers}
            if offline.bloom_etag:
                headers["If-None-Match"] = offline.bloom_etag
            async with self._session_or_new().get(
                self._base + "/v1/bloom", headers=headers, timeout=self._timeout
            ) as response:
                data = await response.read()
                if response.status == 200:
                    offline.set_bloom(data, response.headers.get("ETag"))
                elif response.status != 304:
                    raise ApiError.from_answer(response.status, data)
        return applied

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
