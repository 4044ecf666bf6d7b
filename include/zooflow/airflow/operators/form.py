"""The exports DAG's first step: check the form before anything is asked of Panoptes.

The trigger form checks each field alone (JSON Schema cannot compare two Params), so a ``since``
after its ``until``, or a slice spec file that is missing or refused, passes it. The slice step
would find them, but only after the day's export requests were spent: this step finds them first,
and fails at once (no retry) with the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from zooflow.airflow.errors import fail_fast_on_bad_config
from zooflow.airflow.params import form_file
from zooflow.config_dir import SLICE_SPEC
from zooflow.exports.runs import form_spec


class CheckSliceFormOperator(BaseOperator):
    """Build the slice spec the form asks for (spec file and fields), as the slice step will.

    :param spec: the form's slice fields (``SliceExportOperator``'s ``spec``).
    :param spec_file: the name of a slice spec in the config folder, or empty.
    """

    template_fields: Sequence[str] = ("spec", "spec_file")

    def __init__(self, *, spec: dict[str, Any] | None = None, spec_file: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.spec_file = spec_file

    def execute(self, context: Any) -> None:
        with fail_fast_on_bad_config():
            spec = form_spec(form_file(self, self.spec_file, SLICE_SPEC), self.spec)
        window = f"{spec.since or 'the start'} to {spec.until or 'now'}" if spec.since or spec.until else "none asked for"
        self.log.info("The form's slice settings are valid (spec file: %s; created_at window: %s)",
                      self.spec_file or "none", window)


class ProjectsFileErrorOperator(BaseOperator):
    """Stands for the tasks of a projects-file entry that could not be read: fails, without retries,
    with what is wrong and how to fix it.

    :param message: the entry's error (file, entry, key, fix).
    """

    ui_color = "#f6d5d5"

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        kwargs["retries"] = 0
        super().__init__(**kwargs)
        self.message = message

    def execute(self, context: Any) -> None:
        raise AirflowFailException(self.message)
