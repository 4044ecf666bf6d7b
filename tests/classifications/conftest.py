"""Fixtures for the classification store's tests: one seeded sandbox for the session, reached over HTTP
by the unmodified panoptes-client, and a fresh project per test (so each store starts empty) whose
classifications are added through ``SandboxAdmin``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.classified_projects import ClassifiedProject, make_project

from zooflow.panoptes import PanoptesConfig, connect
from zooflow.paths import DataRoot
from zooflow.sandbox.admin import SandboxAdmin
from zooflow.sandbox.populate import demo_user_config
from zooflow.sandbox.process import SandboxProcess


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(tmp_path_factory.mktemp("classifications-sandbox"), seed="demo",
                        settings={"export_delay": 0.2}) as process:
        process.config = demo_user_config(process.endpoint)
        yield process


@pytest.fixture()
def admin(sandbox: SandboxProcess) -> Iterator[SandboxAdmin]:
    yield sandbox.admin
    sandbox.admin.configure(fail_next=[], latency_ms=0)


@pytest.fixture()
def config(sandbox: SandboxProcess) -> PanoptesConfig:
    return sandbox.config


@pytest.fixture()
def client(config: PanoptesConfig):
    with connect(config) as client:
        yield client


@pytest.fixture()
def panoptes_env(config: PanoptesConfig, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The demo user's login as panoptes-client's variables, for the CLI (in process or as a child)."""
    env = {"PANOPTES_ENDPOINT": config.endpoint, "PANOPTES_USERNAME": config.username,
           "PANOPTES_PASSWORD": config.password}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture()
def project(client, admin: SandboxAdmin) -> ClassifiedProject:
    return make_project(admin)


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    return DataRoot(tmp_path / "data")
