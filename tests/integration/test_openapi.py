"""The OpenAPI description tells the truth: routes, roles, error codes and real answers.

When a route is added, changed or given other roles, these tests fail until
``reputation/openapi.py`` says the same.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

import reputation
from reputation import api
from reputation.app import create_app
from reputation.errors import NUMBER_ERROR_MESSAGES, ReputationError
from reputation.openapi import ERROR_CODES, spec
from reputation.settings import Settings

METHODS = ("get", "put", "post", "delete", "patch")


def described_operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): item[method]
        for path, item in spec()["paths"].items()
        for method in METHODS
        if method in item
    }


def registered_routes() -> dict[tuple[str, str], Any]:
    """``(method, path pattern) -> handler`` of the real application."""
    app = create_app(Settings(database_url="postgresql://unused/unused"))
    found = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if route.method == "HEAD" or "directory" in info:
            continue  # aiohttp adds HEAD to every GET
        assert route.resource is not None
        found[route.method, route.resource.canonical] = route.handler
    return found


def test_the_document_is_valid_openapi_3_1() -> None:
    document = spec()
    assert document["openapi"].startswith("3.1")
    validate(document)
    json.dumps(document)  # plain JSON, nothing Python-only


def test_every_route_is_described_and_nothing_else() -> None:
    routes = set(registered_routes())
    described = set(described_operations())
    assert routes - described == set(), "routes missing from reputation/openapi.py"
    assert described - routes == set(), "described in reputation/openapi.py but not routed"


def test_described_roles_are_the_handlers_roles() -> None:
    operations = described_operations()
    for key, handler in registered_routes().items():
        op = operations[key]
        roles = getattr(handler, "roles", None)
        if roles is None:
            assert op["security"] == [], f"{key} is public: it must say security: []"
            assert "x-roles" not in op, key
        else:
            assert sorted(roles) == op["x-roles"], key
            assert op["security"] == [{"apiKey": []}], key


def test_every_operation_describes_its_request_and_answer() -> None:
    for (method, path), op in described_operations().items():
        answers = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert answers, (method, path)
        if method != "DELETE":
            assert any(r.get("content") for r in answers.values()), (method, path, "no schema")
        for response in answers.values():
            for media in response.get("content", {}).values():
                assert media.get("schema"), (method, path)
        if method in ("POST", "PUT", "PATCH"):
            assert "requestBody" in op, (method, path, "no request body described")
        for parameter in op.get("parameters", ()):
            target = parameter.get("$ref", "").rsplit("/", 1)[-1]
            described = spec()["components"]["parameters"][target] if target else parameter
            assert described.get("schema"), (method, path, parameter)


def test_every_operation_documents_its_error_shape() -> None:
    for key, op in described_operations().items():
        default = op["responses"]["default"]["content"]["application/json"]["schema"]
        assert default == {"$ref": "#/components/schemas/Error"}, key
        assert op["summary"], key
        assert op["description"], key


def source_error_codes() -> set[str]:
    """Every error code written in the package's source.

    Read from the syntax tree: ``code="..."`` keywords, ``{"code": "..."}``
    dicts and ``code = "..."`` class attributes, plus the number error table
    and the codes of aiohttp's own errors.
    """
    found = set(NUMBER_ERROR_MESSAGES) | set(api._HTTP_ERROR_CODES.values()) | {"http_error"}
    package = Path(reputation.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "code":
                value: ast.expr | None = node.value
            elif isinstance(node, ast.Dict):
                value = next(
                    (
                        v
                        for k, v in zip(node.keys, node.values, strict=True)
                        if isinstance(k, ast.Constant) and k.value == "code"
                    ),
                    None,
                )
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                is_code = any(isinstance(t, ast.Name) and t.id == "code" for t in targets)
                value = node.value if is_code else None
            else:
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(value.value)
    return found


def test_every_error_code_of_the_source_is_described() -> None:
    codes = source_error_codes()
    assert len(codes) > 20  # the scan sees the codes that exist
    assert {"invalid_json", "database_unavailable", "short_code"} <= codes
    assert codes - set(ERROR_CODES) == set(), "add these to ERROR_CODES in reputation/openapi.py"


def test_error_classes_have_described_codes() -> None:
    def walk(cls: type[ReputationError]) -> set[str]:
        return {cls.code}.union(*(walk(sub) for sub in cls.__subclasses__()))

    assert walk(ReputationError) <= set(ERROR_CODES)


# --- real answers validate against the schemas they are described with ---


def _schema_for(method: str, path: str, status: int, media: str) -> dict[str, Any]:
    op = described_operations()[method, path]
    response = op["responses"].get(str(status)) or op["responses"]["default"]
    if status >= 400:
        assert str(status) in op["responses"] or "default" in op["responses"]
    content = response["content"]
    assert media in content, f"{method} {path} {status}: {media} not described"
    schema: dict[str, Any] = content[media]["schema"]
    return schema


async def conforms(
    response: Any, method: str, path: str, expected_status: int | None = None
) -> Any:
    """Validate a real answer against its description; return its parsed body."""
    if expected_status is not None:
        assert response.status == expected_status, await response.text()
    media = response.content_type
    schema = _schema_for(method, path, response.status, media)
    if media != "application/json":
        return await response.text()
    body = await response.json()
    document = spec()
    jsonschema.Draft202012Validator(
        {**schema, "components": document["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(body)
    return body


NUMBER = "/v1/numbers/{number}"


async def test_lookup_and_report_answers_match_their_schemas(client: TestClient) -> None:
    await conforms(await client.get("/v1/numbers/0912345678"), "GET", NUMBER, 200)
    for i in range(10):
        await conforms(
            await client.post(
                "/v1/reports",
                json={
                    "number": "0912 345 678",
                    "reporter": f"098700000{i}",
                    "channel": "app",
                    "category": "impersonation",
                    "content": "Giả danh công an" if i else None,
                },
            ),
            "POST",
            "/v1/reports",
            201,
        )
    body = await conforms(
        await client.get("/v1/numbers/" + quote("+84912345678")), "GET", NUMBER, 200
    )
    assert body["verdict"] == "block"
    replay = {"Idempotency-Key": "k-1"}
    report = {"number": "0987654321", "reporter": "0987000001"}
    await conforms(
        await client.post("/v1/reports", json=report, headers=replay), "POST", "/v1/reports", 201
    )
    await conforms(
        await client.post("/v1/reports", json=report, headers=replay), "POST", "/v1/reports", 200
    )
    batch = await conforms(
        await client.post(
            "/v1/lookups", json={"numbers": ["0912345678", "0911111111", "156", 7, "x" * 100]}
        ),
        "POST",
        "/v1/lookups",
        200,
    )
    assert [("error" in r) for r in batch["results"]] == [False, False, True, True, True]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "path", "status"),
    [
        ("GET", "/v1/numbers/abc", {}, NUMBER, 400),
        ("GET", "/v1/numbers/" + "1" * 80, {}, NUMBER, 400),
        ("POST", "/v1/reports", {"data": b"{"}, "/v1/reports", 400),
        (
            "POST",
            "/v1/reports",
            {"json": {"number": "0912345678", "channel": "x"}},
            "/v1/reports",
            400,
        ),
        ("POST", "/v1/reports", {"data": b"x" * 70_000}, "/v1/reports", 413),
        ("POST", "/v1/lookups", {"json": {"numbers": ["1"] * 1001}}, "/v1/lookups", 413),
        ("POST", "/v1/lookups", {"json": {"numbers": "0912345678"}}, "/v1/lookups", 400),
        # Not an operation of the path: the default error shape of the path's operation applies.
        ("DELETE", "/v1/reports", {}, "/v1/reports", 405),
    ],
)
async def test_error_answers_match_the_error_schema(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any], path: str, status: int
) -> None:
    response = await client.request(method, url, **kwargs)
    described = method if (method, path) in described_operations() else "POST"
    body = await conforms(response, described, path, status)
    assert body["error"]["message"]


async def test_idempotency_conflict_matches_its_schema(client: TestClient) -> None:
    key = {"Idempotency-Key": "k-2"}
    await client.post("/v1/reports", json={"number": "0912345678"}, headers=key)
    response = await client.post("/v1/reports", json={"number": "0987654321"}, headers=key)
    body = await conforms(response, "POST", "/v1/reports", 409)
    assert body["error"]["code"] == "idempotency_conflict"


async def test_operations_answers_match_their_schemas(client: TestClient) -> None:
    await conforms(await client.get("/healthz"), "GET", "/healthz", 200)
    await conforms(await client.get("/readyz"), "GET", "/readyz", 200)
    metrics = await conforms(await client.get("/metrics"), "GET", "/metrics", 200)
    assert "reputation_lookups_total" in metrics


async def test_served_document_is_the_description(client: TestClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == json.loads(json.dumps(spec()))


async def test_api_page_shows_every_operation_without_external_assets(
    client: TestClient,
) -> None:
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    for (method, path), op in described_operations().items():
        assert f'id="{op["operationId"]}"' in page, (method, path)
        assert f'<span class="path">{path}</span>' in page
    for name in spec()["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    # Nothing is loaded from elsewhere: no scripts, no remote styles, images or fonts.
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page
    assert "url(" not in page
