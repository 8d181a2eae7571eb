"""``GET /``: what a person opening the service wants to see, on one page.

Lookups per minute on this node (by verdict, over all its worker processes),
reports per minute on every node, the verdict mix, the most reported numbers
of the last day and the node's health. Rendered here as HTML with inline SVG charts: no script, no
external asset, readable on a switch-room terminal without internet access.
Numbers are masked unless the caller may see them in clear (an analyst's or
admin's key sent along, or authentication off as in the quick start).
"""

from __future__ import annotations

import asyncio
import html
import logging
import socket
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web

from reputation import __version__
from reputation.activity import (
    ACTIVITY_MINUTES,
    SAMPLE_SECONDS,
    Activity,
    DatabaseFigures,
    FilterFigures,
    NodeActivity,
    StatusState,
    WorkerActivity,
    minute_of,
)
from reputation.appkeys import (
    CLOCK,
    GUARD,
    LOOKUPS,
    METRICS,
    SETTINGS,
    STATUS_PAGE,
    STORE,
    WORKER_LINK,
)
from reputation.auth import public
from reputation.constants import FEED_NODE_TIMEOUT_SECONDS
from reputation.errors import ReputationError
from reputation.metrics import VERDICTS
from reputation.privacy import mask

logger = logging.getLogger(__name__)

# How many of the most reported numbers of the last day are listed.
TOP_NUMBERS = 10
# Seconds between automatic reloads of the page.
REFRESH_SECONDS = 30
# What the worker serving the page asks its siblings.
ACTIVITY_QUESTION = "activity"

COLORS = {"allow": "#2e8b57", "warn": "#e0a800", "block": "#c0392b", "reports": "#2f6fb3"}
ROLES_SEEING_NUMBERS = ("analyst", "admin")
# Style of each verdict's badge.
BADGES = {"allow": "ok", "warn": "warn", "block": "bad"}

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f3f5f8}
main{max-width:1100px;margin:0 auto;padding:20px}
header{display:flex;justify-content:space-between;align-items:baseline;flex-wrap:wrap}
h1{margin:0;font-size:24px}h2{font-size:16px;margin:0 0 8px}
.muted{color:#5b6475;font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:14px;margin:16px 0}
.card{background:#fff;border:1px solid #d9dee6;border-radius:8px;padding:12px 16px}
.figure{font-size:28px;font-weight:700}
.wide{grid-column:1/-1}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #edf0f4}
th{font-size:13px;color:#5b6475;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;
font-weight:600}
.ok{background:#2e8b57}.bad{background:#c0392b}.warn{background:#e0a800}
.legend span{margin-right:14px;font-size:13px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
code{font-size:14px}
a{color:#2f6fb3}
"""


async def read_figures(app: web.Application) -> DatabaseFigures:
    store, lookups, now = app[STORE], app[LOOKUPS], app[CLOCK]()
    try:
        per_minute = await store.reports_per_minute(
            minute_of(now) - timedelta(minutes=ACTIVITY_MINUTES - 1)
        )
        top = await store.top_reported(now - timedelta(days=1), TOP_NUMBERS)
        answers = await lookups.lookup_many([number for number, _, _ in top])
        nodes = await store.feed_nodes()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        logger.warning("status page: the database cannot be read", exc_info=True)
        return DatabaseFigures(False, {}, [], [])
    rows = [
        (number, reports, reporters, lookups.judge(answers[number]).verdict)
        for number, reports, reporters in top
    ]
    return DatabaseFigures(True, per_minute, rows, nodes)


def worker_activity(app: web.Application) -> WorkerActivity:
    """This worker's part of the page: its lookups per minute, filter and cache."""
    page, lookups = app[STATUS_PAGE], app[LOOKUPS]
    number_filter, cache = lookups.filter, lookups.cache
    return WorkerActivity(
        minutes=page.activity.per_minute(),
        since_start=page.activity.since_start(),
        up_seconds=time.monotonic() - page.started,
        filter=None
        if number_filter is None
        else FilterFigures(
            items=len(number_filter),
            capacity=number_filter.capacity,
            fill_ratio=number_filter.fill_ratio(),
            false_positive_rate=number_filter.estimated_false_positive_rate(),
        ),
        cache_entries=len(cache),
        cache_hits=cache.hits,
        cache_misses=cache.misses,
    )


async def node_activity(app: web.Application) -> NodeActivity:
    """This worker's activity and that of every sibling that answers in time."""
    link = app[WORKER_LINK]
    workers = [worker_activity(app)]
    for index, answer in sorted((await link.ask_siblings(ACTIVITY_QUESTION)).items()):
        try:
            workers.append(WorkerActivity.from_json(answer))
        except (KeyError, TypeError, ValueError):
            logger.warning("status page: worker %d answered something unreadable", index)
    return NodeActivity(workers, link.slot.count)


async def activity_sampler(app: web.Application) -> AsyncIterator[None]:
    """Read this worker's lookup counters every ``SAMPLE_SECONDS`` for the page."""
    activity = Activity(app[METRICS], app[CLOCK])
    app[STATUS_PAGE] = StatusState(activity)
    app[WORKER_LINK].answer(ACTIVITY_QUESTION, lambda: worker_activity(app).to_json())

    async def sample() -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            activity.sample()

    task = asyncio.get_running_loop().create_task(sample())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# --- drawing -----------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:,.0f}"


def bar_chart(
    labels: Sequence[str],
    stacks: Sequence[dict[str, float]],
    series: Sequence[str],
    title: str,
    *,
    width: int = 1000,
    height: int = 170,
) -> str:
    """Stacked bars as inline SVG, one per minute, oldest at the left."""
    left, bottom, top = 44.0, 20.0, 8.0
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((sum(stack.get(s, 0.0) for s in series) for stack in stacks), default=0.0)
    scale = plot_h / peak if peak > 0 else 0.0
    slot = plot_w / max(len(stacks), 1)
    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%">',
        f"<title>{html.escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        'stroke="#b8c0cc"/>',
        f'<text x="{left - 6}" y="{top + 10}" font-size="11" text-anchor="end" fill="#5b6475">'
        f"{_number(peak)}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end" '
        'fill="#5b6475">0</text>',
    ]
    for i, stack in enumerate(stacks):
        x = left + i * slot + slot * 0.1
        y = top + plot_h
        for name in series:
            value = stack.get(name, 0.0)
            if value <= 0:
                continue
            h = max(value * scale, 1.0)
            y -= h
            parts.append(
                f'<rect class="bar-{name}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[name]}"><title>{html.escape(labels[i])}: '
                f"{_number(value)} {name}</title></rect>"
            )
        if i % 10 == 0 or i == len(stacks) - 1:
            parts.append(
                f'<text x="{x + slot * 0.4:.1f}" y="{height - 5}" font-size="11" '
                f'text-anchor="middle" fill="#5b6475">{html.escape(labels[i])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def mix_bar(counts: dict[str, float], *, width: int = 1000, height: int = 34) -> str:
    """The share of each verdict as one horizontal bar, with percentages."""
    total = sum(counts.values())
    parts = [
        f'<svg role="img" aria-label="Verdict mix" viewBox="0 0 {width} {height}" width="100%" '
        "><title>Verdict mix</title>"
    ]
    if total <= 0:
        parts.append(
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#e4e8ee" rx="4"/>'
            f'<text x="{width / 2}" y="{height / 2 + 5}" font-size="13" text-anchor="middle" '
            'fill="#5b6475">no lookups yet</text>'
        )
    x = 0.0
    for verdict in VERDICTS:
        share = counts.get(verdict, 0.0) / total if total > 0 else 0.0
        if share <= 0:
            continue
        w = share * width
        parts.append(
            f'<rect class="mix-{verdict}" x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" '
            f'fill="{COLORS[verdict]}"><title>{verdict}: {share:.1%}</title></rect>'
        )
        if w > 70:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="{height / 2 + 5}" font-size="13" fill="#fff" '
                f'text-anchor="middle" font-weight="600">{verdict} {share:.1%}</text>'
            )
        x += w
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[str]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{COLORS[s]}"></i>{s}</span>' for s in series)
        + "</div>"
    )


def _badge(good: bool, yes: str, no: str) -> str:
    return f'<span class="badge {"ok" if good else "bad"}">{yes if good else no}</span>'


def _duration(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _health(node: NodeActivity, figures: DatabaseFigures, auth: bool) -> str:
    number_filter = node.filter
    hit_ratio = node.cache_hit_ratio
    loaded = _badge(number_filter is not None, "loaded", "loading")
    if node.worker_count > 1:
        loaded += (
            f' <span class="muted">on {node.filters_loaded} of {node.worker_count} workers</span>'
        )
    rows = [
        ("Bloom filter", loaded),
        ("Database", _badge(figures.up, "up", "down")),
        (
            "Authentication",
            _badge(auth, "on", "OFF")
            + ("" if auth else ' <span class="muted">(loopback only, quick start)</span>'),
        ),
    ]
    if number_filter is not None:
        rows += [
            (
                "Numbers in the filter",
                f"{number_filter.items:,} of {number_filter.capacity:,} "
                f"({number_filter.fill_ratio:.1%} of bits set)",
            ),
            (
                "False-positive rate (estimated)",
                f"{number_filter.false_positive_rate:.4%}",
            ),
        ]
    rows.append(
        (
            "Hot cache",
            f"{node.cache_entries:,} answers, hit ratio "
            + (f"{hit_ratio:.1%}" if hit_ratio is not None else "n/a"),
        )
    )
    if node.worker_count > 1:
        rows.append(
            (
                "Workers answering",
                _badge(len(node.workers) == node.worker_count, "all", "not all")
                + f" {len(node.workers)} of {node.worker_count}",
            )
        )
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _nodes_table(figures: DatabaseFigures) -> str:
    """Every node following the change feed: alive if heard from within the node timeout."""
    if not figures.nodes:
        return '<p class="muted">No node has reported its change-feed position yet.</p>'
    rows = ""
    for node in figures.nodes:
        silent = (node.now - node.seen_at).total_seconds()
        alive = silent <= FEED_NODE_TIMEOUT_SECONDS
        rows += (
            f"<tr><td><code>{html.escape(node.host)}</code> <span class='muted'>pid "
            f"{node.pid}</span></td><td>{_badge(alive, 'alive', 'silent')}</td>"
            f"<td>{_duration((node.now - node.started_at).total_seconds())}</td>"
            f"<td class='n'>{silent:,.0f} s</td></tr>"
        )
    return (
        f"<table><tr><th>node</th><th>state</th><th>up</th><th>last heard</th></tr>{rows}</table>"
    )


def _top_table(figures: DatabaseFigures, clear: bool) -> str:
    if not figures.up:
        return '<p class="muted">The database cannot be read right now.</p>'
    if not figures.top:
        return '<p class="muted">No report in the last 24 hours.</p>'
    rows = "".join(
        f"<tr><td class='n'>{rank}</td><td><code>{html.escape(number if clear else mask(number))}"
        f"</code></td><td class='n'>{reports:,}</td><td class='n'>{reporters:,}</td>"
        f'<td><span class="badge {BADGES[verdict]}">{verdict}</span>'
        "</td></tr>"
        for rank, (number, reports, reporters, verdict) in enumerate(figures.top, 1)
    )
    return (
        "<table><tr><th>#</th><th>number</th><th>reports</th><th>people</th><th>verdict</th>"
        f"</tr>{rows}</table>"
    )


def render(
    node: NodeActivity,
    figures: DatabaseFigures,
    *,
    now: datetime,
    auth: bool,
    clear_numbers: bool,
    host: str,
) -> str:
    minutes = node.per_minute()
    labels = [
        "now" if i == len(minutes) - 1 else f"-{len(minutes) - 1 - i} min"
        for i in range(len(minutes))
    ]
    report_stacks = [
        {"reports": float(figures.reports_per_minute.get(minute.start, 0))} for minute in minutes
    ]
    last_full = minutes[-2] if len(minutes) > 1 else minutes[-1]
    reports_last = report_stacks[-2]["reports"] if len(report_stacks) > 1 else 0.0
    mix = node.since_start()
    hour_mix = {v: sum(m.lookups[v] for m in minutes) for v in VERDICTS}
    cards = [
        ("Lookups, last minute", _number(last_full.total), "this node"),
        ("Reports, last minute", _number(reports_last), "all nodes"),
        ("Lookups, last hour", _number(sum(hour_mix.values())), "this node"),
        (
            "Blocked, last hour",
            _number(hour_mix["block"]),
            f"{hour_mix['block'] / max(sum(hour_mix.values()), 1):.1%} of lookups",
        ),
    ]
    card_html = "".join(
        f'<div class="card"><div class="muted">{html.escape(title)}</div>'
        f'<div class="figure">{value}</div><div class="muted">{html.escape(note)}</div></div>'
        for title, value, note in cards
    )
    seen = "numbers in clear" if clear_numbers else "numbers masked (analysts see them in clear)"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>reputation: status</title><style>{STYLE}</style></head><body><main>"
        f"<header><h1>reputation <span class='muted'>status</span></h1>"
        f"<div class='muted'>node <code>{html.escape(host)}</code> · v{__version__} · up "
        f"{_duration(node.up_seconds)} · {now:%Y-%m-%d %H:%M} UTC · "
        f"reloads every {REFRESH_SECONDS} s · "
        '<a href="/docs">API</a> · <a href="/metrics">metrics</a></div></header>'
        f'<div class="grid">{card_html}</div>'
        '<div class="grid">'
        '<div class="card wide"><h2>Lookups per minute, last hour (this node)</h2>'
        + _legend(VERDICTS)
        + bar_chart(labels, [m.lookups for m in minutes], VERDICTS, "Lookups per minute by verdict")
        + "</div>"
        '<div class="card wide"><h2>Reports per minute, last hour (all nodes)</h2>'
        + bar_chart(labels, report_stacks, ("reports",), "Reports per minute")
        + "</div>"
        '<div class="card wide"><h2>Verdict mix (lookups since this node started)</h2>'
        + mix_bar(mix)
        + "</div></div>"
        '<div class="pair">'
        f'<div class="card"><h2>Most reported, last 24 hours</h2>'
        f'<div class="muted">{seen}</div>{_top_table(figures, clear_numbers)}</div>'
        '<div class="card"><h2>Node health</h2>'
        + _health(node, figures, auth)
        + "<h2 style='margin-top:14px'>Nodes following the change feed</h2>"
        + _nodes_table(figures)
        + "</div></div></main></body></html>"
    )


def sees_numbers(request: web.Request) -> bool:
    """May this caller see the listed numbers in clear?

    The page is public (a browser sends no API key); an analyst's or admin's
    key, when sent, shows the numbers, as does authentication being off.
    """
    guard = request.app[GUARD]
    if not guard.enabled:
        return True
    if "Authorization" not in request.headers:
        return False
    try:
        known = guard.authenticate(request)
    except ReputationError:
        return False
    return known.principal.role in ROLES_SEEING_NUMBERS


@public
async def get_status_page(request: web.Request) -> web.Response:
    """``GET /``: the status page of this node."""
    app = request.app
    figures = await app[STATUS_PAGE].figures(lambda: read_figures(app))
    body = render(
        await node_activity(app),
        figures,
        now=app[CLOCK](),
        auth=app[SETTINGS].auth,
        clear_numbers=sees_numbers(request),
        host=socket.gethostname(),
    )
    return web.Response(
        text=body, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"}
    )
