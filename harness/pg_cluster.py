"""Throwaway PostgreSQL cluster for tests.

The end-to-end tests load the tap's output into a real PostgreSQL (via target-postgres), so
they need a server that nobody has to set up by hand and that leaves nothing behind.
`PostgresCluster` runs ``initdb`` into a fresh temporary directory, starts ``postgres`` on a
free loopback port with ``pg_ctl -w``, creates one database, and on ``stop()`` shuts the
server down and deletes the directory.

PostgreSQL refuses to run as root, so when we are root the server-side commands (``initdb``,
``pg_ctl``) run as the ``postgres`` OS user through ``runuser`` (or ``su``), and the temporary
directory is handed to that user. Client commands (``createdb``) run as the caller.

``query()`` uses psycopg 3 (``psycopg[binary]``), imported lazily so that starting and
stopping a cluster needs nothing beyond the PostgreSQL binaries.

Run ``python harness/pg_cluster.py`` for a smoke check.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["PostgresCluster", "PostgresClusterError", "find_pg_bindir"]

#: Debian and Ubuntu keep each major version's server binaries in <this>/<version>/bin.
_VERSIONED_ROOT = Path("/usr/lib/postgresql")
_START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it
_CMD_TIMEOUT = 120.0

# Durability is pointless for a cluster that is deleted afterwards; these make tests faster.
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}


class PostgresClusterError(RuntimeError):
    """Raised when the throwaway cluster cannot be created or started."""


def find_pg_bindir(versioned_root: Path = _VERSIONED_ROOT) -> Path:
    """Locate the directory holding initdb/pg_ctl, wherever a stock runner puts them.

    In order: ``pg_config --bindir``; ``<versioned_root>/<version>/bin`` for every installed
    version, newest first (Debian and Ubuntu keep the server binaries out of PATH there);
    then ``initdb`` on PATH. The first that holds ``initdb`` wins.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    versions: list[tuple[tuple[int, ...], Path]] = []
    with contextlib.suppress(OSError):
        for child in versioned_root.iterdir():
            parts = child.name.split(".")
            if all(part.isdigit() for part in parts):  # "16", "9.6"; not "common"
                versions.append((tuple(int(part) for part in parts), child / "bin"))
    candidates.extend(bindir for _, bindir in sorted(versions, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file():
            return candidate
    looked = ", ".join(map(str, candidates)) or f"no pg_config, {versioned_root}/*/bin or PATH"
    msg = f"PostgreSQL server binaries not found (no initdb; looked in: {looked})"
    raise PostgresClusterError(msg)


def _free_port() -> int:
    """Ask the kernel for an unused loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """Environment without PG* variables, so a developer's settings cannot leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _conninfo_quote(value: str) -> str:
    """Quote a libpq conninfo value when it is empty or has spaces, quotes or backslashes."""
    if value and not any(ch.isspace() or ch in "'\\" for ch in value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class PostgresCluster:
    """A private PostgreSQL server in a temporary directory; use as a context manager.

    Authentication is ``trust`` on loopback only, so the password is never checked; one is
    still set so that configs and URLs built from it look like real ones.
    """

    def __init__(
        self,
        dbname: str = "test",
        user: str = "postgres",
        password: str | None = None,
        os_user: str = "postgres",
        bindir: str | Path | None = None,
    ) -> None:
        self.dbname = dbname
        self.user = user
        self.password = password if password is not None else secrets.token_hex(8)
        self.host = "127.0.0.1"
        self.port = 0
        self._os_user = os_user
        self._bindir = Path(bindir) if bindir else None
        self._tmpdir: Path | None = None
        self._running = False

    # -- connection details -------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """Libpq keyword/value connection string."""
        params = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }
        return " ".join(f"{key}={_conninfo_quote(value)}" for key, value in params.items())

    @property
    def tmpdir(self) -> Path | None:
        """Temporary directory holding data, socket and log (None when stopped)."""
        return self._tmpdir

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Self:
        """Create and start the cluster; on any failure clean up and raise."""
        if self._running:
            return self
        try:
            self._start()
        except BaseException as exc:
            log = self._log_tail()
            self.stop()
            if isinstance(exc, PostgresClusterError) and log:
                msg = f"{exc}\n--- server log ---\n{log}"
                raise PostgresClusterError(msg) from exc
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete the temporary directory; safe to call repeatedly."""
        tmpdir, self._tmpdir = self._tmpdir, None
        self._running = False
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if tmpdir is None:
            return
        try:
            self._stop_server(tmpdir)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- queries ------------------------------------------------------------------------

    def target_config(self, schema: str = "usersnap") -> dict[str, Any]:
        """A target-postgres config that loads into ``schema`` of this cluster's database."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.dbname,
            "default_target_schema": schema,
        }

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; return its rows ([] if it returns none)."""
        import psycopg  # noqa: PLC0415  # lazy: only tests that inspect the db need it

        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description is not None else []

    # -- internals ----------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        path = self._bindir / name
        return str(path) if path.is_file() else (shutil.which(name) or name)

    def _as_server_user(self, cmd: list[str]) -> list[str]:
        """Wrap a server-side command so it does not run as root (PostgreSQL refuses)."""
        if os.geteuid() != 0:
            return cmd
        if shutil.which("runuser"):
            return ["runuser", "-u", self._os_user, "--", *cmd]
        return ["su", "-s", "/bin/sh", self._os_user, "-c", shlex.join(cmd)]

    def _run(self, cmd: list[str], *, server: bool = False, timeout: float = _CMD_TIMEOUT) -> str:
        full = self._as_server_user(cmd) if server else cmd
        try:
            proc = subprocess.run(
                full,
                check=False,
                capture_output=True,
                text=True,
                env=_clean_env(),
                cwd=self._tmpdir,  # root's cwd may be unreadable for the postgres user
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            msg = f"{shlex.join(cmd)} failed: {exc}"
            raise PostgresClusterError(msg) from exc
        if proc.returncode != 0:
            output = f"{proc.stderr.strip()} {proc.stdout.strip()}".strip()
            msg = f"{shlex.join(cmd)} exited {proc.returncode}: {output}"
            raise PostgresClusterError(msg)
        return proc.stdout

    def _start(self) -> None:
        self._tmpdir = Path(tempfile.mkdtemp(prefix="pgtest-"))
        atexit.register(self.stop)  # a crashed test run must not leave a server behind
        data, sock = self._tmpdir / "data", self._tmpdir / "sock"
        sock.mkdir()
        pwfile = self._tmpdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(self._os_user)
            except KeyError as exc:
                msg = f"running as root needs OS user {self._os_user!r} to run PostgreSQL"
                raise PostgresClusterError(msg) from exc
            for path in (self._tmpdir, sock, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)

        self._run(
            [
                self._bin("initdb"),
                "-D", str(data),
                "-U", self.user,
                f"--pwfile={pwfile}",
                "--auth=trust",
                "--locale=C",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            server=True,
        )  # fmt: skip
        pwfile.unlink()
        settings = {**_SERVER_SETTINGS, "unix_socket_directories": f"'{sock}'"}
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\n# pg_cluster.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

        for attempt in range(_START_ATTEMPTS):
            self.port = _free_port()
            try:
                self._run(
                    [
                        self._bin("pg_ctl"),
                        "-D", str(data),
                        "-l", str(self._tmpdir / "server.log"),
                        "-o", f"-p {self.port}",
                        "-w", "-t", "60",
                        "start",
                    ],
                    server=True,
                )  # fmt: skip
                break
            except PostgresClusterError:
                if attempt == _START_ATTEMPTS - 1 or "could not bind" not in self._log_tail():
                    raise
        self._running = True
        if self.dbname != "postgres":
            self._run(
                [
                    self._bin("createdb"),
                    "-h", self.host,
                    "-p", str(self.port),
                    "-U", self.user,
                    "--template=template0",
                    self.dbname,
                ]
            )  # fmt: skip

    def _stop_server(self, tmpdir: Path) -> None:
        """pg_ctl stop (fast, then immediate); signal the postmaster directly as last resort."""
        data = tmpdir / "data"
        pidfile = data / "postmaster.pid"
        if not pidfile.exists():
            return
        pg_ctl = self._bin("pg_ctl")
        for mode in ("fast", "immediate"):
            cmd = [pg_ctl, "-D", str(data), "-m", mode, "-w", "-t", "30", "stop"]
            with contextlib.suppress(PostgresClusterError):
                self._run(cmd, server=True, timeout=60)
                return
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
            for sig in (signal.SIGQUIT, signal.SIGKILL):
                os.kill(pid, sig)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    os.kill(pid, 0)  # raises ProcessLookupError once it is gone
                    time.sleep(0.1)

    def _log_tail(self, lines: int = 30) -> str:
        if self._tmpdir is None:
            return ""
        with contextlib.suppress(OSError):
            text = (self._tmpdir / "server.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""


def _smoke() -> None:
    """Start a cluster, query it, stop it, and report timings (the module's smoke check)."""
    out = sys.stdout
    started = time.monotonic()
    with PostgresCluster() as cluster:
        up = time.monotonic()
        out.write(f"started in {up - started:.2f}s on {cluster.host}:{cluster.port}\n")
        out.write(f"{cluster.query('select version()')[0][0]}\n")
        out.write(f"{cluster.query('select current_database(), %s::int + 1', 41)}\n")
        tmp = cluster.tmpdir
    gone = tmp is not None and not tmp.exists()
    out.write(f"stopped in {time.monotonic() - up:.2f}s; tmpdir removed: {gone}\n")


if __name__ == "__main__":
    _smoke()
