"""PanoptesConfig: the one description of where Panoptes is and who logs in."""

from __future__ import annotations

import pytest

from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.panoptes import DEFAULT_ENDPOINT, PanoptesConfig, connect
from zooflow.sandbox import seed


def test_from_env_reads_panoptes_client_variables() -> None:
    config = PanoptesConfig.from_env(
        {"PANOPTES_ENDPOINT": "http://127.0.0.1:1234/", "PANOPTES_USERNAME": "u", "PANOPTES_PASSWORD": "pw-123456"}
    )
    assert config.endpoint == "http://127.0.0.1:1234"
    assert config.identity == "user u"
    assert "pw-123456" not in repr(config)


def test_from_env_defaults_to_zooniverse_anonymous() -> None:
    config = PanoptesConfig.from_env({})
    assert (config.endpoint, config.identity) == (DEFAULT_ENDPOINT, "anonymous")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "www.zooniverse.org"}, r"not an http\(s\) URL"),
        ({"username": "u"}, "needs both a username and a password"),
        ({"client_secret": "s"}, "without its client_id"),
    ],
)
def test_bad_configs_name_the_problem(kwargs, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PanoptesConfig(**kwargs)


def test_connect_refuses_bad_password_as_a_configuration_error(demo_sandbox) -> None:
    config = PanoptesConfig(endpoint=demo_sandbox.endpoint, username=seed.DEMO_USER, password="not-the-password")
    with pytest.raises(ConfigurationError, match="refused the login as user zooflow") as info:
        connect(config)
    assert "not-the-password" not in str(info.value)


def test_connect_names_an_unreachable_endpoint() -> None:
    with pytest.raises(PanoptesError, match="cannot reach Panoptes at http://127.0.0.1:9"):
        connect(PanoptesConfig(endpoint="http://127.0.0.1:9", username="u", password="p"))


def test_connect_ignores_stray_environment_credentials(demo_sandbox, monkeypatch) -> None:
    """A config without a user stays anonymous even when PANOPTES_USERNAME is set."""
    monkeypatch.setenv("PANOPTES_USERNAME", seed.DEMO_USER)
    monkeypatch.setenv("PANOPTES_PASSWORD", seed.DEMO_PASSWORD)
    client = connect(PanoptesConfig(endpoint=demo_sandbox.endpoint))
    assert not client.logged_in and client.username is None


def test_nested_use_restores_the_callers_client(demo_config) -> None:
    """Subject.save() enters the client again inside ours; leaving must restore what came before."""
    from panoptes_client import Panoptes

    before = getattr(Panoptes._local, "panoptes_client", None)
    client = connect(demo_config)
    with client:
        with client:
            assert Panoptes.client() is client
        assert Panoptes.client() is client
    assert getattr(Panoptes._local, "panoptes_client", None) is before
