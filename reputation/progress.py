"""A progress line for long command-line jobs: done so far, rate, and time left.

The share done is measured in bytes of the input file read (so a file of any
size needs no counting pass first); the rate is in the job's own units.
"""

from __future__ import annotations

import io
import time
from typing import TextIO

# Seconds between two redraws on a terminal, and between two lines in a log.
TERMINAL_INTERVAL = 0.2
LOG_INTERVAL = 10.0
BAR_WIDTH = 24


class CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from it (the compressed ones, for gzip)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Redraws ``[####....] 45%  450,000 lines  12,345 lines/s  ETA 0:00:45`` on ``stream``."""

    def __init__(self, total_bytes: int, stream: TextIO, unit: str = "lines") -> None:
        self.total_bytes = max(total_bytes, 1)
        self.stream = stream
        self.unit = unit
        self.terminal = stream.isatty()
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.line = ""

    def update(self, done: int, bytes_read: int, note: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        interval = TERMINAL_INTERVAL if self.terminal else LOG_INTERVAL
        if not force and now - self.last_drawn < interval:
            return
        self.last_drawn = now
        elapsed = max(now - self.started, 1e-9)
        share = min(bytes_read / self.total_bytes, 1.0)
        rate = done / elapsed
        left = elapsed * (1 - share) / share if share > 0 else float("inf")
        filled = int(share * BAR_WIDTH)
        eta = _clock(left) if left != float("inf") else "?"
        self.line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}  {done:,} {self.unit}  "
            f"{rate:,.0f} {self.unit}/s  ETA {eta}" + (f"  {note}" if note else "")
        )
        if self.terminal:
            self.stream.write("\r\x1b[2K" + self.line)
        else:
            self.stream.write(self.line + "\n")
        self.stream.flush()

    def finish(self, done: int, bytes_read: int, note: str = "") -> float:
        """Draw the last state; the seconds the job took."""
        self.update(done, bytes_read, note, force=True)
        if self.terminal:
            self.stream.write("\n")
            self.stream.flush()
        return time.monotonic() - self.started
