"""What a projects file says, once read: the valid entries, the DAGs they make, and one error per broken entry.

Plain frozen dataclasses with no Airflow in them: the DAG files build DAGs from them, and ``zooflow
projects check`` prints them. DAG ids are built here, from the project's slug, so they are the same
wherever they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zooflow.exports.slice_spec import SliceSpec
from zooflow.paths import safe_name
from zooflow.slugs import parameterize

EXPORT_TYPES = ("classifications", "subjects", "workflows")
DEFAULT_SCHEDULE = "0 0 * * *"  # daily at 00:00 UTC, as the exports DAG has always run
DEFAULT_CONN_ID = "zooniverse_default"  # as zooflow.airflow_env.DEFAULT_CONN_ID (not imported: it pulls in the client)
EXPORTS_PREFIX = "zooniverse_exports"
AL_PREFIX = "zooniverse_active_learning"
MAX_DAG_ID = 250  # Airflow's limit on a DAG id


def project_part(project: str | int) -> str:
    """The project as DAG-id characters: ``owner/name`` -> ``owner__name``, ``12345`` -> ``project_12345``.

    A letter outside ASCII becomes the ASCII Panoptes would put in a slug (``é`` -> ``e``, ``ø`` -> ``o``,
    ``ß`` -> ``ss``: ``zooflow.slugs``), one with none its code point (``日`` -> ``u65e5``), so that
    different slugs keep different ids; any other character outside ``[A-Za-z0-9_.-]`` becomes ``_``,
    as in the project's data folder (``zooflow.paths.safe_name``)."""
    text = str(project).strip()
    if text.isdigit():
        return f"project_{int(text)}"
    return safe_name("".join(c if c.isascii() else parameterize(c) or f"u{ord(c):04x}" for c in text))


def exports_dag_id(project: str | int) -> str:
    return f"{EXPORTS_PREFIX}__{project_part(project)}"


def al_dag_id(project: str | int, workflow_id: int) -> str:
    return f"{AL_PREFIX}__{project_part(project)}__workflow_{workflow_id}"


@dataclass(frozen=True)
class ALEntry:
    """One active-learning workflow of a project: its config file and the AL DAG it makes."""

    index: int  # its place in the entry's active_learning list
    config: Path  # the AL config file (relative paths in the projects file are taken from its folder)
    workflow_id: int
    cadence: str | None  # the AL DAG's own schedule besides export events, from the config's ``cadence``
    dag_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "config": str(self.config), "workflow_id": self.workflow_id,
                "cadence": self.cadence, "dag_id": self.dag_id}


@dataclass(frozen=True)
class ProjectEntry:
    """One valid project entry and the DAGs it makes: one exports DAG, one AL DAG per AL workflow."""

    index: int  # its place in the file's projects list
    project: str  # the slug (owner/name) or the numeric id, as text
    conn_id: str
    schedule: str  # cron expression or preset, UTC
    exports: tuple[str, ...]
    slice: SliceSpec
    active_learning: tuple[ALEntry, ...]
    dag_id: str  # the exports DAG

    @property
    def project_id(self) -> int | None:
        """The numeric id when the entry names the project by id, else None (it names it by slug)."""
        return int(self.project) if self.project.isdigit() else None

    @property
    def dag_ids(self) -> tuple[str, ...]:
        return (self.dag_id, *(al.dag_id for al in self.active_learning))

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "project": self.project, "conn_id": self.conn_id, "schedule": self.schedule,
                "exports": list(self.exports), "slice": self.slice.to_dict(), "dag_id": self.dag_id,
                "active_learning": [al.to_dict() for al in self.active_learning]}


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (``projects[1].schedule``), what, and how to fix it."""

    key: str
    message: str
    fix: str


@dataclass(frozen=True)
class EntryError:
    """A broken entry (``index`` set), or the file itself (``index`` None: unreadable, not a mapping...).

    ``key``, ``message`` and ``fix`` are the entry's first problem; ``more`` holds its others, so one
    broken entry is one error (one place in the Airflow UI) however many mistakes it holds.
    ``dag_ids`` are the DAGs the entry would make, when its project is known (none that another entry
    already makes)."""

    file: str
    index: int | None
    project: str | None
    key: str
    message: str
    fix: str
    dag_ids: tuple[str, ...] = ()
    more: tuple[Problem, ...] = ()

    @property
    def problems(self) -> tuple[Problem, ...]:
        return (Problem(self.key, self.message, self.fix), *self.more)

    def where(self) -> str:
        """``projects.yaml: projects[1] (owner/name)`` (the shorthand's keys are its variables: no entry)."""
        in_file = self.index is not None and self.key.startswith("projects[")
        place = f"{self.file}: projects[{self.index}]" if in_file else self.file
        return f"{place} ({self.project})" if self.project else place

    def short_key(self, problem: Problem) -> str:
        """The problem's key from the entry down: ``schedule``, ``active_learning[0].config``."""
        entry = f"projects[{self.index}]"
        if self.index is not None and problem.key.startswith(entry):
            return problem.key[len(entry):].lstrip(".")
        return problem.key

    def line(self, problem: Problem) -> str:
        """One problem as one line: ``FILE: projects[i] (owner/name): key: message; fix``."""
        key = self.short_key(problem)
        return f"{self.where()}: {key + ': ' if key else ''}{problem.message}; {problem.fix}"

    def lines(self) -> list[str]:
        """Every problem of the entry, one line each."""
        return [self.line(problem) for problem in self.problems]

    def __str__(self) -> str:
        text = self.line(self.problems[0])
        if self.more:
            text += f" (and {len(self.more)} more in this entry: {', '.join(map(self.short_key, self.more))})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "index": self.index, "project": self.project, "dag_ids": list(self.dag_ids),
                "problems": [{"key": p.key, "message": p.message, "fix": p.fix} for p in self.problems],
                "lines": self.lines()}


@dataclass(frozen=True)
class ProjectsFile:
    """A projects file read: its valid entries, and its errors (one per broken entry, plus any about
    the file itself, whose ``index`` is None)."""

    path: Path | None  # None: the ZOOFLOW_PROJECT shorthand
    entries: tuple[ProjectEntry, ...] = ()
    errors: tuple[EntryError, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def file_errors(self) -> tuple[EntryError, ...]:
        return tuple(error for error in self.errors if error.index is None)

    @property
    def dag_ids(self) -> tuple[str, ...]:
        """The DAGs the valid entries make."""
        return tuple(dag_id for entry in self.entries for dag_id in entry.dag_ids)

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path) if self.path else None, "ok": self.ok,
                "entries": [entry.to_dict() for entry in self.entries],
                "errors": [error.to_dict() for error in self.errors]}
