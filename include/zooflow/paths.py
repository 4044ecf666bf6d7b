"""Every file zooflow writes lives under one data root, and every path under it is built here.

One place means the DAGs, the CLI and the reports cannot disagree about where a file is, and a
team can move its data by changing ``ZOOFLOW_DATA_ROOT`` alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DATA_ROOT_ENV = "ZOOFLOW_DATA_ROOT"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A path component from free text such as a slug or a run id (``owner/name`` -> ``owner__name``)."""
    cleaned = _UNSAFE.sub("_", str(text).replace("/", "__")).strip("._")
    if not cleaned:
        raise ValueError(f"{text!r} gives an empty file name")
    return cleaned


def default_data_root() -> Path:
    """``$ZOOFLOW_DATA_ROOT``, else ``~/zooflow-data``."""
    return Path(os.environ.get(DATA_ROOT_ENV) or Path.home() / "zooflow-data").expanduser()


class DataRoot:
    """The layout of the data root."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_data_root()

    def __repr__(self) -> str:
        return f"DataRoot({str(self.root)!r})"

    def project_dir(self, project: str) -> Path:
        return self.root / "projects" / safe_name(project)

    def exports_dir(self, project: str, export_type: str, resource: str = "project", resource_id: int | str | None = None) -> Path:
        """Downloaded exports, kept as delivered (``.csv.gz``), with ``latest.json``. The project's own
        exports need no id (the slug names the project); a workflow's or subject set's do."""
        owner = safe_name(resource) if resource_id in (None, "") else f"{safe_name(resource)}-{safe_name(str(resource_id))}"
        return self.project_dir(project) / "exports" / owner / safe_name(export_type)

    def slices_dir(self, project: str, export_type: str) -> Path:
        """Date partitions (``created_date=YYYY-MM-DD``) of sliced exports."""
        return self.project_dir(project) / "slices" / safe_name(export_type)

    def flat_dir(self, project: str) -> Path:
        """Flattened classification tables, one per date partition."""
        return self.project_dir(project) / "flat"

    def al_dir(self, project: str, workflow_id: int | str) -> Path:
        """Active-learning rounds of one workflow: ``state.json``, ``round-NNN/``, ``learning_curve.png``."""
        return self.project_dir(project) / "al" / f"workflow-{safe_name(str(workflow_id))}"

    def reports_dir(self, project: str, kind: str) -> Path:
        """The reports of one kind (``connection_check``, ``slice``, ...) for one project."""
        return self.project_dir(project) / "reports" / safe_name(kind)

    def report(self, project: str, kind: str, run_id: str) -> Path:
        """The JSON report of one run."""
        return self.reports_dir(project, kind) / f"{safe_name(run_id)}.json"
