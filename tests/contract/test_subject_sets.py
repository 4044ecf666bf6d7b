"""S1-S5: subject sets, their membership links, set_member_subjects, and the rejections.

``set_member_subjects_count`` is written by a background job (panoptes-realism.md section 1), so
tests that mean the counted state call ``admin.settle()`` first.
"""

from __future__ import annotations

import re

import pytest
from contract_support import make_project, make_set, make_subjects, make_workflow, unique
from panoptes_client import Subject, SubjectSet
from panoptes_client.set_member_subject import SetMemberSubject
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox import seed


def test_create_and_show(owner, project, admin) -> None:
    since = admin.last_request_id()
    subject_set = make_set(project, "batch one")
    (post,) = [r for r in admin.requests(since_id=since) if r["method"] == "POST"]
    assert (post["path"], post["status"]) == ("/api/subject_sets", 201)
    created = subject_set.raw  # the 201 body, as the client keeps it
    assert (created["display_name"], created["set_member_subjects_count"], created["metadata"]) == ("batch one", 0, {})
    assert created["links"]["project"] == project.id and created["links"]["workflows"] == []
    assert subject_set.etag and SubjectSet.find(subject_set.id).etag == subject_set.etag  # create and show agree
    found = SubjectSet.find(subject_set.id)
    assert (found.display_name, found.set_member_subjects_count, found.metadata) == ("batch one", 0, {})
    assert found.links.project.id == project.id and list(found.links.workflows) == []


def test_create_without_project_link_is_422(owner, admin) -> None:
    subject_set = SubjectSet()
    subject_set.display_name = unique("orphan")
    since = admin.last_request_id()
    with pytest.raises(PanoptesAPIException,
                       match=re.escape('{"links"=>"did not contain a required property of \'project\'"}')):
        subject_set.save()
    assert [(r["path"], r["status"]) for r in admin.requests(since_id=since) if r["path"].startswith("/api/")] == [
        ("/api/subject_sets", 422)]
    assert subject_set.id is None and list(SubjectSet.where(display_name=subject_set.display_name)) == []


def test_names_are_unique_within_a_project(owner, project) -> None:
    make_set(project, "same name")
    make_set(make_project(), "same name")  # another project may reuse it
    with pytest.raises(PanoptesAPIException, match="Validation failed: Display name has already been taken"):
        make_set(project, "same name")


def test_add_and_remove_subjects(owner, project, admin) -> None:
    subject_set = make_set(project)
    subjects = make_subjects(project, 4)
    etag_before = SubjectSet.find(subject_set.id).etag
    since = admin.last_request_id()
    subject_set.add(subjects)
    admin.settle()
    assert SubjectSet.find(subject_set.id).set_member_subjects_count == 4
    assert SubjectSet.find(subject_set.id).etag != etag_before  # linking touches the set
    assert sorted(s.id for s in subject_set.subjects) == sorted(s.id for s in subjects)
    assert subjects[0] in subject_set and make_subjects(project, 1)[0] not in subject_set
    membership = list(SetMemberSubject.where(subject_set_id=subject_set.id, subject_id=subjects[1].id))
    assert [(m.links.subject.id, m.links.subject_set.id) for m in membership] == [(subjects[1].id, subject_set.id)]
    assert SetMemberSubject.find(membership[0].id).raw["links"]["subject"] == subjects[1].id
    subject_set.remove(subjects[:3])
    assert [s.id for s in subject_set.subjects] == [subjects[3].id]
    links = [(r["method"], r["status"]) for r in admin.requests(since_id=since) if "/links/subjects" in r["path"]]
    assert links == [("POST", 200), ("DELETE", 204)]


def test_link_answers_the_set_and_unlink_ignores_non_members(owner, project, admin) -> None:
    subject_set = make_set(project)
    members, outsider = make_subjects(project, 2), make_subjects(project, 1)[0]
    body, etag = SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subjects": [s.id for s in members]},
                                      retry=True)
    (answered,) = body["subject_sets"]
    # subject_set_subject_counter_worker.rb has not counted the new members when the answer is made
    assert (answered["id"], answered["set_member_subjects_count"]) == (subject_set.id, 0)
    assert etag is None  # link POSTs carry no ETag
    since = admin.last_request_id()
    assert SubjectSet.http_delete(f"{subject_set.id}/links/subjects/{members[0].id},{outsider.id}",
                                  retry=True) == (None, None)  # 204: no body, no ETag
    (delete,) = admin.requests(since_id=since)
    assert (delete["status"], delete["bytes"]) == (204, 0)
    assert [s.id for s in SubjectSet.find(subject_set.id).subjects] == [members[1].id]
    assert Subject.find(members[0].id).raw["links"]["subject_sets"] == []  # unlinked, not deleted
    admin.settle()
    assert SubjectSet.find(subject_set.id).set_member_subjects_count == 1


def test_set_member_subjects_page_with_a_relative_next_href(owner, project, admin) -> None:
    subject_set = make_set(project)
    subjects = make_subjects(project, 21)
    subject_set.add(subjects)
    body, _ = owner.get("/set_member_subjects", params={"subject_set_id": subject_set.id})
    meta = body["meta"]["set_member_subjects"]
    assert (meta["count"], meta["page_count"], len(body["set_member_subjects"])) == (21, 2, 20)
    assert meta["next_href"] == f"/set_member_subjects?page=2&subject_set_id={subject_set.id}"
    since = admin.last_request_id()
    members = [m.raw["links"]["subject"] for m in SetMemberSubject.where(subject_set_id=subject_set.id)]
    assert members == [s.id for s in subjects]
    assert [r["query"] for r in admin.requests(since_id=since)] == [
        f"subject_set_id={subject_set.id}", f"page=2&subject_set_id={subject_set.id}"]


def test_relinking_a_member_is_200_and_ignored(owner, project, admin) -> None:
    """app/controllers/api/v1/subject_sets_controller.rb#add_relation imports with on_duplicate_key_ignore."""
    subject_set = make_set(project)
    member, newcomer = make_subjects(project, 2)
    subject_set.add([member])
    # SubjectSet.add reads the set first and may skip members; post the link itself, as a retry would
    body, _ = SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subjects": [member.id, newcomer.id]})
    assert body["subject_sets"][0]["id"] == subject_set.id  # 200 with the set, not a 422
    memberships = [m.raw["links"]["subject"] for m in SetMemberSubject.where(subject_set_id=subject_set.id)]
    assert memberships == [member.id, newcomer.id]
    admin.settle()
    assert SubjectSet.find(subject_set.id).set_member_subjects_count == 2


def test_link_rejections(owner, project, stranger) -> None:
    """subject_sets_controller.rb#add_relation: every id must be a distinct active subject."""
    subject_set = make_set(project)
    subject, deleted = make_subjects(project, 2)
    subject_set.add([subject])
    with pytest.raises(PanoptesAPIException, match="Error: check the subject set and all the subjects exist."):
        SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subjects": [subject.id, subject.id]})
    Subject.find(deleted.id).delete()
    with pytest.raises(PanoptesAPIException, match="Error: check the subject set and all the subjects exist."):
        SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subjects": [deleted.id]})
    with pytest.raises(PanoptesAPIException, match="Error: check the subject set and all the subjects exist."):
        SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subjects": ["987654321"]})
    with pytest.raises(PanoptesAPIException, match="Link relation subjects must match body key"):
        SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subject_ids": [subject.id]})
    with stranger:
        foreign = make_subjects(make_project(), 1)[0]
    # Subject.save nests `with client:` and the client keeps one "previous" slot, so leaving the
    # stranger's block does not bring the owner back: enter the owner again.
    with owner, pytest.raises(PanoptesAPIException, match="Couldn't find linked subjects for current user"):
        SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subjects": [foreign.id]})


def test_update_and_delete_need_the_current_etag(owner, project) -> None:
    subject_set = SubjectSet.find(make_set(project).id)
    with pytest.raises(PanoptesAPIException, match="Request requires If-Match header to be present"):
        SubjectSet.http_put(subject_set.id, json={"subject_sets": {"display_name": "no etag"}})
    stale = SubjectSet.find(subject_set.id)
    subject_set.display_name = "renamed set"
    subject_set.save()
    assert SubjectSet.find(subject_set.id).display_name == "renamed set"
    with pytest.raises(PanoptesAPIException, match="JsonApiController::PreconditionFailed"):
        stale.delete()
    with pytest.raises(PanoptesAPIException, match="Request requires If-Match header to be present"):
        SubjectSet.http_delete(subject_set.id)
    SubjectSet.find(subject_set.id).delete()
    with pytest.raises(PanoptesAPIException, match=f"Could not find subject_set with id='{subject_set.id}'"):
        owner.get(f"/subject_sets/{subject_set.id}")


def test_update_rejects_fields_outside_the_schema(owner, project) -> None:
    subject_set = SubjectSet.find(make_set(project).id)
    with pytest.raises(PanoptesAPIException, match=re.escape('contains additional properties [\\"links\\"]')):
        SubjectSet.http_put(subject_set.id, etag=subject_set.etag,
                            json={"subject_sets": {"links": {"project": project.id}}})


def test_index_by_project_and_by_workflow(owner, project) -> None:
    workflow = make_workflow(project)
    linked, unlinked = make_set(project), make_set(project)
    workflow.add_subject_sets(linked)
    assert [s.id for s in SubjectSet.where(project_id=project.id)] == [linked.id, unlinked.id]
    assert [s.id for s in SubjectSet.where(workflow_id=workflow.id)] == [linked.id]
    assert [s.id for s in SubjectSet.where(project_id=project.id, display_name=unlinked.display_name)] == [unlinked.id]
    assert [w.id for w in SubjectSet.find(linked.id).links.workflows] == [workflow.id]


def test_others_cannot_change_a_set(owner, project, stranger) -> None:
    subject_set = make_set(project)
    with stranger:
        with pytest.raises(PanoptesAPIException, match=f"Could not find subject_set with id='{subject_set.id}'"):
            SubjectSet.http_post(f"{subject_set.id}/links/subjects", json={"subjects": []})


def test_the_seeded_set_is_linked_to_the_seeded_workflow(owner) -> None:
    (seeded,) = SubjectSet.where(display_name=seed.DEMO_SUBJECT_SET_NAME)
    assert [w.display_name for w in seeded.links.workflows] == [seed.DEMO_WORKFLOW_NAME]
