"""The local spool: what a node accepted while PostgreSQL was down, kept on disk until replayed.

One append-only file per process in ``DATA_DIR/spool/``, locked (``flock``)
while the process runs. A record is on disk (``fsync``) before its sender is
answered; concurrent appends share one ``fsync``. Each line is
``<crc32 hex> <json>``: a record ``{"id", "kind", "at", "payload"}``, or
``{"done": id}`` once it has been replayed. A line torn by a crash fails its
checksum and is ignored.

Replay hands each record to the function registered for its kind
(``register``), oldest first, once PostgreSQL answers again. A crash between a
replay and its ``done`` line replays the record again, so every replay
function must be idempotent on something its payload carries (an
Idempotency-Key, a ``message_id``): that is what makes a replay count exactly
once. A file whose process is gone (its lock is free) is adopted by the next
process of the same data directory that starts or replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reputation.constants import RETRY_AFTER_SECONDS
from reputation.errors import ReputationError
from reputation.health import UNAVAILABLE
from reputation.metrics import Metrics

logger = logging.getLogger(__name__)

# Records replayed between two writes of their "done" lines (one fsync each time).
DONE_BATCH = 100


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """Something accepted while PostgreSQL was down: its kind says how to replay it."""

    id: str
    kind: str
    at: datetime
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        at = self.at.isoformat()
        return {"id": self.id, "kind": self.kind, "at": at, "payload": self.payload}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpoolRecord:
        return cls(data["id"], data["kind"], datetime.fromisoformat(data["at"]), data["payload"])


class SpoolFull(ReputationError):
    """The database is unavailable and the local spool is full; retry later."""

    status = 503
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class RetryLater(Exception):
    """A replay cannot be decided yet (e.g. the original write's outcome is still unknown)."""


Replayer = Callable[[SpoolRecord], Awaitable[None]]


def _line(data: dict[str, Any]) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The intact lines of a spool file (a torn or corrupt line is skipped and logged)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            checksum, _, body = raw.rstrip(b"\n").partition(b" ")
            try:
                if int(checksum, 16) != zlib.crc32(body) or not raw.endswith(b"\n"):
                    raise ValueError("checksum")
                yield json.loads(body)
            except ValueError:
                logger.warning("spool %s: line %d is damaged and skipped", path.name, number)


def pending_records(path: Path) -> list[SpoolRecord]:
    """The records of a spool file not yet marked done, oldest first."""
    records: dict[str, SpoolRecord] = {}
    done: set[str] = set()
    for data in _read_lines(path):
        if "done" in data:
            done.add(data["done"])
        else:
            records.setdefault(data["id"], SpoolRecord.from_json(data))
    return [record for key, record in records.items() if key not in done]


class Spool:
    """This process's spool file, its pending records, and their replay."""

    def __init__(self, directory: Path, max_bytes: int, metrics: Metrics) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.path = directory / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
        self.pending: dict[str, SpoolRecord] = {}
        self._replayers: dict[str, Replayer] = {}
        self._fd: int | None = None
        self._size = 0
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._replaying = asyncio.Lock()
        metrics.watch_spool(lambda: float(len(self.pending)))

    def register(self, kind: str, replay: Replayer) -> None:
        """Replay records of ``kind`` with ``replay`` (it must be idempotent, see above)."""
        self._replayers[kind] = replay

    async def open(self) -> None:
        """Create and lock this process's file; take over the files of dead processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _sync_directory(self.directory)
        await self.adopt_orphans()

    async def adopt_orphans(self) -> int:
        """Copy the pending records of unlocked spool files into ours, then delete those files."""
        adopted = 0
        for path in sorted(self.directory.glob("spool-*.log")):
            if path == self.path:
                continue
            with _locked_if_free(path) as free:
                if not free:
                    continue  # its process is alive
                records = [r for r in pending_records(path) if r.id not in self.pending]
                if records:
                    await self._write(b"".join(_line(r.to_json()) for r in records))
                    for record in records:
                        self.pending[record.id] = record
                path.unlink()
                _sync_directory(self.directory)
                adopted += len(records)
                logger.info("spool: took over %d pending records of %s", len(records), path.name)
        return adopted

    async def append(self, kind: str, payload: dict[str, Any]) -> SpoolRecord:
        """Keep a record on disk (fsynced) before returning it."""
        if kind not in self._replayers:
            raise ValueError(f"no replay function for spool records of kind {kind!r}")
        record = SpoolRecord(uuid.uuid4().hex, kind, datetime.now(UTC), payload)
        line = _line(record.to_json())
        if self._size + len(line) > self.max_bytes:
            self.metrics.spool_refused.inc()
            raise SpoolFull()
        await self._write(line)
        self.pending[record.id] = record
        self.metrics.spool_written.labels(kind).inc()
        return record

    async def replay(self) -> int:
        """Replay the pending records, oldest first; how many were settled.

        Stops at the first record that meets an unavailable database (the rest
        wait for the next pass). A record refused for good (a ``ReputationError``,
        such as an Idempotency-Key reused with another body) is settled and logged.
        """
        async with self._replaying:
            await self.adopt_orphans()
            settled = 0
            batch: list[str] = []
            try:
                for record in list(self.pending.values()):
                    outcome = await self._replay_one(record)
                    if outcome == "unavailable":
                        break
                    if outcome in ("replayed", "refused"):
                        batch.append(record.id)
                        settled += 1
                    if len(batch) >= DONE_BATCH:
                        await self._settle(batch)
                        batch = []
            finally:
                await self._settle(batch)
            if not self.pending and self._size:
                await self._truncate()
            return settled

    async def _replay_one(self, record: SpoolRecord) -> str:
        replay = self._replayers.get(record.kind)
        if replay is None:
            logger.error("spool record %s of unknown kind %r kept", record.id, record.kind)
            return "kept"
        try:
            await replay(record)
        except UNAVAILABLE as exc:
            logger.info("spool replay paused, PostgreSQL is unavailable: %s", exc)
            return "unavailable"
        except RetryLater as exc:
            logger.info("spool replay paused: %s", exc)
            return "unavailable"
        except ReputationError as exc:
            logger.warning("spool record %s (%s) refused: %s", record.id, record.kind, exc.code)
            self.metrics.spool_replayed.labels(record.kind, "refused").inc()
            return "refused"
        except Exception:
            logger.exception("spool record %s (%s) failed; kept for later", record.id, record.kind)
            self.metrics.spool_replayed.labels(record.kind, "failed").inc()
            return "kept"
        self.metrics.spool_replayed.labels(record.kind, "replayed").inc()
        return "replayed"

    async def _settle(self, ids: list[str]) -> None:
        if not ids:
            return
        await self._write(b"".join(_line({"done": key}) for key in ids))
        for key in ids:
            self.pending.pop(key, None)

    async def close(self) -> None:
        """Flush, then remove the file if nothing is pending (else the next process adopts it)."""
        if self._writer is not None:
            await self._writer
        if self._fd is None:
            return
        if not self.pending:
            self.path.unlink(missing_ok=True)
            _sync_directory(self.directory)
        os.close(self._fd)  # releases the lock
        self._fd = None

    async def _write(self, data: bytes) -> None:
        """Append ``data`` and fsync it, sharing the fsync with concurrent writers."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((data, future))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await asyncio.to_thread(self._write_sync, b"".join(data for data, _ in batch))
                except Exception as exc:
                    for _, future in batch:
                        future.set_exception(exc)
                else:
                    for _, future in batch:
                        future.set_result(None)
        finally:
            self._writer = None

    def _write_sync(self, data: bytes) -> None:
        assert self._fd is not None, "open() first"
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self._size += len(data)

    async def _truncate(self) -> None:
        """Empty the file once nothing in it is pending (a crash now loses nothing)."""
        assert self._fd is not None
        await asyncio.to_thread(os.ftruncate, self._fd, 0)
        await asyncio.to_thread(os.fsync, self._fd)
        self._size = 0


@contextlib.contextmanager
def _locked_if_free(path: Path) -> Iterator[bool]:
    """Lock ``path`` if no process holds it; yields whether it did."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _sync_directory(directory: Path) -> None:
    """Make a file's creation or removal durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
