"""A sandbox for active-learning rounds: the demo project with a digits workflow, a pool whose truth
only the simulated volunteers know, and an AL config for it.

One place for the start-up the DAG tests that run rounds share, and for what they do between runs:
let volunteers retire the batch, count the subjects each pool item became.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import panoptes_client.panoptes
import panoptes_client.subject
import pytest
from panoptes_client import Project, Subject

from zooflow.airflow_env import connection_env
from zooflow.panoptes import PanoptesConfig, connect
from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdmin
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config, set_up_digits_learning
from zooflow.sandbox.process import SandboxProcess

from support.sandboxes import FAST_EXPORTS


@dataclass
class DigitsWorld:
    sandbox: SandboxProcess
    config: PanoptesConfig  # the demo user's login
    workflow_id: int  # the digits workflow
    al_config: str  # its AL config file
    folder: Path  # the world's own folder: the data root and the cache are kept below it

    @property
    def admin(self) -> SandboxAdmin:
        return self.sandbox.admin

    @property
    def root(self) -> Path:
        return self.folder / "data"

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    def use_in_dag_runs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """What a DAG run reads from the environment to reach this world (its data root, the config
        folder the AL config is in, the sandbox's connection), and panoptes-client retrying after 1 s
        instead of its production back-off, so injected faults cost seconds."""
        monkeypatch.setenv("ZOOFLOW_DATA_ROOT", str(self.root))
        monkeypatch.setenv("ZOOFLOW_CONFIG_DIR", str(Path(self.al_config).parent))
        for name, value in connection_env(self.config).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(panoptes_client.panoptes, "RETRY_BACKOFF_INTERVAL", 1)
        monkeypatch.setattr(panoptes_client.subject, "RETRY_BACKOFF_INTERVAL", 1)

    def label_until_retired(self, seed_: int) -> None:
        """Volunteers classify until the batch is retired, then Panoptes' counter jobs catch up."""
        for _ in range(20):
            if not self.admin.run_volunteers(10, seed=seed_, workflow_id=self.workflow_id):
                break
        self.admin.settle()

    def pool_ids(self) -> collections.Counter:
        """How many subjects of the project carry each pool id: every value must be 1."""
        with connect(self.config):
            project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
            return collections.Counter(s.metadata.get("#pool_id") for s in Subject.where(project_id=project.id, page_size=100)
                                       if s.metadata.get("#pool_id"))


@contextmanager
def digits_world(folder: Path, *, demo_subjects: int = 0, classifications: int = 0) -> Iterator[DigitsWorld]:
    """The world, started in ``folder``; ``demo_subjects`` glitch subjects in the demo's own set and
    ``classifications`` of them by the simulated volunteers, for tests that export them too."""
    with SandboxProcess(folder / "sandbox", seed="demo", settings=FAST_EXPORTS) as sandbox:
        config = demo_user_config(sandbox.endpoint)
        with connect(config):
            if demo_subjects:
                add_demo_subjects(demo_subjects)
            digits = set_up_digits_learning(folder / "al", sandbox.admin, k=8, m=1, workflow_name="Digits")
        if classifications:
            sandbox.admin.run_volunteers(classifications, seed=3)
        yield DigitsWorld(sandbox, config, digits.workflow_id, str(digits.config), folder)


def world_fixture(name: str, *, scope: str = "module"):
    """A pytest fixture yielding a digits world started in a folder called ``name``, one per ``scope``."""

    @pytest.fixture(scope=scope, name="world")
    def world(tmp_path_factory):
        with digits_world(tmp_path_factory.mktemp(name)) as started:
            yield started

    return world
