"""Reports that must not be lost: kept in PostgreSQL, or in the local spool while it is down.

``POST /v1/reports`` tries PostgreSQL (unless it is known to be down); if it
cannot be reached, the report goes to the node's spool (fsynced before the
answer) and the client gets ``202`` with ``"queued": true``. When the
database answers again the spool replays it through ``Store.record_report``.

Exactly once: a spooled report always carries an Idempotency-Key (the
client's, or ``spool-<uuid>`` given when it was spooled), so replaying it again
after a crash finds the first copy. The one report that could have been kept
without a key is the one whose COMMIT got no answer (``CommitInDoubt``): its
transaction id is spooled with it and ``pg_xact_status`` decides, at replay,
whether it was kept already.

The spool holds each report as received, reporter number included, in a file
readable by the service's user only, until it is replayed.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from reputation.appkeys import HEALTH, LOOKUPS, METRICS, SPOOL, STORE
from reputation.constants import SPOOL_IDEMPOTENCY_PREFIX
from reputation.health import UNAVAILABLE
from reputation.records import NewReport
from reputation.spool import RetryLater, SpoolRecord
from reputation.store import CommitInDoubt, RecordedReport

# Kind of the spool records written here.
REPORT_KIND = "report"


@dataclass(frozen=True, slots=True)
class QueuedReport:
    """A report kept in the local spool, to be replayed into PostgreSQL."""

    report: NewReport
    record: SpoolRecord

    def to_json(self) -> dict[str, Any]:
        """The ``report`` object of a 202 answer (no id yet: PostgreSQL gives it at replay)."""
        return {
            "id": None,
            "number": self.report.e164,
            "channel": self.report.channel,
            "category": self.report.category,
            "content": self.report.content,
            "received_at": self.record.at.isoformat(),
        }


async def accept_report(app: web.Application, report: NewReport) -> RecordedReport | QueuedReport:
    """Keep ``report`` in PostgreSQL, or in the spool if PostgreSQL cannot be reached."""
    health = app[HEALTH]
    if not health.worth_trying():
        return await _queue(app, report, None)
    try:
        recorded = await app[STORE].record_report(report)
    except CommitInDoubt as doubt:
        health.failed()
        return await _queue(app, report, doubt.txid)
    except UNAVAILABLE:
        health.failed()
        return await _queue(app, report, None)
    health.succeeded()
    return recorded


async def _queue(app: web.Application, report: NewReport, in_doubt: int | None) -> QueuedReport:
    if report.idempotency_key is None:
        report = dataclasses.replace(
            report, idempotency_key=SPOOL_IDEMPOTENCY_PREFIX + uuid.uuid4().hex
        )
    payload = {
        "report": {
            "e164": report.e164,
            "reporter": report.reporter,
            "channel": report.channel,
            "category": report.category,
            "content": report.content,
            "idempotency_key": report.idempotency_key,
        },
        "in_doubt_txid": in_doubt,
    }
    record = await app[SPOOL].append(REPORT_KIND, payload)
    return QueuedReport(report, record)


async def replay_report(app: web.Application, record: SpoolRecord) -> None:
    """Keep a spooled report in PostgreSQL (idempotent: see the module's docstring)."""
    store = app[STORE]
    in_doubt = record.payload.get("in_doubt_txid")
    if in_doubt is not None:
        status = await store.transaction_status(in_doubt)
        if status == "committed":
            return  # kept before the connection was lost
        if status == "in progress":
            raise RetryLater(f"transaction {in_doubt} is still committing")
    report = NewReport(**record.payload["report"], received_at=record.at)
    recorded = await store.record_report(report)
    if not recorded.replayed:
        app[LOOKUPS].remember(recorded.number, recorded.change_seq)
        app[METRICS].report_by[report.channel, report.category].inc()
