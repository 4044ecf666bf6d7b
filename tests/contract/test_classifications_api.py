"""C1: a project team reads its classifications through the API, by ``last_id``, with the real client.

Each test names the Panoptes source it follows: ``app/controllers/api/v1/classifications_controller.rb``
(``project``, ``gold_standard``, ``require_authentication ... scopes: [:classification]``),
``app/serializers/classification_serializer.rb`` (fields and ``last_id`` hrefs),
``app/serializers/concerns/no_count_serializer.rb`` (meta) and ``app/policies/classification_policy.rb``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from contract_support import linked_workflow_with_subjects
from panoptes_client import Classification, Panoptes
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox import seed
from zooflow.sandbox.admin import SandboxAdminError

API = {"Accept": "application/vnd.api+json; version=1"}
FIELDS = {"id", "annotations", "created_at", "updated_at", "metadata", "href", "links"}


@pytest.fixture()
def classified(owner, project, admin):
    """A workflow of the test's project with ``add(n, **row)`` making classifications of its first subject."""
    workflow, _, subjects = linked_workflow_with_subjects(project, 1, retire_after=100_000)

    def add(n: int, **row) -> list[int]:
        rows = [{"workflow_id": workflow.id, "subject_id": subjects[0].id, "answer": seed.DEMO_ANSWERS[0],
                 "created_at": datetime.now(timezone.utc), **row}] * n
        return [int(i) for i in admin.add_classifications(rows)]

    def clear_of_powers_of_ten(n: int) -> None:
        """The next ``n`` ids cross no power of ten, where last_id paging repeats ids (see the last tests)."""
        (latest,) = add(1)
        if len(str(latest + n)) > len(str(latest)):
            add(10 ** len(str(latest)) - latest)

    add.workflow, add.subject, add.clear_of_powers_of_ten = workflow, subjects[0], clear_of_powers_of_ten
    return add


def _project_page(client: Panoptes, **params) -> dict:
    return client.get("/classifications/project", params=params)[0]


def test_last_id_pages_in_id_order_through_the_client(owner, project, classified, admin) -> None:
    """classifications_controller.rb#project with ``after_id``; the serializer rewrites next_href to the new last_id
    and the client (``Classification.where(scope="project")``) follows it until an empty page."""
    classified.clear_of_powers_of_ten(6)
    before, *ids = classified(6)
    since = admin.last_request_id()
    found = [int(c.id) for c in Classification.where(scope="project", project_id=project.id, last_id=before,
                                                     page_size=4)]
    assert found == ids
    queries = [parse_qs(r["query"]) for r in admin.requests(since_id=since) if r["path"] == "/api/classifications/project"]
    assert [q["last_id"] for q in queries] == [[str(before)], [str(ids[3])], [str(ids[4])]]
    assert all("page" not in q for q in queries)  # never a page number, so no offset paging


def test_the_meta_has_no_count_and_hrefs_carry_last_id(owner, project, classified) -> None:
    """no_count_serializer.rb (count and page_count 0; previous page 0) and ``add_last_id_paging_hrefs``."""
    classified.clear_of_powers_of_ten(3)
    first, second, third = classified(3)
    meta = _project_page(owner, project_id=project.id, last_id=first, page_size=1)["meta"]["classifications"]
    assert (meta["count"], meta["page_count"], meta["page"], meta["previous_page"], meta["next_page"]) == (0, 0, 1, 0, 2)
    assert meta["next_href"] == f"/classifications/project?last_id={second}&page_size=1&project_id={project.id}"
    assert meta["previous_href"] == f"/classifications/project?last_id={first}&page_size=1&project_id={project.id}"
    assert meta["first_href"] == f"/classifications/project?page_size=1&project_id={project.id}"
    empty = _project_page(owner, project_id=project.id, last_id=third)
    assert empty["classifications"] == [] and empty["meta"]["classifications"]["next_href"] is None


def test_records_have_the_serializer_fields_only(owner, project, classified) -> None:
    """classification_serializer.rb: no ``completed`` or ``gold_standard``; metadata gains workflow_version."""
    before, made = classified(2, user_login=seed.DEMO_USER)
    (record,) = _project_page(owner, project_id=project.id, last_id=before)["classifications"]
    assert set(record) == FIELDS and record["id"] == str(made) and record["href"] == f"/classifications/{made}"
    assert record["links"] == {"project": str(project.id), "user": record["links"]["user"], "user_group": None,
                               "workflow": str(classified.workflow.id), "subjects": [str(classified.subject.id)]}
    assert record["links"]["user"] == owner.get("/me")[0]["users"][0]["id"]
    assert record["metadata"]["workflow_version"] == "1.1"
    assert record["annotations"] == [{"task": seed.DEMO_TASK, "value": 0}]


def test_incomplete_classifications_are_included_and_unmarked(owner, project, classified) -> None:
    """``ProjectScope`` does not filter on ``completed`` and the serializer does not show it
    (app/models/classification.rb ``scope :complete`` is used by the index and the export only)."""
    (before,) = classified(1)
    (incomplete,) = classified(1, user_login=seed.DEMO_USER, completed=False)
    (record,) = _project_page(owner, project_id=project.id, last_id=before)["classifications"]
    assert record["id"] == str(incomplete) and set(record) == FIELDS
    with pytest.raises(SandboxAdminError, match="Only logged in users can store incomplete classifications"):
        classified(1, completed=False)  # app/models/classification.rb validates a user for incomplete ones


def test_filters_by_workflow(owner, project, classified) -> None:
    """restpack filters on the belongs_to keys (workflow_id) apply within the project scope."""
    before, made = classified(2)
    other, _, _ = linked_workflow_with_subjects(project, 1)
    assert [c.id for c in Classification.where(scope="project", project_id=project.id, last_id=before,
                                               workflow_id=classified.workflow.id)] == [str(made)]
    assert list(Classification.where(scope="project", project_id=project.id, last_id=before, workflow_id=other.id)) == []


def test_last_id_without_project_id_is_422(owner) -> None:
    """classifications_controller.rb: ``MissingParameter`` is rescued as unprocessable_entity."""
    with pytest.raises(PanoptesAPIException, match="Project ID required if last_id is included"):
        list(Classification.where(scope="project", last_id=1))


def test_only_the_team_sees_them_and_only_with_a_current_token(owner, project, classified, stranger, sandbox) -> None:
    """classification_policy.rb ``ProjectScope`` (projects the caller may update) and ``require_authentication``
    (Doorkeeper's empty 401 without a current token, whatever the project)."""
    (before,) = classified(1)
    classified(1)
    with stranger:
        assert list(Classification.where(scope="project", project_id=project.id, last_id=before)) == []
    url = f"{sandbox.endpoint}/api/classifications/project"
    for headers in (API, {**API, "Authorization": "Bearer not-a-token"}):
        refused = requests.get(url, params={"project_id": project.id}, headers=headers)
        assert (refused.status_code, refused.content) == (401, b"")


def test_a_page_across_a_power_of_ten_repeats_ids(owner, project, classified) -> None:
    """classification_serializer.rb sorts the page's *string* ids for the next last_id: a page holding 98, 99, 100
    sends the next request from 99, so 100 comes again. Consumers must dedupe by id."""
    (latest,) = classified(1)
    boundary = 10 ** len(str(latest + 3))
    made = classified(boundary - latest + 2)  # up to boundary + 2
    start = boundary - 3
    assert start >= latest and made[-1] >= boundary + 2
    found = [int(c.id) for c in Classification.where(scope="project", project_id=project.id, last_id=start,
                                                     page_size=4)]
    assert found[:4] == [boundary - 2, boundary - 1, boundary, boundary + 1]
    assert found[4:6] == [boundary, boundary + 1]  # next last_id was str max "…99", not boundary + 1
    assert sorted(set(found)) == [i for i in made if i > start]


def test_gold_standard_reads_a_frozen_table_so_new_gold_data_is_absent(owner, project, classified, sandbox) -> None:
    """app/models/gold_standard_annotation.rb is a snapshot only a rake task filled, and
    gold_standard_annotation_policy.rb limits it to ``public_gold_standard`` workflows; the action needs no login."""
    classified(1, user_login=seed.DEMO_USER, gold_standard=True)
    with Panoptes(endpoint=sandbox.endpoint):
        assert list(Classification.where(scope="gold_standard", workflow_id=classified.workflow.id)) == []
    body = owner.get("/classifications/gold_standard", params={"workflow_id": classified.workflow.id})[0]
    meta = body["meta"]["classifications"]
    assert (body["classifications"], meta["count"], meta["next_href"]) == ([], 0, None)
    assert meta["first_href"] == f"/classifications/gold_standard?workflow_id={classified.workflow.id}"
    with pytest.raises(SandboxAdminError, match="classifier is not a project expert"):
        classified(1, user_login=f"not-the-owner-{project.id}", gold_standard=True)
