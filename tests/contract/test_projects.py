"""P1-P2: project show, index by slug, create; private visibility; ETags; schema rejections."""

from __future__ import annotations

import re
import uuid

import pytest
from contract_support import make_project, unique
from panoptes_client import Panoptes, Project
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox import seed


def test_seeded_demo_project(owner) -> None:
    project = Project.find(slug=seed.DEMO_PROJECT_SLUG)
    assert (project.display_name, project.private) == (seed.DEMO_PROJECT_NAME, True)
    assert project.slug == seed.DEMO_PROJECT_SLUG == "zooflow/glitch-demo"
    assert [w.display_name for w in project.links.workflows] == [seed.DEMO_WORKFLOW_NAME]
    assert project.links.owner.login == seed.DEMO_USER


def test_create_project_gives_slug_and_show_etag(owner, admin) -> None:
    suffix = uuid.uuid4().hex[:8]
    name = f"Glitches & Café {suffix}"
    since = admin.last_request_id()
    project = make_project(name)
    assert [(r["method"], r["path"], r["status"]) for r in admin.requests(since_id=since)
            if r["path"].startswith("/api/")] == [("POST", "/api/projects", 201)]
    assert project.slug == f"{seed.DEMO_USER}/glitches-cafe-{suffix}"
    assert project.private is True and project.etag
    found = Project.find(slug=project.slug)
    assert found.id == project.id and isinstance(found.id, str)
    assert [p.id for p in Project.where(display_name=name)] == [project.id]
    body, show_etag = owner.get(f"/projects/{project.id}")
    assert body["projects"][0]["display_name"] == name
    assert show_etag == project.etag  # create and show hash the same record
    _, index_etag = owner.get("/projects", params={"slug": project.slug})
    assert index_etag and index_etag != show_etag


def test_display_names_are_unique_per_owner(owner) -> None:
    project = make_project()
    with pytest.raises(PanoptesAPIException, match="Display name Must be unique for owner"):
        make_project(project.display_name)


def test_unknown_id_and_slug_are_not_found(owner, admin) -> None:
    owner.get_bearer_token()
    since = admin.last_request_id()
    with pytest.raises(PanoptesAPIException, match="Could not find project with id='987654'"):
        owner.get("/projects/987654")
    with pytest.raises(PanoptesAPIException, match="Could not find project with id='987654'"):
        Project.find(987654)
    with pytest.raises(PanoptesAPIException, match="Could not find project with slug='nobody/nothing-here'"):
        Project.find(slug="nobody/nothing-here")
    # an id is a show (404); a slug is an index filter that matches nothing (200, empty), as on Panoptes
    assert [(r["path"], r["query"], r["status"]) for r in admin.requests(since_id=since)] == [
        ("/api/projects/987654", "", 404), ("/api/projects/987654", "", 404),
        ("/api/projects", "slug=nobody%2Fnothing-here", 200)]
    assert owner.get("/projects", params={"slug": "nobody/nothing-here"})[0]["projects"] == []


def test_private_projects_are_invisible_to_others(sandbox, owner, stranger) -> None:
    private, public = make_project(private=True), make_project(private=False)
    for client in (Panoptes(endpoint=sandbox.endpoint), stranger):
        with client:
            with pytest.raises(PanoptesAPIException, match=f"Could not find project with id='{private.id}'"):
                client.get(f"/projects/{private.id}")
            with pytest.raises(PanoptesAPIException, match="Could not find project"):
                Project.find(slug=private.slug)
            assert Project.find(public.id).slug == public.slug


def test_create_requires_the_schema_fields(owner) -> None:
    with pytest.raises(PanoptesAPIException, match="did not contain a required property of 'description'"):
        owner.post("/projects", json={"projects": {"display_name": unique("x"), "primary_language": "en",
                                                   "private": True}})
    with pytest.raises(PanoptesAPIException, match=re.escape('contains additional properties [\\"colour\\"]')):
        owner.post("/projects", json={"projects": {"display_name": unique("x"), "description": "d",
                                                   "primary_language": "en", "private": True, "colour": "red"}})
    with pytest.raises(PanoptesAPIException, match="did not match the following type: boolean"):
        owner.post("/projects", json={"projects": {"display_name": unique("x"), "description": "d",
                                                   "primary_language": "en", "private": "yes"}})

