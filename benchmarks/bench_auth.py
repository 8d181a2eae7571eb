"""What the security checks add to a request, against the floor of any key check.

Run: ``python -m benchmarks.bench_auth [--calls N] [--repeat R]``.

Each figure is the best of R rounds of N calls, in ns per call, with its ratio
to the baseline measured in the same run: reading the ``Authorization`` header
of a request and finding it in a dict, which any key check must do at least.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiohttp.test_utils import make_mocked_request

from reputation.apikeys import ApiKeyRecord, key_hash, new_key
from reputation.auth import Guard
from reputation.limits import Rate
from reputation.metrics import Metrics
from reputation.settings import Settings
from reputation.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

ROLES = frozenset({"lookup", "analyst", "admin"})
SMS_BODY = (
    '{"message_id": "m-1", "from": "84987000001", "to": "156", '
    '"text": "LD 0912345678 gọi giả danh công an, yêu cầu chuyển tiền"}'
).encode()


def best_ns(call: Callable[[], object], calls: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter_ns() - started) / calls)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    guard = Guard(Settings(database_url="postgresql://unused"), Metrics())
    keys = [new_key() for _ in range(100)]
    records = [
        ApiKeyRecord(i, f"key {i}", "lookup", k[:8], None, datetime.now(UTC), None)
        for i, k in enumerate(keys, 1)
    ]
    guard.ring.replace(records, [key_hash(k) for k in keys])
    header = "Bearer " + keys[42]
    request = make_mocked_request(
        "GET", "/v1/numbers/0912345678", headers={"Authorization": header}
    )
    floor = {header: object()}
    rate = Rate(10**9, 1.0)
    known = guard.authenticate(request)
    stamp = int(time.time())
    signed = {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(b"secret", stamp, SMS_BODY)}

    cases: dict[str, Callable[[], object]] = {
        "baseline: header read + dict lookup": lambda: floor.get(request.headers["Authorization"]),
        "key check + role check (every call)": lambda: guard.authorize(
            guard.authenticate(request), ROLES
        ),
        "key check of a header never seen (SHA-256)": lambda: guard.ring.find(keys[7]),
        "rate limit: the key's token bucket": lambda: guard.key_limiter.take(
            known.principal.key_id, rate
        ),
        "gateway signature (HMAC-SHA256, 170 B body)": lambda: verify(
            [b"secret"], signed, SMS_BODY, stamp
        ),
    }
    figures = {name: best_ns(call, args.calls, args.repeat) for name, call in cases.items()}
    base = figures["baseline: header read + dict lookup"]
    print(f"{'check':<46} {'ns/call':>9} {'x baseline':>11}")
    for name, ns in figures.items():
        print(f"{name:<46} {ns:>9.0f} {ns / base:>11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
