"""U1-U4: subjects with uploaded media, reads, paging, metadata updates, deletion and limits."""

from __future__ import annotations

import re

import pytest
import requests
from contract_support import make_project, make_set, make_subjects, png_bytes, write_png
from panoptes_client import Subject
from panoptes_client.panoptes import PanoptesAPIException


def test_uploaded_media_round_trip(owner, project, tmp_path, admin) -> None:
    since = admin.last_request_id()
    subject = Subject()
    subject.links.project = project
    subject.add_location(str(write_png(tmp_path, 7)))
    subject.add_location({"image/jpeg": "https://example.org/elsewhere.jpeg"})
    subject.metadata.update({"#pool_id": 12, "name": "first"})
    subject.save()
    (create,) = [r for r in admin.requests(since_id=since) if r["method"] == "POST"]
    assert (create["path"], create["status"]) == ("/api/subjects", 201)
    assert subject.etag and subject.etag == Subject.find(subject.id).etag  # create and show ETags agree
    (upload_url,) = subject.raw["locations"][0].values()
    assert re.fullmatch(rf"{owner.endpoint}/uploads/subject_location/[0-9a-f-]{{36}}\.png\?se=\d+&sig=[0-9a-f]{{64}}",
                        upload_url)
    uploads = [r for r in admin.requests(since_id=since) if r["method"] == "PUT"]
    upload_path = upload_url.split("?")[0][len(owner.endpoint):]
    assert [(r["path"], r["status"], r["bytes"]) for r in uploads] == [(upload_path, 201, 0)]

    found = Subject.find(subject.id)
    public_url = found.locations[0]["image/png"]
    assert public_url == upload_url.split("?")[0]
    assert found.locations[1] == {"image/jpeg": "https://example.org/elsewhere.jpeg"}
    assert found.metadata == {"#pool_id": 12, "name": "first"}
    media = requests.get(public_url)
    assert (media.status_code, media.headers["Content-Type"], media.content) == (200, "image/png", png_bytes(7))


def test_upload_urls_are_signed(owner, project, tmp_path) -> None:
    subject = Subject()
    subject.links.project = project
    subject.add_location(str(write_png(tmp_path, 1)))
    subject.save()
    (url,) = subject.raw["locations"][0].values()
    forged = requests.put(url.replace("sig=", "sig=0"), data=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert forged.status_code == 403 and b"<Code>AuthenticationFailed</Code>" in forged.content
    missing_header = requests.put(url, data=b"x", headers={"Content-Type": "image/png"})
    assert missing_header.status_code == 400 and b"MissingRequiredHeader" in missing_header.content
    never_uploaded = requests.get(url.split("?")[0].replace(".png", "0.png"))
    assert never_uploaded.status_code == 404 and b"BlobNotFound" in never_uploaded.content


def test_paging_follows_next_href_in_id_order(owner, project, admin) -> None:
    subject_set = make_set(project)
    subjects = make_subjects(project, 23)
    subject_set.add(subjects)
    since = admin.last_request_id()
    listed = [s.id for s in Subject.where(subject_set_id=subject_set.id)]
    assert listed == sorted((s.id for s in subjects), key=int)
    pages = [r["query"] for r in admin.requests(since_id=since) if r["path"] == "/api/subjects"]
    assert pages == [f"subject_set_id={subject_set.id}", f"page=2&subject_set_id={subject_set.id}"]
    body, _ = owner.get("/subjects", params={"subject_set_id": subject_set.id, "page_size": 10, "page": 3})
    meta = body["meta"]["subjects"]
    assert (meta["count"], meta["page_count"], meta["next_href"], len(body["subjects"])) == (23, 3, None, 3)
    assert meta["previous_href"] == f"/subjects?page=2&page_size=10&subject_set_id={subject_set.id}"
    by_ids = [s.id for s in Subject.where(ids=f"{subjects[4].id},{subjects[2].id}")]
    assert by_ids == [subjects[2].id, subjects[4].id]


def test_page_size_zero_is_422_and_large_sizes_are_clamped(owner, project) -> None:
    with pytest.raises(PanoptesAPIException, match="Current page was incalculable"):
        owner.get("/subjects", params={"project_id": project.id, "page_size": 0})
    body, _ = owner.get("/subjects", params={"project_id": project.id, "page_size": 1000})
    assert body["meta"]["subjects"]["page_size"] == 100


def test_metadata_update_with_a_fresh_etag(owner, project, admin) -> None:
    (subject,) = make_subjects(project, 1, lambda i: {"a": 1})
    found = Subject.find(subject.id)
    found.metadata["b"] = 2
    since = admin.last_request_id()
    found.save()
    assert Subject.find(subject.id).metadata == {"a": 1, "b": 2}
    (put,) = [r for r in admin.requests(since_id=since) if r["method"] == "PUT"]
    assert put["status"] == 200


def test_a_metadata_put_replaces_the_metadata_and_takes_a_weak_etag(owner, project, admin) -> None:
    (subject,) = make_subjects(project, 1, lambda i: {"a": 1, "b": 2})
    found = Subject.find(subject.id)
    body, etag = Subject.http_put(subject.id, etag=f"W/{found.etag}", json={"subjects": {"metadata": {"b": 3}}})
    assert body["subjects"][0]["metadata"] == {"b": 3}  # replaced, not merged
    assert etag is None  # a PUT answers without an ETag
    assert Subject.find(subject.id).metadata == {"b": 3}
    since = admin.last_request_id()
    with pytest.raises(PanoptesAPIException, match="JsonApiController::PreconditionFailed"):
        Subject.http_put(subject.id, etag=found.etag, json={"subjects": {"metadata": {"stale": True}}})
    assert [(r["method"], r["status"]) for r in admin.requests(since_id=since)] == [("PUT", 412)]
    assert Subject.find(subject.id).metadata == {"b": 3}


@pytest.mark.parametrize("if_match", ["*", "{etag}, \"other\"", "\"other\", {etag}", "{etag}x", "W/\"other\""])
def test_if_match_is_one_exact_etag(owner, project, admin, if_match) -> None:
    """lib/json_api_controller/precondition_check.rb compares the header with the current ETag (``W/``-prefixed when
    the header is weak) as one string: a wildcard, a list or anything but the ETag is 412, and nothing changes."""
    (subject,) = make_subjects(project, 1, lambda i: {"a": 1})
    etag = Subject.find(subject.id).etag
    since = admin.last_request_id()
    with pytest.raises(PanoptesAPIException, match="JsonApiController::PreconditionFailed"):
        Subject.http_put(subject.id, etag=if_match.format(etag=etag), json={"subjects": {"metadata": {"b": 2}}})
    with pytest.raises(PanoptesAPIException, match="JsonApiController::PreconditionFailed"):
        Subject.http_delete(subject.id, etag=if_match.format(etag=etag))
    assert [(r["method"], r["status"]) for r in admin.requests(since_id=since)] == [("PUT", 412), ("DELETE", 412)]
    assert Subject.find(subject.id).metadata == {"a": 1}


def test_delete_without_if_match_is_428(owner, project, single_subject_save) -> None:
    """lib/json_api_controller/precondition_check.rb: update and destroy need the header."""
    (subject,) = make_subjects(project, 1)
    with pytest.raises(PanoptesAPIException, match="Request requires If-Match header to be present"):
        Subject.http_delete(subject.id)
    assert Subject.find(subject.id).id == subject.id


def test_list_and_show_etags_differ(owner, project) -> None:
    subject_set = make_set(project)
    subject_set.add(make_subjects(project, 2))
    listed = list(Subject.where(subject_set_id=subject_set.id))
    _, list_etag = owner.get("/subjects", params={"subject_set_id": subject_set.id})
    assert {s.etag for s in listed} == {list_etag}  # every object from an index carries the index ETag
    assert Subject.find(listed[0].id).etag not in (None, list_etag)


def test_saving_an_object_from_where_is_412(owner, project, single_subject_save) -> None:
    """Client issue #220: objects from an index carry the index ETag."""
    subject_set = make_set(project)
    subject_set.add(make_subjects(project, 1))
    listed = next(Subject.where(subject_set_id=subject_set.id))
    changed_elsewhere = Subject.find(listed.id)
    changed_elsewhere.metadata["by"] = "someone else"
    changed_elsewhere.save()
    listed.metadata["by"] = "me"
    with pytest.raises(PanoptesAPIException, match="JsonApiController::PreconditionFailed"):
        listed.save()
    listed.reload()  # the documented fix: find or reload, then edit
    listed.metadata["by"] = "me"
    listed.save()
    assert Subject.find(listed.id).metadata == {"by": "me"}


def test_update_rules(owner, project, single_subject_save) -> None:
    (subject,) = make_subjects(project, 1)
    with pytest.raises(PanoptesAPIException, match="Request requires If-Match header to be present"):
        Subject.http_put(subject.id, json={"subjects": {"metadata": {}}})
    found = Subject.find(subject.id)
    found.links.project = make_project()
    rejected = re.escape('{"links"=>"contains additional properties [\\"project\\"]')
    with pytest.raises(PanoptesAPIException, match=rejected):
        found.save()
    other_set = make_set(project)
    found = Subject.find(subject.id)
    Subject.http_put(subject.id, etag=found.etag, json={"subjects": {"links": {"subject_sets": [other_set.id]}}})
    assert [s.id for s in Subject.find(subject.id).links.subject_sets] == [other_set.id]


def test_unknown_subject_is_404(owner, admin) -> None:
    since = admin.last_request_id()
    with pytest.raises(PanoptesAPIException, match="Could not find subject with id='987654321'"):
        owner.get("/subjects/987654321")
    assert [r["status"] for r in admin.requests(since_id=since) if r["path"].startswith("/api/")] == [404]


def test_delete_is_soft_and_still_counts_against_the_limit(sandbox, stranger, configure) -> None:
    configure(subject_limit=2)
    with stranger:
        project = make_project()
        first, second = make_subjects(project, 2)
        Subject.find(first.id).delete()
        with pytest.raises(PanoptesAPIException, match=f"Could not find subject with id='{first.id}'"):
            stranger.get(f"/subjects/{first.id}")
        assert [s.id for s in Subject.where(project_id=project.id)] == [second.id]
        with pytest.raises(PanoptesAPIException, match="User has uploaded 2 subjects of 2 maximum"):
            stranger.post("/subjects", json={"subjects": {"locations": ["image/png"],
                                                          "links": {"project": project.id}}})


def test_create_rejections(owner, project) -> None:
    with pytest.raises(PanoptesAPIException, match="did not contain a required property of 'project'"):
        owner.post("/subjects", json={"subjects": {"locations": ["image/png"], "links": {}}})
    with pytest.raises(PanoptesAPIException, match="Validation failed: Locations image/tiff"):
        owner.post("/subjects", json={"subjects": {"locations": ["image/tiff"], "links": {"project": project.id}}})
    mapped, _ = owner.post("/subjects", json={"subjects": {"locations": ["audio/mp3"],
                                                           "links": {"project": project.id}}})
    assert list(mapped["subjects"][0]["locations"][0]) == ["audio/mpeg"]
