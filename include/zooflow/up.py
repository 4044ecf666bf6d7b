"""``zooflow up`` / ``zooflow down``: the Airflow UI on the seeded sandbox, running until you stop it.

``make demo`` runs the DAGs once and stops everything. To click through the DAGs, fill in their forms and
read task logs, people need an Airflow that keeps running after the command returns. ``up`` starts the
sandbox and Airflow's four services (api-server, scheduler, dag-processor, triggerer) on SQLite, each
detached in its own process group, records them in ``up.json`` in the state dir, and returns once
Airflow is healthy and has parsed the DAGs. ``down`` reads that record and stops every group. A second
``up`` finds the record and reports the running instance instead of starting another.

Every process also carries ``ZOOFLOW_UP_INSTANCE=<state dir>`` in its environment, and whatever it
starts (task processes too) inherits it. That way ``down`` also finds processes that left their process
group, and an ``up`` that was killed halfway cannot leave behind anything ``down`` misses.

An empty UI teaches little, so the first ``up`` of a state dir also runs the loop once through the
instance's own scheduler, as a user would: an export run of the demo project, and the active-learning
round its Asset event starts. The Zooniverse page (``plugins/``) then lists an export and a round,
and both runs are in the DAGs' run history. The DAGs are left paused afterwards, as they started.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zooflow.errors import ConfigurationError, ZooflowError
from zooflow.files import atomic_write_json, open_private

STATE_DIR_ENV = "ZOOFLOW_UP_DIR"
PORT_ENV = "ZOOFLOW_UP_PORT"
INSTANCE_ENV = "ZOOFLOW_UP_INSTANCE"
DEFAULT_STATE_DIR = Path(".zooflow-up")
DEFAULT_PORT = 8080
HOST = "127.0.0.1"
ADMIN_USER = "admin"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
STOP_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0
DAG_PARSE_TIMEOUT = 180.0
DEMO_RUNS_TIMEOUT = 900.0
EXPORTS_DAG = "zooniverse_exports"
AL_DAG = "zooniverse_active_learning"
ZOONIVERSE_PAGE = "plugin/zooniverse"


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser(
        "up",
        help="start a local Airflow UI on the seeded sandbox, in the background",
        description="Start the sandbox (seeded and populated like the demo) and Airflow's services on SQLite "
        "in the background, wait until they are healthy, and print the UI address and the admin password. "
        "If they are already running, say so and start nothing.",
    )
    _add_state_dir(up)
    up.add_argument("--port", type=int, default=None,
                    help=f"the UI's port on {HOST} (default ${PORT_ENV}, else {DEFAULT_PORT})")
    up.add_argument("--sandbox-port", type=int, default=0, help="the sandbox's port (default: a free one)")
    up.add_argument("--dags-folder", type=Path, default=Path("dags"), help="zooflow's dags/ folder (default ./dags)")
    up.add_argument("--plugins-folder", type=Path, default=None,
                    help="zooflow's plugins/ folder, with the Zooniverse page (default: plugins/ beside the dags folder)")
    up.add_argument("--no-demo-runs", dest="demo_runs", action="store_false",
                    help="on the first start, do not run the export and active-learning DAGs once "
                    "(by default they run, so the Zooniverse page has an export and a round to show)")
    up.add_argument("--timeout", type=float, default=600.0,
                    help="seconds to wait for Airflow to become healthy (default 600)")
    up.set_defaults(func=up_command)

    down = subparsers.add_parser(
        "down",
        help="stop what `zooflow up` started",
        description="Stop every process `zooflow up` started for this state dir (SIGTERM, then SIGKILL) "
        "and report what was stopped. State (sandbox data, Airflow's database, outputs) is kept.",
    )
    _add_state_dir(down)
    down.add_argument("--timeout", type=float, default=STOP_TIMEOUT,
                      help=f"seconds between SIGTERM and SIGKILL (default {STOP_TIMEOUT:g})")
    down.set_defaults(func=down_command)


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"where the instance keeps its state (default ${STATE_DIR_ENV}, else {DEFAULT_STATE_DIR})")


# --------------------------------------------------------------------------------------------- layout


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


@dataclass(frozen=True)
class ProcessRecord:
    """One detached process. ``start_ticks`` comes from /proc, so a reused pid is never taken for ours."""

    name: str
    pid: int
    pgid: int
    start_ticks: int
    log: str

    @property
    def running(self) -> bool:
        stat = _proc_stat(self.pid)
        return stat is not None and stat.state not in "ZX" and stat.start_ticks == self.start_ticks


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


# --------------------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Stat:
    state: str
    pgid: int
    session: int
    start_ticks: int


def _proc_stat(pid: int) -> _Stat | None:
    """State, process group, session and start time of ``pid`` from /proc, or None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which may itself hold spaces and parentheses: state is field 3,
    # pgrp field 5, session field 6 and starttime field 22 of proc(5).
    fields = text[text.rindex(")") + 2:].split()
    return _Stat(state=fields[0], pgid=int(fields[2]), session=int(fields[3]), start_ticks=int(fields[19]))


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
        leader = _proc_stat(record.pid)
        if leader is None or leader.start_ticks == record.start_ticks:
            sessions.add(record.pid)
    needle = f"{INSTANCE_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is None or stat.state in "ZX":
            continue
        if stat.session in sessions:
            found.append(int(entry.name))
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(found)


def _spawn(name: str, argv: list[str], env: Mapping[str, str], log: Path) -> ProcessRecord:
    """Start ``argv`` in a new session (so its own process group), detached from this command's terminal."""
    with open_private(log) as handle:  # Airflow's api-server logs the admin password it generates
        process = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    stat = _proc_stat(process.pid)
    _SPAWNED.append(process)  # keeps the Popen alive, so Python does not warn about it before we exit
    return ProcessRecord(name=name, pid=process.pid, pgid=process.pid,
                         start_ticks=stat.start_ticks if stat else -1, log=str(log))


_SPAWNED: list[subprocess.Popen] = []


def _living(records: list[ProcessRecord], marker: str) -> tuple[set[int], set[int]]:
    """(process groups, pids) of this instance that are still running."""
    pids = set(instance_pids(records, marker)) | {r.pid for r in records if r.running}
    groups = {stat.pgid for pid in pids if (stat := _proc_stat(pid)) is not None}
    return groups, pids


def _signal_all(groups: set[int], pids: set[int], sig: signal.Signals) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(records: list[ProcessRecord], marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not any(_living(records, marker)):
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
    groups, pids = _living(records, marker)
    others_before = pids - {r.pid for r in records}
    _signal_all(groups, pids, signal.SIGTERM)
    clean = _wait_gone(records, marker, timeout)
    after_term = {r.pid for r in records if r.running}
    if not clean:
        _signal_all(*_living(records, marker), signal.SIGKILL)
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
    _, survivors = _living(records, marker)
    if survivors:
        raise ZooflowError(f"processes {sorted(survivors)} of {marker} survived SIGKILL; check them with "
                           f"`ps -o pid,stat,cmd -p {','.join(map(str, sorted(survivors)))}`")
    return lines


# --------------------------------------------------------------------------------------------- helpers


@contextmanager
def _locked(layout: Layout) -> Iterator[None]:
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


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _ui_port(args: argparse.Namespace) -> int:
    raw = args.port if args.port is not None else os.environ.get(PORT_ENV) or DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ConfigurationError(f"{PORT_ENV}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"port {port} is outside 1-65535")
    return port


def _tail(path: str | Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _admin_password(password_file: Path) -> str | None:
    try:
        return json.loads(password_file.read_text()).get(ADMIN_USER)
    except (OSError, ValueError):
        return None


def _say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------------------------- up


def up_command(args: argparse.Namespace) -> int:
    if not Path("/proc/self/stat").exists():
        raise ConfigurationError("`zooflow up` tracks its processes through /proc, so it needs Linux")
    layout = Layout.resolve(args.state_dir)
    port = _ui_port(args)
    dags_folder = args.dags_folder.resolve()
    if not (dags_folder / "zooniverse_connection_check.py").is_file():
        raise ConfigurationError(f"{dags_folder} is not zooflow's dags folder; run `zooflow up` from the "
                                 "repository root or pass --dags-folder")
    plugins_folder = (args.plugins_folder or dags_folder.parent / "plugins").resolve()
    if not (plugins_folder / "zooniverse.py").is_file():
        raise ConfigurationError(f"{plugins_folder} is not zooflow's plugins folder (no zooniverse.py); "
                                 "pass --plugins-folder")
    with _locked(layout):
        instance = Instance.load(layout)
        records = instance.processes if instance else []
        living = [r for r in records if r.running]
        if instance and instance.ready and len(living) == len(records):
            _say(f"zooflow up: already running since {instance.started_at}; nothing started.")
            if instance.port != port:
                _say(f"  (it listens on port {instance.port}, not {port}; `{_down_hint(layout)}` first to change it)")
            _print_banner(layout, instance, None)
            return 0
        if living or instance_pids(records, layout.marker):
            gone = ", ".join(r.name for r in records if not r.running) or "none recorded"
            raise ZooflowError(f"a previous `zooflow up` in {layout.root} is only partly running "
                               f"(exited: {gone}); run `{_down_hint(layout)}` first, then `zooflow up` again")
        if instance:
            _say("zooflow up: the previous instance is no longer running; starting a new one.")
            layout.state_file.unlink()
        if _port_in_use(port):
            raise ConfigurationError(
                f"port {port} on {HOST} is already in use, so the Airflow UI cannot listen there. Stop what "
                f"uses it, or choose another port: `zooflow up --port 8090` (or `{PORT_ENV}=8090 make up`)")
        if args.sandbox_port and _port_in_use(args.sandbox_port):
            raise ConfigurationError(f"sandbox port {args.sandbox_port} on {HOST} is already in use; "
                                     "choose another with --sandbox-port, or 0 for a free one")
        return _start(layout, port, args.sandbox_port, dags_folder, plugins_folder, args.timeout, args.demo_runs)


def _start(layout: Layout, port: int, sandbox_port: int, dags_folder: Path, plugins_folder: Path, timeout: float,
           demo_runs: bool) -> int:
    """Start everything, recording each process as soon as it exists; on any failure stop all of it."""
    started = datetime.now(timezone.utc)
    deadline = time.monotonic() + timeout
    instance = Instance(started_at=started.isoformat(timespec="seconds"), url=f"http://{HOST}:{port}", port=port,
                        sandbox_endpoint=None, airflow_home=str(layout.airflow_home),
                        password_file=str(layout.password_file), dags_folder=str(dags_folder), ready=False,
                        processes=[])
    try:
        _say(f"zooflow up: starting the sandbox (state in {layout.sandbox_dir})")
        endpoint = _start_sandbox(layout, instance, sandbox_port, deadline)
        _say(f"  sandbox Panoptes at {endpoint}")
        _populate_once(layout, endpoint)
        _write_cli_settings(layout, endpoint)
        env = _airflow_env(layout, dags_folder, plugins_folder, endpoint)
        open_private(layout.password_file).close()  # SimpleAuthManager keeps the file's mode when it writes the password
        from zooflow.local_airflow import LocalAirflow

        airflow = LocalAirflow(env, port=port)
        _say(f"  migrating Airflow's database (AIRFLOW_HOME {layout.airflow_home})")
        airflow.airflow("db", "migrate", timeout=max(deadline - time.monotonic(), 30))
        airflow_bin = str(Path(sys.executable).with_name("airflow"))
        for service in AIRFLOW_SERVICES:
            argv = [airflow_bin, service] + (["--port", str(port)] if service == "api-server" else [])
            instance.processes.append(_spawn(service, argv, airflow.env, layout.service_logs / f"{service}.log"))
            instance.save(layout)
        _say(f"  started {', '.join(AIRFLOW_SERVICES)}; waiting until they are healthy (logs in {layout.service_logs})")
        password = _wait_healthy(instance, layout, started, deadline)
        dags = _wait_for_dags(instance.url, password, dags_folder, time.monotonic() + DAG_PARSE_TIMEOUT)
        demo = _demo_runs_once(layout, instance.url, password) if demo_runs else None
        instance.ready = True
        instance.save(layout)
    except BaseException:
        _say("zooflow up: failed; stopping what was started")
        try:
            stop_instance(instance.processes, layout.marker)
        finally:
            layout.state_file.unlink(missing_ok=True)
        raise
    _print_banner(layout, instance, dags, demo)
    return 0


def _start_sandbox(layout: Layout, instance: Instance, port: int, deadline: float) -> str:
    """The sandbox, seeded with the demo project (a restart keeps its data); returns its endpoint."""
    from zooflow.sandbox.process import READY_PREFIX, SandboxProcess

    command = SandboxProcess(layout.sandbox_dir, host=HOST, port=port, seed="demo",
                             settings={"export_delay": 2}).command()
    layout.sandbox_log.parent.mkdir(parents=True, exist_ok=True)
    offset = layout.sandbox_log.stat().st_size if layout.sandbox_log.exists() else 0
    record = _spawn("sandbox", command, dict(os.environ, **{INSTANCE_ENV: layout.marker}), layout.sandbox_log)
    instance.processes.append(record)
    instance.save(layout)
    give_up = min(deadline, time.monotonic() + 120)
    while True:
        with open(layout.sandbox_log, "rb") as handle:
            handle.seek(offset)
            for line in handle.read().decode(errors="replace").splitlines():
                if line.startswith(READY_PREFIX):
                    instance.sandbox_endpoint = line[len(READY_PREFIX):].strip().replace("://0.0.0.0:", f"://{HOST}:")
                    instance.save(layout)
                    return instance.sandbox_endpoint
        if not record.running:
            raise ZooflowError(f"the sandbox exited before it was ready; last lines of {layout.sandbox_log}:\n"
                               + _tail(layout.sandbox_log))
        if time.monotonic() > give_up:
            raise ZooflowError(f"the sandbox was not ready within 120 s; see {layout.sandbox_log}")
        time.sleep(0.2)


def _populate_once(layout: Layout, endpoint: str) -> None:
    """Give the DAGs work, as ``make demo`` does: subjects, classifications and an active-learning setup.

    Done once per state dir (the sandbox keeps its data across restarts), so ``down``/``up`` does not
    pile up copies of the same subjects.
    """
    if layout.populated.exists():
        _say(f"  demo project already populated ({layout.populated.name})")
        return
    from zooflow.demo import DEMO_CLASSIFICATIONS, DEMO_SUBJECTS
    from zooflow.panoptes import connect
    from zooflow.sandbox.admin import SandboxAdmin
    from zooflow.sandbox.populate import add_demo_subjects, demo_user_config, set_up_digits_learning

    admin = SandboxAdmin(endpoint)
    with connect(demo_user_config(endpoint)):
        subjects = add_demo_subjects(DEMO_SUBJECTS)
        classified = admin.run_volunteers(DEMO_CLASSIFICATIONS, seed=1)
        admin.settle()  # as if minutes had passed: Panoptes' counter jobs have caught up
        # The same active-learning setup as the demo: the digits are the pool, and only the simulated
        # volunteers see their true labels (through the sandbox's oracle).
        digits = set_up_digits_learning(layout.al_dir, admin, k=20, m=2)
    atomic_write_json(layout.populated, {
        "populated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "subjects": len(subjects), "classifications": classified, "al_workflow_id": digits.workflow_id,
    })
    _say(f"  demo project populated: {len(subjects)} subjects, {classified} classifications, "
         f"active-learning workflow {digits.workflow_id}")


def _write_cli_settings(layout: Layout, endpoint: str) -> None:
    """The sandbox's settings for the ``zooflow`` command line too (:mod:`zooflow.cli_settings`)."""
    from zooflow.cli_settings import write_env_file
    from zooflow.sandbox.populate import demo_user_config

    write_env_file(layout.root, demo_user_config(endpoint))


def _airflow_env(layout: Layout, dags_folder: Path, plugins_folder: Path, endpoint: str) -> dict[str, str]:
    """zooflow's Airflow environment and UI plugin, the connection on the sandbox, SimpleAuthManager's admin user.

    ``LocalAirflow`` adds the executor, the API's address and free ports for Airflow's own log and
    health servers, so this instance can run beside another Airflow (a test's, say).
    """
    from zooflow.airflow_env import airflow_env
    from zooflow.sandbox import seed
    from zooflow.sandbox.populate import demo_user_config

    layout.airflow_home.mkdir(parents=True, exist_ok=True)
    return airflow_env(
        airflow_home=layout.airflow_home,
        dags_folder=dags_folder,
        data_root=layout.data_root,
        plugins_folder=plugins_folder,
        panoptes=demo_user_config(endpoint),
        extra={
            "ZOOFLOW_PROJECT": seed.DEMO_PROJECT_SLUG,
            "ZOOFLOW_AL_CONFIG": str(layout.al_config),
            INSTANCE_ENV: layout.marker,
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(layout.password_file),
        },
    )


def _wait_healthy(instance: Instance, layout: Layout, started: datetime, deadline: float) -> str:
    """Until every service reports healthy with a heartbeat from this start, and the admin password exists.

    The heartbeat must be newer than ``started``: after ``down`` and ``up`` on the same database, the
    previous scheduler's last heartbeat can still look fresh for a while.
    """
    import requests

    unhealthy: list[str] = list(HEALTH_COMPONENTS)
    while time.monotonic() < deadline:
        for record in instance.processes:
            if not record.running:
                raise ZooflowError(f"{record.name} exited while starting; last lines of {record.log}:\n"
                                   + _tail(record.log))
        try:
            health = requests.get(f"{instance.url}/api/v2/monitor/health", timeout=3).json()
        except (requests.RequestException, ValueError):
            health = {}
        unhealthy = [name for name in HEALTH_COMPONENTS if not _fresh(health.get(name) or {}, started)]
        password = _admin_password(layout.password_file)
        if not unhealthy and password:
            return password
        time.sleep(1)
    waiting = ", ".join(unhealthy) or f"the admin password in {layout.password_file}"
    raise ZooflowError(f"Airflow was not healthy within the timeout (still waiting for: {waiting}); "
                       f"see the logs in {layout.service_logs}, or give it longer with --timeout")


def _fresh(component: Mapping[str, Any], started: datetime) -> bool:
    if component.get("status") != "healthy":
        return False
    beats = [value for key, value in component.items() if key.startswith("latest_") and value]
    if not beats:
        return True  # the metadatabase has no heartbeat
    return datetime.fromisoformat(beats[0]) >= started


def _wait_for_dags(url: str, password: str, dags_folder: Path, deadline: float) -> DagSummary:
    """The DAGs Airflow has parsed, once every DAG file is a DAG or an import error (or at the deadline).

    Waiting here means the UI shows the DAGs the moment the address is printed. A file still unparsed
    at the deadline is reported, not fatal: Airflow itself is up.
    """
    session = _api(url, password)
    files = {path.name for path in dags_folder.glob("*.py") if not path.name.startswith("_")}
    while True:
        dags = session.get(f"{url}/api/v2/dags", params={"limit": 1000}, timeout=10).json()["dags"]
        errors = session.get(f"{url}/api/v2/importErrors", params={"limit": 1000}, timeout=10).json()["import_errors"]
        parsed = {Path(d["fileloc"]).name for d in dags} | {Path(e["filename"]).name for e in errors}
        waiting = sorted(files - parsed)
        if not waiting or time.monotonic() > deadline:
            return DagSummary(dag_ids=sorted(d["dag_id"] for d in dags),
                              paused=sorted(d["dag_id"] for d in dags if d.get("is_paused")),
                              import_errors=sorted(Path(e["filename"]).name for e in errors), unparsed=waiting)
        time.sleep(2)


@dataclass(frozen=True)
class DagSummary:
    """What the banner says about the DAGs, so a user sees import errors or paused DAGs before opening the UI."""

    dag_ids: list[str]
    paused: list[str]
    import_errors: list[str]
    unparsed: list[str]


def _api(url: str, password: str) -> Any:
    """A requests session on the instance's REST API, logged in as the admin user."""
    import requests

    session = requests.Session()
    token = session.post(f"{url}/auth/token", json={"username": ADMIN_USER, "password": password}, timeout=10)
    token.raise_for_status()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session


@dataclass(frozen=True)
class DemoRun:
    dag_id: str
    run_id: str | None
    state: str
    seconds: float

    def line(self) -> str:
        if self.run_id is None:
            return f"{self.dag_id}: {self.state}"
        return f"{self.dag_id} {self.run_id}: {self.state} ({self.seconds:.0f} s)"


def _demo_runs_once(layout: Layout, url: str, password: str) -> list[DemoRun]:
    """Run the export DAG once and the active-learning round its Asset event starts; once per state dir.

    Both go through this instance's scheduler, triggerer and executor, exactly as a user's runs do,
    so what the UI then shows (runs, logs, the Zooniverse page) is the real thing. The DAGs are
    switched on only for these runs and left as they were found (paused, unless the user changed
    that). The export run takes the logical date of the DAG's next scheduled run, so switching
    the DAG on does not also start that daily run. A failed run is reported, not fatal: Airflow is
    up, and the run's logs in the UI say what went wrong. ``demo-runs.json`` records a success, so a
    later ``up`` of the same state dir does not run them again.
    """
    if layout.demo_runs.exists():
        recorded = json.loads(layout.demo_runs.read_text())
        return [DemoRun(r["dag_id"], r["run_id"], f"{r['state']} earlier", r["seconds"]) for r in recorded["runs"]]
    from zooflow.sandbox import seed

    _say(f"  running {EXPORTS_DAG} once, and the {AL_DAG} round its new export starts "
         f"(skip with --no-demo-runs; up to {DEMO_RUNS_TIMEOUT / 60:.0f} min)")
    api = _api(url, password)
    dags = {dag_id: f"{url}/api/v2/dags/{dag_id}" for dag_id in (EXPORTS_DAG, AL_DAG)}
    details = {dag_id: _ok(api.get(endpoint, timeout=30)).json() for dag_id, endpoint in dags.items()}
    deadline = time.monotonic() + DEMO_RUNS_TIMEOUT
    earlier_rounds = {r["dag_run_id"] for r in _runs(api, dags[AL_DAG])}
    runs: list[DemoRun] = []
    try:
        _ok(api.patch(dags[AL_DAG], json={"is_paused": False}, timeout=30))  # first: the export's event starts a round
        started = time.monotonic()
        body = {"logical_date": details[EXPORTS_DAG].get("next_dagrun_logical_date"),
                "conf": {"project": seed.DEMO_PROJECT_SLUG, "poll_seconds": 1},
                "note": "Started by `zooflow up`, so the Zooniverse page has an export to show."}
        created = api.post(f"{dags[EXPORTS_DAG]}/dagRuns", json=body, timeout=30)
        if created.status_code == 409:  # a run already holds that logical date
            created = api.post(f"{dags[EXPORTS_DAG]}/dagRuns", json=body | {"logical_date": None}, timeout=30)
        export_run = _ok(created).json()["dag_run_id"]
        _ok(api.patch(dags[EXPORTS_DAG], json={"is_paused": False}, timeout=30))
        state = _wait_for_run(api, dags[EXPORTS_DAG], export_run, deadline)
        runs.append(DemoRun(EXPORTS_DAG, export_run, state, time.monotonic() - started))
        _say(f"    {runs[-1].line()}")
        if state != "success":
            runs.append(DemoRun(AL_DAG, None, "not started: the export run did not succeed", 0.0))
            return runs
        started = time.monotonic()
        round_run = _asset_triggered_run(api, dags[AL_DAG], earlier_rounds, deadline)
        state = _wait_for_run(api, dags[AL_DAG], round_run, deadline) if round_run else "did not start within the timeout"
        runs.append(DemoRun(AL_DAG, round_run, state, time.monotonic() - started))
        _say(f"    {runs[-1].line()}")
    finally:
        for dag_id, endpoint in dags.items():
            if details[dag_id].get("is_paused", True):
                api.patch(endpoint, json={"is_paused": True}, timeout=30)
    if all(run.state == "success" for run in runs):
        atomic_write_json(layout.demo_runs, {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                             "runs": [asdict(run) for run in runs]})
    return runs


def _ok(response: Any) -> Any:
    if response.status_code >= 400:
        raise ZooflowError(f"Airflow's REST API answered {response.status_code} to {response.request.method} "
                           f"{response.url}: {response.text[:300]}")
    return response


def _wait_for_run(api: Any, dag_url: str, run_id: str, deadline: float) -> str:
    """The run's final state, or ``still <state>`` at the deadline."""
    while True:
        state = _ok(api.get(f"{dag_url}/dagRuns/{run_id}", timeout=30)).json()["state"]
        if state in ("success", "failed"):
            return state
        if time.monotonic() > deadline:
            return f"still {state} after {DEMO_RUNS_TIMEOUT / 60:.0f} min"
        time.sleep(2)


def _runs(api: Any, dag_url: str) -> list[dict[str, Any]]:
    return _ok(api.get(f"{dag_url}/dagRuns", params={"limit": 100}, timeout=30)).json()["dag_runs"]


def _asset_triggered_run(api: Any, dag_url: str, earlier: set[str], deadline: float) -> str | None:
    """The id of the DAG's new asset-triggered run (none of ``earlier``), once the scheduler has created it."""
    while time.monotonic() < deadline:
        triggered = [r for r in _runs(api, dag_url) if r.get("run_type") == "asset_triggered" and r["dag_run_id"] not in earlier]
        if triggered:
            return triggered[0]["dag_run_id"]
        time.sleep(2)
    return None


def _down_hint(layout: Layout) -> str:
    default = Layout.resolve(DEFAULT_STATE_DIR).root == layout.root
    return "zooflow down" if default else f"zooflow down --state-dir {layout.root}"


def _print_banner(layout: Layout, instance: Instance, dags: DagSummary | None,
                  demo: list[DemoRun] | None = None) -> None:
    from zooflow.airflow_env import DEFAULT_CONN_ID
    from zooflow.cli_settings import env_file
    from zooflow.sandbox import seed

    password = _admin_password(Path(instance.password_file)) or f"(not found in {instance.password_file})"
    lines = [
        "",
        "Airflow is running.",
        f"  UI:        {instance.url}",
        f"  user:      {ADMIN_USER}",
        f"  password:  {password}",
        f"             (SimpleAuthManager's file {instance.password_file})",
    ]
    if dags is not None:
        lines.append(f"  DAGs:      {len(dags.dag_ids)} ({len(dags.paused)} paused; switch one on to let the "
                     f"scheduler run it): {', '.join(dags.dag_ids)}")
        if dags.import_errors:
            lines.append(f"  IMPORT ERRORS in {', '.join(dags.import_errors)}: see the UI's DAG list")
        if dags.unparsed:
            lines.append(f"  not parsed yet: {', '.join(dags.unparsed)}")
    lines.append(f"  Zooniverse page: {instance.url}/{ZOONIVERSE_PAGE} (exports, active-learning rounds, reports; "
                 "each DAG run also has a Zooniverse tab)")
    for run in demo or []:
        lines.append(f"  demo run:  {run.line()}")
    lines += [
        f"  sandbox:   {instance.sandbox_endpoint} (Panoptes; user {seed.DEMO_USER}, project {seed.DEMO_PROJECT_SLUG})",
        f"  connection {DEFAULT_CONN_ID} points at the sandbox (set as AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()})",
        f"  CLI:       `zooflow check {seed.DEMO_PROJECT_SLUG}` uses the sandbox while this runs; its settings are in "
        f"{env_file(layout.root)} (`source` it for other tools)",
        f"  state:     {layout.root} (outputs in {layout.data_root}, logs in {layout.service_logs})",
        f"Stop everything with `{_down_hint(layout)}`"
        + (" (or `make down`)." if _down_hint(layout) == "zooflow down" else "."),
    ]
    _say("\n".join(lines))


# --------------------------------------------------------------------------------------------- down


def down_command(args: argparse.Namespace) -> int:
    if not Path("/proc/self/stat").exists():
        raise ConfigurationError("`zooflow down` tracks its processes through /proc, so it needs Linux")
    layout = Layout.resolve(args.state_dir)
    if not layout.root.exists():
        _say(f"zooflow down: nothing running ({layout.root} does not exist)")
        return 0
    with _locked(layout):
        instance = Instance.load(layout)
        records = instance.processes if instance else []
        if not any(_living(records, layout.marker)):
            layout.state_file.unlink(missing_ok=True)
            _say(f"zooflow down: nothing running for {layout.root}")
            return 0
        _say(f"zooflow down: stopping the instance in {layout.root}")
        for line in stop_instance(records, layout.marker, args.timeout):
            _say(f"  {line}")
        layout.state_file.unlink(missing_ok=True)
    _say("Nothing left running. State is kept for the next `zooflow up`; delete "
         f"{layout.root} to start afresh.")
    return 0
