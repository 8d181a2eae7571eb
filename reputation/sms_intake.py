"""The SMS gateway's webhook: one message to 156/5656 in, one report and one reply out.

``process_sms`` is the whole intake as one coroutine that needs no request,
so that messages taken over while PostgreSQL was down can be replayed
through it later. A ``message_id`` always gets its first answer back and
counts nothing twice, also when two deliveries of it race: the report is
kept under the idempotency key ``sms:<message_id>``, then the message itself
under its id, each insert winning once.

The sender's number is personal data: it is kept only as the keyed hash that
reports use, and masked wherever the message itself mentions it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from reputation import privacy
from reputation.appkeys import GUARD, HEALTH, LOOKUPS, METRICS, SETTINGS, SPOOL, STORE
from reputation.auth import requires
from reputation.constants import MAX_MESSAGE_ID_CHARS, MAX_SMS_TEXT_CHARS, SMS_IDEMPOTENCY_PREFIX
from reputation.errors import BadRequest, IdempotencyConflict, InvalidNumber, TooManyRequests
from reputation.health import UNAVAILABLE
from reputation.jsonio import json_response, read_json_object
from reputation.normalize import normalize
from reputation.records import NewReport, NumberRecord, SmsRecord, StoredReport
from reputation.reports import optional_string
from reputation.sms import (
    ParsedSms,
    accepted_reply,
    hide_number,
    parse_sms,
    queued_reply,
    refusal_reply,
)
from reputation.spool import SpoolRecord

logger = logging.getLogger(__name__)

# Kind of the spool records of SMS messages taken while PostgreSQL was down.
SMS_KIND = "sms"

# Gateway times without an offset are Vietnam's (UTC+7 all year, no daylight saving).
VIETNAM_TIME = timezone(timedelta(hours=7))


@dataclass(frozen=True, slots=True)
class InboundSms:
    """One message as the gateway delivers it."""

    message_id: str
    sender: str
    to: str
    text: str
    received_at: datetime | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> InboundSms:
        """``{"message_id", "from", "to", "text", "received_at"}``, or a coded 400."""
        message_id = optional_string(body, "message_id")
        if message_id is None:
            raise BadRequest("'message_id' is required.", code="missing_field", field="message_id")
        if not 0 < len(message_id) <= MAX_MESSAGE_ID_CHARS:
            raise BadRequest(
                f"'message_id' must be 1 to {MAX_MESSAGE_ID_CHARS} characters.",
                code="invalid_field",
                field="message_id",
            )
        sender = optional_string(body, "from")
        if sender is None:
            raise BadRequest("'from' is required.", code="missing_field", field="from")
        return cls(
            message_id,
            sender,
            optional_string(body, "to") or "",
            _text(body.get("text")),
            _moment(body.get("received_at")),
        )

    def to_spool(self) -> dict[str, Any]:
        """The message as kept in the local spool while PostgreSQL is down."""
        received = self.received_at.isoformat() if self.received_at else None
        return {
            "message_id": self.message_id,
            "from": self.sender,
            "to": self.to,
            "text": self.text,
            "received_at": received,
        }

    @classmethod
    def from_spool(cls, data: dict[str, Any]) -> InboundSms:
        received = data["received_at"]
        return cls(
            data["message_id"],
            data["from"],
            data["to"],
            data["text"],
            datetime.fromisoformat(received) if received else None,
        )


def _text(value: object) -> str:
    """The text as it can be kept: a missing text is an empty message, never an error."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest("'text' must be a string.", code="invalid_field", field="text")
    # PostgreSQL cannot keep NUL or lone surrogates; the rest of the message still counts.
    return value[:MAX_SMS_TEXT_CHARS].replace("\x00", "").encode("utf-8", "replace").decode()


def _moment(value: object) -> datetime | None:
    """``received_at``: ISO 8601 (Vietnam time without an offset) or Unix seconds."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            return moment if moment.tzinfo else moment.replace(tzinfo=VIETNAM_TIME)
    except (ValueError, OverflowError, OSError):
        pass
    raise BadRequest(
        "'received_at' must be an ISO 8601 time or Unix seconds.",
        code="invalid_field",
        field="received_at",
    )


@dataclass(frozen=True, slots=True)
class SmsOutcome:
    """The answer for the gateway, and whether it was given before (a retry)."""

    answer: dict[str, Any]
    replayed: bool


@dataclass(frozen=True, slots=True)
class Spooled:
    """A message taken into the local spool: when, and whether the reporter limit refused it."""

    at: datetime
    rate_limited: bool


async def process_sms(
    app: web.Application, message: InboundSms, spooled: Spooled | None = None
) -> SmsOutcome:
    """Turn one message into a report (or a recorded refusal) and the reply to send.

    ``spooled``: the message was taken while PostgreSQL was down; its report is
    dated then, and the reporter limit already had its say.
    """
    store = app[STORE]
    earlier = await store.sms_answer(message.message_id)
    if earlier is not None:
        return SmsOutcome(earlier, replayed=True)
    parsed, sender = _read(app, message, spooled)
    report: StoredReport | None = None
    number: NumberRecord | None = None
    if parsed.accepted:
        assert sender is not None
        at = spooled.at if spooled is not None else None
        report, number = await _keep_report(app, message, parsed, sender, at)
    answer = _answer(parsed, report, message.to)
    kept = await store.record_sms(
        SmsRecord(
            message_id=message.message_id,
            short_code=message.to,
            sender_hash=privacy.reporter_hash(store.reporter_key, sender, "sms")
            if sender is not None
            else None,
            text=hide_number(message.text, sender) if sender else message.text,
            gateway_received_at=message.received_at,
            error=parsed.error,
            category=answer["category"],
            e164=answer["number"],
            report_id=report.id if report else None,
            answer=answer,
        )
    )
    if number is not None:
        app[LOOKUPS].remember(number)
    if not kept:  # a concurrent delivery of the same message was recorded first
        return SmsOutcome(await store.sms_answer(message.message_id) or answer, replayed=True)
    _count(app, answer)
    logger.info("sms %s: %s", message.message_id, parsed.error or "accepted")
    return SmsOutcome(answer, replayed=False)


def _read(
    app: web.Application, message: InboundSms, spooled: Spooled | None
) -> tuple[ParsedSms, str | None]:
    """What the message says once its sender is known and the reporter limit applied."""
    region = app[SETTINGS].region
    sender = _sender_number(message.sender, region)
    parsed = _as_reported_by(parse_sms(message.text, region), sender)
    if parsed.accepted:
        limited = spooled.rate_limited if spooled is not None else False
        if spooled is None:
            try:
                app[GUARD].limit_reporter(sender, "sms")
            except TooManyRequests:
                limited = True
        if limited:
            parsed = ParsedSms(parsed.category, parsed.e164, None, "reporter_rate_limited")
    return parsed, sender


def _sender_number(sender: str, region: str) -> str | None:
    try:
        return normalize(sender, region)
    except InvalidNumber:
        return None


def _as_reported_by(parsed: ParsedSms, sender: str | None) -> ParsedSms:
    """The reading of a message once its sender is known: never their own number in clear."""
    if sender is None:
        return ParsedSms(parsed.category, parsed.e164, None, "invalid_sender")
    if parsed.e164 == sender:
        return ParsedSms(parsed.category, None, None, parsed.error or "self_report")
    if parsed.content is None:
        return parsed
    return ParsedSms(
        parsed.category, parsed.e164, hide_number(parsed.content, sender), parsed.error
    )


async def _keep_report(
    app: web.Application,
    message: InboundSms,
    parsed: ParsedSms,
    sender: str,
    received_at: datetime | None,
) -> tuple[StoredReport, NumberRecord | None]:
    assert parsed.e164 is not None
    assert parsed.category is not None
    store = app[STORE]
    key = SMS_IDEMPOTENCY_PREFIX + message.message_id
    new = NewReport(
        parsed.e164, sender, "sms", parsed.category, parsed.content, key, received_at=received_at
    )
    try:
        recorded = await store.record_report(new)
    except IdempotencyConflict:
        # Kept on an earlier delivery, read differently then (the parser
        # changed between the two): the first report stands.
        first = await store.report_by_idempotency_key(key)
        assert first is not None
        return first, None
    return recorded.report, recorded.number


def _answer(parsed: ParsedSms, report: StoredReport | None, to: str) -> dict[str, Any]:
    if report is not None:
        return {
            "accepted": True,
            "report_id": report.id,
            "number": report.e164,
            "category": report.category,
            "content": report.content,
            "reply": accepted_reply(report.category, report.e164, report.id),
        }
    assert parsed.error is not None
    return {
        "accepted": False,
        "report_id": None,
        "number": parsed.e164,
        "category": parsed.category,
        "content": None,
        "error": parsed.error,
        "reply": refusal_reply(parsed.error, to),
    }


def _count(app: web.Application, answer: dict[str, Any]) -> None:
    metrics = app[METRICS]
    if answer["accepted"]:
        metrics.sms_accepted_by[answer["category"]].inc()
        metrics.report_by["sms", answer["category"]].inc()
    else:
        metrics.sms_rejected_by[answer["error"]].inc()


@requires("sms_gateway")
async def post_sms_inbound(request: web.Request) -> web.Response:
    """``POST /v1/sms/inbound``: one message from the SMS gateway; the answer holds the reply.

    A citizen's report is never lost: while PostgreSQL is down the message
    goes to the local spool and is processed when it returns.
    """
    message = InboundSms.from_json(await read_json_object(request))
    app = request.app
    health = app[HEALTH]
    if health.worth_trying():
        try:
            outcome = await process_sms(app, message)
        except UNAVAILABLE as exc:
            logger.warning("sms %s spooled: %s", message.message_id, exc.__class__.__name__)
            health.failed()
        else:
            health.succeeded()
            return json_response(outcome.answer)
    return json_response(await queue_sms(app, message))


async def queue_sms(app: web.Application, message: InboundSms) -> dict[str, Any]:
    """Spool a message taken while PostgreSQL is down; the answer the gateway gets now.

    The reply is decided now (what the message says needs no database); the
    report and the message record are made when the spool replays it. A
    ``message_id`` already processed before the outage is answered again as if
    new, but its replay finds the first answer and counts nothing twice.
    """
    parsed, _ = _read(app, message, None)
    limited = parsed.error == "reporter_rate_limited"
    await app[SPOOL].append(SMS_KIND, {"message": message.to_spool(), "rate_limited": limited})
    if not parsed.accepted:
        return {**_answer(parsed, None, message.to), "queued": True}
    assert parsed.e164 is not None
    assert parsed.category is not None
    return {
        "accepted": True,
        "queued": True,
        "report_id": None,
        "number": parsed.e164,
        "category": parsed.category,
        "content": parsed.content,
        "reply": queued_reply(parsed.category, parsed.e164),
    }


async def replay_sms(app: web.Application, record: SpoolRecord) -> None:
    """Process a spooled message (idempotent on its ``message_id``)."""
    message = InboundSms.from_spool(record.payload["message"])
    await process_sms(app, message, Spooled(record.at, record.payload["rate_limited"]))
