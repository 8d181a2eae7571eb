"""Who is calling, what each handler allows, and the checks that enforce it.

Handlers declare the roles that may call them with ``@requires(...)`` (``admin``
may call everything) or declare themselves ``@public``. A handler that declares
neither is treated as admin-only: forgetting a declaration closes a route
rather than opening it (and the route tests fail, naming it).

For every request to a declared route ``admit`` checks, in this order, each
step refusing with a JSON error: the URL length (414); the API key in
``Authorization: Bearer <key>`` (401 ``missing_api_key`` /
``invalid_api_key``); the key's role (403 ``forbidden``); the key's rate (429
``rate_limited`` with ``Retry-After``); the body, read under a deadline (408,
413); and, on the SMS webhook, the gateway's signature (``signature.py``).
With authentication off (``REPUTATION_AUTH=off``, loopback addresses only)
only the size and time limits remain and every caller is ``UNAUTHENTICATED``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from reputation.apikeys import ApiKeyRecord, KeyRing
from reputation.constants import (
    MAX_BODY_BYTES,
    MAX_REPORTER_BUCKETS,
    MAX_URL_CHARS,
    ROLES,
)
from reputation.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UriTooLong,
)
from reputation.limits import Limiter, Rate, parse_rate, parse_role_rates, retry_after
from reputation.metrics import Metrics
from reputation.settings import Settings
from reputation.signature import SIGNED_ROUTES, gateway_secrets, verify

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What a handler that declares nothing requires.
ADMIN_ONLY = frozenset({"admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: the name of its API key, its role and the key's id."""

    name: str
    role: str
    key_id: int | None = None


PRINCIPAL = web.RequestKey("principal", Principal)
# The caller when no key is checked (authentication off).
UNAUTHENTICATED = Principal("unauthenticated", "admin")
# The caller of a public route when authentication is on: no role at all.
ANONYMOUS = Principal("anonymous", "anonymous")


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """Declare the roles allowed to call a handler (``admin`` may call everything)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def mark(handler: Handler) -> Handler:
        handler.roles = frozenset(roles) | {"admin"}  # type: ignore[attr-defined]
        return handler

    return mark


def public(handler: Handler) -> Handler:
    """Declare a handler open to anyone, without an API key (health, metrics, ...)."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


def declared_roles(handler: Any) -> frozenset[str] | None:
    """The roles a handler allows; ``None`` for a public one."""
    if getattr(handler, "public", False):
        return None
    roles: frozenset[str] = getattr(handler, "roles", ADMIN_ONLY)
    return roles


def principal(request: web.Request) -> Principal:
    """Who made this request."""
    found: Principal = request.get(PRINCIPAL, UNAUTHENTICATED)
    return found


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class KnownKey:
    """An active API key as a node knows it: who holds it and the rate it gets."""

    principal: Principal
    rate: Rate | None


class Guard:
    """One node's security state: its key ring, its rate limiters and its secrets."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.enabled = settings.auth
        self.role_rates: dict[str, Rate | None] = dict.fromkeys(ROLES)
        self.role_rates.update(parse_role_rates(settings.rate_limits, ROLES))
        self.reporter_rate = parse_rate(settings.reporter_rate_limit)
        self.public_rate = parse_rate(settings.public_rate_limit)
        # One bucket per active key: few, and only known keys get one.
        self.key_limiter = Limiter(None, clock)
        self.reporter_limiter = Limiter(MAX_REPORTER_BUCKETS, clock)
        self.address_limiter = Limiter(MAX_REPORTER_BUCKETS, clock)
        self.gateway_secrets = gateway_secrets(settings.sms_gateway_secret)
        self.body_timeout = settings.body_timeout
        self.metrics = metrics
        self.wall_clock = wall_clock
        self.ring: KeyRing[KnownKey] = KeyRing(self._known_key)
        metrics.auth_enabled.set(1 if self.enabled else 0)

    def _known_key(self, record: ApiKeyRecord) -> KnownKey:
        rate = self.role_rates.get(record.role)
        if record.rate_limit is not None:
            try:
                rate = parse_rate(record.rate_limit)
            except ValueError:
                logger.error("API key %d has an unreadable rate; using its role's", record.id)
        return KnownKey(Principal(record.name, record.role, record.id), rate)

    def authenticate(self, request: web.Request) -> KnownKey:
        header = request.headers.get("Authorization")
        if header is None:
            self.metrics.auth_refused.labels("missing_api_key").inc()
            raise Unauthorized(headers={"WWW-Authenticate": "Bearer"})
        known = self.ring.find_header(header)
        if known is None:
            self.metrics.auth_refused.labels("invalid_api_key").inc()
            raise Unauthorized(
                "This API key is unknown or revoked.",
                code="invalid_api_key",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return known

    def authorize(self, known: KnownKey, roles: frozenset[str]) -> None:
        if known.principal.role not in roles:
            self.metrics.auth_refused.labels("forbidden").inc()
            allowed = ", ".join(sorted(roles))
            raise Forbidden(
                f"A key of role {known.principal.role!r} cannot make this call (roles: {allowed})."
            )

    def charge(self, request: web.Request, cost: float) -> None:
        """Spend ``cost`` more of the caller's rate (a batch costs one per number)."""
        known = request.get(_CALLER)
        if known is None or known.rate is None:
            return
        wait = self.key_limiter.take(known.principal.key_id, known.rate, cost)
        if wait:
            self.metrics.rate_limited.labels(
                known.principal.role, str(known.principal.key_id)
            ).inc()
            raise TooManyRequests(
                f"This key may make {known.rate} calls (numbers, for a batch).",
                headers={"Retry-After": retry_after(wait)},
            )

    def limit_reporter(self, reporter: str | None, channel: str) -> None:
        """Refuse a report when its reporter number has sent too many lately.

        Buckets are keyed by Python's salted ``hash`` of the number: no
        number is kept, even in memory, beyond the request itself.
        """
        if reporter is None or self.reporter_rate is None:
            return
        wait = self.reporter_limiter.take(hash(reporter), self.reporter_rate)
        if wait:
            self.metrics.reporter_rate_limited.labels(channel).inc()
            raise TooManyRequests(
                f"This reporter may file {self.reporter_rate} reports.",
                code="reporter_rate_limited",
                headers={"Retry-After": retry_after(wait)},
            )

    def limit_address(self, request: web.Request) -> None:
        """Rate of a public call that writes (an appeal), per client address."""
        if self.public_rate is None or request.method in ("GET", "HEAD"):
            return
        wait = self.address_limiter.take(request.remote, self.public_rate)
        if wait:
            self.metrics.rate_limited.labels("anonymous", "-").inc()
            raise TooManyRequests(
                f"This address may make {self.public_rate} such calls.",
                headers={"Retry-After": retry_after(wait)},
            )

    async def read_body(self, request: web.Request) -> bytes:
        """The whole body, refused cheaply when too large and bounded in time."""
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"Request bodies are limited to {MAX_BODY_BYTES} bytes.")
        try:
            if request.content.is_eof():  # all of it has arrived: no timer to arm
                return await request.read()
            async with asyncio.timeout(self.body_timeout):
                return await request.read()
        except TimeoutError:
            raise RequestTimeout(
                f"The body did not arrive within {self.body_timeout:g} s."
            ) from None
        except (RequestPayloadError, ConnectionResetError):
            raise BadRequest("The body was cut off.", code="incomplete_body") from None

    def verify_gateway(self, request: web.Request, body: bytes) -> None:
        if not self.gateway_secrets:
            self.metrics.auth_refused.labels("gateway_secret_unset").inc()
            raise Unavailable(
                "No SMS gateway secret is configured (REPUTATION_SMS_GATEWAY_SECRET).",
                code="gateway_secret_unset",
                headers={"Retry-After": "60"},
            )
        try:
            verify(self.gateway_secrets, request.headers, body, self.wall_clock())
        except Unauthorized as exc:
            self.metrics.auth_refused.labels(exc.code).inc()
            raise


_CALLER = web.RequestKey("caller", KnownKey)


async def admit(guard: Guard, request: web.Request) -> None:
    """Enforce ``guard`` on a request before its handler runs (see the module's docstring).

    Raises the coded error of the first check that refuses; reads the body
    (under its limits) when there is one, so that the handler finds it ready.
    """
    if len(request.raw_path) > MAX_URL_CHARS:
        raise UriTooLong(f"URLs are limited to {MAX_URL_CHARS} characters.")
    match_info = request.match_info
    if match_info.http_exception is not None:  # no such route or method: 404/405
        return
    roles = declared_roles(match_info.handler)
    if roles is None:
        request[PRINCIPAL] = ANONYMOUS if guard.enabled else UNAUTHENTICATED
        guard.limit_address(request)
        if request.body_exists:
            await guard.read_body(request)
        return
    if not guard.enabled:
        if request.body_exists:
            await guard.read_body(request)
        return
    known = guard.authenticate(request)
    guard.authorize(known, roles)
    request[PRINCIPAL] = known.principal
    request[_CALLER] = known
    guard.charge(request, 1)
    signed = _signed(match_info)
    if request.body_exists or signed:
        body = await guard.read_body(request)
        if signed:
            guard.verify_gateway(request, body)


def _signed(match_info: web.UrlMappingMatchInfo) -> bool:
    """Is this a route only the SMS gateway calls, with its signature?"""
    resource = match_info.route.resource
    return resource is not None and resource.canonical in SIGNED_ROUTES
