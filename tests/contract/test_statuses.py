"""R1: subject_workflow_statuses, with the NoCount paging the client has to stop on an empty page.

Status rows and explicit retirements come from background jobs (panoptes-realism.md section 2), so
tests that mean the settled state call ``admin.settle()`` first.
"""

from __future__ import annotations

import time

import pytest
from contract_support import eventually, linked_workflow_with_subjects
from panoptes_client import SubjectSet, SubjectWorkflowStatus, Workflow


def test_linking_creates_statuses_that_classifications_fill(owner, project, admin) -> None:
    workflow, _, subjects = linked_workflow_with_subjects(project, 3, retire_after=2)
    admin.settle()
    status = workflow.subject_workflow_status(subjects[0].id)
    assert (status.classifications_count, status.retired_at, status.retirement_reason) == (0, None, None)
    assert status.links.subject.id == subjects[0].id and status.raw["links"]["workflow"] == workflow.id
    assert SubjectWorkflowStatus.find(status.id).raw == status.raw
    admin.add_classifications([
        {"workflow_id": workflow.id, "subject_id": subjects[0].id, "answer": "Other",
         "created_at": "2024-05-01T10:00:00Z"},
        {"workflow_id": workflow.id, "subject_id": subjects[0].id, "answer": "Other",
         "created_at": "2024-05-01T11:30:00+00:00"},
    ])
    admin.settle()
    retired = subjects[0].subject_workflow_status(workflow.id)
    assert (retired.classifications_count, retired.retirement_reason) == (2, "classification_count")
    assert retired.retired_at == "2024-05-01T11:30:00.000Z"
    progress = Workflow.find(workflow.id)  # the workflow's counts follow the statuses
    assert (progress.classifications_count, progress.subjects_count, progress.retired_set_member_subjects_count) == (
        2, 3, 1)
    assert progress.completeness == pytest.approx(1 / 3) and progress.finished_at is None


def test_filters_by_subject_ids(owner, project, admin) -> None:
    workflow, subject_set, subjects = linked_workflow_with_subjects(project, 4)
    admin.settle()
    picked = f"{subjects[1].id},{subjects[3].id}"
    picked_statuses = SubjectWorkflowStatus.where(workflow_id=workflow.id, subject_ids=picked)
    # status rows are made by jobs at random delays, so their ids do not follow the subjects' order
    assert sorted(s.links.subject.id for s in picked_statuses) == sorted([subjects[1].id, subjects[3].id])
    via_set = [s.links.subject.id for s in SubjectSet.find(subject_set.id).subject_workflow_statuses(workflow.id)]
    assert sorted(via_set) == sorted(s.id for s in subjects)  # the client joins ids with ", "
    via_workflow = [s.links.subject.id for s in Workflow.find(workflow.id).subject_workflow_statuses(subject_set.id)]
    assert sorted(via_workflow) == sorted(s.id for s in subjects)


def test_no_count_paging_ends_on_an_empty_page(owner, project, admin) -> None:
    workflow, _, subjects = linked_workflow_with_subjects(project, 22)
    admin.settle()
    body, _ = owner.get("/subject_workflow_statuses", params={"workflow_id": workflow.id})
    meta = body["meta"]["subject_workflow_statuses"]
    assert (meta["count"], meta["page_count"], len(body["subject_workflow_statuses"])) == (0, 0, 20)
    assert meta["next_href"] == f"/subject_workflow_statuses?page=2&workflow_id={workflow.id}"
    since = admin.last_request_id()
    assert len(list(SubjectWorkflowStatus.where(workflow_id=workflow.id))) == 22
    pages = [r["query"] for r in admin.requests(since_id=since)]
    assert pages == [f"workflow_id={workflow.id}", f"page=2&workflow_id={workflow.id}",
                                             f"page=3&workflow_id={workflow.id}"]


def _statuses(workflow) -> list:
    return sorted((s.links.subject.id, s.retirement_reason) for s in SubjectWorkflowStatus.where(workflow_id=workflow.id))


def test_statuses_appear_after_linking_within_the_status_delay(owner, project, admin) -> None:
    """app/controllers/api/v1/subject_sets_controller.rb#update_links and workflows_controller.rb (via
    subject_set_statuses_create_worker.rb) enqueue subject_workflow_status_create_worker.rb at random delays."""
    workflow, _, subjects = linked_workflow_with_subjects(project, 3)
    assert _statuses(workflow) == []  # a subject without a status row is simply absent
    admin.advance_clock(admin.settings()["status_delay"] + 0.5)
    expected = sorted((s.id, None) for s in subjects)
    assert eventually(lambda: _statuses(workflow), expected) == expected


def test_retire_subjects_answers_204_and_retires_later(owner, project, admin) -> None:
    """app/operations/workflows/retire_subjects.rb (``blank`` becomes ``nothing_here``) enqueues
    app/workers/retire_subject_worker.rb, which makes the status if missing and retires it."""
    workflow, _, subjects = linked_workflow_with_subjects(project, 2)
    admin.settle()
    since = admin.last_request_id()
    workflow.retire_subjects(subjects[0], reason="blank")
    assert [(r["path"], r["status"]) for r in admin.requests(since_id=since)] == [
        (f"/api/workflows/{workflow.id}/retired_subjects", 204)]
    unretired = sorted((s.id, None) for s in subjects)
    assert _statuses(workflow) == unretired
    admin.advance_clock(admin.settings()["retire_delay"] - 1)
    time.sleep(0.3)  # three job-worker ticks: nothing is due yet
    assert _statuses(workflow) == unretired
    admin.advance_clock(1.5)
    expected = sorted([(subjects[0].id, "nothing_here"), (subjects[1].id, None)])
    assert eventually(lambda: _statuses(workflow), expected) == expected
