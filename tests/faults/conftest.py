"""The fault-injection suite's world and its table.

Every test here injects one fault or feeds one bad input, asserts that the run ends well (or fails
with a message naming the problem and the fix) and that nothing was lost or duplicated, then adds a
row to the table printed at the end of the run: what was tried, what the user saw, what was lost.
"""

from __future__ import annotations

import collections
import textwrap
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import panoptes_client.panoptes
import panoptes_client.subject
import pytest
from airflow.dag_processing.dagbag import DagBag
from panoptes_client import Project, Subject

from zooflow.airflow_env import connection_env
from zooflow.panoptes import PanoptesConfig, connect
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config, set_up_digits_learning
from zooflow.sandbox.process import SandboxProcess

from fault_support import SLUG  # noqa: E402
DIGITS = [str(d) for d in range(10)]


@dataclass(frozen=True)
class Row:
    kind: str
    tried: str
    seen: str
    lost: str


_ROWS: list[Row] = []


@pytest.fixture()
def table():
    """Adds a row once the test has proved it; a failing test adds nothing."""

    def record(kind: str, tried: str, seen: str, lost: str = "nothing") -> None:
        _ROWS.append(Row(kind, tried, " ".join(str(seen).split())[:240], lost))

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if not _ROWS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("faults and bad input: what was tried, what the user saw, what was lost")
    widths = (11, 44, 70, 12)
    header = ("kind", "tried", "what the user saw", "lost")
    write(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    write("-+-".join("-" * w for w in widths))
    for row in _ROWS:
        cells = [textwrap.wrap(text, width) or [""] for text, width in zip((row.kind, row.tried, row.seen, row.lost), widths)]
        for line in range(max(len(c) for c in cells)):
            write(" | ".join((c[line] if line < len(c) else "").ljust(w) for c, w in zip(cells, widths)))
    write(f"{len(_ROWS)} faults and bad inputs tried; lost or duplicated: "
          f"{sum(not row.lost.startswith('nothing') for row in _ROWS)}")


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A sandbox with the demo project, a digits workflow and a pool only the simulated volunteers know."""
    folder = tmp_path_factory.mktemp("faults")
    with SandboxProcess(folder / "sandbox", seed="demo", settings={"export_delay": 0.3}) as sandbox:
        config = demo_user_config(sandbox.endpoint)
        with connect(config):
            add_demo_subjects(12)
            digits = set_up_digits_learning(folder / "al", sandbox.admin, k=8, m=1, workflow_name="Digits")
        sandbox.admin.run_volunteers(30, seed=3)
        yield World(sandbox, config, digits.workflow_id, str(digits.config), folder / "data", folder)


@dataclass
class World:
    sandbox: SandboxProcess
    config: PanoptesConfig
    workflow_id: int
    al_config: str
    root: Path
    folder: Path

    @property
    def admin(self):
        return self.sandbox.admin

    def label_until_retired(self, seed_: int) -> None:
        """Volunteers classify until the batch is retired, then Panoptes' counter jobs catch up."""
        for _ in range(20):
            if not self.admin.run_volunteers(10, seed=seed_, workflow_id=self.workflow_id):
                break
        self.admin.settle()

    def pool_ids(self) -> collections.Counter:
        """How many subjects of the project carry each pool id: every value must be 1."""
        with connect(self.config):
            project = Project.find(slug=SLUG)
            return collections.Counter(s.metadata.get("#pool_id") for s in Subject.where(project_id=project.id, page_size=100)
                                       if s.metadata.get("#pool_id"))


@pytest.fixture()
def env(world, monkeypatch):
    """The connection, data root and config folder (the AL config's) in the environment, and the
    sandbox with no fault left set."""
    monkeypatch.setenv("ZOOFLOW_DATA_ROOT", str(world.root))
    monkeypatch.setenv("ZOOFLOW_CONFIG_DIR", str(Path(world.al_config).parent))
    for name, value in connection_env(world.config).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(panoptes_client.panoptes, "RETRY_BACKOFF_INTERVAL", 1)
    monkeypatch.setattr(panoptes_client.subject, "RETRY_BACKOFF_INTERVAL", 1)
    world.admin.configure(export_stuck=False, fault_rate=0.0, fail_next=[], drop_download_after_bytes=None,
                          drop_download_count=None, latency_ms=0, token_lifetime=7200, download_rate_mb_s=None)
    yield world
    world.admin.configure(export_stuck=False, fault_rate=0.0, fail_next=[], drop_download_after_bytes=None,
                          latency_ms=0, token_lifetime=7200, download_rate_mb_s=None)


@pytest.fixture()
def load(dags_folder, airflow_db):
    """A fresh DAG from the real dags/ folder with retry delays cut to zero (the retries themselves stay).

    Fresh each time: dag.test() renders templated fields onto the task objects it runs, so a DAG
    object used twice would carry one run's Params into the next."""

    def get(name: str):
        bag = DagBag(dag_folder=str(dags_folder / f"{name}.py"))
        assert bag.import_errors == {}
        dag = bag.dags[name]
        for task in dag.tasks:
            task.retry_delay = timedelta(0)
        return dag

    return get
