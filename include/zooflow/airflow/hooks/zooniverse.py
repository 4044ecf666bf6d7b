"""The Airflow hook for the ``zooniverse`` connection type.

Names follow one rule: "Zooniverse" for what users see (the connection type, its form, this module,
named after the integration as Airflow's providers name theirs), "Panoptes" for the API the code
talks to (``PanoptesHook``, the Panoptes sensors and trigger).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from zooflow.errors import ZooflowError
from zooflow.panoptes import PanoptesConfig, ZooflowPanoptes, connect


class PanoptesHook(BaseHook):
    """A logged-in panoptes-client session from an Airflow connection.

    Connection fields: host = API endpoint (https://www.zooniverse.org by default, or the sandbox's
    address), login/password, or an OAuth application's ``client_id``/``client_secret`` in extra.
    The session refreshes its token under a lock, so threaded uploads can share it.
    """

    conn_name_attr = "zooniverse_conn_id"
    default_conn_name = "zooniverse_default"
    conn_type = "zooniverse"
    hook_name = "Zooniverse"

    def __init__(self, zooniverse_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.zooniverse_conn_id = zooniverse_conn_id
        self._client: ZooflowPanoptes | None = None

    def get_config(self) -> PanoptesConfig:
        return self._config(self.get_connection(self.zooniverse_conn_id))

    async def aget_config(self) -> PanoptesConfig:
        """The same, from a trigger's event loop (the sync lookup there can deadlock the triggerer)."""
        return self._config(await self.aget_connection(self.zooniverse_conn_id))

    def _config(self, conn: Any) -> PanoptesConfig:
        extra = conn.extra_dejson
        # The UI may store form fields with Airflow's old ``extra__<type>__`` prefix.
        for key in ("client_id", "client_secret", "scheme"):
            extra.setdefault(key, extra.get(f"extra__{self.conn_type}__{key}"))
        # Whatever later prints them by mistake (a client's debug line, a traceback), task logs show ***.
        for secret in (conn.password, extra.get("client_secret")):
            if secret:
                mask_secret(secret)
        return PanoptesConfig.from_connection(
            host=conn.host, port=conn.port, login=conn.login, password=conn.password, extra=extra
        )

    def get_conn(self) -> ZooflowPanoptes:
        """The logged-in client, made once per hook; use it as ``with hook.get_conn():``."""
        if self._client is None:
            config = self.get_config()
            self.log.info("Connecting to Panoptes at %s as %s", config.endpoint, config.identity)
            self._client = connect(config)
        return self._client

    def test_connection(self) -> tuple[bool, str]:
        """Log in and ask for a token: what the UI's Test button reports."""
        try:
            config = self.get_config()
            client = connect(config)
            client.get_bearer_token()
        except ZooflowError as exc:
            return False, str(exc)
        return True, f"Logged in to {config.endpoint} as {config.identity}"
