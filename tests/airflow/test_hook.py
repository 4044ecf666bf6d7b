"""PanoptesHook: connection fields to a logged-in client, test_connection, shared-token threads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from panoptes_client import Project

from zooflow.airflow.hooks.zooniverse import PanoptesHook
from zooflow.projects import find_project
from zooflow.sandbox import seed


@pytest.fixture()
def conn_env(monkeypatch):
    def define(conn_id: str, **fields) -> PanoptesHook:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "zooniverse", **fields}))
        return PanoptesHook(conn_id)

    return define


def test_full_url_host(conn_env) -> None:
    config = conn_env("a", host="http://127.0.0.1:8080/", login="u", password="secret-pw").get_config()
    assert config.endpoint == "http://127.0.0.1:8080"
    assert (config.username, config.password) == ("u", "secret-pw")
    assert "secret-pw" not in repr(config)


def test_bare_host_gets_https_and_port(conn_env) -> None:
    assert conn_env("b", host="panoptes.example.org").get_config().endpoint == "https://panoptes.example.org"
    hook = conn_env("c", host="localhost", port=8080, extra={"scheme": "http"})
    assert hook.get_config().endpoint == "http://localhost:8080"


def test_empty_host_defaults_to_zooniverse(conn_env) -> None:
    assert conn_env("d", login="u", password="p").get_config().endpoint == "https://www.zooniverse.org"


def test_client_credentials_from_extra_with_or_without_form_prefix(conn_env) -> None:
    plain = conn_env("e", host="https://x.org", extra={"client_id": "id1", "client_secret": "s1"}).get_config()
    prefixed = conn_env(
        "f", host="https://x.org",
        extra={"extra__zooniverse__client_id": "id1", "extra__zooniverse__client_secret": "s1"},
    ).get_config()
    assert (plain.client_id, plain.client_secret) == ("id1", "s1") == (prefixed.client_id, prefixed.client_secret)


def test_test_connection_succeeds_against_the_sandbox(conn_env, demo_sandbox) -> None:
    hook = conn_env("ok", host=demo_sandbox.endpoint, login=seed.DEMO_USER, password=seed.DEMO_PASSWORD)
    ok, message = hook.test_connection()
    assert ok, message
    assert demo_sandbox.endpoint in message and seed.DEMO_USER in message


def test_test_connection_reports_bad_password_without_echoing_it(conn_env, demo_sandbox) -> None:
    hook = conn_env("bad", host=demo_sandbox.endpoint, login=seed.DEMO_USER, password="wrong-password-123")
    ok, message = hook.test_connection()
    assert not ok
    assert "refused the login" in message and "wrong-password-123" not in message


def test_test_connection_reports_unreachable_host(conn_env) -> None:
    ok, message = conn_env("down", host="http://127.0.0.1:9", login="u", password="p").test_connection()
    assert not ok and "cannot reach Panoptes at http://127.0.0.1:9" in message


def test_client_credentials_log_in_as_the_application_owner(conn_env, demo_sandbox) -> None:
    """Panoptes gives a client-credentials token the OAuth application's owner (the demo user owns the demo
    application, lib/gem_ext/doorkeeper/client_credentials_creator.rb), so the owner's private project is visible."""
    hook = conn_env(
        "app", host=demo_sandbox.endpoint,
        extra={"client_id": seed.DEMO_CLIENT_ID, "client_secret": seed.DEMO_CLIENT_SECRET},
    )
    ok, message = hook.test_connection()
    assert ok and seed.DEMO_CLIENT_ID in message
    with hook.get_conn() as client:
        assert client.logged_in and client.bearer_token
        assert find_project(seed.DEMO_PROJECT_SLUG).raw["private"] is True


def test_threads_share_one_client_through_token_churn(conn_env, demo_sandbox) -> None:
    """A 100 s token makes the client refresh before every call (its 2-minute margin), and each first use
    of a new token revokes the previous one. 16 threads on one client must still get every answer:
    the stock client loses calls here to ``KeyError: 'access_token'`` and to silent empty 401s."""
    demo_sandbox.admin.configure(token_lifetime=100)
    try:
        hook = conn_env("threads", host=demo_sandbox.endpoint, login=seed.DEMO_USER, password=seed.DEMO_PASSWORD)
        client = hook.get_conn()
        since = demo_sandbox.admin.last_request_id()

        def read(_: int) -> str:
            with client:
                return Project.find(slug=seed.DEMO_PROJECT_SLUG).slug

        with ThreadPoolExecutor(max_workers=16) as pool:
            slugs = list(pool.map(read, range(200)))
        assert slugs == [seed.DEMO_PROJECT_SLUG] * 200
        log = demo_sandbox.admin.requests(since_id=since)
        grants = [r for r in log if r["path"] == "/oauth/token"]
        assert len(grants) >= 200, "every call should have needed a fresh token"
    finally:
        demo_sandbox.admin.configure(token_lifetime=7200)
