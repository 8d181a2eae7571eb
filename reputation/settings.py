"""Every tunable of the service in one frozen dataclass.

Each field is read from a ``REPUTATION_<FIELD>`` environment variable and can be
overridden by the matching ``--<field>`` command-line flag (see ``cli.py``); the
flags are generated from the fields below so the two never drift apart.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reputation.constants import CATEGORIES, ROLES
from reputation.limits import parse_rate, parse_role_rates

ENV_PREFIX = "REPUTATION_"
# Values of ``access_log`` (see ``logs.ACCESS_LOGGERS``).
ACCESS_LOG_CHOICES = ("all", "errors", "off")
# Values of ``event_loop``.
EVENT_LOOP_CHOICES = ("uvloop", "asyncio")

# How much one reporter weighs in each category: a scam or an impersonation
# report weighs more than a spam or telemarketing complaint. One reporter alone
# never reaches the warn threshold, so every weight stays below it.
DEFAULT_CATEGORY_WEIGHTS = (
    "scam=1,impersonation=1,spam_call=0.5,spam_sms=0.5,telemarketing=0.25,other=0.5"
)


def _default_data_dir() -> Path:
    # root cannot own the embedded cluster (PostgreSQL refuses to run as root),
    # so keep its data where a system service would, outside /root.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/reputation")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reputation"


def setting(default: Any, help: str, *, secret: bool = False, factory: Any = None) -> Any:
    """A settings field with its help text (shown by ``--help``)."""
    metadata = {"help": help, "secret": secret}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Configuration of one node; identical on every node of a deployment."""

    database_url: str | None = setting(
        None,
        "PostgreSQL URL; unset: start the embedded PostgreSQL kept in DATA_DIR",
        secret=True,
    )
    replica_url: str | None = setting(
        None,
        "PostgreSQL URL of a read replica for the lookups the filter and cache cannot answer "
        "(every write and the change feed use DATABASE_URL); unset: the primary",
        secret=True,
    )
    data_dir: Path = setting(
        None, "directory for the embedded database and local state", factory=_default_data_dir
    )
    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8080, "TCP port to listen on")
    region: str = setting("VN", "region assumed for numbers written without a country code")
    bloom_capacity: int = setting(
        1_000_000, "numbers the Bloom filter holds before it is rebuilt larger"
    )
    bloom_error_rate: float = setting(0.001, "false-positive rate of the Bloom filter at capacity")
    cache_size: int = setting(100_000, "answers kept in the hot cache")
    cache_ttl: float = setting(60.0, "seconds a cached answer is served before it is re-read")
    pool_min_size: int = setting(2, "PostgreSQL connections kept open")
    pool_max_size: int = setting(10, "PostgreSQL connections at most")
    reporter_key: str | None = setting(
        None,
        "secret key for hashing reporter numbers; unset: a key generated once and kept in the "
        "database",
        secret=True,
    )
    log_level: str = setting("INFO", "logging level")
    access_log: str = setting(
        "errors",
        "requests written to the access log: all, errors (answers 4xx/5xx and requests slower "
        "than 0.1 s) or off",
    )
    event_loop: str = setting(
        "uvloop",
        "event loop of serve: uvloop (about 8 per cent less CPU per request, measured) or asyncio",
    )
    auth: bool = setting(
        True,
        "check API keys (Authorization: Bearer); off (REPUTATION_AUTH=off, --no-auth) is "
        "allowed only when listening on a loopback address",
    )
    rate_limits: str = setting(
        "lookup=1000/s,report=20/s,sms_gateway=200/s,analyst=20/s,admin=off",
        "requests per API key, by role, per process: ROLE=COUNT/PERIOD (s, min, h, day) or off; "
        "a batch lookup costs one per number",
    )
    reporter_rate_limit: str = setting(
        "30/h", "reports per reporter number, per process (COUNT/PERIOD or off)"
    )
    public_rate_limit: str = setting(
        "20/min",
        "calls per client address to public routes that write (appeals), per process",
    )
    sms_gateway_secret: str | None = setting(
        None,
        "shared secret(s) of the SMS gateway's HMAC signature, comma-separated to rotate; "
        "unset: the SMS webhook refuses every call",
        secret=True,
    )
    key_refresh_interval: float = setting(
        1.0, "seconds at most before a created or revoked API key is seen by this node"
    )
    idle_timeout: float = setting(
        60.0, "seconds an idle connection, or one sending its request headers, is kept"
    )
    body_timeout: float = setting(10.0, "seconds a client has to send its request body")
    half_life_days: float = setting(90.0, "days after which a report weighs half as much")
    warn_threshold: float = setting(
        2.5, "weighted recent reporters from which a number is answered warn"
    )
    block_threshold: float = setting(
        9.0, "weighted recent reporters from which a number is answered block"
    )
    category_weights: str = setting(
        DEFAULT_CATEGORY_WEIGHTS,
        "weight of one reporter in each category, as category=weight,... (unlisted: default)",
    )
    reporter_daily_cap: int = setting(
        20, "numbers one reporter can count on per day; their further reports are kept, not counted"
    )
    reporter_day_utc_offset: float = setting(
        7.0, "UTC offset in hours of the midnight that starts a day of the daily cap (7: Vietnam)"
    )
    spoofed_protected_verdict: str = setting(
        "warn", "verdict for a call showing a protected number without A attestation: warn or block"
    )
    appeal_base_url: str | None = setting(
        None, "web page where a number's owner appeals; lookups answer it as appeal_url"
    )
    verdict_sweep_interval: float = setting(
        60.0, "seconds between sweeps that store the verdicts decay has changed"
    )
    workers: int = setting(
        None,
        "processes serving the port together (SO_REUSEPORT), each a full node; default: one "
        "per CPU core",
        factory=lambda: os.cpu_count() or 1,
    )
    shutdown_timeout: float = setting(
        30.0, "seconds in-flight requests get to finish after SIGTERM, before workers stop"
    )
    spool_max_bytes: int = setting(
        1 << 30,
        "size of this node's local spool of reports taken while PostgreSQL is down; past it, "
        "reports are refused with 503",
    )
    feed_poll_interval: float = setting(
        1.0, "seconds between reads of the change log when no notification wakes the node"
    )
    feed_retention: float = setting(
        86_400.0,
        "seconds a change is kept for a node that falls behind; a node further behind reloads",
    )
    filter_rebuild_interval: float = setting(
        86_400.0,
        "seconds between scheduled rebuilds of the Bloom filter from PostgreSQL (0: only when "
        "full)",
    )
    filter_snapshot_interval: float = setting(
        3600.0,
        "seconds between stored snapshots of the Bloom filter, which new nodes start from "
        "(0: never)",
    )
    lookup_timeout: float = setting(
        0.5,
        "seconds a lookup waits for PostgreSQL before answering from memory, marked degraded",
    )

    def __post_init__(self) -> None:
        # Refuse unreadable limits at start-up, not at the first request.
        for name, parse in (
            ("rate_limits", lambda text: parse_role_rates(text, ROLES)),
            ("reporter_rate_limit", parse_rate),
            ("public_rate_limit", parse_rate),
        ):
            try:
                parse(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{env_name(name)}: {exc}") from None
        if self.event_loop not in EVENT_LOOP_CHOICES:
            raise ValueError(
                f"{env_name('event_loop')}: must be one of {', '.join(EVENT_LOOP_CHOICES)}"
            )
        if self.access_log not in ACCESS_LOG_CHOICES:
            raise ValueError(
                f"{env_name('access_log')}: must be one of {', '.join(ACCESS_LOG_CHOICES)}"
            )
        self._check_verdict_settings()

    def _check_verdict_settings(self) -> None:
        """Refuse verdict settings that would make no sense, naming the variable."""
        weights = self.category_weight_map()
        if not self.half_life_days > 0:
            raise ValueError(f"{env_name('half_life_days')}: must be more than 0")
        if not 0 < self.warn_threshold < self.block_threshold:
            raise ValueError(
                f"{env_name('warn_threshold')}, {env_name('block_threshold')}: "
                "need 0 < warn threshold < block threshold"
            )
        if max(weights.values()) >= self.warn_threshold:
            raise ValueError(
                f"{env_name('category_weights')}: every weight must stay below the warn "
                "threshold (one reporter alone must never get a number past allow)"
            )
        if self.reporter_daily_cap < 1:
            raise ValueError(f"{env_name('reporter_daily_cap')}: must be at least 1")
        if not -12 <= self.reporter_day_utc_offset <= 14:
            raise ValueError(f"{env_name('reporter_day_utc_offset')}: must be within -12..14")
        if self.spoofed_protected_verdict not in ("warn", "block"):
            raise ValueError(f"{env_name('spoofed_protected_verdict')}: must be warn or block")
        if not self.verdict_sweep_interval > 0:
            raise ValueError(f"{env_name('verdict_sweep_interval')}: must be more than 0")

    def category_weight_map(self) -> dict[str, float]:
        """``category_weights`` read over the defaults: every category has a weight."""
        weights = _parse_weights(DEFAULT_CATEGORY_WEIGHTS)
        weights.update(_parse_weights(self.category_weights))
        return weights

    ranges_index: bool = setting(
        True, "keep the in-memory hash-prefix index of listed numbers that serves /v1/ranges"
    )
    ranges_refresh_interval: float = setting(
        1.0, "seconds at most before the range index shows a change made elsewhere"
    )
    ranges_max_age: int = setting(
        300, "seconds a client or a cache may reuse a /v1/ranges answer (Cache-Control)"
    )
    export_concurrency: int = setting(
        2, "exports streamed at once (each holds a database connection while it runs)"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``REPUTATION_*`` variables, then explicit overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            raw = environ.get(env_name(field.name))
            if raw is not None and raw != "":
                values[field.name] = parse_value(hints[field.name], raw, field.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def describe(self) -> dict[str, str]:
        """The settings as printable text, secrets masked (logged at start-up)."""
        shown = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.metadata.get("secret") and value is not None:
                value = "***"
            elif isinstance(value, int) and abs(value) >= 10**8:
                # Grouped (1_073_741_824): the log's phone number filter hides 9+ digit runs.
                value = f"{value:_}"
            shown[field.name] = str(value)
        return shown


def _parse_weights(text: str) -> dict[str, float]:
    name = env_name("category_weights")
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        category, sep, raw = (x.strip() for x in item.partition("="))
        if not sep or category not in CATEGORIES:
            raise ValueError(
                f"{name}: {item!r} is not category=weight with a category among "
                f"{', '.join(CATEGORIES)}"
            )
        try:
            weight = float(raw)
        except ValueError:
            raise ValueError(f"{name}: {raw!r} is not a number") from None
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"{name}: the weight of {category} must be 0 or more")
        weights[category] = weight
    return weights


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def value_type(hint: Any) -> type:
    """The concrete type behind ``X | None``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return typing.cast(type, args[0])
    return typing.cast(type, hint)


def parse_value(hint: Any, raw: str, name: str) -> Any:
    kind = value_type(hint)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ValueError(f"{env_name(name)}: cannot read {raw!r} as {kind.__name__}") from None
