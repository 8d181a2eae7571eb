"""The ``reputation`` command: serve, migrate, lookup, report, import, export, keys.

Every setting is a flag here and a ``REPUTATION_*`` environment variable; the
flag wins. ``--help`` shows the variable of each flag.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import gzip
import json
import logging
import sys
import typing
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from reputation import bulk, embedded
from reputation.apikeys import SHOWN_KEY_CHARS, ApiKeyRecord, key_hash, new_key
from reputation.app import check_auth_setting, utc_now
from reputation.constants import CATEGORIES, CHANNELS, DEFAULT_CATEGORY, ROLES
from reputation.errors import ReputationError
from reputation.limits import parse_rate
from reputation.logs import access_log_options as access_log_options
from reputation.logs import setup_logging
from reputation.lookup import Answer, answer_body
from reputation.migrate import migrate
from reputation.normalize import normalize
from reputation.protected import ProtectedListError, read_protected_csv
from reputation.reports import parse_report
from reputation.settings import Settings, env_name, parse_value, value_type
from reputation.store import Store, create_pool
from reputation.verdict import judge
from reputation.workers import new_event_loop as new_event_loop
from reputation.workers import run_node, serve_workers

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
        if value_type(hint) is bool:
            group.add_argument(
                "--no-" + field.name.replace("_", "-"),
                dest=field.name,
                action="store_const",
                const=False,
                help=f"same as --{field.name.replace('_', '-')} off",
            )


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Settings)}
    return Settings.from_env(**overrides)


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


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

    bulk_import = commands.add_parser(
        "import",
        help="import a list of reported numbers (CSV or JSON lines, gzipped or not)",
        description="Import a bulk list: each line is number, category, count (people behind "
        "it, default 1), source. Streaming, with a progress line on stderr; refused lines go "
        "to a side file with their error codes. Running it again counts nothing twice.",
    )
    bulk_import.add_argument(
        "file", type=existing_file, help="the list (.csv, .jsonl, optionally .gz)"
    )
    bulk_import.add_argument("--format", choices=bulk.FORMATS, help="default: from the name")
    bulk_import.add_argument("--source", help="source of lines that name none (e.g. police-hcmc)")
    bulk_import.add_argument("--category", choices=CATEGORIES, help="category of lines without")
    bulk_import.add_argument(
        "--rejected", type=Path, help="where refused lines go (default: FILE.rejected.csv)"
    )
    add_settings_flags(bulk_import)

    export = commands.add_parser(
        "export", help="write every listed number with its verdict (CSV or JSON lines)"
    )
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    export.add_argument("--format", choices=bulk.FORMATS, help="default: from --output, or jsonl")
    export.add_argument(
        "--verdict",
        action="append",
        choices=("allow", "warn", "block"),
        help="only numbers with this verdict (repeatable)",
    )
    add_settings_flags(export)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser(
        "create", help="create an API key and print it (alone, on the last line)"
    )
    create.add_argument("--role", choices=ROLES, required=True, help="what the key may do")
    create.add_argument("--name", required=True, help="who holds the key, e.g. 'Carrier X switch'")
    create.add_argument(
        "--rate", help="this key's own rate limit (COUNT/PERIOD or off) instead of its role's"
    )
    add_settings_flags(create)
    listing = key_commands.add_parser("list", help="list API keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add_settings_flags(listing)
    revoke = key_commands.add_parser(
        "revoke", help="revoke an API key; every node refuses it within a second"
    )
    revoke.add_argument("id", type=int, help="the key's id (from `reputation keys list`)")
    add_settings_flags(revoke)

    protected = commands.add_parser(
        "protected", help="load and list protected numbers (never blocked by reports)"
    )
    protected_commands = protected.add_subparsers(
        dest="protected_command", required=True, metavar="ACTION"
    )
    load = protected_commands.add_parser(
        "load",
        help="protect the numbers of a CSV file (number,name[,note]; UTF-8), all or none",
    )
    load.add_argument("file", help="the CSV file ('-': standard input)")
    load.add_argument(
        "--replace", action="store_true", help="also stop protecting numbers missing from the file"
    )
    add_settings_flags(load)
    protected_list = protected_commands.add_parser("list", help="print the protected numbers")
    add_settings_flags(protected_list)
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
            return serve(settings)
        action = getattr(args, f"{args.command}_command", None)
        command = f"{args.command} {action}" if action else args.command
        # The event loop a node serves on (uvloop): imports spend much of their time in I/O.
        with asyncio.Runner(loop_factory=lambda: new_event_loop(settings.event_loop)) as runner:
            return runner.run(COMMANDS[command](settings, args))
    except ReputationError as exc:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False), file=sys.stderr)
        return 1
    except embedded.EmbeddedPostgresError as exc:
        print(f"reputation: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a setting that cannot work (e.g. auth off on a public address)
        print(f"reputation: {exc}", file=sys.stderr)
        return 2


def serve(settings: Settings) -> int:
    """Run the service: one node, or ``settings.workers`` of them sharing the port."""
    logger.info("settings: %s", settings.describe())
    check_auth_setting(settings)  # before starting anything
    if settings.workers < 1:
        raise ValueError(f"{env_name('workers')}: at least 1 worker is needed")
    # The embedded PostgreSQL is started once, here, for every worker.
    with embedded.database_url(settings.database_url, settings.data_dir) as url:
        node = dataclasses.replace(settings, database_url=url)
        if node.workers == 1:
            run_node(node)
            return 0
        return serve_workers(node)


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
        yield Store(pool, key, utc_now, settings)


async def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async with open_pool(settings) as pool, pool.acquire() as conn:
        applied = await migrate(conn)
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


async def run_lookup(settings: Settings, args: argparse.Namespace) -> int:
    e164 = normalize(args.number, settings.region)
    async with open_store(settings) as store:
        record = await store.fetch_number(e164)
        protected = e164 in await store.protected_keys()
    answer = Answer(e164, record, "database")
    judgement = judge(record, utc_now(), store.policy, protected=protected)
    print(json.dumps(answer_body(answer, judgement), ensure_ascii=False, indent=2))
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
        protected = report.e164 in await store.protected_keys()
    answer = Answer(recorded.number.e164, recorded.number, "database")
    judgement = judge(recorded.number, utc_now(), store.policy, protected=protected)
    output = {"report": recorded.report.to_json(), "number": answer_body(answer, judgement)}
    print(json.dumps(output, ensure_ascii=False, indent=2))
    return 0


async def run_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not 0 < len(name) <= 200:
        print("reputation: --name must be 1 to 200 characters", file=sys.stderr)
        return 2
    rate = None
    if args.rate is not None:
        try:
            parsed = parse_rate(args.rate)
        except ValueError as exc:
            print(f"reputation: --rate: {exc}", file=sys.stderr)
            return 2
        rate = str(parsed) if parsed is not None else "off"
    key = new_key()
    async with open_store(settings) as store:
        row = await store.create_api_key(
            name, args.role, key_hash(key), key[:SHOWN_KEY_CHARS], rate
        )
    record = ApiKeyRecord.from_row(row)
    print(
        f"created API key {record.id} ({record.role}, {record.name!r}); "
        "store it now: it is not kept and cannot be shown again:"
    )
    print(key)
    return 0


async def run_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    async with open_store(settings) as store:
        records = [ApiKeyRecord.from_row(row) for row in await store.list_api_keys()]
    if args.json:
        for record in records:
            print(json.dumps(record.to_json(), ensure_ascii=False))
        return 0
    print(
        f"{'id':>5}  {'role':<11}  {'key':<11}  {'rate':<10}  {'created':<20}  {'state':<8}  name"
    )
    for r in records:
        state = "revoked" if r.revoked_at else "active"
        print(
            f"{r.id:>5}  {r.role:<11}  {r.key_prefix + '...':<11}  {r.rate_limit or 'role':<10}  "
            f"{r.created_at:%Y-%m-%d %H:%M:%S}  {state:<8}  {r.name}"
        )
    return 0


async def run_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async with open_store(settings) as store:
        row = await store.revoke_api_key(args.id)
    if row is None:
        print(f"reputation: no API key has id {args.id}", file=sys.stderr)
        return 1
    record = ApiKeyRecord.from_row(row)
    print(f"revoked API key {record.id} ({record.role}, {record.name!r})")
    return 0


async def run_import(settings: Settings, args: argparse.Namespace) -> int:
    path: Path = args.file
    rejected = args.rejected or path.with_name(path.name + ".rejected.csv")
    async with open_store(settings) as store:
        try:
            summary = await bulk.import_file(
                store,
                path,
                region=settings.region,
                rejected_path=rejected,
                fmt=args.format,
                default_source=args.source,
                default_category=args.category,
                stream=sys.stderr,
            )
        except ValueError as exc:  # a file that is not a list at all (no header, ...)
            print(f"reputation: {path}: {exc}", file=sys.stderr)
            return 2
    print(json.dumps({**summary.to_json(), "rejected_file": str(rejected)}, ensure_ascii=False))
    return 0


async def run_export(settings: Settings, args: argparse.Namespace) -> int:
    fmt = args.format or ("csv" if args.output.endswith((".csv", ".csv.gz")) else "jsonl")
    verdicts = frozenset(args.verdict) if args.verdict else None
    async with open_store(settings) as store:
        if args.output == "-":
            written = await bulk.export_numbers(
                store, sys.stdout, fmt=fmt, now=utc_now(), verdicts=verdicts
            )
        else:
            with open_output(Path(args.output)) as out:
                written = await bulk.export_numbers(
                    store, out, fmt=fmt, now=utc_now(), verdicts=verdicts
                )
    print(f"exported {written} numbers", file=sys.stderr)
    return 0


@contextmanager
def open_output(path: Path) -> Iterator[TextIO]:
    """A text file to write, gzipped when its name ends in .gz."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as zipped:
            yield zipped
    else:
        with path.open("w", encoding="utf-8", newline="") as plain:
            yield plain


def read_protected_file(name: str, region: str) -> list[tuple[str, str, str | None]]:
    """The entries of a protected-numbers CSV file ('-': standard input)."""
    if name == "-":
        return read_protected_csv(sys.stdin, region)
    with open(name, encoding="utf-8-sig", newline="") as lines:
        return read_protected_csv(lines, region)


async def run_protected_load(settings: Settings, args: argparse.Namespace) -> int:
    """Load a protected-numbers file in one transaction; a bad line changes nothing."""
    try:
        entries = read_protected_file(args.file, settings.region)
    except OSError as exc:
        print(f"reputation: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"reputation: {args.file} is not UTF-8 text", file=sys.stderr)
        return 1
    except ProtectedListError as exc:
        for error in exc.errors:
            line = {"line": error.line, "code": error.code, "message": error.message}
            print(json.dumps({"error": line}, ensure_ascii=False), file=sys.stderr)
        print(f"reputation: {exc}; nothing was changed", file=sys.stderr)
        return 1
    actor = f"cli:{getpass.getuser()}"
    async with open_store(settings) as store:
        counts = await store.load_protected(entries, actor, replace=args.replace)
    print(json.dumps(counts))
    return 0


async def run_protected_list(settings: Settings, args: argparse.Namespace) -> int:
    async with open_store(settings) as store:
        after = None
        while page := await store.protected_numbers(after, 1000):
            for entry in page:
                print(json.dumps(entry.to_json(), ensure_ascii=False))
            after = page[-1].e164
    return 0


COMMANDS = {
    "migrate": run_migrate,
    "lookup": run_lookup,
    "report": run_report,
    "import": run_import,
    "export": run_export,
    "keys create": run_keys_create,
    "keys list": run_keys_list,
    "keys revoke": run_keys_revoke,
    "protected load": run_protected_load,
    "protected list": run_protected_list,
}
