"""The ``reputation`` command: serve, migrate, lookup, report.

Every setting is a flag here and a ``REPUTATION_*`` environment variable; the
flag wins. ``--help`` shows the variable of each flag.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import typing
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiohttp import web

from reputation import embedded
from reputation.app import create_app, utc_now
from reputation.constants import CATEGORIES, CHANNELS, DEFAULT_CATEGORY
from reputation.errors import ReputationError
from reputation.logs import AccessLogger, setup_logging
from reputation.lookup import Answer, answer_body
from reputation.migrate import migrate
from reputation.normalize import normalize
from reputation.reports import parse_report
from reputation.settings import Settings, env_name, parse_value
from reputation.store import Store, create_pool
from reputation.verdict import judge

logger = logging.getLogger("reputation")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per settings field, defaulting to its environment variable."""
    group = parser.add_argument_group("settings (flag, or environment variable)")
    hints = typing.get_type_hints(Settings)
    for field in dataclasses.fields(Settings):
        hint = hints[field.name]

        def convert(text: str, hint: Any = hint, name: str = field.name) -> Any:
            try:
                return parse_value(hint, text, name)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        group.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=convert,
            default=None,
            metavar=field.name.upper(),
            help=f"{field.metadata['help']} [env {env_name(field.name)}]",
        )


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Settings)}
    return Settings.from_env(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reputation", description="Scam phone number reputation service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP service")
    add_settings_flags(serve)

    migrate_cmd = commands.add_parser("migrate", help="apply pending database migrations")
    add_settings_flags(migrate_cmd)

    lookup = commands.add_parser("lookup", help="print what is known about a number")
    lookup.add_argument("number", help="the number, in any written form")
    add_settings_flags(lookup)

    report = commands.add_parser("report", help="file a report against a number")
    report.add_argument("number", help="the reported number, in any written form")
    report.add_argument("--category", choices=CATEGORIES, default=DEFAULT_CATEGORY)
    report.add_argument("--channel", choices=CHANNELS, default="api")
    report.add_argument("--reporter", help="number of the person reporting (kept hashed)")
    report.add_argument("--content", help="what happened, in the reporter's words")
    add_settings_flags(report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"reputation: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    try:
        if args.command == "serve":
            serve(settings)
            return 0
        return asyncio.run(COMMANDS[args.command](settings, args))
    except ReputationError as exc:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False), file=sys.stderr)
        return 1
    except embedded.EmbeddedPostgresError as exc:
        print(f"reputation: {exc}", file=sys.stderr)
        return 1


def serve(settings: Settings) -> None:
    logger.info("settings: %s", settings.describe())
    with embedded.database_url(settings.database_url, settings.data_dir) as url:
        app = create_app(dataclasses.replace(settings, database_url=url))
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            access_log_class=AccessLogger,
            print=lambda text: logger.info("%s", text.strip()),
        )


@asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the configured (or embedded) database."""
    with embedded.database_url(settings.database_url, settings.data_dir) as url:
        async with create_pool(url, dataclasses.replace(settings, pool_min_size=1)) as pool:
            yield pool


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """A store on a migrated database."""
    async with open_pool(settings) as pool:
        async with pool.acquire() as conn:
            await migrate(conn)
        key = await Store.load_reporter_key(pool, settings.reporter_key)
        yield Store(pool, key, utc_now)


async def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async with open_pool(settings) as pool, pool.acquire() as conn:
        applied = await migrate(conn)
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


async def run_lookup(settings: Settings, args: argparse.Namespace) -> int:
    e164 = normalize(args.number, settings.region)
    async with open_store(settings) as store:
        record = await store.fetch_number(e164)
    answer = Answer(e164, record, "database")
    print(json.dumps(answer_body(answer, judge(record, utc_now())), ensure_ascii=False, indent=2))
    return 0


async def run_report(settings: Settings, args: argparse.Namespace) -> int:
    body = {
        "number": args.number,
        "reporter": args.reporter,
        "channel": args.channel,
        "category": args.category,
        "content": args.content,
    }
    report = parse_report(body, settings.region)
    async with open_store(settings) as store:
        recorded = await store.record_report(report)
    answer = Answer(recorded.number.e164, recorded.number, "database")
    judgement = judge(recorded.number, utc_now())
    output = {"report": recorded.report.to_json(), "number": answer_body(answer, judgement)}
    print(json.dumps(output, ensure_ascii=False, indent=2))
    return 0


COMMANDS = {"migrate": run_migrate, "lookup": run_lookup, "report": run_report}
