"""Who is calling, and which role each handler requires.

Handlers declare the roles that may call them with ``@requires(...)``; the
caller is a ``Principal`` attached to the request. Enforcement (API keys,
``Authorization: Bearer``) lives in this module too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROLES = ("lookup", "report", "sms_gateway", "analyst", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: the name of its API key and its role."""

    name: str
    role: str


PRINCIPAL = web.RequestKey("principal", Principal)
# The caller when no key is checked (authentication off).
UNAUTHENTICATED = Principal("unauthenticated", "admin")


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """Declare the roles allowed to call a handler (``admin`` may call everything)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def mark(handler: Handler) -> Handler:
        handler.roles = frozenset(roles) | {"admin"}  # type: ignore[attr-defined]
        return handler

    return mark


def principal(request: web.Request) -> Principal:
    """Who made this request."""
    found: Principal = request.get(PRINCIPAL, UNAUTHENTICATED)
    return found
