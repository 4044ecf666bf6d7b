"""``zooflow up`` / ``zooflow down``: the Airflow UI on the seeded sandbox, running until you stop it.

``make demo`` runs the DAGs once and stops everything. To click through the DAGs, fill in their forms and
read task logs, people need an Airflow that keeps running after the command returns. ``up`` starts the
sandbox and Airflow's four services (api-server, scheduler, dag-processor, triggerer) on SQLite, each
detached in its own process group, records them in ``up.json`` in the state dir, and returns once
Airflow is healthy and has parsed the DAGs. ``down`` reads that record and stops every group. A second
``up`` finds the record and reports the running instance instead of starting another.

The folder, the process record and how processes are found and stopped are :mod:`zooflow.dev.instance`'s;
the services, their health and the REST client come from :mod:`zooflow.dev`, as for the tests. The first
``up`` of a state dir also runs the loop once (:mod:`zooflow.dev.first_runs`), so the UI has something to show.
The commands' arguments are :mod:`zooflow.up_cli`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from zooflow.dev.airflow import LocalAirflow, read_health, unhealthy
from zooflow.dev.api import AirflowApi, DagSummary
from zooflow.dev.first_runs import DemoRun, demo_runs_once, populate_once, say
from zooflow.dev.instance import (DEFAULT_STATE_DIR, INSTANCE_ENV, Instance, Layout, ProcessRecord, instance_pids,
                                  living, locked, stop_instance)
from zooflow.dev.processes import LOOPBACK, log_tail, port_in_use
from zooflow.errors import ConfigurationError, ZooflowError
from zooflow.files import open_private
from zooflow.up_cli import DEFAULT_PORT, PORT_ENV

HOST = LOOPBACK
ADMIN_USER = "admin"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
DAG_PARSE_TIMEOUT = 180.0
ZOONIVERSE_PAGE = "plugin/zooniverse"


# --------------------------------------------------------------------------------------------- helpers


def _ui_port(args: argparse.Namespace) -> int:
    raw = args.port if args.port is not None else os.environ.get(PORT_ENV) or DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ConfigurationError(f"{PORT_ENV}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"port {port} is outside 1-65535")
    return port




def _admin_password(password_file: Path) -> str | None:
    try:
        return json.loads(password_file.read_text()).get(ADMIN_USER)
    except (OSError, ValueError):
        return None



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
    with locked(layout):
        instance = Instance.load(layout)
        records = instance.processes if instance else []
        running = [r for r in records if r.running]
        if instance and instance.ready and len(running) == len(records):
            say(f"zooflow up: already running since {instance.started_at}; nothing started.")
            if instance.port != port:
                say(f"  (it listens on port {instance.port}, not {port}; `{_down_hint(layout)}` first to change it)")
            _print_banner(layout, instance, None)
            return 0
        if running or instance_pids(records, layout.marker):
            gone = ", ".join(r.name for r in records if not r.running) or "none recorded"
            raise ZooflowError(f"a previous `zooflow up` in {layout.root} is only partly running "
                               f"(exited: {gone}); run `{_down_hint(layout)}` first, then `zooflow up` again")
        if instance:
            say("zooflow up: the previous instance is no longer running; starting a new one.")
            layout.state_file.unlink()
        if port_in_use(port):
            raise ConfigurationError(
                f"port {port} on {HOST} is already in use, so the Airflow UI cannot listen there. Stop what "
                f"uses it, or choose another port: `zooflow up --port 8090` (or `{PORT_ENV}=8090 make up`)")
        if args.sandbox_port and port_in_use(args.sandbox_port):
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
        say(f"zooflow up: starting the sandbox (state in {layout.sandbox_dir})")
        endpoint = _start_sandbox(layout, instance, sandbox_port, deadline)
        say(f"  sandbox Panoptes at {endpoint}")
        populate_once(layout, endpoint)
        _write_cli_settings(layout, endpoint)
        env = _airflow_env(layout, dags_folder, plugins_folder, endpoint)
        open_private(layout.password_file).close()  # SimpleAuthManager keeps the file's mode when it writes the password
        airflow = LocalAirflow(env, port=port)
        say(f"  migrating Airflow's database (AIRFLOW_HOME {layout.airflow_home})")
        airflow.airflow("db", "migrate", timeout=max(deadline - time.monotonic(), 30))
        for service in airflow.services:
            argv, service_env = airflow.command(service)
            instance.processes.append(ProcessRecord.spawn(service.name, argv, service_env, airflow.log_path(service)))
            instance.save(layout)
        say(f"  started {', '.join(s.name for s in airflow.services)}; waiting until they are healthy "
            f"(logs in {layout.service_logs})")
        password = _wait_healthy(instance, layout, started, deadline)
        api = AirflowApi(instance.url, ADMIN_USER, password)
        dags = api.wait_for_dag_files(dags_folder, DAG_PARSE_TIMEOUT)
        demo = demo_runs_once(layout, api) if demo_runs else None
        instance.ready = True
        instance.save(layout)
    except BaseException:
        say("zooflow up: failed; stopping what was started")
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
    record = ProcessRecord.spawn("sandbox", command, dict(os.environ, **{INSTANCE_ENV: layout.marker}),
                                 layout.sandbox_log)
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
                               + log_tail(layout.sandbox_log))
        if time.monotonic() > give_up:
            raise ZooflowError(f"the sandbox was not ready within 120 s; see {layout.sandbox_log}")
        time.sleep(0.2)


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
            "ZOOFLOW_PROJECTS": str(layout.projects_file),  # the team's two projects, each with its own DAGs
            "ZOOFLOW_PROJECT": seed.DEMO_PROJECT_SLUG,  # the ad hoc DAGs' form defaults
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
    waiting: list[str] = list(HEALTH_COMPONENTS)
    while time.monotonic() < deadline:
        for record in instance.processes:
            if not record.running:
                raise ZooflowError(f"{record.name} exited while starting; last lines of {record.log}:\n"
                                   + log_tail(record.log))
        waiting = unhealthy(read_health(instance.url), HEALTH_COMPONENTS, since=started)
        password = _admin_password(layout.password_file)
        if not waiting and password:
            return password
        time.sleep(1)
    missing = ", ".join(waiting) or f"the admin password in {layout.password_file}"
    raise ZooflowError(f"Airflow was not healthy within the timeout (still waiting for: {missing}); "
                       f"see the logs in {layout.service_logs}, or give it longer with --timeout")


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
    say("\n".join(lines))


# --------------------------------------------------------------------------------------------- down


def down_command(args: argparse.Namespace) -> int:
    if not Path("/proc/self/stat").exists():
        raise ConfigurationError("`zooflow down` tracks its processes through /proc, so it needs Linux")
    layout = Layout.resolve(args.state_dir)
    if not layout.root.exists():
        say(f"zooflow down: nothing running ({layout.root} does not exist)")
        return 0
    with locked(layout):
        instance = Instance.load(layout)
        records = instance.processes if instance else []
        if not any(living(records, layout.marker)):
            layout.state_file.unlink(missing_ok=True)
            say(f"zooflow down: nothing running for {layout.root}")
            return 0
        say(f"zooflow down: stopping the instance in {layout.root}")
        for line in stop_instance(records, layout.marker, args.timeout):
            say(f"  {line}")
        layout.state_file.unlink(missing_ok=True)
    say("Nothing left running. State is kept for the next `zooflow up`; delete "
         f"{layout.root} to start afresh.")
    return 0
