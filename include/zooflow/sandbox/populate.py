"""Filling the demo project with subjects and classifications, through the real client.

The demo and the tests need a project with something in it; adding it the way a user would (the
unmodified panoptes-client over HTTP) keeps them honest about what the sandbox accepts.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from panoptes_client import Panoptes, Project, Subject, SubjectSet, Workflow

from zooflow.al.demo_data import write_digits_pool
from zooflow.files import atomic_write_bytes
from zooflow.panoptes import PanoptesConfig
from zooflow.projects import ensure_project
from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdmin
from zooflow.workflows import ensure_question_workflow

DIGITS = [str(d) for d in range(10)]


def add_demo_subjects(count: int, *, start: int = 0) -> list[Subject]:
    """``count`` subjects with remote image URLs in the demo's first set; each knows its true answer."""
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    subject_set = next(s for s in SubjectSet.where(project_id=project.id) if s.display_name == seed.DEMO_SUBJECT_SET_NAME)
    subjects = []
    for i in range(start, start + count):
        subject = Subject()
        subject.links.project = project
        subject.add_location({"image/png": f"https://example.org/glitch/{i}.png"})
        subject.metadata.update({"filename": f"glitch-{i}.png", "#truth": seed.DEMO_ANSWERS[i % len(seed.DEMO_ANSWERS)]})
        subject.save()
        subjects.append(subject)
    subject_set.add(subjects)
    return subjects


SECOND_PROJECT = "Penguin Demo"  # a team has more than one project: the second one make up and the demo show
PENGUIN_ANSWERS = ("Penguins", "No penguins")


def add_second_demo_project(count: int) -> tuple[str, int]:
    """The demo team's second project, created once: a question workflow retiring subjects after 3
    classifications and ``count`` subjects in its first set, each knowing its true answer. Returns the
    project's slug and the workflow's id. Call it inside ``connect`` as the demo user."""
    project, _ = ensure_project(Panoptes.client().username, SECOND_PROJECT,
                                "Sandbox project: are there penguins in the picture?", private=True)
    workflow, created = ensure_question_workflow(project, "Penguin count", "Are there penguins in this picture?",
                                                 PENGUIN_ANSWERS, retirement_count=3)
    if created:
        subject_set = SubjectSet()
        subject_set.links.project = project
        subject_set.display_name = "penguins-batch-0"
        subject_set.save()
        subjects = []
        for i in range(count):
            subject = Subject()
            subject.links.project = project
            subject.add_location({"image/png": f"https://example.org/penguins/{i}.png"})
            subject.metadata.update({"filename": f"penguins-{i}.png", "#truth": PENGUIN_ANSWERS[i % 2]})
            subject.save()
            subjects.append(subject)
        subject_set.add(subjects)
        workflow.add_subject_sets(subject_set)
    return project.slug, int(workflow.id)


def demo_workflow_id() -> int:
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    return int(next(w for w in Workflow.where(project_id=project.id) if w.display_name == seed.DEMO_WORKFLOW_NAME).id)


def classify_on(admin: SandboxAdmin, subjects: list[Subject], days: dict[datetime, int]) -> Counter:
    """Classifications on given dates (count per date, spread over the subjects); returns the counts per ISO date."""
    workflow_id = demo_workflow_id()
    rows: list[dict[str, Any]] = []
    for day, count in days.items():
        for i in range(count):
            subject = subjects[i % len(subjects)]
            rows.append({
                "workflow_id": workflow_id, "subject_id": int(subject.id),
                "answer": subject.metadata["#truth"], "created_at": day.replace(hour=1 + i % 20, minute=i % 60),
            })
    admin.add_classifications(rows)
    return Counter(day.date().isoformat() for day in days for _ in range(days[day]))


def demo_subject_set(metadatas: list[dict[str, Any]], *, prefix: str = "set") -> tuple[int, list[int]]:
    """A new subject set in the demo project holding one subject per metadata dict (ids in creation order)."""
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    subject_set = SubjectSet()
    subject_set.links.project = project
    subject_set.display_name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    subject_set.save()
    subjects = []
    for metadata in metadatas:
        subject = Subject()
        subject.links.project = project
        subject.add_location({"image/png": f"https://example.org/{prefix}/{uuid.uuid4().hex}.png"})
        subject.metadata.update(metadata)
        subject.save()
        subjects.append(subject)
    subject_set.add(subjects)
    return int(subject_set.id), [int(s.id) for s in subjects]


def demo_user_config(endpoint: str) -> PanoptesConfig:
    """The sandbox's demo user, as the demo, ``make up``, the tests and the benchmarks log in."""
    return PanoptesConfig(endpoint=endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD)


@dataclass(frozen=True)
class DigitsLearning:
    config: Path  # the AL config file, for the DAG form or ``zooflow al round``
    workflow_id: int


def set_up_digits_learning(folder: Path, admin: SandboxAdmin, *, k: int, m: int,
                           workflow_name: str = "Handwritten digits") -> DigitsLearning:
    """A digits workflow in the demo project, the digits as the AL pool, and their true labels known
    only to the simulated volunteers. Call it inside ``connect``."""
    pool = write_digits_pool(folder)
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    workflow, _ = ensure_question_workflow(project, workflow_name, "Which digit is this?", DIGITS, retirement_count=3)
    truth = pd.read_parquet(pool, columns=["id", "label"])
    admin.set_oracle("#pool_id", dict(zip(truth["id"], truth["label"])))
    config = folder / "active_learning.yaml"
    atomic_write_bytes(config, yaml.safe_dump({"pool": pool.name, "workflow_id": int(workflow.id), "k": k, "m": m}).encode())
    return DigitsLearning(config, int(workflow.id))
