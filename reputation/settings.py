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

from reputation.constants import ROLES
from reputation.limits import parse_rate, parse_role_rates

ENV_PREFIX = "REPUTATION_"


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
            shown[field.name] = str(value)
        return shown


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
