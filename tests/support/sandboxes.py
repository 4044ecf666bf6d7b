"""A seeded sandbox with the demo project filled in, as the DAG tests that run against their own need it.

One place for the start-up they share: the sandbox process, the demo user's login on it (``sb.config``),
``subjects`` demo subjects and, when asked, ``classifications`` by the simulated volunteers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zooflow.panoptes import connect
from zooflow.sandbox.populate import add_demo_subjects, demo_user_config
from zooflow.sandbox.process import SandboxProcess

FAST_EXPORTS = {"export_delay": 0.3}  # exports ready 0.3 sandbox-seconds after the request


@contextmanager
def demo_sandbox_with(folder: Path, *, subjects: int, classifications: int = 0) -> Iterator[SandboxProcess]:
    with SandboxProcess(folder, seed="demo", settings=FAST_EXPORTS) as sb:
        sb.config = demo_user_config(sb.endpoint)
        with connect(sb.config):
            add_demo_subjects(subjects)
        if classifications:
            sb.admin.run_volunteers(classifications, seed=5)
        yield sb
