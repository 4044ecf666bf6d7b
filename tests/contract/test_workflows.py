"""W1-W3 and R2: workflow show/index/create/update, versions, set links, retire and unretire.

Counts and retirements reach a workflow through background jobs (panoptes-realism.md sections 1-2;
tests/contract/test_counters.py shows the lags), so tests that mean the settled state call
``admin.settle()`` first.
"""

from __future__ import annotations

import pytest
from contract_support import linked_workflow_with_subjects, make_project, make_set, make_subjects, make_workflow
from panoptes_client import Project, SubjectSet, SubjectWorkflowStatus, Workflow
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox import seed


def test_created_workflow_shape(project) -> None:
    workflow = make_workflow(project, retire_after=5)
    found = Workflow.find(workflow.id)
    assert found.version == "1.1" and found.first_task == seed.DEMO_TASK
    assert found.tasks == seed.DEMO_TASKS
    assert found.retirement == {"criteria": "classification_count", "options": {"count": 5}}
    assert (found.subjects_count, found.retired_set_member_subjects_count, found.classifications_count) == (0, 0, 0)
    assert found.completeness == 0.0 and found.finished_at is None
    assert found.links.project.id == project.id and list(found.links.subject_sets) == []


def test_index_by_project_is_capped_at_25_per_page(owner, project) -> None:
    for i in range(27):
        make_workflow(project, name=f"wf {i:02d}")
    body, _ = owner.get("/workflows", params={"project_id": project.id, "page_size": 100})
    meta = body["meta"]["workflows"]
    assert (len(body["workflows"]), meta["page_size"], meta["count"], meta["page_count"]) == (25, 25, 27, 2)
    assert meta["next_href"] == f"/workflows?page=2&page_size=25&project_id={project.id}"
    names = [w.display_name for w in Workflow.where(project_id=project.id, page_size=100)]
    assert names == [f"wf {i:02d}" for i in range(27)]


def test_update_needs_the_current_etag_and_bumps_versions(owner, project) -> None:
    workflow = Workflow.find(make_workflow(project).id)
    stale = Workflow.find(workflow.id)
    workflow.display_name = "renamed"
    workflow.save()
    assert Workflow.find(workflow.id).version == "1.2"  # texts only: minor
    stale.display_name = "too late"
    with pytest.raises(PanoptesAPIException, match="JsonApiController::PreconditionFailed"):
        stale.save()
    fresh = Workflow.find(workflow.id)
    fresh.tasks = {seed.DEMO_TASK: {**seed.DEMO_TASKS[seed.DEMO_TASK], "required": False}}
    fresh.save()
    updated = Workflow.find(workflow.id)
    assert (updated.display_name, updated.version) == ("renamed", "2.2")  # structure only: major
    assert updated.tasks[seed.DEMO_TASK]["required"] is False


def test_inactive_workflows_leave_the_project_links_but_stay_listed(owner, project) -> None:
    active, inactive = make_workflow(project), Workflow.find(make_workflow(project).id)
    inactive.active = False
    inactive.save()
    assert [w.id for w in Project.find(project.id).links.workflows] == [active.id]
    assert [w.id for w in Workflow.where(project_id=project.id)] == [active.id, inactive.id]
    assert [w.id for w in Workflow.where(project_id=project.id, active=False)] == [inactive.id]


def test_update_without_if_match_is_428(owner, project) -> None:
    workflow = make_workflow(project)
    with pytest.raises(PanoptesAPIException, match="Request requires If-Match header to be present"):
        Workflow.http_put(workflow.id, json={"workflows": {"display_name": "no etag"}})


def test_create_needs_a_project_the_user_owns(owner) -> None:
    with pytest.raises(PanoptesAPIException, match="did not contain a required property of 'project'"):
        owner.post("/workflows", json={"workflows": {"display_name": "x", "primary_language": "en", "links": {}}})
    with pytest.raises(PanoptesAPIException, match="Couldn't find linked project for current user"):
        owner.post("/workflows", json={"workflows": {"display_name": "x", "primary_language": "en",
                                                     "links": {"project": "987654"}}})


def test_linking_sets_moves_the_counts(owner, project, admin) -> None:
    workflow = make_workflow(project)
    first, second = make_set(project), make_set(project)
    first.add(make_subjects(project, 3))
    second.add(make_subjects(project, 2))
    since = admin.last_request_id()
    workflow.add_subject_sets([first, second])
    admin.settle()
    assert Workflow.find(workflow.id).subjects_count == 5
    assert sorted(s.id for s in Workflow.find(workflow.id).links.subject_sets) == sorted([first.id, second.id])
    workflow.remove_subject_sets([second])
    admin.settle()
    after = Workflow.find(workflow.id)
    assert (after.subjects_count, [s.id for s in after.links.subject_sets]) == (3, [first.id])
    statuses = [(r["method"], r["path"], r["status"]) for r in admin.requests(since_id=since)
                if "/links/" in r["path"]]
    assert statuses == [("POST", f"/api/workflows/{workflow.id}/links/subject_sets", 200),
                        ("DELETE", f"/api/workflows/{workflow.id}/links/subject_sets/{second.id}", 204)]


def test_link_answers_the_workflow_and_unlink_takes_several_ids(owner, project, admin) -> None:
    workflow = make_workflow(project)
    sets = [make_set(project) for _ in range(3)]
    sets[0].add(make_subjects(project, 2))
    body, etag = Workflow.http_post(f"{workflow.id}/links/subject_sets", json={"subject_sets": [s.id for s in sets]},
                                    retry=True)
    (answered,) = body["workflows"]
    assert answered["id"] == workflow.id and answered["links"]["subject_sets"] == [s.id for s in sets]
    # workflow_subjects_count_worker.rb has not run when the answer is made
    assert (answered["subjects_count"], answered["retired_set_member_subjects_count"]) == (0, 0)
    assert etag is None  # link POSTs carry no ETag
    since = admin.last_request_id()
    Workflow.find(workflow.id).remove_subject_sets(sets[1:])
    (delete,) = [r for r in admin.requests(since_id=since) if r["method"] == "DELETE"]
    assert (delete["path"], delete["status"], delete["bytes"]) == (
        f"/api/workflows/{workflow.id}/links/subject_sets/{sets[1].id},{sets[2].id}", 204, 0)
    admin.settle()
    after = Workflow.find(workflow.id)
    assert ([s.id for s in after.links.subject_sets], after.subjects_count) == ([sets[0].id], 2)
    assert [w.id for w in SubjectSet.find(sets[1].id).links.workflows] == []


def test_sets_that_cannot_be_linked(owner, project, stranger) -> None:
    workflow = make_workflow(project)
    with stranger:
        strangers_set = make_set(make_project())  # private: the owner cannot see it
    with owner:
        with pytest.raises(PanoptesAPIException, match="Couldn't find linked subject_sets for current user"):
            workflow.add_subject_sets([strangers_set.id])
        with pytest.raises(PanoptesAPIException, match="Couldn't find linked subject_sets for current user"):
            workflow.add_subject_sets(["987654321"])
        with pytest.raises(PanoptesAPIException, match="Link relation subject_sets must match body key"):
            Workflow.http_post(f"{workflow.id}/links/subject_sets", json={"sets": [strangers_set.id]})
        assert list(Workflow.find(workflow.id).links.subject_sets) == []


def test_a_set_of_another_project_is_copied_into_the_workflows_project(owner, project, admin) -> None:
    """Spec section 4: Panoptes deep-copies such a set (SubjectSetCopier) and links the copy; it does not refuse."""
    workflow = make_workflow(project)
    other_project = make_project()
    foreign = make_set(other_project)
    subjects = make_subjects(other_project, 2)
    foreign.add(subjects)
    workflow.add_subject_sets([foreign])
    admin.settle()
    linked = Workflow.find(workflow.id)
    (copy,) = linked.links.subject_sets
    assert copy.id != foreign.id and copy.links.project.id == project.id
    assert sorted(s.id for s in copy.subjects) == sorted(s.id for s in subjects)
    assert linked.subjects_count == 2
    original = SubjectSet.find(foreign.id)
    assert original.links.project.id == other_project.id and list(original.links.workflows) == []


def test_retire_and_unretire(owner, project, admin) -> None:
    workflow, subject_set, subjects = linked_workflow_with_subjects(project, 4)
    since = admin.last_request_id()
    workflow.retire_subjects(subjects[:3], reason="other")
    admin.settle()
    progress = Workflow.find(workflow.id)
    assert (progress.subjects_count, progress.retired_set_member_subjects_count, progress.completeness) == (4, 3, 0.75)
    assert progress.finished_at is None
    status = next(SubjectWorkflowStatus.where(workflow_id=workflow.id, subject_id=subjects[0].id))
    assert status.retirement_reason == "other" and status.retired_at
    workflow.retire_subjects(subjects[3])
    admin.settle()
    assert Workflow.find(workflow.id).finished_at is not None
    assert Workflow.find(workflow.id).completeness == 1.0
    workflow.unretire_subjects(subjects[:2])
    admin.settle()
    back = Workflow.find(workflow.id)
    assert (back.retired_set_member_subjects_count, back.finished_at) == (2, None)
    workflow.unretire_subjects_by_subject_set(subject_set)
    admin.settle()
    assert Workflow.find(workflow.id).retired_set_member_subjects_count == 0
    posts = [(r["path"].rsplit("/", 1)[1], r["status"]) for r in admin.requests(since_id=since)
             if r["path"].endswith(("unretire_subjects", "retired_subjects"))]
    assert posts == [("retired_subjects", 204)] * 2 + [("unretire_subjects", 204)] * 2


def test_retirement_reason_must_be_known(owner, project) -> None:
    workflow, _, subjects = linked_workflow_with_subjects(project, 1)
    with pytest.raises(PanoptesAPIException, match="Retirement reason 'bored' is not included in the list"):
        workflow.retire_subjects(subjects, reason="bored")
