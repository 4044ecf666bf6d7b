"""Every file zooflow writes lives under one data root, and every path under it is built here.

One place means the DAGs, the CLI and the reports cannot disagree about where a file is, and a
team can move its data by changing ``ZOOFLOW_DATA_ROOT`` alone.

``ZOOFLOW_DATA_ROOT`` is a folder (``~/zooflow-data`` by default), a ``file://`` URL, or object
storage such as ``s3://aws_conn_id@bucket/prefix``. The library works on local files only; Airflow
tasks reach object storage through ``zooflow.airflow.storage``, which gives them a local working
``DataRoot`` (a cache) laid out by this same class.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from zooflow.errors import ConfigurationError

DATA_ROOT_ENV = "ZOOFLOW_DATA_ROOT"
LOCAL_SCHEMES = ("file", "local")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def safe_name(text: str) -> str:
    """A path component from free text such as a slug or a run id (``owner/name`` -> ``owner__name``)."""
    cleaned = _UNSAFE.sub("_", str(text).replace("/", "__")).strip("._")
    if not cleaned:
        raise ValueError(f"{text!r} gives an empty file name")
    return cleaned


def data_root_setting() -> str:
    """``$ZOOFLOW_DATA_ROOT`` as given (a path or a URL), else ``~/zooflow-data``."""
    return os.environ.get(DATA_ROOT_ENV) or str(Path.home() / "zooflow-data")


def is_url(setting: str) -> bool:
    return bool(_URL.match(setting))


def display_root(setting: str) -> str:
    """The setting fit for a log line: a password someone put in the URL is never shown."""
    if not is_url(setting):
        return setting
    parts = urlsplit(setting)
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        return parts._replace(netloc=f"***@{host}").geturl()
    return setting


def local_root(setting: str | os.PathLike[str]) -> Path | None:
    """The folder a data root setting names on this machine: a path or a ``file://`` URL.
    ``None`` for object storage (``s3://...``), which only Airflow tasks reach."""
    text = os.fspath(setting)
    if not is_url(text):
        return Path(text).expanduser()
    parts = urlsplit(text)
    if parts.scheme.lower() not in LOCAL_SCHEMES:
        return None
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(f"{display_root(text)}: a file:// data root names a folder on this machine "
                                 "(file:///path/to/data); it takes no host or connection")
    return Path(unquote(parts.path)).expanduser()


def default_data_root() -> Path:
    """``$ZOOFLOW_DATA_ROOT``, else ``~/zooflow-data``, as a local folder."""
    setting = data_root_setting()
    root = local_root(setting)
    if root is None:
        raise ConfigurationError(
            f"{DATA_ROOT_ENV} is object storage ({display_root(setting)}), which only the Airflow tasks reach "
            "(through an Airflow connection); give this command a local folder instead (--data-root, or "
            f"{DATA_ROOT_ENV}=/path for this shell)"
        )
    return root


class DataRoot:
    """The layout of the data root: a local folder (the root itself, or a task's cache of a remote one)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if not root:
            self.root = default_data_root()
        elif (local := local_root(root)) is not None:
            self.root = local
        else:
            raise ConfigurationError(f"{display_root(os.fspath(root))} is not a local folder; "
                                     "object storage is reached through zooflow.airflow.storage")

    def __repr__(self) -> str:
        return f"DataRoot({str(self.root)!r})"

    def project_dir(self, project: str) -> Path:
        return self.root / "projects" / safe_name(project)

    def exports_dir(self, project: str, export_type: str, resource: str = "project", resource_id: int | str | None = None) -> Path:
        """Downloaded exports, kept as delivered (``.csv.gz``), with ``latest.json``. The project's own
        exports need no id (the slug names the project); a workflow's or subject set's do."""
        owner = safe_name(resource) if resource_id in (None, "") else f"{safe_name(resource)}-{safe_name(str(resource_id))}"
        return self.project_dir(project) / "exports" / owner / safe_name(export_type)

    @staticmethod
    def latest_pointer(exports_dir: str | os.PathLike[str]) -> Path:
        """An exports folder's ``latest.json``: the last verified download (file, size, export time)."""
        return Path(exports_dir) / "latest.json"

    @staticmethod
    def request_record(exports_dir: str | os.PathLike[str]) -> Path:
        """An exports folder's ``last_request.json``: when zooflow last asked Panoptes for this export."""
        return Path(exports_dir) / "last_request.json"

    @staticmethod
    def request_outcome(exports_dir: str | os.PathLike[str]) -> Path:
        """An exports folder's ``last_outcome.json``: ``zooflow export request``'s outcome, for ``wait`` and ``download``."""
        return Path(exports_dir) / "last_outcome.json"

    def slices_dir(self, project: str, export_type: str) -> Path:
        """Date partitions (``created_date=YYYY-MM-DD``) of sliced exports."""
        return self.project_dir(project) / "slices" / safe_name(export_type)

    def flat_dir(self, project: str) -> Path:
        """Flattened classification tables, one per date partition."""
        return self.project_dir(project) / "flat"

    def classifications_dir(self, project: str) -> Path:
        """The incremental classification store: classifications pulled from Panoptes as they arrive."""
        return self.project_dir(project) / "classifications"

    def al_dir(self, project: str, workflow_id: int | str) -> Path:
        """Active-learning rounds of one workflow: ``state.json``, ``round-NNN/``, ``learning_curve.png``."""
        return self.project_dir(project) / "al" / f"workflow-{safe_name(str(workflow_id))}"

    def reports_dir(self, project: str, kind: str) -> Path:
        """The reports of one kind (``connection_check``, ``slice``, ...) for one project."""
        return self.project_dir(project) / "reports" / safe_name(kind)

    def report(self, project: str, kind: str, run_id: str) -> Path:
        """The JSON report of one run."""
        return self.reports_dir(project, kind) / f"{safe_name(run_id)}.json"
