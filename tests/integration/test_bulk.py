"""``reputation import`` and ``reputation export`` on a real PostgreSQL, through the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import io
import json
import tracemalloc
from pathlib import Path

import asyncpg
import pytest

from reputation import bulk, cli
from reputation.progress import Progress
from reputation.settings import Settings
from tests.conftest import TEST_REPORTER_KEY


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """The CLI's environment: the test's database and reporter key."""
    assert settings.database_url is not None
    monkeypatch.setenv("REPUTATION_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REPUTATION_REPORTER_KEY", TEST_REPORTER_KEY)
    monkeypatch.setenv("REPUTATION_LOG_LEVEL", "WARNING")
    return settings


async def run_cli(*argv: str) -> tuple[int, str, str]:
    """``reputation ARGV`` in a thread (it runs its own event loop): code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                return cli.main(list(argv))
            except SystemExit as exc:  # argparse refusing the command line
                return int(exc.code or 0)

    code = await asyncio.to_thread(call)
    return code, out.getvalue(), err.getvalue()


async def import_list(path: Path, *extra: str) -> dict[str, object]:
    code, out, err = await run_cli("import", str(path), *extra)
    assert code == 0, err
    summary: dict[str, object] = json.loads(out)
    return summary


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as table:
        return list(csv.DictReader(table))


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


async def numbers(settings: Settings) -> dict[str, tuple[int, int, dict[str, int]]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch("SELECT e164, reports, reporters, categories::text FROM numbers")
    finally:
        await conn.close()
    return {r["e164"]: (r["reports"], r["reporters"], json.loads(r["categories"])) for r in rows}


async def count_rows(settings: Settings, table: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        count: int = await conn.fetchval(f"SELECT count(*) FROM {table}")
        return count
    finally:
        await conn.close()


LIST = """number,category,count,source
0912345678,scam,3,police-hcmc
+84987654321,spam_call,,carrier-x
"0912 345 673",impersonation,12,police-hcmc
hello,scam,1,x
0912345679,rude,1,x
0912345670,scam,0,x
0912345671,scam,5000,x
0912345672,scam,2,
0912345674,scam,many,x
156,scam,1,x
,scam,1,x
"""


async def test_import_counts_the_people_behind_each_line(
    environment: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(LIST)
    summary = await import_list(path)
    assert summary["lines"] == 11
    assert summary["imported"] == 3
    assert summary["reports_added"] == 3 + 1 + 12
    assert summary["rejected"] == 8
    assert summary["rejected_by_code"] == {
        "alphanumeric_sender_id": 1,
        "invalid_category": 1,
        "invalid_count": 2,
        "count_too_large": 1,
        "missing_field": 2,
        "short_code": 1,
    }
    known = await numbers(environment)
    assert known == {
        "+84912345678": (3, 3, {"scam": 3}),
        "+84987654321": (1, 1, {"spam_call": 1}),
        "+84912345673": (12, 12, {"impersonation": 12}),
    }
    # The refused lines, with their line numbers, codes and text.
    rows = read_rows(Path(str(summary["rejected_file"])))
    assert [(row["line"], row["code"]) for row in rows] == [
        ("5", "alphanumeric_sender_id"),
        ("6", "invalid_category"),
        ("7", "invalid_count"),
        ("8", "count_too_large"),
        ("9", "missing_field"),
        ("10", "invalid_count"),
        ("11", "short_code"),
        ("12", "missing_field"),
    ]
    assert rows[0]["input"] == "hello,scam,1,x"
    assert all(row["message"] for row in rows)


async def test_import_again_changes_nothing_and_a_larger_count_adds_only_the_new_people(
    environment: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(LIST)
    first = await import_list(path)
    before = (await numbers(environment), await count_rows(environment, "reports"))
    again = await import_list(path)
    assert again["reports_added"] == 0
    assert again["reports_already_present"] == first["reports_added"]
    assert (await numbers(environment), await count_rows(environment, "reports")) == before
    grown = tmp_path / "grown.csv"
    grown.write_text("number,category,count,source\n0912345678,scam,5,police-hcmc\n")
    summary = await import_list(grown)
    assert summary["reports_added"] == 2
    assert summary["reports_already_present"] == 3
    assert (await numbers(environment))["+84912345678"] == (5, 5, {"scam": 5})


async def test_import_of_json_lines_gzipped_with_defaults(
    environment: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "list.jsonl.gz"
    lines = [
        json.dumps({"number": "0912345678", "count": 2}),
        json.dumps({"number": "+84 98 765 4321", "category": "spam_sms", "source": "app-x"}),
        "{not json",
        json.dumps(["0912345678"]),
        json.dumps({"number": 912345678}),
        json.dumps({"number": "0912345675", "count": True}),
        "",
        json.dumps({"number": "0912345676", "count": "3"}),
    ]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    summary = await import_list(path, "--source", "police-hn", "--category", "impersonation")
    assert summary["imported"] == 3
    assert summary["rejected_by_code"] == {
        "invalid_json": 2,
        "invalid_field": 1,
        "invalid_count": 1,
    }
    known = await numbers(environment)
    assert known["+84912345678"] == (2, 2, {"impersonation": 2})
    assert known["+84987654321"] == (1, 1, {"spam_sms": 1})
    assert known["+84912345676"] == (3, 3, {"impersonation": 3})


async def test_bytes_that_are_not_text_refuse_their_line_only(
    environment: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(
        b"number,category,count,source\n"
        b"0912345678,scam,1,caf\xe9\n"  # Latin-1, not UTF-8
        b"0912345679,scam,1,police\n"
    )
    summary = await import_list(path)
    assert summary["imported"] == 1
    assert summary["rejected_by_code"] == {"invalid_field": 1}
    rejected = read_bytes(Path(str(summary["rejected_file"])))
    assert b"caf\xe9" in rejected  # the line as it was, for whoever fixes the list


async def test_a_file_that_is_not_a_list_is_refused(environment: Settings, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("phone,kind\n0912345678,scam\n")
    code, _, err = await run_cli("import", str(path))
    assert code == 2
    assert "'number' column" in err
    code, _, err = await run_cli("import", str(tmp_path / "missing.csv"))
    assert code == 2
    assert "no such file" in err


async def test_export_writes_every_listed_number(environment: Settings, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(LIST)
    await import_list(path)
    code, out, _ = await run_cli("export")
    assert code == 0
    exported = [json.loads(line) for line in out.splitlines()]
    assert [e["number"] for e in exported] == ["+84912345673", "+84912345678", "+84987654321"]
    assert {e["number"]: e["verdict"] for e in exported} == {
        "+84912345673": "block",
        "+84912345678": "warn",
        "+84987654321": "allow",
    }
    assert exported[0]["reporters"] == 12
    target = tmp_path / "blocked.csv.gz"
    code, _, err = await run_cli("export", "-o", str(target), "--verdict", "block")
    assert code == 0
    assert "exported 1 numbers" in err
    with gzip.open(target, "rt", newline="") as exported_csv:
        rows = list(csv.DictReader(exported_csv))
    assert rows == [
        {
            "number": "+84912345673",
            "verdict": "block",
            "score": rows[0]["score"],
            "status": "reported",
            "reports": "12",
            "reporters": "12",
            "categories": "impersonation=12",
            "first_reported_at": rows[0]["first_reported_at"],
            "last_reported_at": rows[0]["last_reported_at"],
            "reasons": rows[0]["reasons"],
        }
    ]
    assert float(rows[0]["score"]) > 0.5


def test_progress_line_shows_share_rate_and_time_left() -> None:
    stream = io.StringIO()
    progress = Progress(total_bytes=1000, stream=stream)
    progress.update(500, 250, "rejected 3", force=True)
    line = stream.getvalue().strip()
    assert line.startswith("[######..................]  25%  500 lines")
    assert "lines/s" in line
    assert "ETA 0:00:0" in line
    assert line.endswith("rejected 3")


async def test_import_memory_does_not_grow_with_the_file(
    environment: Settings, tmp_path: Path
) -> None:
    # Refused lines are read, checked and written out like any other: only the
    # database work is left out, so what is measured is the streaming itself.
    def peak_for(lines: int) -> int:
        path = tmp_path / f"list-{lines}.csv"
        with path.open("w") as out:
            out.write("number,category,count,source\n")
            for i in range(lines):
                out.write(f"09{i % 10**8:08d},not-a-category,1,police\n")
        tracemalloc.start()
        try:
            asyncio.run(run_import_offline(path))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = (
        await asyncio.to_thread(peak_for, 2_000),
        await asyncio.to_thread(peak_for, 40_000),
    )
    assert large < small + 512 * 1024, (small, large)


async def run_import_offline(path: Path) -> None:
    """An import whose every line is refused: the store is never called."""
    summary = await bulk.import_file(
        None,  # type: ignore[arg-type]
        path,
        region="VN",
        rejected_path=path.with_suffix(".rejected.csv"),
        stream=io.StringIO(),
    )
    assert summary.imported == 0
    assert summary.rejected_lines == summary.lines
