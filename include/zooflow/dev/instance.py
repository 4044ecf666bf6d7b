"""The folder of a ``zooflow up`` instance and the processes it records there.

``up`` starts detached processes and returns; ``down``, a second ``up`` and the command line's
settings (:mod:`zooflow.cli_settings`) find them again later, from another process. They agree on
every path through :class:`Layout`, on what was started through ``up.json`` (:class:`Instance`),
and on how to find and stop all of it, also what left its process group, through
:func:`instance_pids` and :func:`stop_instance`.

Every process also carries ``ZOOFLOW_UP_INSTANCE=<state dir>`` in its environment, and whatever it
starts (task processes too) inherits it. That way ``down`` also finds processes that left their
process group, and an ``up`` that was killed halfway cannot leave behind anything ``down`` misses.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from zooflow.dev.processes import live_processes, proc_stat, signal_all, spawn_in_group
from zooflow.errors import ZooflowError
from zooflow.files import atomic_write_json

STATE_DIR_ENV = "ZOOFLOW_UP_DIR"
INSTANCE_ENV = "ZOOFLOW_UP_INSTANCE"
DEFAULT_STATE_DIR = Path(".zooflow-up")
STOP_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0


@dataclass(frozen=True)
class Layout:
    """Where an instance keeps everything, so up, down and the tests agree on every path."""

    root: Path

    @classmethod
    def resolve(cls, state_dir: Path | None) -> Layout:
        return cls(Path(state_dir or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).expanduser().resolve())

    @property
    def marker(self) -> str:
        """The ``ZOOFLOW_UP_INSTANCE`` value that every process of this instance carries."""
        return str(self.root)

    state_file = property(lambda self: self.root / "up.json")
    lock_file = property(lambda self: self.root / "up.lock")
    sandbox_dir = property(lambda self: self.root / "sandbox")
    sandbox_log = property(lambda self: self.root / "logs" / "sandbox.log")
    populated = property(lambda self: self.root / "sandbox-populated.json")
    airflow_home = property(lambda self: self.root / "airflow")
    service_logs = property(lambda self: self.root / "airflow" / "service-logs")
    password_file = property(lambda self: self.root / "airflow" / "simple_auth_manager_passwords.json.generated")
    data_root = property(lambda self: self.root / "data")
    demo_runs = property(lambda self: self.root / "demo-runs.json")
    al_dir = property(lambda self: self.root / "al")
    al_config = property(lambda self: self.root / "al" / "active_learning.yaml")
    projects_file = property(lambda self: self.root / "projects.yaml")


@dataclass(frozen=True)
class ProcessRecord:
    """One detached process. ``start_ticks`` comes from /proc, so a reused pid is never taken for ours."""

    name: str
    pid: int
    pgid: int
    start_ticks: int
    log: str

    @classmethod
    def spawn(cls, name: str, argv: list[str], env: Mapping[str, str], log: Path) -> ProcessRecord:
        """Start ``argv`` detached in its own session and process group, and record it."""
        process = spawn_in_group(argv, env=env, log_path=log)
        _SPAWNED.append(process)  # keeps the Popen alive, so Python does not warn about it before we exit
        stat = proc_stat(process.pid)
        return cls(name=name, pid=process.pid, pgid=process.pid, start_ticks=stat.start_ticks if stat else -1,
                   log=str(log))

    @property
    def running(self) -> bool:
        stat = proc_stat(self.pid)
        return stat is not None and stat.alive and stat.start_ticks == self.start_ticks


_SPAWNED: list[subprocess.Popen] = []


@dataclass
class Instance:
    """What ``up.json`` holds: enough for ``down`` and a second ``up``, and no Panoptes password."""

    started_at: str
    url: str
    port: int
    sandbox_endpoint: str | None
    airflow_home: str
    password_file: str
    dags_folder: str
    ready: bool
    processes: list[ProcessRecord]

    def save(self, layout: Layout) -> None:
        atomic_write_json(layout.state_file, asdict(self))

    @classmethod
    def load(cls, layout: Layout) -> Instance | None:
        try:
            raw = json.loads(layout.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ZooflowError(f"cannot read {layout.state_file} ({exc}); stop what it started with "
                               f"`zooflow down`, which also finds processes without it") from None
        raw["processes"] = [ProcessRecord(**record) for record in raw.get("processes", [])]
        return cls(**raw)


@contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per state dir, so two cannot start or stop the same instance."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ZooflowError(f"another `zooflow up` or `zooflow down` is working on {layout.root}; "
                               "wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def instance_pids(records: list[ProcessRecord], marker: str) -> list[int]:
    """Live (not zombie) processes of the instance: in a recorded process's session, or carrying the marker.

    Each recorded process leads its own session, and its children stay in it even when they change
    process group, so the session finds them even when they rewrite their environment block with
    setproctitle (Airflow's services and workers do). The marker finds those that left the session.
    A session counts only while its leader's pid is free or still ours (same start time); Linux does
    not hand out a pid that a living session still uses as its id.
    """
    sessions = set()
    for record in records:
        leader = proc_stat(record.pid)
        if leader is None or leader.start_ticks == record.start_ticks:
            sessions.add(record.pid)
    return [pid for pid, _ in live_processes(sessions=sessions, environment=[f"{INSTANCE_ENV}={marker}"])]


def living(records: list[ProcessRecord], marker: str) -> tuple[set[int], set[int]]:
    """(process groups, pids) of this instance that are still running."""
    pids = set(instance_pids(records, marker)) | {r.pid for r in records if r.running}
    groups = {stat.pgid for pid in pids if (stat := proc_stat(pid)) is not None}
    return groups, pids


def _wait_gone(records: list[ProcessRecord], marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not any(living(records, marker)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.3)


def stop_instance(records: list[ProcessRecord], marker: str, timeout: float = STOP_TIMEOUT) -> list[str]:
    """SIGTERM every group and process of the instance, SIGKILL what outlives ``timeout``; one line per process.

    Raises when something survives SIGKILL (a process stuck in the kernel), naming it, rather than
    claiming that nothing is left.
    """
    running_before = {r.pid for r in records if r.running}
    groups, pids = living(records, marker)
    others_before = pids - {r.pid for r in records}
    signal_all(signal.SIGTERM, groups=groups, pids=pids)
    clean = _wait_gone(records, marker, timeout)
    after_term = {r.pid for r in records if r.running}
    if not clean:
        groups, pids = living(records, marker)
        signal_all(signal.SIGKILL, groups=groups, pids=pids)
        _wait_gone(records, marker, KILL_TIMEOUT)
    lines = []
    for record in records:
        if record.pid not in running_before:
            outcome = "had already exited"
        elif record.pid in after_term:
            outcome = f"killed (SIGKILL after {timeout:g} s)"
        else:
            outcome = "stopped (SIGTERM)"
        lines.append(f"{record.name:<14} pid {record.pid:<7} group {record.pgid:<7} {outcome}")
    if others_before:
        lines.append(f"{'other':<14} {len(others_before)} process(es) they had started: stopped")
    _, survivors = living(records, marker)
    if survivors:
        raise ZooflowError(f"processes {sorted(survivors)} of {marker} survived SIGKILL; check them with "
                           f"`ps -o pid,stat,cmd -p {','.join(map(str, sorted(survivors)))}`")
    return lines
