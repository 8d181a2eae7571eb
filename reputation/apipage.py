"""``GET /docs``: the OpenAPI description as a page people can read.

Rendered on the server from ``openapi.spec()``, so it can never disagree with
``/openapi.json``; plain HTML and inline CSS, nothing fetched from elsewhere
(carrier networks often have no internet access).
"""

from __future__ import annotations

import html
import re
from functools import cache

from aiohttp import web

from reputation.auth import public
from reputation.openapi import Schema, spec

_CODE = re.compile(r"`([^`]+)`")
_METHODS = ("get", "put", "post", "delete", "patch")

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:960px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
code{background:#eceff3;padding:1px 4px;border-radius:3px;font-size:90%}
section.op{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:12px 16px;
margin:14px 0}
.method{display:inline-block;min-width:60px;text-align:center;font-weight:700;color:#fff;
border-radius:4px;padding:1px 6px;margin-right:8px;text-transform:uppercase}
.get{background:#2f6fb3}.post{background:#2e8b57}.put{background:#b7791f}
.delete{background:#c0392b}.patch{background:#6c5ce7}
.path{font-family:monospace;font-size:16px;font-weight:600}
.roles{float:right;font-size:13px;color:#555}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;vertical-align:top;border-bottom:1px solid #eceff3;padding:4px 6px}
th{font-size:13px;color:#555}
.req{color:#c0392b;font-size:12px}
nav a{margin-right:12px}
"""


def _text(value: str) -> str:
    """Escape ``value`` and show `backticked` words as code."""
    return _CODE.sub(r"<code>\1</code>", html.escape(value))


def _ref_name(schema: Schema) -> str | None:
    target = schema.get("$ref")
    if isinstance(target, str) and target.startswith("#/components/"):
        return target.rsplit("/", 1)[1]
    return None


def type_text(schema: Schema) -> str:
    """A schema in a few words of HTML: ``string (≤ 64)``, ``array of NumberAnswer``..."""
    name = _ref_name(schema)
    if name is not None:
        return f'<a href="#schema-{name}">{html.escape(name)}</a>'
    for combiner, joiner in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
        if combiner in schema:
            return joiner.join(type_text(part) for part in schema[combiner])
    kind = schema.get("type")
    if isinstance(kind, list):
        words = " or ".join(html.escape(str(k)) for k in kind)
    elif kind == "array":
        words = "array of " + type_text(schema.get("items", {}))
    elif kind is None:
        words = "any JSON value"
    else:
        words = html.escape(str(kind))
    constraints = _constraints(schema)
    return words + (f" ({constraints})" if constraints else "")


def _constraints(schema: Schema) -> str:
    found = []
    if "enum" in schema:
        values = ", ".join(f"<code>{html.escape(str(v))}</code>" for v in schema["enum"])
        found.append("one of " + values)
    for key, sign in (("minLength", "length ≥ "), ("maxLength", "length ≤ "),
                      ("minimum", "≥ "), ("maximum", "≤ "),
                      ("minItems", "items ≥ "), ("maxItems", "items ≤ ")):  # fmt: skip
        if key in schema:
            found.append(f"{sign}{schema[key]}")
    if "pattern" in schema:
        found.append(f"pattern <code>{html.escape(schema['pattern'])}</code>")
    if "format" in schema:
        found.append(html.escape(schema["format"]))
    return "; ".join(found)


def _schema_block(name: str, schema: Schema) -> str:
    parts = [f'<section class="op" id="schema-{html.escape(name)}"><h3>{html.escape(name)}</h3>']
    if "description" in schema:
        parts.append(f"<p>{_text(schema['description'])}</p>")
    properties: dict[str, Schema] = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", ()))
        rows = "".join(
            f"<tr><td><code>{html.escape(field)}</code>"
            + (' <span class="req">required</span>' if field in required else "")
            + f"</td><td>{type_text(sub)}</td><td>{_text(sub.get('description', ''))}</td></tr>"
            for field, sub in properties.items()
        )
        parts.append(f"<table><tr><th>field</th><th>type</th><th></th></tr>{rows}</table>")
        if schema.get("additionalProperties") is False:
            parts.append("<p>No other fields.</p>")
    else:
        parts.append(f"<p>{type_text(schema)}</p>")
    parts.append("</section>")
    return "".join(parts)


def _parameter(document: Schema, parameter: Schema) -> Schema:
    name = _ref_name(parameter)
    found: Schema = document["components"]["parameters"][name] if name else parameter
    return found


def _operation_block(document: Schema, path: str, method: str, op: Schema) -> str:
    roles = op.get("x-roles")
    who = "roles: " + ", ".join(roles) if roles else "public"
    parts = [
        f'<section class="op" id="{html.escape(op["operationId"])}">',
        f'<span class="roles">{html.escape(who)}</span>',
        f'<span class="method {method}">{method}</span>',
        f'<span class="path">{html.escape(path)}</span>',
        f"<p><strong>{_text(op['summary'])}</strong>. {_text(op.get('description', ''))}</p>",
    ]
    parameters = [_parameter(document, p) for p in op.get("parameters", ())]
    if parameters:
        rows = "".join(
            f"<tr><td><code>{html.escape(p['name'])}</code> ({html.escape(p['in'])})"
            + (' <span class="req">required</span>' if p.get("required") else "")
            + f"</td><td>{type_text(p['schema'])}</td><td>{_text(p.get('description', ''))}</td>"
            "</tr>"
            for p in parameters
        )
        parts.append(f"<table><tr><th>parameter</th><th>type</th><th></th></tr>{rows}</table>")
    body = op.get("requestBody")
    if body:
        for media, content in body["content"].items():
            parts.append(
                f"<p>Body ({html.escape(media)}): {type_text(content['schema'])}. "
                f"{_text(body.get('description', ''))}</p>"
            )
    rows = ""
    for status, response in op["responses"].items():
        shapes = ", ".join(
            f"{type_text(c['schema'])} <small>{html.escape(media)}</small>"
            for media, c in response.get("content", {}).items()
        )
        rows += (
            f"<tr><td>{html.escape(status)}</td><td>{shapes}</td>"
            f"<td>{_text(response['description'])}</td></tr>"
        )
    parts.append(f"<table><tr><th>status</th><th>answer</th><th></th></tr>{rows}</table>")
    parts.append("</section>")
    return "".join(parts)


@cache
def render() -> str:
    """The whole page."""
    document = spec()
    info = document["info"]
    nav = "".join(
        f'<a href="#tag-{t["name"]}">{html.escape(t["name"])}</a>' for t in document["tags"]
    )
    body = [
        f"<h1>{html.escape(info['title'])} API <small>v{html.escape(info['version'])}</small></h1>",
        f"<p>{_text(info['summary'])}. The machine-readable description is "
        '<a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>',
        "".join(f"<p>{_text(p)}</p>" for p in info["description"].split("\n\n")),
        f'<nav>{nav}<a href="#schemas">schemas</a></nav>',
    ]
    for tag in document["tags"]:
        body.append(f'<h2 id="tag-{tag["name"]}">{html.escape(tag["name"])}</h2>')
        body.append(f"<p>{_text(tag['description'])}</p>")
        for path, item in document["paths"].items():
            for method in _METHODS:
                op = item.get(method)
                if op is not None and tag["name"] in op.get("tags", ()):
                    body.append(_operation_block(document, path, method, op))
    body.append('<h2 id="schemas">Schemas</h2>')
    for name, schema in document["components"]["schemas"].items():
        body.append(_schema_block(name, schema))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(info['title'])} API</title><style>{STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>"
    )


@public
async def get_api_page(request: web.Request) -> web.Response:
    """``GET /docs``: the API description as a page."""
    return web.Response(text=render(), content_type="text/html", charset="utf-8")
