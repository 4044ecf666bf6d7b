"""zooflow's client with tokens Panoptes no longer accepts (app/controllers/api/api_controller.rb).

Panoptes looks a bearer token up by its string: a revoked or expired one still reads as its user,
only writes and other Doorkeeper-protected actions refuse it (401), and an unknown one is no login
at all, so a private project is a 404 that looks like a wrong slug.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from panoptes_client import SubjectSet

from zooflow.errors import ConfigurationError
from zooflow.panoptes import connect
from zooflow.projects import find_project
from zooflow.sandbox import seed


def _holding(client, token: str) -> None:
    """The client believes ``token`` is current (naive local time: the client's own convention)."""
    client.bearer_token = token
    client.bearer_expires = datetime.now() + timedelta(hours=1)


def _rename_demo_set(name: str) -> None:
    subject_set = next(s for s in SubjectSet.where(project_id=find_project(seed.DEMO_PROJECT_SLUG).id)
                       if s.display_name.startswith(seed.DEMO_SUBJECT_SET_NAME))
    subject_set = SubjectSet.find(subject_set.id)  # the show ETag: an index ETag would be 412
    subject_set.display_name = name
    subject_set.save()


def test_a_revoked_token_reads_and_a_write_gets_a_fresh_one(demo_config, demo_sandbox) -> None:
    client = connect(demo_config)
    with client:
        first = client.get_bearer_token()
        client.bearer_expires = datetime.now() - timedelta(hours=1)
        assert client.get_bearer_token() != first  # refreshed; the first use below revokes ``first``
        find_project(seed.DEMO_PROJECT_SLUG)
        _holding(client, first)
        since = demo_sandbox.admin.last_request_id()
        _rename_demo_set(seed.DEMO_SUBJECT_SET_NAME)  # reads as the owner with the revoked token, then writes
        assert client.bearer_token != first
    calls = [(r["method"], r["status"]) for r in demo_sandbox.admin.requests(since_id=since)]
    assert calls[0] == ("GET", 200)  # no 401 and no token grant before the first read
    assert [status for method, status in calls if method == "PUT"] == [401, 200]  # refused once, then a fresh token


def test_an_unknown_token_is_anonymous_and_the_error_names_the_login(demo_config, demo_sandbox) -> None:
    client = connect(demo_config)
    with client:
        project = find_project(seed.DEMO_PROJECT_SLUG)
        _holding(client, "a-token-this-server-never-issued")
        with pytest.raises(ConfigurationError, match="the login may have expired or been refused: check the "
                                                     "connection's credentials"):
            find_project(seed.DEMO_PROJECT_SLUG)  # private, and the caller is nobody
        since = demo_sandbox.admin.last_request_id()
        subject_set = SubjectSet()
        subject_set.links.project = project
        subject_set.display_name = f"tokens {uuid.uuid4().hex[:8]}"
        subject_set.save()  # "You must be logged in" (401): sent again with a fresh token
    posts = [r["status"] for r in demo_sandbox.admin.requests(since_id=since) if r["path"] == "/api/subject_sets"]
    assert posts == [401, 201] and subject_set.id
