"""A real Airflow on this machine: api-server, scheduler, dag-processor and triggerer as processes.

Backfills, asset-triggered runs and the triggerer only happen when Airflow's own services run, so
``zooflow up`` and the tests start them from here: one place says which services there are, how
each is started, how its health is read, and which settings let two Airflows share a machine.
:class:`LocalAirflow` runs them for as long as a ``with`` block (tests, the Celery test cluster);
``zooflow up`` starts the same commands detached and keeps them running.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from zooflow.dev.processes import LOOPBACK, free_port, log_tail, spawn_in_group, stop_process_groups
from zooflow.errors import ZooflowError

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")

# The components that report to /api/v2/monitor/health, by service name -> key in its answer.
HEALTH_KEYS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}


def airflow_executable() -> str:
    """The ``airflow`` command of the interpreter running zooflow (never another installation's)."""
    return str(Path(sys.executable).with_name("airflow"))


def read_health(url: str) -> dict[str, Any]:
    """Airflow's /api/v2/monitor/health answer, or ``{}`` while the api-server does not answer."""
    try:
        return requests.get(f"{url}/api/v2/monitor/health", timeout=3).json()
    except (requests.RequestException, ValueError):
        return {}


def unhealthy(health: Mapping[str, Any], components: Iterable[str], since: datetime | None = None) -> list[str]:
    """The ``components`` of a health answer that are not healthy (or, given ``since``, beat before it).

    After a restart on the same database the previous scheduler's last heartbeat can still look
    fresh for a while; ``since`` asks for a heartbeat from this start.
    """
    return [name for name in components if not _healthy(health.get(name) or {}, since)]


def _healthy(component: Mapping[str, Any], since: datetime | None) -> bool:
    if component.get("status") != "healthy":
        return False
    beats = [value for key, value in component.items() if key.startswith("latest_") and value]
    if since is None or not beats:
        return True  # the metadatabase has no heartbeat
    return datetime.fromisoformat(beats[0]) >= since


def cli_error(stderr: str, limit: int = 800) -> str:
    """What an Airflow command's stderr says went wrong: its last exception line (which a long SQL
    statement would push out of a plain tail) and then the tail."""
    lines = stderr.strip().splitlines()
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    head = f"{raised[-1][:300]} ... " if raised else ""
    return head + stderr.strip()[-limit:]


@dataclass(frozen=True)
class Service:
    """One long-running Airflow process: its name (and log file), its ``airflow`` arguments, its own settings.

    The four standard services need only their name; a Celery worker needs arguments and settings
    of its own (its Celery node name, the host name its tasks report), hence more than a name.
    """

    name: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


class LocalAirflow:
    """Airflow's services on one machine, configured only through ``env``.

    By default LocalExecutor on whatever database ``env`` names (SQLite from ``airflow_env``);
    ``executor=None`` keeps the executor ``env`` sets, as the Celery deployment does.
    """

    def __init__(self, env: Mapping[str, str], *, services: Sequence[str | Service] = SERVICES,
                 port: int | None = None, executor: str | None = "LocalExecutor") -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.home = Path(env["AIRFLOW_HOME"])
        self.logs = self.home / "service-logs"
        self.env = dict(env) | {
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "PYTHONWARNINGS": "ignore",
        }
        # Airflow's fixed default ports (8793, 8794, 8974) would collide between two Airflows on one
        # machine (parallel test runs, `make up` beside a test): unless told, each instance takes free ones.
        for setting in ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
                        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"):
            self.env.setdefault(setting, str(free_port()))
        if executor is not None:
            self.env["AIRFLOW__CORE__EXECUTOR"] = executor
        self.services = tuple(self._service(s) for s in services)
        self._processes: dict[str, subprocess.Popen] = {}
        self.process_groups: list[int] = []  # every group ever started, kept after stop() for leak checks

    def _service(self, service: str | Service) -> Service:
        if isinstance(service, Service):
            return service
        args = (service, "--port", str(self.port)) if service == "api-server" else (service,)
        return Service(service, args)

    def command(self, service: Service) -> tuple[list[str], dict[str, str]]:
        """(argv, environment) that runs ``service`` of this Airflow."""
        return [airflow_executable(), *service.args], self.env | dict(service.env)

    def log_path(self, service: Service) -> Path:
        return self.logs / f"{service.name}.log"

    def airflow(self, *args: str, check: bool = True, timeout: float = 300,
                retry_locked: int = 0) -> subprocess.CompletedProcess:
        """One Airflow CLI command in this environment.

        :param retry_locked: times to run it again when SQLite answered "database is locked". SQLite
            refuses at once, without waiting, a transaction that read and then writes while another
            process writes (its deadlock rule), so a busy scheduler can fail ``backfill create``;
            Airflow removes the partial backfill then and says to retry. Only for such commands.
        """
        for attempt in range(retry_locked + 1):
            result = subprocess.run([airflow_executable(), *args], env=self.env, capture_output=True, text=True,
                                    timeout=timeout)
            if result.returncode == 0 or "database is locked" not in result.stderr:
                break
            time.sleep(1 + attempt)
        if check and result.returncode != 0:
            raise ZooflowError(f"`airflow {' '.join(args)}` failed ({result.returncode}): {cli_error(result.stderr)}")
        return result

    def start(self, timeout: float = 120) -> LocalAirflow:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        try:
            for service in self.services:
                argv, env = self.command(service)
                process = spawn_in_group(argv, env=env, log_path=self.log_path(service))
                self._processes[service.name] = process
                self.process_groups.append(process.pid)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def ready(self) -> bool:
        """Whether each started component that reports health is healthy (the api-server answering)."""
        health = read_health(self.url)
        return bool(health) and not unhealthy(health, [HEALTH_KEYS[s.name] for s in self.services if s.name in HEALTH_KEYS])

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services:
                process = self._processes[service.name]
                if process.poll() is not None:
                    raise ZooflowError(f"airflow {service.name} exited with {process.returncode}:\n"
                                       + log_tail(self.log_path(service), 25))
            if self.ready():
                return
            time.sleep(1)
        raise ZooflowError(f"Airflow did not become healthy within {timeout:.0f} s; see {self.logs}")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        out = self.airflow("dags", "list-runs", dag_id, "-o", "json").stdout
        return json.loads(out[out.index("["):]) if "[" in out else []

    def wait_for_runs(self, dag_id: str, run_type: str, count: int, timeout: float = 300) -> list[dict[str, Any]]:
        """Until ``count`` runs of that type have finished; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs(dag_id) if r["run_id"].startswith(f"{run_type}__")]
            finished = [r for r in runs if r["state"] in ("success", "failed")]
            if len(finished) >= count:
                return finished
            time.sleep(2)
        raise ZooflowError(f"{count} {run_type} runs of {dag_id} did not finish within {timeout:.0f} s; see {self.logs}")

    def stop(self) -> None:
        """SIGTERM each service's process group, then SIGKILL what is left: nothing keeps running."""
        stop_process_groups(self._processes.values())
        self._processes.clear()

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
