"""The worker processes of one node, reaching each other over private Unix sockets.

``reputation serve --workers N`` runs N processes on one port, and the kernel
hands each connection to any of them. A question about the whole node (its
metrics, its lookups per minute) is therefore asked of one worker, which
answers for itself and asks its siblings. Each worker listens on a Unix
socket of its own, in ``DATA_DIR/run/`` (mode 0700, the socket 0600): named
by port and worker index, so that a sibling is found by name, and removed at
exit. A question is one line (its name); the answer is JSON, then the
sibling closes the connection. Nothing of this runs on the lookup path: a
worker answers from the state it already has, when it is asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reputation.settings import Settings

logger = logging.getLogger(__name__)

# How long a worker waits for its siblings' answers. A sibling being restarted
# (or too busy to answer in this time) is left out of that answer, never waited for.
SIBLING_TIMEOUT_SECONDS = 1.0
# Largest answer read from a sibling (a metrics answer is some tens of kilobytes).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# Longest question line.
MAX_QUESTION_BYTES = 64
# Longest path a Unix socket can bind on Linux (sun_path is 108 bytes, NUL included).
MAX_SOCKET_PATH_BYTES = 107


@dataclass(frozen=True)
class WorkerSlot:
    """Which worker of its node this process is: index ``index`` of ``count``."""

    index: int = 0
    count: int = 1


# The slot of a node that runs one worker (and of apps made in tests).
ONLY_WORKER = WorkerSlot()


def run_directory(settings: Settings) -> Path:
    """Where the workers of a node keep their sockets."""
    return settings.data_dir / "run"


def socket_path(settings: Settings, index: int) -> Path:
    """The socket of worker ``index`` of the node listening on ``settings.port``."""
    return run_directory(settings) / f"worker-{settings.port}-{index}.sock"


def check_socket_paths(settings: Settings) -> None:
    """Refuse a data directory too deep for the workers' socket paths, before any starts."""
    longest = socket_path(settings, max(settings.workers - 1, 0))
    if len(os.fsencode(longest)) > MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"REPUTATION_DATA_DIR: {settings.data_dir} is too long for the workers' sockets "
            f"({longest} is over {MAX_SOCKET_PATH_BYTES} bytes); choose a shorter path"
        )


@dataclass
class WorkerLink:
    """This worker's socket for its siblings, and its way of asking them."""

    settings: Settings
    slot: WorkerSlot
    # Question name -> what this worker answers (JSON-ready), read when asked.
    answers: dict[str, Callable[[], Any]] = field(default_factory=dict)

    def answer(self, question: str, reply: Callable[[], Any]) -> None:
        """Answer ``question`` from siblings with what ``reply()`` returns."""
        self.answers[question] = reply

    @property
    def siblings(self) -> list[int]:
        return [i for i in range(self.slot.count) if i != self.slot.index]

    async def ask_siblings(self, question: str) -> dict[int, Any]:
        """Every sibling's answer that came within the timeout, by worker index."""
        if not self.siblings:
            return {}
        answers = await asyncio.gather(*(self._ask(i, question) for i in self.siblings))
        return {
            index: answer
            for index, answer in zip(self.siblings, answers, strict=True)
            if answer is not None
        }

    async def _ask(self, index: int, question: str) -> Any:
        path = socket_path(self.settings, index)
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(SIBLING_TIMEOUT_SECONDS):
                reader, writer = await asyncio.open_unix_connection(path)
                writer.write(question.encode() + b"\n")
                await writer.drain()
                body = bytearray()
                while len(body) <= MAX_ANSWER_BYTES:
                    chunk = await reader.read(1 << 16)
                    if not chunk:
                        break
                    body.extend(chunk)
            if len(body) > MAX_ANSWER_BYTES:
                logger.warning("worker %d answered %s with too much; left out", index, question)
                return None
            return json.loads(body)["answer"]
        except (OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            # Restarting, not started yet, or busy: this answer goes without it.
            logger.debug("worker %d did not answer %s: %r", index, question, exc)
            return None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Listen on this worker's socket meanwhile (only when the node has siblings)."""
        if self.slot.count < 2:
            yield
            return
        path = socket_path(self.settings, self.slot.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        # Left by a worker of this index that was killed: ours replaces it.
        path.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(self._serve, path=str(path))
        path.chmod(0o600)
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()
            path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SIBLING_TIMEOUT_SECONDS):
                line = await reader.readline()
            question = line[:MAX_QUESTION_BYTES].decode("ascii", "replace").strip()
            reply = self.answers.get(question)
            if reply is None:
                writer.write(json.dumps({"error": f"unknown question {question!r}"}).encode())
            else:
                # NaN and infinities are valid Prometheus values: Python's json keeps them.
                writer.write(json.dumps({"answer": reply()}).encode())
            await writer.drain()
        except (OSError, TimeoutError) as exc:
            logger.debug("a sibling's question was not answered: %r", exc)
        except Exception:
            logger.exception("answering a sibling failed")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
