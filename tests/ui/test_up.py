"""``zooflow up`` / ``zooflow down`` as a user runs them, checked through the browser.

``make up`` promises a local Airflow whose UI lists zooflow's DAGs, with the zooniverse connection
pointing at the sandbox, a Zooniverse page listing the demo's export and active-learning round, and
``make down`` promises that nothing keeps running. So this module runs the real commands as
subprocesses on free ports and a private state dir, once for all its tests (Airflow takes a while to
start), logs in with the printed password in headless Chromium, runs a DAG against the sandbox,
photographs the DAG list and the Zooniverse page for the docs, and then looks for every process of
the instance after ``down``. The tests run in file order; the last one stops the instance, and the
fixture stops it anyway if a test before failed.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import pytest
import requests

from support.debian import ensure_debian_packages
from zooflow.dev.processes import free_port
from zooflow.projects_file import al_dag_id, exports_dag_id

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
ZOOFLOW = str(Path(sys.executable).with_name("zooflow"))
DAGS_SCREENSHOT = REPO / "docs" / "images" / "airflow-dags.png"
PAGE_SCREENSHOT = REPO / "docs" / "images" / "zooniverse-page.png"
FAILED_SCREENSHOT = REPO / "docs" / "images" / "zooniverse-failed-runs.png"
UNKNOWN_PROJECT = "nobody/no-such-project"
VIEWPORT = {"width": 1400, "height": 900}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVICES = {"sandbox", "api-server", "scheduler", "dag-processor", "triggerer"}
SLUG = "zooflow/glitch-demo"
PROJECT_FOLDER = "zooflow__glitch-demo"
# The demo account's password, as a word on its own ("zooflow-sandbox-app" is a client id, not a secret).
PANOPTES_PASSWORD = re.compile(r"zooflow-sandbox(?![\w-])")


def zooflow(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([ZOOFLOW, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def dag_ids_in_repo(projects_file: Path) -> set[str]:
    """What Airflow itself finds in dags/ with up's projects file, so the UI is checked against the files,
    not against a list here."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOOFLOW_PROJECTS", str(projects_file))
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


@dataclass
class Instance:
    """One `zooflow up` for the whole module, as its tests see it."""

    env: dict[str, str]
    state: Path
    port: int
    stdout: str
    url: str = ""
    password: str = ""
    records: list[dict] = field(default_factory=list)
    stopped: bool = False

    @property
    def data(self) -> Path:
        return self.state / "data" / "projects" / PROJECT_FOLDER

    @property
    def exports_dag(self) -> str:
        """The demo project's exports DAG, made from up's projects file."""
        return exports_dag_id(SLUG)

    @property
    def al_dag(self) -> str:
        return al_dag_id(SLUG, json.loads((self.state / "sandbox-populated.json").read_text())["al_workflow_id"])

    def api(self) -> requests.Session:
        session = requests.Session()
        token = session.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30)
        assert token.status_code == 201, token.text
        session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return session


@pytest.fixture(scope="module")
def chromium() -> str:
    return ensure_debian_packages({"chromium": "chromium"})["chromium"]


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """`zooflow up` with a private state dir and UI port, given the way a user would: environment variables
    for `make up`. Stopped by the last test; stopped here too, whatever happened."""
    state = tmp_path_factory.mktemp("zooflow-up") / "up"
    port = free_port()
    env = dict(os.environ, ZOOFLOW_UP_DIR=str(state), ZOOFLOW_UP_PORT=str(port))
    up = zooflow("up", env=env)
    running = Instance(env=env, state=state, port=port, stdout=up.stdout + up.stderr)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        running.url, running.password = printed("UI", up.stdout), printed("password", up.stdout)
        running.records = json.loads((state / "up.json").read_text())["processes"]
        yield running
    finally:
        if not running.stopped and zooflow("down", env=env, timeout=300).returncode != 0:
            records = running.records or json.loads((state / "up.json").read_text()).get("processes", [])
            for record in records:  # a last resort, so a failed test cannot leave Airflow running
                if alive_in_sessions({record["pid"]}):
                    os.killpg(record["pgid"], signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(chromium: str, instance: Instance) -> Iterator:
    """A Chromium page logged in through SimpleAuthManager's form, shared by the browser tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = launched.new_page(viewport=VIEWPORT)
            page.goto(f"{instance.url}/dags")
            page.wait_for_url(re.compile(r"/auth/login"), timeout=60_000)  # the UI sends strangers to log in
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", instance.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda address: "/auth/login" not in address, timeout=60_000)
            yield page
        finally:
            launched.close()


def test_up_prints_the_address_and_password_and_ran_the_demo(instance: Instance) -> None:
    state, port = instance.state, instance.port
    assert instance.url == f"http://127.0.0.1:{port}"
    generated = json.loads((state / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
    assert instance.password == generated["admin"]
    assert f"zooflow down --state-dir {state}" in instance.stdout
    assert f"Zooniverse page: {instance.url}/plugin/zooniverse" in instance.stdout
    demo = json.loads((state / "demo-runs.json").read_text())["runs"]
    assert [(run["dag_id"], run["state"]) for run in demo] == [(instance.exports_dag, "success"),
                                                                (instance.al_dag, "success")]
    for run in demo:
        assert f"demo run:  {run['dag_id']} {run['run_id']}: success" in instance.stdout

    assert {r["name"] for r in instance.records} == SERVICES
    assert all(proc_stat(r["pid"]) and proc_stat(r["pid"])[0] != "Z" for r in instance.records), instance.records

    again = zooflow("up", env=instance.env, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout and printed("UI", again.stdout) == instance.url
    assert json.loads((state / "up.json").read_text())["processes"] == instance.records

    api = instance.api()
    for dag_id in (instance.exports_dag, instance.al_dag):
        assert api.get(f"{instance.url}/api/v2/dags/{dag_id}", timeout=30).json()["is_paused"], \
            f"{dag_id} was left switched on after the demo runs"
    runs = api.get(f"{instance.url}/api/v2/dags/{instance.exports_dag}/dagRuns", timeout=30).json()["dag_runs"]
    assert [r["dag_run_id"] for r in runs] == [demo[0]["run_id"]], "switching the DAG on started a daily run too"


def test_the_cli_reaches_the_sandbox_right_after_up_and_secrets_are_private(instance: Instance) -> None:
    """`zooflow check` in a shell with no Panoptes settings finds the instance (through ZOOFLOW_UP_DIR, as
    `make up`'s own directory would be found), with --conn-id zooniverse_default too; what holds a password
    is readable by its owner only."""
    shell = {k: v for k, v in instance.env.items() if not k.startswith(("PANOPTES_", "AIRFLOW_CONN_"))}
    for extra in ([], ["--conn-id", "zooniverse_default"]):
        check = zooflow("check", "zooflow/glitch-demo", *extra, env=shell, timeout=120)
        assert check.returncode == 0, check.stderr
        assert check.stdout.startswith("Project zooflow/glitch-demo (id ") and "Glitch classification" in check.stdout
    env_file = instance.state / "env"
    assert f"{env_file}" in instance.stdout, "the banner names the CLI's settings file"
    secrets = [env_file, instance.state / "airflow" / "simple_auth_manager_passwords.json.generated",
               *instance.state.glob("logs/*.log"), *instance.state.glob("airflow/service-logs/*.log")]
    assert len(secrets) == 2 + 1 + 4
    assert {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in secrets} == {str(p): "0o600" for p in secrets}
    assert any(instance.password in path.read_text() for path in instance.state.glob("airflow/service-logs/*.log")), \
        "the api-server logs the password it generates: that is why the logs are private"


def test_the_connection_check_reaches_the_sandbox(instance: Instance) -> None:
    """Runs zooniverse_connection_check through the instance's own scheduler: proof that the connection
    reaches the sandbox."""
    api, url = instance.api(), instance.url
    assert requests.post(f"{url}/auth/token", json={"username": "admin", "password": instance.password + "x"},
                         timeout=30).status_code == 401
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
    reports = list((instance.data / "reports" / "connection_check").glob("*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    glitches = next(w for w in report["workflows"] if w["display_name"] == "Glitch classification")
    assert glitches["subjects_count"] == 20 and glitches["classifications_count"] == 45


def test_the_dag_list_shows_every_dag(instance: Instance, browser) -> None:
    expected = dag_ids_in_repo(instance.state / "projects.yaml")
    assert {instance.exports_dag, instance.al_dag, exports_dag_id("zooflow/penguin-demo")} <= expected
    page = browser
    page.goto(f"{instance.url}/dags")
    page.get_by_role("button", name="Show table view").click()
    for dag_id in sorted(expected):
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for(timeout=60_000)
    page.get_by_text(f"{len(expected)} Dags", exact=True).first.wait_for(timeout=30_000)
    page.wait_for_load_state("networkidle")
    listed = {text.strip() for text in page.get_by_role("link").all_inner_texts()}
    DAGS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DAGS_SCREENSHOT), full_page=True)
    assert expected <= listed, f"missing from the UI: {expected - listed}"
    width, height = png_size(DAGS_SCREENSHOT)
    assert width == VIEWPORT["width"] and height >= VIEWPORT["height"]


def test_the_zooniverse_page_lists_the_demo_export_and_round(instance: Instance, browser) -> None:
    """Opened from the navigation, as a user finds it; checked against the files the demo runs wrote."""
    page = browser
    latest = json.loads((instance.data / "exports" / "project" / "classifications" / "latest.json").read_text())
    rounds = json.loads(next((instance.data / "al").glob("workflow-*/state.json")).read_text())["rounds"]
    assert len(rounds) == 1 and rounds[0]["uploaded_at"]

    page.goto(f"{instance.url}/")
    page.get_by_role("link", name="Zooniverse", exact=True).first.click()
    page.wait_for_url(re.compile(r"/plugin/zooniverse"), timeout=30_000)
    frame = page.frame_locator("iframe[title=Zooniverse]")
    export = frame.locator('tr.export[data-export-type="classifications"]')
    export.wait_for(timeout=30_000)
    assert export.get_attribute("data-state") == "sliced"
    assert latest["path"] in export.inner_text()
    assert "export report" in export.get_by_role("link").all_inner_texts()
    round_row = frame.locator('tr.round[data-round="1"]')
    assert round_row.get_attribute("data-state") == "uploaded"
    assert str(rounds[0]["set_id"]) in round_row.inner_text() and rounds[0]["set_name"] in round_row.inner_text()
    assert "round report" in round_row.get_by_role("link").all_inner_texts()
    assert frame.locator(f'tr.run[data-dag="{instance.exports_dag}"]').count() == 1
    assert "zooflow/penguin-demo" in frame.locator("body").inner_text()  # the team's second project, listed

    # The iframe scrolls on its own: make the window as tall as the page so the screenshot shows all of it.
    height = frame.locator("body").evaluate("body => body.ownerDocument.documentElement.scrollHeight")
    assert height > VIEWPORT["height"], "the page's content should need more than one screen by now"
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(VIEWPORT["height"], height + 40), 2400)})
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(PAGE_SCREENSHOT), full_page=True)
    page.set_viewport_size(VIEWPORT)
    width, shot_height = png_size(PAGE_SCREENSHOT)
    assert width == VIEWPORT["width"] and shot_height >= VIEWPORT["height"]

    # Every report link works with the browser's session, and serves the file the data root holds.
    links = {unquote(href) for href in frame.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")}
    assert any(link.endswith(".html") and "/export-report/" in link for link in links)
    assert any(link.endswith(".html") and "/al-round-report/" in link for link in links)
    for link in sorted(links):
        served = page.request.get(f"{instance.url}{quote(link)}")
        assert served.status == 200, link
        on_disk = instance.state / "data" / link.removeprefix("/zooniverse/files/")
        assert served.body() == on_disk.read_bytes(), link
    report_link = next(link for link in sorted(links) if "/export-report/" in link and link.endswith(".html"))
    served = page.request.get(f"{instance.url}{quote(report_link)}")
    assert served.headers["content-type"].startswith("text/html")
    assert "sandbox" in served.headers["content-security-policy"]

    report_file = instance.state / "data" / report_link.removeprefix("/zooniverse/files/")
    title = html.unescape(re.search(r"<title>(.*?)</title>", report_file.read_text(), re.S).group(1))
    export.get_by_role("link", name="export report", exact=True).click()
    # The report opens inside the page. It is an opaque-origin document there (the CSP sandbox), which
    # Playwright's frame address and text assertions do not follow, so its title is read as the DOM has it.
    opened = page.frame_locator("iframe[title=Zooniverse]").locator("head > title")
    deadline = time.monotonic() + 30
    while (shown := opened.text_content(timeout=30_000)) != title:
        assert time.monotonic() < deadline, f"the export report did not open inside the page (title {shown!r})"
        time.sleep(0.5)


def run_to_the_end(api: requests.Session, url: str, dag_id: str, conf: dict) -> str:
    """Trigger ``dag_id`` through the REST API (switched on only meanwhile) and wait; returns the run id."""
    dag = f"{url}/api/v2/dags/{dag_id}"
    assert api.patch(dag, json={"is_paused": False}, timeout=30).status_code == 200
    try:
        run = api.post(f"{dag}/dagRuns", json={"logical_date": None, "conf": conf}, timeout=30)
        assert run.status_code == 200, run.text
        run_id = run.json()["dag_run_id"]
        deadline = time.monotonic() + 300
        while api.get(f"{dag}/dagRuns/{run_id}", timeout=30).json()["state"] not in ("success", "failed"):
            assert time.monotonic() < deadline, f"{dag_id} {run_id} did not finish within 300 s"
            time.sleep(2)
    finally:
        api.patch(dag, json={"is_paused": True}, timeout=30)
    return run_id


def test_a_failed_run_is_on_the_zooniverse_page_with_its_error(instance: Instance, browser) -> None:
    """The data root keeps no trace of a run that failed, so the page reads Airflow for it."""
    api, url = instance.api(), instance.url
    run_id = run_to_the_end(api, url, "zooniverse_exports", {"project": UNKNOWN_PROJECT, "poll_seconds": 1})
    run = api.get(f"{url}/api/v2/dags/zooniverse_exports/dagRuns/{run_id}", timeout=30).json()
    assert run["state"] == "failed"
    tasks = api.get(f"{url}/api/v2/dags/zooniverse_exports/dagRuns/{run_id}/taskInstances", timeout=30).json()
    failed_tasks = [t["task_id"] for t in tasks["task_instances"] if t["state"] == "failed"]
    assert failed_tasks

    page = browser
    page.goto(f"{url}/plugin/zooniverse")
    frame = page.frame_locator("iframe[title=Zooniverse]")
    row = frame.locator(f'tr.failed[data-dag="zooniverse_exports"][data-run="{run_id}"]')
    row.wait_for(timeout=30_000)
    cells = row.locator("td").all_inner_texts()
    assert cells[0].split() == ["zooniverse_exports", run_id]
    assert cells[2].split(" (try")[0] in failed_tasks
    assert f"project {UNKNOWN_PROJECT!r} was not found" in cells[3], cells[3]
    assert re.match(r"^\w+: ", cells[3]), f"the error line starts with the exception's type: {cells[3]}"
    assert frame.locator("tr.failed").count() == 1, "the demo's runs succeeded: only this one failed"

    height = frame.locator("body").evaluate("body => body.ownerDocument.documentElement.scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(VIEWPORT["height"], height + 40), 2400)})
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(FAILED_SCREENSHOT), full_page=True)
    page.set_viewport_size(VIEWPORT)
    assert png_size(FAILED_SCREENSHOT)[0] == VIEWPORT["width"]


def test_every_link_and_image_on_the_reports_works(instance: Instance, browser) -> None:
    """Each export and round report, as the browser opens it from the file route: every <a href> and
    <img src> answers 200 (images embedded as data: URIs decode as PNGs)."""
    page = browser
    reports = [*instance.data.glob("reports/export-report/*.html"), *instance.data.glob("reports/al-round-report/*.html")]
    assert {path.parent.name for path in reports} == {"export-report", "al-round-report"}
    checked: dict[str, int] = {}
    for report in reports:
        page.goto(f"{instance.url}/zooniverse/files/{report.relative_to(instance.state / 'data').as_posix()}")
        targets = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)"
                                ".concat([...document.querySelectorAll('img[src]')].map(i => i.src))")
        files = [target for target in targets if not target.startswith("data:")]
        assert files or report.parent.name == "al-round-report", f"{report.name} links no file"
        for target in targets:
            if target.startswith("data:image/png;base64,"):
                assert base64.b64decode(target.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n", report.name
                continue
            assert urlparse(target).netloc == urlparse(instance.url).netloc, f"{report.name} links outside: {target}"
            checked[target] = page.request.get(target).status
    assert checked and [t for t, status in checked.items() if status != 200] == [], checked
    assert any(t.endswith("/manifest.csv") for t in checked), "the round report's manifest link"
    assert any(t.endswith((".csv", ".parquet")) and "/slices/" in t for t in checked), "the export report's slices"


def run_summary(page, instance: Instance, dag_id: str, run_id: str) -> list[str]:
    """The summary lines on a run's Zooniverse tab (the run page's, not the navigation's entry of the
    same name), once the UI has drawn them."""
    page.goto(f"{instance.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}")
    tab = page.get_by_role("link", name="Zooniverse", exact=True).and_(page.locator('a[href$="/plugin/zooniverse-run"]'))
    tab.wait_for(timeout=60_000)
    tab.click()
    page.wait_for_url(re.compile(r"/plugin/zooniverse-run"), timeout=30_000)
    lines = page.frame_locator("iframe[title=Zooniverse]").locator("ul.summary li")
    lines.first.wait_for(timeout=30_000)
    return lines.all_inner_texts()


def test_each_dag_run_has_a_zooniverse_tab_with_its_summary(instance: Instance, browser) -> None:
    page = browser
    demo = {run["dag_id"]: run["run_id"] for run in json.loads((instance.state / "demo-runs.json").read_text())["runs"]}
    workflow = next((instance.data / "al").glob("workflow-*"))
    state = json.loads((workflow / "state.json").read_text())["rounds"][0]
    accuracy = state["metrics"]["accuracy"]
    summary = run_summary(page, instance, instance.al_dag, demo[instance.al_dag])
    assert summary == [
        f"{workflow.name.replace('-', ' ')} round 1: {len(state['picked'])} items uploaded to subject set "
        f"{state['set_id']} ({state['set_name']}); trained on {state['labelled']} labels, held-out accuracy "
        f"{'n/a' if accuracy is None else format(accuracy, '.2f')}"]

    texts = run_summary(page, instance, instance.exports_dag, demo[instance.exports_dag])
    assert [text.split(" export ")[0] for text in texts] == ["classifications", "subjects"], texts


def test_the_plugin_needs_a_login_and_serves_nothing_outside_the_projects(instance: Instance) -> None:
    url = instance.url
    assert requests.get(f"{url}/zooniverse/", timeout=30).status_code == 401
    redirect = requests.get(f"{url}/zooniverse/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=30)
    assert redirect.status_code == 303 and redirect.headers["location"].endswith("/auth/login?next=%2Fzooniverse%2F")
    assert requests.get(f"{url}/zooniverse/files/projects/{PROJECT_FOLDER}/al", timeout=30).status_code == 401
    api = instance.api()
    assert api.get(f"{url}/zooniverse/", timeout=30).status_code == 200
    gz = json.loads((instance.data / "exports" / "project" / "classifications" / "latest.json").read_text())["path"]
    for path in ("projects/../up.json", "projects/%2e%2e/up.json", "projects/..%2fup.json", "%2e%2e/up.json",
                 f"projects/{PROJECT_FOLDER}/exports/project/classifications/{gz}", "projects/../airflow/airflow.cfg",
                 f"projects/{PROJECT_FOLDER}/exports/project/classifications/latest.json/../../../../../../up.json",
                 "projects/%00.json", f"projects/{PROJECT_FOLDER}/reports/export-report/a%00.html", "projects/%00/%2e%2e"):
        answer = api.get(f"{url}/zooniverse/files/{path}", timeout=30)
        assert answer.status_code == 404 and b"admin" not in answer.content, (path, answer.status_code)
    assert api.get(f"{url}/zooniverse/files/projects/{PROJECT_FOLDER}/exports/project/classifications/latest.json",
                   timeout=30).json()["path"] == gz


def test_down_leaves_nothing_running(instance: Instance) -> None:
    sessions = {r["pid"] for r in instance.records}
    running = alive_in_sessions(sessions)
    assert len(running) > len(instance.records), f"the services' own children are not visible: {running}"
    down = zooflow("down", env=instance.env, timeout=300)
    instance.stopped = True
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Nothing left running" in down.stdout
    assert all(name in down.stdout for name in SERVICES)
    assert alive_in_sessions(sessions) == []
    assert not listening(instance.port)
    assert not (instance.state / "up.json").exists()
    again = zooflow("down", env=instance.env, timeout=120)
    assert again.returncode == 0 and "nothing running" in again.stdout

    state = instance.state
    logs = [*state.glob("logs/*.log"), *state.glob("airflow/service-logs/*.log"), *state.glob("airflow/logs/**/*.log")]
    assert any("connection_check" in str(path) for path in logs), "no task log was written"
    assert any("active_learning" in str(path) for path in logs), "the demo round wrote no task log"
    leaking = [str(p) for p in logs if PANOPTES_PASSWORD.search(p.read_text(errors="replace"))]
    assert leaking == [], f"the Panoptes password is in {leaking}"
    assert not PANOPTES_PASSWORD.search(instance.stdout)


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
