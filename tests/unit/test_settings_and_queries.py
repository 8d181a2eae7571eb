from __future__ import annotations

from pathlib import Path

import pytest

from reputation.cli import build_parser, settings_from
from reputation.logs import redact_numbers
from reputation.queries import parse_queries, queries
from reputation.settings import Settings


def test_settings_from_environment() -> None:
    settings = Settings.from_env(
        {"REPUTATION_PORT": "9090", "REPUTATION_BLOOM_ERROR_RATE": "0.01", "REPUTATION_HOST": ""}
    )
    assert settings.port == 9090
    assert settings.bloom_error_rate == 0.01
    assert settings.host == "127.0.0.1"


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="REPUTATION_PORT"):
        Settings.from_env({"REPUTATION_PORT": "eighty"})


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPUTATION_PORT", "9090")
    monkeypatch.setenv("REPUTATION_DATA_DIR", "/srv/rep")
    args = build_parser().parse_args(["serve", "--port", "7070"])
    settings = settings_from(args)
    assert settings.port == 7070
    assert settings.data_dir == Path("/srv/rep")


def test_secrets_are_masked() -> None:
    shown = Settings(database_url="postgresql://u:pw@h/db", reporter_key="k").describe()
    assert shown["database_url"] == "***"
    assert shown["reporter_key"] == "***"
    assert shown["port"] == "8080"


def test_large_numbers_in_the_settings_line_survive_the_phone_number_filter() -> None:
    shown = str(Settings(spool_max_bytes=1_073_741_824).describe())
    assert "1_073_741_824" in redact_numbers(shown)


def test_help_names_each_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    assert "REPUTATION_DATABASE_URL" in text
    assert "REPUTATION_BLOOM_CAPACITY" in text


def test_query_file_parsing() -> None:
    parsed = parse_queries("-- one --\n-- first\nSELECT 1;\n\n-- two --\n-- second\nSELECT\n  2;\n")
    assert parsed == {"one": "SELECT 1;", "two": "SELECT\n  2;"}
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- one --\n-- a\nSELECT 1;\n-- one --\n-- b\nSELECT 2;")


def test_queries_are_loaded() -> None:
    assert "fetch_number" in queries()
    assert all(sql.strip() for sql in queries().values())
