"""Run the example Kamailio proxy and sipp callers and callees, for tests and benchmarks.

Everything listens on 127.0.0.1 only. Processes are started with asyncio and
always stopped by the context managers that started them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import statistics
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KAMAILIO_DIR = ROOT / "examples" / "kamailio"
KAMAILIO_CONFIG = KAMAILIO_DIR / "kamailio.cfg"
SCENARIOS = KAMAILIO_DIR / "sipp"
HOST = "127.0.0.1"
# A header line that means "no P-Asserted-Identity" in the caller scenarios.
NO_PAI = "X-No-PAI: 1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def udp_port_bound(port: int) -> bool:
    """Is some process bound to this UDP port (read from /proc, never by binding it)?"""
    wanted = f":{port:04X}"
    with open("/proc/net/udp", encoding="ascii") as table:
        return any(line.split()[1].endswith(wanted) for line in list(table)[1:])


def prepared(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


async def wait_bound(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    """Wait until ``process`` listens on UDP ``port``; its log if it dies first."""
    async with asyncio.timeout(20):
        while not udp_port_bound(port):
            if process.returncode is not None:
                raise RuntimeError(f"exited with {process.returncode}:\n{tail(log)}")
            await asyncio.sleep(0.05)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def kamailio(
    binary: str,
    workdir: Path,
    *,
    service_url: str,
    appeal_url: str,
    lookup: bool = True,
    workers: int = 4,
    api_key: str | None = None,
) -> AsyncIterator[int]:
    """The example proxy on a free UDP port (yielded), asking ``service_url``."""
    port = free_udp_port()
    log = prepared(workdir) / "kamailio.log"
    defines = [
        f'REPUTATION_URL="{service_url}"',
        f'APPEAL_URL="{appeal_url}"',
        f"WORKERS={workers}",
    ]
    if not lookup:
        defines.append("WITHOUT_REPUTATION")
    if api_key is not None:
        defines.append(f'API_KEY="{api_key}"')
    arguments = [binary, "-f", str(KAMAILIO_CONFIG), "-DD", "-E", "-Y", str(workdir)]
    arguments += ["-l", f"udp:{HOST}:{port}", "-m", "64", "-M", "8"]
    for define in defines:
        arguments += ["-A", define]
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *arguments, stdout=output, stderr=output, stdin=asyncio.subprocess.DEVNULL
        )
    try:
        await wait_bound(port, process, log)
        yield port
    finally:
        await stop(process)


@contextlib.asynccontextmanager
async def callee(binary: str, workdir: Path) -> AsyncIterator[int]:
    """A sipp phone that rings, answers and hangs up on BYE, on a free UDP port."""
    port = free_udp_port()
    log = prepared(workdir) / "callee.out"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            binary,
            "-sf",
            str(SCENARIOS / "callee.xml"),
            "-i",
            HOST,
            "-p",
            str(port),
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(workdir / "callee.errors"),
            stdout=output,
            stderr=output,
            stdin=asyncio.subprocess.DEVNULL,
        )
    try:
        await wait_bound(port, process, log)
        yield port
    finally:
        await stop(process)


@dataclass(frozen=True)
class Calls:
    """What a sipp caller run saw."""

    returncode: int
    log: str
    errors: str
    # INVITE -> first final answer (200 or 608) of each answered call, in milliseconds.
    delays_ms: list[float]

    def percentile(self, share: float) -> float:
        ordered = sorted(self.delays_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def median(self) -> float:
        return statistics.median(self.delays_ms)


async def place_calls(
    binary: str,
    workdir: Path,
    *,
    scenario: str,
    proxy_port: int,
    callee_port: int,
    callers: Sequence[str],
    pai: str = NO_PAI,
    rate: int = 10,
    calls: int | None = None,
    timeout_s: float = 30,
) -> Calls:
    """Place calls from ``callers`` (in turn) through the proxy; wait for them all."""
    inf, log, errors, trace = _caller_files(workdir, callers)
    total = calls if calls is not None else len(callers)
    process = await asyncio.create_subprocess_exec(
        binary,
        f"{HOST}:{callee_port}",
        "-rsa",
        f"{HOST}:{proxy_port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        HOST,
        "-p",
        str(free_udp_port()),
        "-inf",
        str(inf),
        "-key",
        "pai",
        pai,
        "-m",
        str(total),
        "-r",
        str(rate),
        "-l",
        str(max(rate * 2, 10)),
        "-timeout",
        f"{int(timeout_s)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_logs",
        "-log_file",
        str(log),
        "-trace_err",
        "-error_file",
        str(errors),
        "-trace_msg",
        "-message_file",
        str(trace),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=workdir,
    )
    returncode = await process.wait()
    return _outcome(returncode, log, errors, trace)


def _caller_files(workdir: Path, callers: Sequence[str]) -> tuple[Path, Path, Path, Path]:
    """The -inf file of the callers, and fresh log, error and message trace files."""
    inf = prepared(workdir) / "callers.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{number};\n" for number in callers))
    log, errors, trace = workdir / "calls.log", workdir / "calls.errors", workdir / "calls.trace"
    for stale in (log, errors, trace):
        stale.unlink(missing_ok=True)
    return inf, log, errors, trace


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _outcome(returncode: int, log: Path, errors: Path, trace: Path) -> Calls:
    return Calls(returncode, _read(log), _read(errors), post_dial_delays(_read(trace)))


_TRACE_SEPARATOR = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})$", re.M)


def post_dial_delays(trace: str) -> list[float]:
    """Milliseconds from each INVITE sent to its first final answer, from sipp's -trace_msg.

    sipp's own response times count in whole milliseconds; its message trace
    stamps every message to the microsecond.
    """
    sent: dict[str, datetime] = {}
    answered: dict[str, datetime] = {}
    parts = _TRACE_SEPARATOR.split(trace)
    for stamp, block in zip(parts[1::2], parts[2::2], strict=True):
        moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
        lines = block.strip().splitlines()
        if len(lines) < 3:
            continue
        first = lines[2]
        headers = dict(_header(line) for line in lines[3:] if ":" in line)
        call_id, cseq = headers.get("call-id", ""), headers.get("cseq", "")
        if not cseq.endswith("INVITE"):
            continue
        if lines[0].startswith("UDP message sent") and first.startswith("INVITE "):
            sent.setdefault(call_id, moment)
        elif first.startswith("SIP/2.0 ") and int(first.split()[1]) >= 200:
            answered.setdefault(call_id, moment)
    return [
        (answered[call_id] - started).total_seconds() * 1000
        for call_id, started in sent.items()
        if call_id in answered
    ]


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()
