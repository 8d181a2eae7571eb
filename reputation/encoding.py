"""Lookup answers as JSON bytes, the common one prepared in advance.

A switch mostly asks about numbers nobody reported. Their answer differs only
by the number, so its bytes are made once, from ``lookup.answer_body`` itself
(they cannot drift apart), and each such answer is three byte strings joined.
Every other answer is encoded with ``orjson`` (compact UTF-8, about 20 times
faster than ``json.dumps`` for these small objects).
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from reputation.lookup import BLOOM, Answer, answer_body
from reputation.verdict import NOT_REPORTED, Judgement

# Stands for the number while the template is made; E.164-shaped, so it is
# written without escapes exactly as any real number will be.
_PLACEHOLDER: Final = "+10000000000"


def _unreported_template() -> tuple[bytes, bytes]:
    """The bytes around the number in the answer for a number nobody reported."""
    body = orjson.dumps(answer_body(Answer(_PLACEHOLDER, None, "bloom"), NOT_REPORTED))
    head, found, tail = body.partition(_PLACEHOLDER.encode())
    if not found or _PLACEHOLDER.encode() in tail:
        raise RuntimeError("the unreported answer must hold the number exactly once")
    return head, tail


_UNREPORTED_HEAD, _UNREPORTED_TAIL = _unreported_template()


def dumps(value: Any) -> bytes:
    """Any JSON value as compact UTF-8 bytes."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # Input echoed back that orjson refuses (a lone surrogate, an integer
        # beyond 64 bits): the standard encoder writes it with escapes.
        return json.dumps(value).encode()


def encode_answer(answer: Answer, judgement: Judgement, appeal_url: str | None = None) -> bytes:
    """The JSON bytes of a lookup answer (the same object as ``answer_body`` gives)."""
    e164 = answer.e164
    if (
        answer.record is None
        and judgement is NOT_REPORTED
        and not answer.degraded
        and appeal_url is None
        and _plain(e164)
    ):
        return _UNREPORTED_HEAD + e164.encode() + _UNREPORTED_TAIL
    return orjson.dumps(answer_body(answer, judgement, appeal_url))


def encode_unreported(e164: str) -> bytes:
    """The JSON bytes of the answer for a number nobody reported (``NOT_REPORTED``)."""
    if _plain(e164):
        return _UNREPORTED_HEAD + e164.encode() + _UNREPORTED_TAIL
    return orjson.dumps(answer_body(Answer(e164, None, BLOOM), NOT_REPORTED))


def _plain(e164: str) -> bool:
    """True when the text needs no escaping in JSON (a "+" and digits)."""
    return e164[:1] == "+" and e164[1:].isdigit()


def encode_results(items: list[bytes]) -> bytes:
    """``{"results": [...]}`` from items already encoded."""
    return b'{"results":[' + b",".join(items) + b"]}"
