"""A fresh project per test for the classification store's tests: the demo user's private project with two
question workflows and a subject each, whose classifications are added through ``SandboxAdmin``, at set
times 20 minutes apart from 23:00 UTC on ``DAY`` (so they cross midnight into a second date partition)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from panoptes_client import Project, Subject

from zooflow.classifications.pull import PullReport, pull_classifications
from zooflow.paths import DataRoot
from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdmin
from zooflow.workflows import ensure_question_workflow

DAY = datetime(2026, 11, 30, tzinfo=timezone.utc)


@dataclass
class ClassifiedProject:
    """A private project of the demo user with two question workflows and a subject each."""

    admin: SandboxAdmin
    slug: str
    id: int
    workflow_id: int
    other_workflow_id: int
    subjects: dict[int, int] = field(default_factory=dict)  # workflow id -> subject id
    made: int = 0  # classifications added so far; the next is made 20 minutes after the last

    def add(self, n: int, *, workflow_id: int | None = None, **row) -> list[int]:
        """``n`` classifications (``completed=False`` and ``user_login`` pass through); their ids."""
        workflow_id = workflow_id or self.workflow_id
        rows = []
        for _ in range(n):
            rows.append({"workflow_id": workflow_id, "subject_id": self.subjects[workflow_id],
                         "answer": seed.DEMO_ANSWERS[self.made % len(seed.DEMO_ANSWERS)],
                         "created_at": DAY + timedelta(hours=23, minutes=20 * self.made), **row})
            self.made += 1
        return [int(i) for i in self.admin.add_classifications(rows)]

    def add_incomplete(self, n: int = 1) -> list[int]:
        return self.add(n, user_login=seed.DEMO_USER, completed=False)

    def pull(self, root: DataRoot, **options) -> PullReport:
        """``pull_classifications`` into ``root`` (inside ``with client:``)."""
        return pull_classifications(root, self.slug, project_id=self.id, **options)


def make_project(admin: SandboxAdmin) -> ClassifiedProject:
    """Call inside ``with client:``."""
    project = Project()
    project.display_name = f"Store {uuid.uuid4().hex[:8]}"
    project.description = "made by a classification store test"
    project.primary_language = "en"
    project.private = True
    project.save()
    workflows = [ensure_question_workflow(project, f"Glitches {n}", seed.DEMO_QUESTION, seed.DEMO_ANSWERS,
                                          retirement_count=100_000)[0] for n in (1, 2)]
    made = ClassifiedProject(admin, project.slug, int(project.id), int(workflows[0].id), int(workflows[1].id))
    for workflow in workflows:
        subject = Subject()
        subject.links.project = project
        subject.add_location({"image/png": f"https://example.org/{uuid.uuid4().hex}.png"})
        subject.save()
        made.subjects[int(workflow.id)] = int(subject.id)
    return made


def download_classification_export(slug: str, root: DataRoot) -> Path:
    """Request, wait for and download the project's classification export the way a user does
    (``zooflow export request|wait|download``; PANOPTES_* set), into ``root``'s exports folder."""
    from zooflow.cli import main
    from zooflow.exports.download import latest_download

    common = ["--type", "classifications", "--data-root", str(root.root)]
    for step in (["request"], ["wait", "--poll", "0.1", "--timeout", "1"], ["download"]):
        assert main(["export", step[0], slug, *common, *step[1:]]) == 0
    return latest_download(root.exports_dir(slug, "classifications"))
