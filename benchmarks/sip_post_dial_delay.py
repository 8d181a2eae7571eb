"""Post-dial delay that the lookup adds at call setup, measured at the SIP level.

Runs the real service (``reputation serve``, on PostgreSQL), the example
Kamailio proxy and sipp phones, all on 127.0.0.1, and places the same calls
three ways through the proxy:

- baseline: the proxy relays without asking the service (``WITHOUT_REPUTATION``);
- lookup: the proxy asks the service about every caller (mostly clean
  numbers, some reported ones, as at a real switch);
- service stopped: the lookup fails at once and the call goes on (fail open).

The switch sends a ``lookup`` API key, as in production. The delay is
INVITE -> 200 OK at the caller (the callee answers at once), from sipp's
message trace (microseconds), p50 and p99 over every call; the lookup's cost
is the difference from the baseline measured in the same run.

    python -m benchmarks.sip_post_dial_delay [--calls 2000] [--rate 100]

Needs kamailio (+ kamailio-utils-modules, kamailio-extra-modules) and sipp
(Debian: sip-tester). Uses REPUTATION_DATABASE_URL, or an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from reputation.client import ApiError, AsyncClient
from reputation.embedded import EmbeddedPostgres
from tests import sip
from tests.tools import find

APPEAL_URL = "https://reputation.example.vn/appeals"
# Share of calls from reported numbers (warned, still relayed).
REPORTED_SHARE = 0.2


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind((sip.HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def database(workdir: Path) -> Iterator[str]:
    given = os.environ.get("REPUTATION_DATABASE_URL")
    if given:
        yield given
        return
    workdir.chmod(0o711)  # the embedded server may run as another user (under root)
    server = EmbeddedPostgres(workdir / "pg", durable=False)
    try:
        yield server.start()
    finally:
        server.stop()


async def create_key(database_url: str, role: str) -> str:
    """A new API key, made with the CLI (it prints the key alone on its last line)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reputation",
        "keys",
        "create",
        "--role",
        role,
        "--name",
        f"benchmark {role}",
        env={**os.environ, "REPUTATION_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        sys.exit("cannot create an API key")
    return out.decode().strip().splitlines()[-1]


@contextlib.asynccontextmanager
async def service(database_url: str, workdir: Path) -> AsyncIterator[str]:
    """``reputation serve`` in its own process; its URL once it is ready."""
    port = free_tcp_port()
    env = {
        **os.environ,
        "REPUTATION_DATABASE_URL": database_url,
        "REPUTATION_HOST": sip.HOST,
        "REPUTATION_PORT": str(port),
        "REPUTATION_LOG_LEVEL": "WARNING",
        "REPUTATION_REPORTER_KEY": "benchmark",
        "REPUTATION_REPORTER_RATE_LIMIT": "off",
    }
    with (workdir / "service.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reputation", "serve", env=env, stdout=log, stderr=log
        )
    url = f"http://{sip.HOST}:{port}"
    try:
        async with AsyncClient(url) as client:
            async with asyncio.timeout(60):
                while True:
                    try:
                        await client.request("GET", "/readyz")
                        break
                    except (ApiError, OSError):
                        await asyncio.sleep(0.1)
        yield url
    finally:
        await sip.stop(process)


def random_mobile(rng: random.Random) -> str:
    """A valid Vietnamese mobile number (Viettel 09x block)."""
    return f"+8498{rng.randrange(10**7):07d}"


async def seed(url: str, numbers: list[str], api_key: str) -> None:
    """Three reporters each: these numbers are answered ``warn``."""
    async with AsyncClient(url, api_key=api_key) as client:
        for i, number in enumerate(numbers):
            # Distinct people: one reporter's daily cap would stop counting them.
            for reporter in range(3 * i, 3 * i + 3):
                await client.report(number, reporter=f"+8497{reporter:07d}", category="scam")


async def run(calls: int, rate: int) -> None:
    kamailio, sipp = find("kamailio"), find("sipp")
    if kamailio is None or sipp is None:
        sys.exit(
            "needs kamailio and sipp: apt-get install kamailio kamailio-utils-modules "
            "kamailio-extra-modules sip-tester"
        )
    rng = random.Random(8)
    reported = sorted({random_mobile(rng) for _ in range(200)})
    callers = [
        rng.choice(reported) if rng.random() < REPORTED_SHARE else random_mobile(rng)
        for _ in range(calls)
    ]
    with tempfile.TemporaryDirectory(prefix="reputation-sip-") as tmp:
        workdir = Path(tmp)
        with database(workdir) as database_url:
            admin_key = await create_key(database_url, "admin")
            lookup_key = await create_key(database_url, "lookup")
            async with service(database_url, workdir) as url:
                await seed(url, reported, admin_key)
                results = {}
                async with sip.callee(sipp, workdir / "callee") as callee_port:
                    for name, lookup, target in (
                        ("baseline (no lookup)", False, url),
                        ("lookup", True, url),
                        ("service stopped", True, f"http://{sip.HOST}:{free_tcp_port()}"),
                    ):
                        async with sip.kamailio(
                            kamailio,
                            workdir / name.split()[0],
                            service_url=target,
                            appeal_url=APPEAL_URL,
                            lookup=lookup,
                            api_key=lookup_key,
                        ) as proxy_port:
                            started = time.perf_counter()
                            outcome = await sip.place_calls(
                                sipp,
                                workdir / "caller",
                                scenario="caller.xml",
                                proxy_port=proxy_port,
                                callee_port=callee_port,
                                callers=callers,
                                rate=rate,
                                timeout_s=calls / rate + 60,
                            )
                            elapsed = time.perf_counter() - started
                        if outcome.returncode != 0 or len(outcome.delays_ms) != calls:
                            sys.exit(f"{name}: sipp failed:\n{outcome.errors[-2000:]}")
                        results[name] = outcome
                        print(
                            f"{name:22s} {calls} calls in {elapsed:5.1f} s: "
                            f"p50 {outcome.median:6.2f} ms  p99 {outcome.percentile(0.99):6.2f} ms"
                            f"  mean {statistics.fmean(outcome.delays_ms):6.2f} ms"
                        )
    base, lookup = results["baseline (no lookup)"], results["lookup"]
    print(
        f"added by the lookup: p50 {lookup.median - base.median:+.2f} ms, "
        f"p99 {lookup.percentile(0.99) - base.percentile(0.99):+.2f} ms "
        f"(ratio p50 {lookup.median / base.median:.2f}x); "
        f"{REPORTED_SHARE:.0%} of callers reported, sipp rate {rate}/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=100, help="new calls per second")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.rate))


if __name__ == "__main__":
    main()
