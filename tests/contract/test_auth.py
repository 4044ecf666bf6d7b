"""A1-A3 and X: cookie sign-in, OAuth grants, bearer checks, token refresh and ``User.me``.

Bearer tokens follow Panoptes' ``app/controllers/api/api_controller.rb`` (``current_resource_owner``
looks the token up by its string alone; ``require_authentication`` puts ``doorkeeper_authorize!``
in front of the actions each controller lists) and ``config/initializers/doorkeeper.rb``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from unittest import mock

import pytest
import requests
from contract_support import make_project, make_set, make_subjects, unique
from panoptes_client import Panoptes, Project, SubjectSet, User
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.sandbox import seed


def test_sign_in_form_gives_the_csrf_token_and_a_session_cookie(sandbox) -> None:
    response = requests.get(f"{sandbox.endpoint}/users/sign_in", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"login": "/users/sign_in"}
    assert response.headers["X-CSRF-Param"] == "authenticity_token"
    assert len(response.headers["X-CSRF-Token"]) > 20
    assert "_Panoptes_session" in response.cookies


def test_password_login_then_me(owner, admin) -> None:
    since = admin.last_request_id()
    me = User.me()
    assert me.login == seed.DEMO_USER
    assert int(me.id) == owner.logged_in_user_id
    calls = [(r["method"], r["path"], r["detail"]) for r in admin.requests(since_id=since)]
    assert ("POST", "/oauth/token", "grant_type=password") in calls
    assert ("GET", f"/api/users/{me.id}", None) in calls


def test_api_me_needs_a_login(owner, sandbox, admin) -> None:
    """app/controllers/api/v1/users_controller.rb: ``require_authentication :me`` answers Doorkeeper's empty 401."""
    assert owner.get("/me")[0]["users"][0]["login"] == seed.DEMO_USER
    since = admin.last_request_id()
    with Panoptes(endpoint=sandbox.endpoint):
        assert Panoptes.client().get("/me") == (None, None)  # the client reads an empty 401 as "no data"
    assert [(r["path"], r["status"], r["bytes"]) for r in admin.requests(since_id=since)] == [("/api/me", 401, 0)]
    anonymous = requests.get(f"{sandbox.endpoint}/api/me", headers=API)
    assert anonymous.headers["WWW-Authenticate"] == (
        'Bearer realm="Panoptes", error="invalid_token", error_description="The access token is invalid"')


@pytest.mark.parametrize("username, password", [(seed.DEMO_USER, "wrong"), ("nobody-here", "whatever")])
def test_bad_credentials_are_a_json_401(sandbox, admin, username, password) -> None:
    since = admin.last_request_id()
    with pytest.raises(PanoptesAPIException, match="Invalid email or password."):
        Panoptes(endpoint=sandbox.endpoint, username=username, password=password)
    assert [r["status"] for r in admin.requests(since_id=since) if r["path"] == "/users/sign_in"] == [200, 401]


def test_sign_in_needs_the_csrf_token_of_the_session(sandbox) -> None:
    session = requests.Session()
    session.get(f"{sandbox.endpoint}/users/sign_in")
    response = session.post(f"{sandbox.endpoint}/users/sign_in", json={
        "authenticity_token": "forged", "user": {"login": seed.DEMO_USER, "password": seed.DEMO_PASSWORD}})
    assert response.status_code == 422 and "CSRF" in response.json()["error"]


def test_writes_without_login_are_401_json(sandbox) -> None:
    with Panoptes(endpoint=sandbox.endpoint):
        with pytest.raises(PanoptesAPIException, match="You must be logged in to access this resource."):
            make_project()


def test_password_grant_needs_a_signed_in_session(sandbox) -> None:
    """lib/gem_ext/doorkeeper/error_response.rb: Panoptes answers invalid_grant with 401, not Doorkeeper's 400."""
    response = requests.post(f"{sandbox.endpoint}/oauth/token", data={"grant_type": "password", "client_id": "x"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_grant"


def _send_token(client: Panoptes, token: str) -> None:
    """Make the client send ``token`` as if it were current (naive local time: the client's own convention)."""
    client.bearer_token = token
    client.bearer_expires = datetime.now() + timedelta(hours=1)


def test_an_unknown_bearer_token_is_anonymous(owner, project, admin, sandbox) -> None:
    """api_controller.rb: ``doorkeeper_token`` finds no token, so ``api_user`` is anonymous: a private project is
    404 "could not find", a public one is readable; writes meet ``require_login``, Doorkeeper actions its 401."""
    public = make_project(private=False)
    _send_token(owner, "not-a-token")
    since = admin.last_request_id()
    with pytest.raises(PanoptesAPIException, match=f"Could not find project with id='{project.id}'"):
        Project.find(project.id)
    assert Project.find(public.id).display_name == public.display_name
    with pytest.raises(PanoptesAPIException, match="You must be logged in to access this resource."):
        make_project()
    assert owner.post(f"/projects/{project.id}/classifications_export",
                      json={"media": {"content_type": "text/csv"}}) == (None, None)  # Doorkeeper's empty 401
    assert [(r["status"], r["bytes"] > 0) for r in admin.requests(since_id=since)] == [
        (404, True), (200, True), (401, True), (401, False)]


def _expired_token(owner: Panoptes, configure) -> str:
    """A token of the owner that has just expired on the server."""
    configure(token_lifetime=1)
    owner.bearer_expires = datetime.now() - timedelta(hours=1)
    token = owner.get_bearer_token()  # a refresh grant: a new token that lives one second
    _send_token(owner, token)
    owner.get("/me")  # its first use revokes the token it was refreshed from, as Doorkeeper does
    time.sleep(1.2)
    return token


def test_an_expired_token_reads_describes_and_links_as_its_user(owner, project, admin, configure) -> None:
    """api_controller.rb: ``current_resource_owner`` ignores expiry; projects, media and subject_sets controllers
    do not list show, index, export describe or ``update_links`` in ``require_authentication``."""
    subject_set = make_set(project)
    (subject,) = make_subjects(project, 1)
    _expired_token(owner, configure)
    since = admin.last_request_id()
    assert Project.find(project.id).display_name == project.display_name  # private: only its owner sees it
    with pytest.raises(PanoptesAPIException, match=f"No classifications_export exists for project #{project.id}"):
        project.describe_export("classifications")
    subject_set.add([subject])
    assert {(r["method"], r["path"], r["status"]) for r in admin.requests(since_id=since)} >= {
        ("GET", f"/api/projects/{project.id}", 200), ("GET", f"/api/projects/{project.id}/classifications_export", 404),
        ("POST", f"/api/subject_sets/{subject_set.id}/links/subjects", 200)}
    assert [s.id for s in SubjectSet.find(subject_set.id).subjects] == [subject.id]


def test_an_expired_or_revoked_token_cannot_write(owner, project, admin, configure, sandbox) -> None:
    """subject_sets_controller.rb ``require_authentication :create, :update, :destroy``: ``doorkeeper_authorize!``
    refuses a token that is not ``accessible?`` with an empty 401 naming why (doorkeeper.en.yml)."""
    subject_set = make_set(project)
    revoked = owner.bearer_token
    expired = _expired_token(owner, configure)
    for token, why in ((expired, "The access token expired"), (revoked, "The access token was revoked")):
        _send_token(owner, token)
        assert SubjectSet.find(subject_set.id).display_name == subject_set.display_name  # reads still work
        since = admin.last_request_id()
        assert owner.put(f"/subject_sets/{subject_set.id}", json={"subject_sets": {"display_name": "renamed"}},
                         etag=SubjectSet.find(subject_set.id).etag) == (None, None)
        assert [(r["method"], r["status"], r["bytes"]) for r in admin.requests(since_id=since)] == [
            ("GET", 200, mock.ANY), ("PUT", 401, 0)]
        refused = requests.post(f"{sandbox.endpoint}/api/subject_sets", headers={
            **API, "Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            json={"subject_sets": {"display_name": unique("set"), "links": {"project": project.id}}})
        assert (refused.status_code, refused.content) == (401, b"")
        assert refused.headers["WWW-Authenticate"] == (
            f'Bearer realm="Panoptes", error="invalid_token", error_description="{why}"')
    assert SubjectSet.find(subject_set.id).display_name == subject_set.display_name


def test_short_tokens_are_refreshed_and_refresh_tokens_are_single_use(sandbox, admin, configure) -> None:
    configure(token_lifetime=120)  # within the client's 2-minute margin: it refreshes before every call
    since = admin.last_request_id()
    with Panoptes(endpoint=sandbox.endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD) as client:
        assert Project.find(slug=seed.DEMO_PROJECT_SLUG).display_name == seed.DEMO_PROJECT_NAME
        first_refresh_token = client.refresh_token
        for _ in range(3):
            assert Project.find(slug=seed.DEMO_PROJECT_SLUG).slug == seed.DEMO_PROJECT_SLUG
        assert client.refresh_token != first_refresh_token
    grants = [(r["detail"], r["status"]) for r in admin.requests(since_id=since) if r["path"] == "/oauth/token"]
    assert grants[0] == ("grant_type=password", 200)
    assert grants[1:] == [("grant_type=refresh_token", 200)] * 3
    reuse = requests.post(f"{sandbox.endpoint}/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first_refresh_token, "client_id": "any"})
    assert reuse.status_code == 401 and reuse.json()["error"] == "invalid_grant"


def test_client_credentials_act_as_the_application_owner(sandbox, owner, admin, project) -> None:
    """lib/gem_ext/doorkeeper/client_credentials_creator.rb: the token's resource owner is the application's owner
    (the demo user owns the demo application), so it reads their private projects and writes as them."""
    since = admin.last_request_id()
    with Panoptes(endpoint=sandbox.endpoint, client_id=seed.DEMO_CLIENT_ID, client_secret=seed.DEMO_CLIENT_SECRET):
        assert Project.find(slug=seed.DEMO_PROJECT_SLUG).slug == seed.DEMO_PROJECT_SLUG  # private
        subject_set = make_set(project)
        assert SubjectSet.find(subject_set.id).links.project.id == project.id
    grants = [r["detail"] for r in admin.requests(since_id=since) if r["path"] == "/oauth/token"]
    assert grants == ["grant_type=client_credentials"]


def test_client_credentials_with_a_wrong_secret_or_client_fail_like_panoptes(sandbox) -> None:
    """Doorkeeper's invalid_client for a wrong secret; app/controllers/tokens_controller.rb ``allowed_grants``
    (with concerns/oauth_trust.rb, which finds the client by id alone) answers an unknown client with an empty 422."""
    with Panoptes(endpoint=sandbox.endpoint, client_id=seed.DEMO_CLIENT_ID, client_secret="wrong"):
        with pytest.raises(KeyError, match="access_token"):  # the client's known failure on a Doorkeeper error
            Project.find(1)
    response = requests.post(f"{sandbox.endpoint}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": seed.DEMO_CLIENT_ID, "client_secret": "wrong"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    unknown = requests.post(f"{sandbox.endpoint}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": "no-such-app", "client_secret": "wrong"})
    assert (unknown.status_code, unknown.content) == (422, b"")


def test_other_users_are_readable_without_their_email(owner, admin) -> None:
    login = unique("reader").replace(" ", "-")
    other = admin.create_user(login, "secret-password")
    user = User.find(other["id"])
    assert (user.login, user.email) == (login, None)
    assert User.me().email == f"{seed.DEMO_USER}@sandbox.invalid"
    assert [u.id for u in User.where(login=login)] == [other["id"]]
    with Panoptes(endpoint=owner.endpoint, username=login, password="secret-password"):
        assert User.me().login == login


API = {"Accept": "application/vnd.api+json; version=1"}
TOKEN_KEYS = {"access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at"}


def _signed_in_session(sandbox, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    form = session.get(f"{sandbox.endpoint}/users/sign_in", headers={"Accept": "application/json"})
    response = session.post(f"{sandbox.endpoint}/users/sign_in", headers={"Accept": "application/json"}, json={
        "authenticity_token": form.headers["X-CSRF-Token"],
        "user": {"login": seed.DEMO_USER, "password": password, "remember_me": True}})
    return session, response


def test_sign_in_answers_the_user_and_the_session_then_earns_a_password_grant(sandbox, admin) -> None:
    """A2 then A3 (password grant) as raw HTTP: the shapes the client reads, not just that it copes."""
    session, signed_in = _signed_in_session(sandbox, seed.DEMO_PASSWORD)
    assert signed_in.status_code == 200
    assert signed_in.headers["Content-Type"].startswith("application/json")
    (user,) = signed_in.json()["users"]
    assert user["login"] == seed.DEMO_USER and isinstance(user["id"], str) and user["id"].isdigit()
    assert "_Panoptes_session" in signed_in.cookies  # a new session for the signed-in user

    token = session.post(f"{sandbox.endpoint}/oauth/token", data={"grant_type": "password", "client_id": "any"})
    assert token.status_code == 200
    grant = token.json()
    assert set(grant) == TOKEN_KEYS
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == admin.settings()["token_lifetime"]
    assert isinstance(grant["created_at"], int) and abs(grant["created_at"] - time.time()) < 60
    assert grant["refresh_token"] and grant["access_token"] != grant["refresh_token"]
    me = requests.get(f"{sandbox.endpoint}/api/me", headers={**API, "Authorization": f"Bearer {grant['access_token']}"})
    assert me.status_code == 200 and me.json()["users"][0]["id"] == user["id"]


def test_a_bad_password_is_devise_json_and_signs_nobody_in(sandbox) -> None:
    session, refused = _signed_in_session(sandbox, "not-the-password")
    assert refused.status_code == 401
    assert refused.headers["Content-Type"].startswith("application/json")
    assert refused.json() == {"error": "Invalid email or password."}
    token = session.post(f"{sandbox.endpoint}/oauth/token", data={"grant_type": "password", "client_id": "any"})
    assert token.status_code == 401 and token.json()["error"] == "invalid_grant"  # the session stayed anonymous


def test_client_credentials_grant_has_no_refresh_token_and_names_the_app_owner(sandbox) -> None:
    token = requests.post(f"{sandbox.endpoint}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": seed.DEMO_CLIENT_ID, "client_secret": seed.DEMO_CLIENT_SECRET,
        "url": "http://localhost/callback"})
    assert token.status_code == 200
    grant = token.json()
    assert set(grant) == TOKEN_KEYS - {"refresh_token"}
    assert grant["token_type"] == "Bearer" and grant["expires_in"] > 0
    auth = {**API, "Authorization": f"Bearer {grant['access_token']}"}
    assert requests.get(f"{sandbox.endpoint}/api/projects", headers=auth).status_code == 200  # a valid token
    me = requests.get(f"{sandbox.endpoint}/api/me", headers=auth)
    assert me.status_code == 200 and me.json()["users"][0]["login"] == seed.DEMO_USER


def test_tokens_expire_and_the_client_refreshes_after_expiry(sandbox, admin, configure) -> None:
    configure(token_lifetime=2)  # within the client's 2-minute margin: it refreshes before every call
    with Panoptes(endpoint=sandbox.endpoint, username=seed.DEMO_USER, password=seed.DEMO_PASSWORD) as client:
        assert Project.find(slug=seed.DEMO_PROJECT_SLUG).slug == seed.DEMO_PROJECT_SLUG
        expired_token, first_refresh_token = client.bearer_token, client.refresh_token
        fresh = requests.get(f"{sandbox.endpoint}/api/me", headers={**API, "Authorization": f"Bearer {expired_token}"})
        assert fresh.status_code == 200
        time.sleep(2.2)
        stale = requests.get(f"{sandbox.endpoint}/api/me", headers={**API, "Authorization": f"Bearer {expired_token}"})
        assert (stale.status_code, stale.content) == (401, b"")  # /me is Doorkeeper-protected: its empty 401
        assert 'error_description="The access token expired"' in stale.headers["WWW-Authenticate"]

        since = admin.last_request_id()
        assert Project.find(slug=seed.DEMO_PROJECT_SLUG).slug == seed.DEMO_PROJECT_SLUG
        assert client.bearer_token != expired_token and client.refresh_token != first_refresh_token
    calls = [(r["path"], r["detail"], r["status"]) for r in admin.requests(since_id=since)]
    assert calls == [("/oauth/token", "grant_type=refresh_token", 200), ("/api/projects", None, 200)]
