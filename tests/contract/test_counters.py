"""Workflow, set and project counters lag behind the change, as Panoptes' background jobs make them.

Each test names the Panoptes source it follows (panoptes-realism.md section 1). Lags are the
sandbox defaults, read from the settings; the tests move the sandbox clock instead of waiting.
"""

from __future__ import annotations

import time

import pytest
from contract_support import eventually, make_project, make_set, make_subjects, make_workflow
from panoptes_client import Project, SubjectSet, SubjectWorkflowStatus, Workflow

TICKS = 0.3  # a few 0.1 s ticks of the job worker: long enough for a due job to have run


def _progress(workflow_id: str) -> tuple:
    found = Workflow.find(workflow_id)
    return found.subjects_count, found.retired_set_member_subjects_count


def _linked_and_settled(project, admin, count: int, retire_after: int = 1):
    workflow, subject_set = make_workflow(project, retire_after=retire_after), make_set(project)
    subjects = make_subjects(project, count)
    subject_set.add(subjects)
    workflow.add_subject_sets(subject_set)
    admin.settle()
    return workflow, subject_set, subjects


def _classify(admin, workflow, subjects) -> None:
    admin.add_classifications([{"workflow_id": workflow.id, "subject_id": s.id, "answer": "Other",
                                "created_at": admin.now()} for s in subjects])


def test_subjects_count_moves_only_after_the_set_counter_lag(owner, project, admin) -> None:
    """app/workers/subject_set_subject_counter_worker.rb starts workflow_subjects_count_worker.rb."""
    lag = admin.settings()["set_member_count_lag"]
    workflow, subject_set = make_workflow(project), make_set(project)
    workflow.add_subject_sets(subject_set)
    admin.settle()
    subject_set.add(make_subjects(project, 3))
    assert _progress(workflow.id) == (0, 0)  # 0 == 0: a gate on that equality would open on an unlabelled batch
    assert SubjectSet.find(subject_set.id).set_member_subjects_count == 0
    admin.advance_clock(lag - 5)
    time.sleep(TICKS)
    assert _progress(workflow.id) == (0, 0)
    admin.advance_clock(6)
    assert eventually(lambda: _progress(workflow.id), (3, 0)) == (3, 0)
    assert SubjectSet.find(subject_set.id).set_member_subjects_count == 3


def test_a_second_batch_keeps_the_old_equality_until_counted(owner, project, admin) -> None:
    """app/workers/subject_set_subject_counter_worker.rb; finished_at cleared by unfinish_workflow_worker.rb."""
    workflow, subject_set, first = _linked_and_settled(project, admin, 2)
    _classify(admin, workflow, first)
    admin.settle()
    assert _progress(workflow.id) == (2, 2) and Workflow.find(workflow.id).finished_at is not None
    subject_set.add(make_subjects(project, 2))
    after = Workflow.find(workflow.id)
    assert (after.subjects_count, after.retired_set_member_subjects_count, after.finished_at) == (2, 2, None)
    admin.settle()
    assert _progress(workflow.id) == (4, 2)


def test_retired_count_finished_at_and_completeness_follow_their_jobs(owner, project, admin) -> None:
    """app/workers/workflow_retired_count_worker.rb (count, finished_at) starts
    app/workers/calculate_project_completeness_worker.rb (workflow and project completeness)."""
    lags = admin.settings()
    workflow, _, subjects = _linked_and_settled(project, admin, 2)
    _classify(admin, workflow, subjects)
    statuses = SubjectWorkflowStatus.where(workflow_id=workflow.id)
    assert all(s.retired_at for s in statuses)  # the statuses change with the classification
    assert _progress(workflow.id) == (2, 0)
    admin.advance_clock(lags["retired_count_lag"] - 2)
    time.sleep(TICKS)
    assert _progress(workflow.id) == (2, 0)
    admin.advance_clock(3)
    assert eventually(lambda: _progress(workflow.id), (2, 2)) == (2, 2)
    counted = Workflow.find(workflow.id)
    assert counted.finished_at is not None and counted.completeness == 0.0
    assert Project.find(project.id).completeness == 0.0
    admin.advance_clock(lags["completeness_lag"] - lags["retired_count_lag"])
    assert eventually(lambda: Workflow.find(workflow.id).completeness, 1.0) == 1.0
    assert Project.find(project.id).raw["completeness"] == 1.0
    assert Project.find(project.id).retired_subjects_count == 2


def test_finished_at_is_cleared_when_the_set_links_change(owner, project, admin) -> None:
    """app/controllers/api/v1/workflows_controller.rb#post_link_actions: refresh_workflow_status_worker.rb
    runs unfinish_workflow_worker.rb first; the retired count job sets finished_at again when due."""
    workflow, _, subjects = _linked_and_settled(project, admin, 1)
    _classify(admin, workflow, subjects)
    admin.settle()
    assert Workflow.find(workflow.id).finished_at is not None
    extra = make_set(project)
    extra.add(make_subjects(project, 1))
    workflow.add_subject_sets(extra)
    assert Workflow.find(workflow.id).finished_at is None
    admin.settle()
    assert (_progress(workflow.id), Workflow.find(workflow.id).finished_at) == ((2, 1), None)
    workflow.remove_subject_sets(extra)
    admin.settle()
    assert _progress(workflow.id) == (1, 1) and Workflow.find(workflow.id).finished_at is not None


def test_state_counts_jobs_and_settle_runs_them(owner, project, admin) -> None:
    """The admin side of the job queue: what is waiting, what is due, and settle() emptying the due list."""
    workflow, subject_set = make_workflow(project), make_set(project)
    subject_set.add(make_subjects(project, 2))
    workflow.add_subject_sets(subject_set)
    waiting = admin.state()
    assert waiting["jobs_pending"] >= 3  # the set counter and two status jobs at least
    settled = admin.settle()
    assert settled["jobs_due"] == 0 and settled["jobs_pending"] <= waiting["jobs_pending"]
    assert _progress(workflow.id) == (2, 0)
    assert len(list(SubjectWorkflowStatus.where(workflow_id=workflow.id))) == 2


def test_instant_mode_computes_on_read(owner, admin, configure) -> None:
    # The unit-test mode the counter_mode setting keeps: no lag anywhere, to check the arithmetic alone.
    configure(counter_mode="instant")
    project = make_project()
    workflow, subject_set = make_workflow(project, retire_after=1), make_set(project)
    subjects = make_subjects(project, 4)
    subject_set.add(subjects)
    workflow.add_subject_sets(subject_set)
    assert _progress(workflow.id) == (4, 0)
    assert len(list(SubjectWorkflowStatus.where(workflow_id=workflow.id))) == 4
    _classify(admin, workflow, subjects[:1])
    workflow.retire_subjects(subjects[1:3], reason="blank")
    progress = Workflow.find(workflow.id)
    assert (progress.retired_set_member_subjects_count, progress.completeness) == (3, 0.75)
    _classify(admin, workflow, subjects[3:])
    assert Workflow.find(workflow.id).finished_at is not None
    assert Project.find(project.id).completeness == pytest.approx(1.0)
