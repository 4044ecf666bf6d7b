"""A real Airflow on this machine: api-server, scheduler, dag-processor and triggerer as processes.

Backfills, asset-triggered runs and the triggerer only happen when Airflow's own services run, so
tests and ``make up`` start them here, each in its own process group, and stop every one of them
on the way out, also when something failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from zooflow.errors import ZooflowError

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalAirflow:
    """Airflow's services on LocalExecutor and SQLite, configured only through ``env``."""

    def __init__(self, env: Mapping[str, str], *, services: Sequence[str] = SERVICES, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = Path(env["AIRFLOW_HOME"])
        self.logs = self.home / "service-logs"
        self.env = dict(env) | {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "PYTHONWARNINGS": "ignore",
        }
        self.services = tuple(services)
        self._processes: dict[str, subprocess.Popen] = {}

    def airflow(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """One Airflow CLI command in this environment."""
        result = subprocess.run([str(Path(sys.executable).with_name("airflow")), *args], env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise ZooflowError(f"`airflow {' '.join(args)}` failed ({result.returncode}): {result.stderr.strip()[-800:]}")
        return result

    def start(self, timeout: float = 120) -> LocalAirflow:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        for service in self.services:
            args = [service, "--port", str(self.port)] if service == "api-server" else [service]
            with open(self.logs / f"{service}.log", "ab") as log_file:
                self._processes[service] = subprocess.Popen(
                    [str(Path(sys.executable).with_name("airflow")), *args], env=self.env,
                    stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                )
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service, process in self._processes.items():
                if process.poll() is not None:
                    tail = (self.logs / f"{service}.log").read_text(errors="replace")[-1500:]
                    self.stop()
                    raise ZooflowError(f"airflow {service} exited with {process.returncode}:\n{tail}")
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).json()
                if health.get("scheduler", {}).get("status") == "healthy" or "scheduler" not in self.services:
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        self.stop()
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
        for process in self._processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self._processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self._processes.clear()

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
