"""The hook every zooflow operator and sensor talks to Panoptes through, made once per task.

As in the dbt Cloud provider, ``hook`` is a cached property: a task's steps share one hook, hence
one logged-in client (``PanoptesHook.get_conn`` caches it), and the connection id it reads is the
rendered template, since nothing asks for the hook before ``execute``.
"""

from __future__ import annotations

from functools import cached_property

from zooflow.airflow.hooks.zooniverse import PanoptesHook


class PanoptesHookMixin:
    """For an operator or sensor with a ``zooniverse_conn_id``: ``with self.hook.get_conn(): ...``."""

    zooniverse_conn_id: str

    @cached_property
    def hook(self) -> PanoptesHook:
        return PanoptesHook(self.zooniverse_conn_id)
