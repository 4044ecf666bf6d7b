"""Simulated volunteers: the background rate, seeded on-demand runs, ground truth, retirement, backfill."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from contract_support import csv_rows, linked_workflow_with_subjects, make_project, make_subjects, wait_ready
from panoptes_client import Panoptes, Project, SubjectSet, SubjectWorkflowStatus, Workflow

from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdminError
from zooflow.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def busy_sandbox(tmp_path_factory: pytest.TempPathFactory):
    settings = {"volunteer_rate": 300}
    with SandboxProcess(tmp_path_factory.mktemp("volunteers"), seed="demo", settings=settings) as process:
        yield process


def test_volunteers_retire_a_20_subject_set_on_the_seeded_workflow(busy_sandbox) -> None:
    with Panoptes(endpoint=busy_sandbox.endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD):
        project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
        (subject_set,) = SubjectSet.where(project_id=project.id, display_name=seed.DEMO_SUBJECT_SET_NAME)
        subjects = make_subjects(project, 20, lambda i: {"#truth": seed.DEMO_ANSWERS[i % 4]})
        subject_set.add(subjects)
        workflow_id = project.links.workflows[0].id
        deadline = time.monotonic() + 20
        while True:  # the statuses retire as the volunteers classify; the counters follow in jobs
            retired = [s for s in SubjectWorkflowStatus.where(workflow_id=workflow_id) if s.retired_at]
            if len(retired) == 20 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        busy_sandbox.admin.settle()
        workflow = Workflow.find(workflow_id)
        assert (workflow.subjects_count, workflow.retired_set_member_subjects_count) == (20, 20)
        assert workflow.completeness == 1.0 and workflow.finished_at is not None
        statuses = list(SubjectWorkflowStatus.where(workflow_id=workflow_id))
        assert len(statuses) == 20
        assert {(s.classifications_count, s.retirement_reason) for s in statuses} == {(3, "classification_count")}
        assert workflow.classifications_count == 60
        assert Project.find(project.id).retired_subjects_count == 20


def _answers_by_position(workflow, subjects) -> list[tuple]:
    position = {s.id: i for i, s in enumerate(subjects)}
    workflow.generate_export("classifications")
    wait_ready(workflow, "classifications")
    rows = csv_rows(workflow.get_export("classifications"))
    return [(position[r["subject_ids"]], r["user_name"] if r["user_id"] else "anonymous",
             json.loads(r["annotations"])[0]["value"]) for r in rows]


def test_seeded_runs_repeat_exactly(owner, admin, configure) -> None:
    configure(volunteer_error_rate=0.5)
    runs = []
    for _ in range(2):
        workflow, _, subjects = linked_workflow_with_subjects(make_project(), 6, retire_after=5)
        assert admin.run_volunteers(14, seed=42, workflow_id=workflow.id) == 14
        runs.append(_answers_by_position(workflow, subjects))
    assert runs[0] == runs[1]
    assert len({user for _, user, _ in runs[0]}) > 2  # several volunteers took part


def test_answers_follow_the_oracle_and_the_truth_key(owner, admin, configure) -> None:
    configure(volunteer_error_rate=0.0, anonymous_fraction=0.5)
    project = make_project()
    workflow, _, subjects = linked_workflow_with_subjects(
        project, 6, lambda i: {"#pool_id": 100 + i} if i < 4 else {"#truth": "Other"})
    truth = {str(100 + i): seed.DEMO_ANSWERS[i % 3] for i in range(4)}
    assert admin.set_oracle("#pool_id", truth) == 4
    made = admin.run_volunteers(100, seed=7, workflow_id=workflow.id)
    assert made == 18  # 6 subjects x retirement after 3; then nothing is left to classify
    admin.settle()
    expected = [seed.DEMO_ANSWERS[i % 3] for i in range(4)] + ["Other", "Other"]
    rows = _answers_by_position(workflow, subjects)
    assert all(answer == expected[position] for position, _, answer in rows)
    users = defaultdict(list)
    for position, user, _ in rows:
        users[position].append(user)
    assert all(len(named) == len(set(named)) for named in
               ([u for u in us if u != "anonymous"] for us in users.values()))  # nobody classifies twice
    kinds = {user == "anonymous" for _, user, _ in rows}
    assert kinds == {True, False}
    assert Workflow.find(workflow.id).retired_set_member_subjects_count == 6


def test_retire_after_overrides_every_workflow(owner, admin, configure) -> None:
    configure(retire_after=1)
    workflow, _, _ = linked_workflow_with_subjects(make_project(), 3, retire_after=10)
    assert admin.run_volunteers(10, seed=1, workflow_id=workflow.id) == 3
    admin.settle()
    assert Workflow.find(workflow.id).retired_set_member_subjects_count == 3


def test_inactive_workflows_get_no_volunteers(owner, admin) -> None:
    workflow, _, _ = linked_workflow_with_subjects(make_project(), 2)
    found = Workflow.find(workflow.id)
    found.active = False
    found.save()
    assert admin.run_volunteers(5, seed=1, workflow_id=workflow.id) == 0


def test_backfill_rejects_what_it_cannot_store(owner, admin) -> None:
    workflow, _, subjects = linked_workflow_with_subjects(make_project(), 1)
    row = {"workflow_id": workflow.id, "subject_id": subjects[0].id, "created_at": "2024-01-01T00:00:00Z"}
    with pytest.raises(SandboxAdminError, match="'Maybe' is not an answer"):
        admin.add_classifications([{**row, "answer": "Maybe"}])
    with pytest.raises(SandboxAdminError, match="has no UTC offset"):
        admin.add_classifications([{**row, "answer": "Other", "created_at": "2024-01-01T00:00:00"}])
    assert Workflow.find(workflow.id).classifications_count == 0
