"""Fixtures for the sandbox contract tests: one seeded sandbox process for the session, reached by
the unmodified panoptes-client over real HTTP, and helpers that undo runtime setting changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import panoptes_client.panoptes
import panoptes_client.subject
import pytest
from contract_support import make_project
from panoptes_client import Panoptes

from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdmin
from zooflow.sandbox.process import SandboxProcess

# Exports become ready 0.2 sandbox-seconds after the request, so export tests wait tenths, not seconds.
CONTRACT_SETTINGS = {"export_delay": 0.2}
STRANGER_PASSWORD = "stranger-password"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    data_dir = tmp_path_factory.mktemp("contract-sandbox")
    with SandboxProcess(data_dir, seed="demo", settings=CONTRACT_SETTINGS) as process:
        yield process


@pytest.fixture(scope="session")
def admin(sandbox: SandboxProcess) -> SandboxAdmin:
    return sandbox.admin


@pytest.fixture()
def configure(admin: SandboxAdmin):
    """``configure(**settings)`` for one test; the touched settings are put back afterwards."""
    before = admin.settings()
    touched: set[str] = set()

    def apply(**settings):
        touched.update(settings)
        return admin.configure(**settings)

    yield apply
    if touched:
        admin.configure(**{name: before[name] for name in touched})


@pytest.fixture()
def owner(sandbox: SandboxProcess) -> Iterator[Panoptes]:
    """The demo user, logged in with the password flow, as the current client of this thread."""
    with Panoptes(endpoint=sandbox.endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD) as client:
        yield client


@pytest.fixture()
def stranger(sandbox: SandboxProcess, admin: SandboxAdmin) -> Panoptes:
    """A logged-in client of a fresh second user; enter it with ``with stranger:`` to act as them."""
    login = f"stranger-{uuid.uuid4().hex[:8]}"
    admin.create_user(login, STRANGER_PASSWORD)
    return Panoptes(endpoint=sandbox.endpoint, username=login, password=STRANGER_PASSWORD)


@pytest.fixture()
def project(owner: Panoptes):
    return make_project()


@pytest.fixture()
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client retry sleeps of about 1 s instead of 5 s (redo refuses less than its 1 s jitter)."""
    monkeypatch.setattr(panoptes_client.panoptes, "RETRY_BACKOFF_INTERVAL", 1)
    monkeypatch.setattr(panoptes_client.subject, "RETRY_BACKOFF_INTERVAL", 1)


@pytest.fixture()
def single_subject_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Subject.save`` retries every API error 5 times (~40 s); tests of a rejection want it once."""
    monkeypatch.setattr(panoptes_client.subject, "UPLOAD_RETRY_LIMIT", 1)
