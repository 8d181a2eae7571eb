"""The SQL files of ``sql/``: named queries and numbered migrations.

SQL is kept in files, never assembled from strings. ``queries.sql`` holds
blocks headed ``-- name --`` and a one-line description; they are parsed once
and called by name from ``store.py``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_HEADER = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$", re.MULTILINE)


def sql_dir() -> Path:
    """Where the SQL files are: inside the installed package, or at the source tree's top."""
    packaged = Path(__file__).parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / "sql"


@cache
def queries() -> dict[str, str]:
    """Every named query of ``queries.sql``."""
    return parse_queries((sql_dir() / "queries.sql").read_text(encoding="utf-8"))


def parse_queries(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    headers = list(_HEADER.finditer(text))
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        body = text[header.end() : following.start() if following else len(text)]
        lines = body.strip().splitlines()
        # The first line is the description; the rest is the SQL.
        sql = "\n".join(line for line in lines[1:]).strip()
        name = header.group(1)
        if name in found:
            raise ValueError(f"query {name!r} is defined twice in queries.sql")
        found[name] = sql
    return found


def migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration file, in order."""
    found = []
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        version, _, name = path.stem.partition("_")
        found.append((int(version), name, path.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version number: {versions}")
    return found


def schema() -> str:
    return (sql_dir() / "schema.sql").read_text(encoding="utf-8")
