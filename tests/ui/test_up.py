"""``zooflow up`` / ``zooflow down`` as a user runs them, checked through the browser.

``make up`` promises a local Airflow whose UI lists zooflow's DAGs, with the zooniverse connection
pointing at the sandbox, and ``make down`` promises that nothing keeps running. So this test runs the
real commands as subprocesses on free ports and a private state dir, logs in with the printed password
in headless Chromium, runs a DAG against the sandbox, photographs the DAG list for the docs, and then
looks for every process of the instance after ``down``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from zooflow.debian import ensure_debian_packages
from zooflow.local_airflow import free_port

pytestmark = [pytest.mark.ui, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
ZOOFLOW = str(Path(sys.executable).with_name("zooflow"))
SCREENSHOT = REPO / "docs" / "images" / "airflow-dags.png"
VIEWPORT = {"width": 1400, "height": 900}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVICES = {"sandbox", "api-server", "scheduler", "dag-processor", "triggerer"}
# The demo account's password, as a word on its own ("zooflow-sandbox-app" is a client id, not a secret).
PANOPTES_PASSWORD = re.compile(r"zooflow-sandbox(?![\w-])")


def zooflow(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([ZOOFLOW, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def dag_ids_in_repo() -> set[str]:
    """What Airflow itself finds in dags/, so the UI is checked against the files, not against a list here."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    return set(bag.dags)


def printed(label: str, text: str) -> str:
    match = re.search(rf"^\s*{label}:\s+(\S+)\s*$", text, re.MULTILINE)
    assert match, f"`zooflow up` printed no {label!r} line:\n{text}"
    return match.group(1)


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[3])


def alive_in_sessions(sessions: set[int]) -> list[str]:
    """Processes (not zombies) in any of these sessions: each service leads one, and its children stay in it."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) and stat[0] != "Z" and stat[1] in sessions:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture()
def up_env(tmp_path: Path) -> dict[str, str]:
    """A private state dir and UI port, given the way a user would: environment variables for `make up`."""
    return dict(os.environ, ZOOFLOW_UP_DIR=str(tmp_path / "up"), ZOOFLOW_UP_PORT=str(free_port()))


@pytest.mark.timeout(1500)
def test_up_shows_the_dags_and_down_leaves_nothing_running(up_env: dict[str, str]) -> None:
    chromium = ensure_debian_packages({"chromium": "chromium"})["chromium"]
    expected_dags = dag_ids_in_repo()
    state = Path(up_env["ZOOFLOW_UP_DIR"])
    port = int(up_env["ZOOFLOW_UP_PORT"])
    records: list[dict] = []
    stopped = False
    try:
        up = zooflow("up", env=up_env)
        assert up.returncode == 0, up.stdout + up.stderr
        url, password = printed("UI", up.stdout), printed("password", up.stdout)
        assert url == f"http://127.0.0.1:{port}"
        generated = json.loads((state / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
        assert password == generated["admin"]
        assert f"zooflow down --state-dir {state}" in up.stdout

        records = json.loads((state / "up.json").read_text())["processes"]
        assert {r["name"] for r in records} == SERVICES
        assert all(proc_stat(r["pid"]) and proc_stat(r["pid"])[0] != "Z" for r in records), records

        again = zooflow("up", env=up_env, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already running" in again.stdout and printed("UI", again.stdout) == url
        assert json.loads((state / "up.json").read_text())["processes"] == records

        api = requests.Session()
        assert api.post(f"{url}/auth/token", json={"username": "admin", "password": password + "x"},
                        timeout=30).status_code == 401
        token = api.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        assert token.status_code == 201, token.text
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        report = _run_connection_check(api, url, state)
        glitches = next(w for w in report["workflows"] if w["display_name"] == "Glitch classification")
        assert glitches["subjects_count"] == 20 and glitches["classifications_count"] == 45

        listed = _screenshot_dag_list(chromium, url, password, expected_dags)
        assert expected_dags <= listed, f"missing from the UI: {expected_dags - listed}"
        width, height = png_size(SCREENSHOT)
        assert width == VIEWPORT["width"] and height >= VIEWPORT["height"]

        sessions = {r["pid"] for r in records}
        running = alive_in_sessions(sessions)
        assert len(running) > len(records), f"the services' own children are not visible: {running}"
        down = zooflow("down", env=up_env, timeout=300)
        stopped = True
        assert down.returncode == 0, down.stdout + down.stderr
        assert "Nothing left running" in down.stdout
        assert all(name in down.stdout for name in SERVICES)
        assert alive_in_sessions(sessions) == []
        assert not listening(port)
        assert not (state / "up.json").exists()
        again = zooflow("down", env=up_env, timeout=120)
        assert again.returncode == 0 and "nothing running" in again.stdout

        logs = [*state.glob("logs/*.log"), *state.glob("airflow/service-logs/*.log"), *state.glob("airflow/logs/**/*.log")]
        assert any("connection_check" in str(path) for path in logs), "no task log was written"
        leaking = [str(p) for p in logs if PANOPTES_PASSWORD.search(p.read_text(errors="replace"))]
        assert leaking == [], f"the Panoptes password is in {leaking}"
        assert not PANOPTES_PASSWORD.search(up.stdout + up.stderr)
    finally:
        if not stopped and zooflow("down", env=up_env, timeout=300).returncode != 0:
            for record in records:  # a last resort, so a failed test cannot leave Airflow running
                if alive_in_sessions({record["pid"]}):
                    os.killpg(record["pgid"], signal.SIGKILL)


def _run_connection_check(api: requests.Session, url: str, state: Path) -> dict:
    """Runs zooniverse_connection_check through the instance's own scheduler: proof that the connection
    reaches the sandbox. Returns the report the DAG wrote."""
    dag = f"{url}/api/v2/dags/zooniverse_connection_check"
    assert api.patch(dag, json={"is_paused": False}, timeout=30).status_code == 200
    run = api.post(f"{dag}/dagRuns", json={"logical_date": None, "conf": {"project": "zooflow/glitch-demo"}}, timeout=30)
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]
    deadline = time.monotonic() + 300
    while (run_state := api.get(f"{dag}/dagRuns/{run_id}", timeout=30).json()["state"]) not in ("success", "failed"):
        assert time.monotonic() < deadline, f"the connection check is still {run_state} after 300 s"
        time.sleep(2)
    assert run_state == "success"
    reports = list((state / "data" / "projects" / "zooflow__glitch-demo" / "reports" / "connection_check").glob("*.json"))
    assert len(reports) == 1
    return json.loads(reports[0].read_text())


def _screenshot_dag_list(chromium: str, url: str, password: str, expected: set[str]) -> set[str]:
    """Logs in through SimpleAuthManager's form, opens the DAG list as a table, saves the screenshot and
    returns the DAG ids the page links to."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/dags")
            page.wait_for_url(re.compile(r"/auth/login"), timeout=60_000)  # the UI sends strangers to log in
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda address: "/auth/login" not in address, timeout=60_000)
            page.goto(f"{url}/dags")
            page.get_by_role("button", name="Show table view").click()
            for dag_id in sorted(expected):
                page.get_by_role("link", name=dag_id, exact=True).first.wait_for(timeout=60_000)
            page.get_by_text(f"{len(expected)} Dags", exact=True).first.wait_for(timeout=30_000)
            page.wait_for_load_state("networkidle")
            listed = {text.strip() for text in page.get_by_role("link").all_inner_texts()}
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    return {text for text in listed if text.startswith("zooniverse_")}


def test_up_on_a_busy_port_says_so_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        env = dict(os.environ, ZOOFLOW_UP_DIR=str(tmp_path / "up"))
        result = zooflow("up", "--port", str(port), env=env, timeout=120)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "--port" in result.stderr
    assert not (tmp_path / "up" / "up.json").exists()
    assert not (tmp_path / "up" / "sandbox").exists()


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    result = zooflow("down", "--state-dir", str(tmp_path / "never-up"), env=dict(os.environ), timeout=120)
    assert result.returncode == 0
    assert "nothing running" in result.stdout
