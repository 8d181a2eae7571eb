"""Protected numbers: emergency and government lines, banks, the reporting line itself.

Reports can never push a protected number to ``block`` (it is capped at
``warn``), and a call that shows one without full (``A``) STIR/SHAKEN
attestation is answered as spoofed (``verdict.py``). Admins manage the list
over HTTP or load it from a CSV file (``reputation protected load FILE``);
every node keeps it in memory (``Lookups.protected``), so the lookup never
queries for it. Each change is audited and appended to the change log
(kind ``protected``) in the same transaction.

Only numbers the lookup accepts can be protected: short codes such as 113 or
156 are refused by ``normalize`` (``short_code``), so a switch should treat a
call showing a short code from outside its network as spoofed itself.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from reputation.appkeys import LOOKUPS, STORE
from reputation.auth import principal, requires
from reputation.constants import MAX_NAME_CHARS, MAX_NOTE_CHARS
from reputation.errors import BadRequest, InvalidNumber
from reputation.jsonio import json_response, read_json_object
from reputation.normalize import normalize
from reputation.pagination import decode_cursor, encode_cursor, invalid_cursor, page_limit
from reputation.reports import optional_string
from reputation.review import path_number, required_text


def optional_note(body: dict[str, object]) -> str | None:
    note = (optional_string(body, "note") or "").strip() or None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise BadRequest(
            f"'note' is limited to {MAX_NOTE_CHARS} characters.", code="text_too_long", field="note"
        )
    return note


@requires("analyst")
async def get_protected(request: web.Request) -> web.Response:
    """``GET /v1/protected``: the protected numbers, in number order."""
    limit = page_limit(request.query)
    key = decode_cursor(request.query, "protected")
    if key is not None and (len(key) != 1 or not isinstance(key[0], str)):
        raise invalid_cursor()
    after = key[0] if key is not None else None
    entries = await request.app[STORE].protected_numbers(after, limit + 1)
    page, more = entries[:limit], len(entries) > limit
    return json_response(
        {
            "protected": [entry.to_json() for entry in page],
            "next_cursor": encode_cursor("protected", page[-1].e164) if more else None,
        }
    )


@requires("admin")
async def put_protected(request: web.Request) -> web.Response:
    """``PUT /v1/protected/{number}`` ``{"name", "note"?}``: protect a number (or rename it)."""
    e164 = path_number(request)
    body = await read_json_object(request)
    name = required_text(body, "name", MAX_NAME_CHARS)
    note = optional_note(body)
    entry, created, _ = await request.app[STORE].protect(e164, name, note, principal(request).name)
    request.app[LOOKUPS].set_protected(e164, True)
    return json_response({"protected": entry.to_json()}, status=201 if created else 200)


@requires("admin")
async def delete_protected(request: web.Request) -> web.Response:
    """``DELETE /v1/protected/{number}`` (optional body ``{"note"}``): stop protecting it."""
    e164 = path_number(request)
    note = optional_note(await read_json_object(request)) if request.body_exists else None
    entry, _ = await request.app[STORE].unprotect(e164, note, principal(request).name)
    request.app[LOOKUPS].set_protected(e164, False)
    return json_response({"protected": entry.to_json()})


@dataclass(frozen=True, slots=True)
class LineError:
    """Why one line of a protected-numbers file cannot be loaded."""

    line: int
    code: str
    message: str


class ProtectedListError(Exception):
    """The file has lines that cannot be loaded; nothing was changed."""

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} line(s) cannot be loaded")


def read_protected_csv(lines: Iterable[str], region: str) -> list[tuple[str, str, str | None]]:
    """``(e164, name, note)`` of each line ``number,name[,note]`` of a CSV file.

    An optional header line starts with ``number``; blank lines and lines
    starting with ``#`` are skipped. Every bad line is reported at once
    (``ProtectedListError``), so a file loads whole or not at all.
    """
    entries: list[tuple[str, str, str | None]] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(csv.reader(lines), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if index == 1 and cells[0].lower() == "number":
            continue
        if len(cells) < 2 or not cells[1]:
            errors.append(LineError(index, "missing_field", "A line is number,name[,note]."))
            continue
        try:
            e164 = normalize(cells[0], region)
        except InvalidNumber as exc:
            errors.append(LineError(index, exc.code, f"{cells[0]!r}: {exc.message}"))
            continue
        name, note = cells[1], (",".join(cells[2:]).strip() or None)
        if len(name) > MAX_NAME_CHARS or (note is not None and len(note) > MAX_NOTE_CHARS):
            errors.append(LineError(index, "text_too_long", "The name or note is too long."))
            continue
        if e164 in seen:
            errors.append(
                LineError(index, "duplicate_number", f"{e164} is already on line {seen[e164]}.")
            )
            continue
        seen[e164] = index
        entries.append((e164, name, note))
    if errors:
        raise ProtectedListError(errors)
    return entries
