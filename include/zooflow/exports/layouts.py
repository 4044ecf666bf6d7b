"""The column layouts of Panoptes exports, and how to tell them apart.

The classification export has ``subject_ids`` (with an s, ``;``-joined); the subject export has
``subject_id``. Newer exports may add columns: they are kept, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing

CLASSIFICATION_COLUMNS = (
    "classification_id", "user_name", "user_id", "user_ip", "workflow_id", "workflow_name",
    "workflow_version", "created_at", "gold_standard", "expert", "metadata", "annotations",
    "subject_data", "subject_ids",
)
SUBJECT_COLUMNS = (
    "subject_id", "project_id", "workflow_id", "subject_set_id", "metadata", "locations",
    "classifications_count", "retired_at", "retirement_reason", "created_at", "updated_at",
)


@dataclass(frozen=True)
class Layout:
    kind: str  # "classifications" or "subjects"
    required: tuple[str, ...]
    subject_column: str

    def check(self, header: list[str], source: str) -> None:
        missing = [c for c in self.required if c not in header]
        if missing:
            raise ConfigurationError(
                f"{source} is not a Panoptes {self.kind} export: column(s) {', '.join(missing)} missing "
                f"(header starts {listing(header, 4)})"
            )


CLASSIFICATIONS = Layout("classifications", CLASSIFICATION_COLUMNS, "subject_ids")
SUBJECTS = Layout("subjects", SUBJECT_COLUMNS, "subject_id")


def detect_layout(header: list[str], source: str) -> Layout:
    if "subject_ids" in header:
        layout = CLASSIFICATIONS
    elif "subject_id" in header:
        layout = SUBJECTS
    else:
        raise ConfigurationError(
            f"{source} is neither a classification nor a subject export (no subject_ids or subject_id column)"
        )
    layout.check(header, source)
    return layout
