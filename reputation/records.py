"""What the database knows about a number and a report, as plain values."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class NumberRecord:
    """The aggregate of one number: everything a verdict is computed from."""

    e164: str
    status: str
    reports: int
    reporters: int
    categories: Mapping[str, int]
    first_reported_at: datetime | None
    last_reported_at: datetime | None

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
