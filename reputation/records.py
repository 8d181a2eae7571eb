"""What the database knows about a number and a report, as plain values."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class NumberRecord:
    """The aggregate of one number: everything a verdict is computed from.

    ``reports`` and ``categories`` count every report kept; ``reporters`` the
    distinct reporters who ever counted. ``weights`` (per category, as of
    ``weights_at``) and ``heat_key`` are the decaying evidence (``evidence.py``).
    """

    e164: str
    status: str
    reports: int
    reporters: int
    categories: Mapping[str, int]
    first_reported_at: datetime | None
    last_reported_at: datetime | None
    weights: Mapping[str, float]
    weights_at: datetime | None
    heat_key: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> NumberRecord:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True, slots=True)
class NewReport:
    """A report as received, already validated and normalised."""

    e164: str
    reporter: str | None
    channel: str
    category: str
    content: str | None
    idempotency_key: str | None = None
    # Who reported, when there is no reporter number: an opaque identity
    # (bulk imports: one per person a source counted), hashed like a number.
    reporter_id: str | None = None
    # When it was accepted, if earlier than now: a report kept in the local
    # spool while PostgreSQL was down is dated when the node took it.
    received_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredReport:
    """A report as kept, with the id a client can quote."""

    id: int
    e164: str
    channel: str
    category: str
    content: str | None
    received_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredReport:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.e164,
            "channel": self.channel,
            "category": self.category,
            "content": self.content,
            "received_at": self.received_at.isoformat(),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of a number's audit trail: who changed what, when, from what, to what, why."""

    id: int
    e164: str
    action: str
    actor: str
    from_value: str | None
    to_value: str | None
    note: str | None
    at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditEntry:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.e164,
            "action": self.action,
            "actor": self.actor,
            "from": self.from_value,
            "to": self.to_value,
            "note": self.note,
            "at": self.at.isoformat(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Appeal:
    """A number owner's request to review its verdict, and the analyst's decision."""

    id: int
    e164: str
    contact: str
    reason: str
    status: str
    submitted_by: str
    created_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Appeal:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.e164,
            "contact": self.contact,
            "reason": self.reason,
            "status": self.status,
            "submitted_by": self.submitted_by,
            "created_at": self.created_at.isoformat(),
            "resolved_by": self.resolved_by,
            "resolved_at": _iso(self.resolved_at),
            "resolution_note": self.resolution_note,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ProtectedNumber:
    """A number that reports can never push to block, with who it belongs to."""

    e164: str
    name: str
    note: str | None
    updated_by: str
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProtectedNumber:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.e164,
            "name": self.name,
            "note": self.note,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ListedReport:
    """A report as an analyst sees it (the reporter still only a keyed hash)."""

    id: int
    e164: str
    reporter_hash: bytes
    reporter_masked: str | None
    channel: str
    category: str
    content: str | None
    received_at: datetime
    counted: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ListedReport:
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True, slots=True)
class QueueEntry:
    """A number in the review queue: its aggregate, stored verdict and open appeal."""

    record: NumberRecord
    stored_verdict: str
    open_appeal_id: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class SmsRecord:
    """One processed SMS message as kept for analysts and for gateway retries."""

    message_id: str
    short_code: str
    sender_hash: bytes | None
    text: str
    gateway_received_at: datetime | None
    error: str | None
    category: str | None
    e164: str | None
    report_id: int | None
    answer: Mapping[str, Any]
