"""The Dockerfile keeps its promises (checked as text: no container engine is needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_image_is_built_in_two_stages_on_a_slim_base() -> None:
    bases = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(bases) == 2
    assert all("-slim" in base for base in bases)
    stage = final_stage()
    copies = [rest for keyword, rest in stage if keyword == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]  # no sources, no build tools


def test_the_service_runs_unprivileged() -> None:
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")


def test_health_check_asks_healthz_and_serve_starts_by_default() -> None:
    stage = dict(final_stage())
    assert "/healthz" in stage["HEALTHCHECK"]
    assert json.loads(stage["ENTRYPOINT"]) == ["reputation"]
    assert json.loads(stage["CMD"]) == ["serve"]
    # Configured by environment: listening on every interface of the container.
    assert "REPUTATION_HOST=0.0.0.0" in stage["ENV"]
    assert "REPUTATION_PORT=8080" in stage["ENV"]


def test_no_secret_is_baked_into_the_image() -> None:
    environment = " ".join(rest for keyword, rest in instructions() if keyword in ("ENV", "ARG"))
    for secret in ("DATABASE_URL", "REPORTER_KEY", "SECRET", "PASSWORD"):
        assert secret not in environment


def test_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", "tests"):
        assert path in ignored
