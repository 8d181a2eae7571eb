"""The server processes under test: start, wait until they answer, read their CPU and memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    """Resident memory of a process."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE_KIB / 1024


class ProcessGroup:
    """Processes that together make one node (workers sharing a port, or a helper server).

    ``extra_pids`` are processes the node depends on whose CPU counts for it too
    (the DIY peer's Redis). ``cwd``: where ``python -m`` finds the modules (a
    checkout's directory comes before the installed package).
    """

    def __init__(
        self,
        name: str,
        commands: Sequence[Sequence[str]],
        *,
        env: Mapping[str, str] | None = None,
        log_dir: Path,
        extra_pids: Sequence[int] = (),
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.started = time.perf_counter()
        self.extra_pids = list(extra_pids)
        self.processes: list[subprocess.Popen[bytes]] = []
        full_env = {**os.environ, **(env or {})}
        for index, command in enumerate(commands):
            log = (log_dir / f"{name}-{index}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    command, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
                )
            )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids + self.extra_pids)

    def rss_mib(self) -> list[float]:
        return [round(rss_mib(pid), 1) for pid in self.pids]

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {process.returncode}; see its log")

    def wait_until_answers(self, url: str, timeout: float, headers: Mapping[str, str]) -> float:
        """Seconds from start until ``url`` answers 200 on every worker, polled every 20 ms.

        Each poll is a new connection, which the kernel hands to any worker of
        the port: 8 successes in a row per worker make a still-loading one unlikely.
        """
        deadline = time.perf_counter() + timeout
        request = urllib.request.Request(url, headers=dict(headers))
        in_a_row = 0
        while time.perf_counter() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(request, timeout=1):
                    in_a_row += 1
                    if in_a_row >= 8 * len(self.processes):
                        return time.perf_counter() - self.started
                    continue
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                in_a_row = 0
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} did not answer {url} within {timeout} s")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
