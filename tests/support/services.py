"""Private Postgres and Redis for the native Celery test cluster: child processes, temp state, loopback ports.

``make test-distributed`` runs Airflow's CeleryExecutor the way docker-compose does, but on this
machine and without Docker. Its metadata database and broker must not be the machine's own (none
may be installed, and a test must not touch one that is), so each run starts its own on a free
loopback port, with its state in a temporary directory, in its own process group, and ends the
whole group when done and removes the directory: nothing stays running, nothing is left behind.

CI starts on a fresh Debian machine, so the binaries are installed through apt when missing
(:func:`support.debian.ensure_debian_packages`).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from support.debian import ensure_debian_packages
from zooflow.dev.processes import (LOOPBACK, free_port, live_processes, signal_all, spawn_in_group,
                                   stop_process_groups)
from zooflow.errors import ZooflowError

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# {binary: Debian package} for everything this module starts.
DEBIAN_PACKAGES = {"redis-server": "redis-server", str(POSTGRES_BIN / "postgres"): "postgresql"}


def ensure_binaries() -> dict[str, str]:
    """Paths of redis-server and postgres, installing their Debian packages when missing."""
    return ensure_debian_packages(DEBIAN_PACKAGES)


class PrivateServer:
    """A server process of one run: a temp dir of its own, a free loopback port, its own process group.

    Subclasses say how to prepare the state (``prepare``), what to run (``command``) and how to
    tell it answers (``answers``); starting, waiting and stopping are the same for every server.
    """

    name = "server"
    stop_signal = signal.SIGTERM  # the signal that asks this server for a clean, prompt shutdown

    def __init__(self, *, port: int | None = None) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix=f"zooflow-{self.name}-"))
        self.log_path = self.root / f"{self.name}.log"
        self.process_group: int | None = None
        self._process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """``host:port``, as :class:`zooflow.deploy.environment.Endpoints` takes it."""
        return f"{self.host}:{self.port}"

    def prepare(self) -> None:
        """Create the server's state before its first start."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def popen_kwargs(self) -> dict[str, Any]:
        return {"cwd": self.root}

    def start(self, timeout: float = 60) -> PrivateServer:
        self.prepare()
        self._process = spawn_in_group(self.command(), log_path=self.log_path, **self.popen_kwargs())
        self.process_group = self._process.pid
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-1200:]
                raise ZooflowError(f"private {self.name} did not start on {self.address}:\n{tail}")
            time.sleep(0.2)
        return self

    @property
    def marker(self) -> str:
        """The temp dir's name: in the command line of a server process that left the group (Postgres backends)."""
        return self.root.name

    def processes(self) -> list[tuple[int, str]]:
        """The server's live processes, also those outside its group (Postgres backends call setsid)."""
        return live_processes(groups=[self.process_group] if self.process_group else [], markers=[self.marker])

    def stop(self) -> None:
        """Ask the server to shut down, SIGKILL what is left of its group, then any process still naming its dir."""
        process, self._process = self._process, None
        if process is None:
            return
        stop_process_groups([process], self.stop_signal, grace=20)
        signal_all(signal.SIGKILL, pids=[pid for pid, _ in self.processes()])

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateServer:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self.cleanup()


class PrivatePostgres(PrivateServer):
    """Postgres 15 with a superuser ``airflow`` whose password is generated per run, and a database ``airflow``.

    Postgres refuses to run as root, so as root (CI, this machine) it runs as the ``postgres``
    account the Debian package creates. Durability is switched off (fsync, full page writes): the
    data lives for one test run, and the run must be fast on a two-core machine.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for Airflow's connections to close

    def __init__(self, *, port: int | None = None, user: str = "airflow", database: str = "airflow") -> None:
        super().__init__(port=port)
        self.user = user
        self.database = database
        self.password = secrets.token_urlsafe(24)  # URL-safe: it goes into SQLAlchemy and Celery URLs as is
        self.data_dir = self.root / "data"
        self._account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def __repr__(self) -> str:  # never the password
        return f"PrivatePostgres({self.address}, user={self.user!r}, database={self.database!r})"

    def popen_kwargs(self) -> dict[str, Any]:
        kwargs = super().popen_kwargs()
        if self._account is not None:
            kwargs.update(user=self._account.pw_uid, group=self._account.pw_gid, extra_groups=[])
        return kwargs

    def prepare(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if self._account is not None:
            for path in (self.root, password_file, self.log_path):
                path.touch(exist_ok=True)
                os.chown(path, self._account.pw_uid, self._account.pw_gid)
        try:
            result = subprocess.run(
                [str(POSTGRES_BIN / "initdb"), "-D", str(self.data_dir), "-U", self.user, f"--pwfile={password_file}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"],
                capture_output=True, text=True, timeout=120, **self.popen_kwargs(),
            )
        finally:
            password_file.unlink()
        if result.returncode != 0:
            raise ZooflowError(f"initdb failed ({result.returncode}): {result.stderr.strip()[-800:]}")

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host, "unix_socket_directories": str(self.root), "max_connections": "200",
            # Every backend retitles itself "postgres: <cluster_name>: ...", so even the ones that left
            # the postmaster's process group (each calls setsid) are found by the marker.
            "cluster_name": self.marker,
            "fsync": "off", "full_page_writes": "off", "synchronous_commit": "off", "shared_buffers": "64MB",
        }
        return [str(POSTGRES_BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                *(arg for key, value in settings.items() for arg in ("-c", f"{key}={value}"))]

    def connect(self, database: str | None = None):
        """A psycopg2 connection (autocommit) to ``database``, by default the one Airflow uses."""
        import psycopg2

        connection = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                      dbname=database or self.database, connect_timeout=3)
        connection.autocommit = True
        return connection

    def answers(self) -> bool:
        import psycopg2

        try:
            connection = self.connect("postgres")
        except psycopg2.OperationalError:
            return False
        try:  # not `with connection`: psycopg2 would open a transaction, where CREATE DATABASE cannot run
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()
        return True


class PrivateRedis(PrivateServer):
    """Redis as the Celery broker, in memory only (no RDB snapshots, no append-only file)."""

    name = "redis"

    def command(self) -> list[str]:
        return [shutil.which("redis-server") or "redis-server", "--bind", self.host, "--port", str(self.port),
                "--dir", str(self.root), "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--protected-mode", "yes"]

    def answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False
