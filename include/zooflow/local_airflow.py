"""A real Airflow on this machine: api-server, scheduler, dag-processor and triggerer as processes.

Backfills, asset-triggered runs and the triggerer only happen when Airflow's own services run, so
tests and ``make up`` start them here, each in its own process group, and stop every one of them
on the way out, also when something failed. The same start/health/stop logic runs the native
Celery deployment (:mod:`zooflow.deploy.cluster`), which only adds workers and other endpoints.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from zooflow.errors import ZooflowError

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")

# The components that report to /api/v2/monitor/health, by service name -> key in its answer.
HEALTH_KEYS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}

STOP_GRACE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_executable() -> str:
    """The ``airflow`` command of the interpreter running zooflow (never another installation's)."""
    return str(Path(sys.executable).with_name("airflow"))


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
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = Path(env["AIRFLOW_HOME"])
        self.logs = self.home / "service-logs"
        self.env = dict(env) | {
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
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

    def airflow(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """One Airflow CLI command in this environment."""
        result = subprocess.run([airflow_executable(), *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise ZooflowError(f"`airflow {' '.join(args)}` failed ({result.returncode}): {result.stderr.strip()[-800:]}")
        return result

    def start(self, timeout: float = 120) -> LocalAirflow:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        try:
            for service in self.services:
                process = spawn_in_group([airflow_executable(), *service.args], env=self.env | dict(service.env),
                                         log_path=self.logs / f"{service.name}.log")
                self._processes[service.name] = process
                self.process_groups.append(process.pid)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def ready(self) -> bool:
        """Whether each started component that reports health is healthy (the api-server answering)."""
        try:
            health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).json()
        except (requests.RequestException, ValueError):
            return False
        keys = [HEALTH_KEYS[s.name] for s in self.services if s.name in HEALTH_KEYS]
        return all((health.get(key) or {}).get("status") == "healthy" for key in keys)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    tail = (self.logs / f"{name}.log").read_text(errors="replace")[-1500:]
                    raise ZooflowError(f"airflow {name} exited with {process.returncode}:\n{tail}")
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


def spawn_in_group(command: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
                   **popen: Any) -> subprocess.Popen:
    """Start ``command`` as the leader of a new session (so of its own process group), output to ``log_path``.

    Its own group is what lets :func:`stop_process_groups` end it together with every child it forks.
    """
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(list(command), env=None if env is None else dict(env), stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **popen)


def stop_process_groups(processes: Iterable[subprocess.Popen], sig: signal.Signals = signal.SIGTERM,
                        grace: float = STOP_GRACE_SECONDS) -> None:
    """Send ``sig`` to each process's group, wait up to ``grace`` seconds for the leaders, then SIGKILL the groups.

    The SIGKILL also reaches children that outlived their leader (a Celery pool process, a
    Postgres backend), so nothing of a group keeps running afterwards.
    """
    processes = list(processes)
    for process in processes:
        _signal_group(process.pid, sig)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def live_processes(*, groups: Iterable[int] = (), markers: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(pid, command line) of each live process in one of ``groups`` or naming a marker in its command or environment.

    A leak check: a process that left its group (a daemon that called setsid) still carries the
    run's directories in its arguments or its environment (AIRFLOW_HOME). Zombies are not running
    and are left out; so is this process.
    """
    groups, needles = set(groups), [m.encode() for m in markers if m]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
            command = (entry / "cmdline").read_bytes()
            try:
                environment = (entry / "environ").read_bytes()
            except PermissionError:
                environment = b""
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # ended while we looked
        if state in ("Z", "X"):
            continue
        if int(pgrp) in groups or any(n in command or n in environment for n in needles):
            found.append((int(entry.name), command.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found
