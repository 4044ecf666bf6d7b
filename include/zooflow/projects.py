"""Finding a project and reading its workflows' progress.

Users name projects by slug (``owner/name``, as in the project's URL) or by numeric id; both must
give the same clear error when nothing matches, instead of the client's bare StopIteration or 404.
"""

from __future__ import annotations

from typing import Any

from panoptes_client import Project, Workflow
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.errors import ConfigurationError
from zooflow.panoptes import login_hint
from zooflow.slugs import parameterize

# What a research team watches on each workflow: how much is labelled and how much is left.
WORKFLOW_PROGRESS_FIELDS = (
    "subjects_count",
    "retired_set_member_subjects_count",
    "completeness",
    "classifications_count",
)


def find_project(ref: str | int) -> Project:
    """The project with this slug or id, using the client that is current (``with client:``)."""
    text = str(ref).strip()
    if not text:
        raise ConfigurationError(
            "no project given; name it by slug (owner/name, as in its zooniverse.org URL) or by id"
        )
    try:
        if text.isdigit():
            return Project.find(int(text))
        if "/" not in text:
            raise ConfigurationError(
                f"project {text!r} is neither an id nor a slug; a slug looks like owner/name"
            )
        return Project.find(slug=text)
    except (PanoptesAPIException, StopIteration) as exc:
        raise ConfigurationError(
            f"project {text!r} was not found ({exc or 'no match'}); check the slug or id, and that the "
            "connection's user can see the project (private projects are visible to their team only); "
            f"{login_hint('project')}"
        ) from None


def project_workflows(project: Project) -> list[Workflow]:
    """All workflows of a project, inactive ones included (``project.links.workflows`` omits them)."""
    return sorted(Workflow.where(project_id=project.id), key=lambda w: int(w.id))


def project_workflow(project: Project, workflow_id: int | str, *, setting: str) -> Workflow:
    """The project's workflow with this id, or an error listing the project's workflows and naming
    ``setting`` as the fix: a wrong id otherwise surfaces only when a batch is linked, as the client's
    bare "Could not find workflow", or never, when it is another project's workflow."""
    workflows = project_workflows(project)
    found = next((w for w in workflows if str(w.id) == str(workflow_id).strip()), None)
    if found is None:
        listed = ", ".join(f"{w.id} {w.display_name!r}" for w in workflows) or "none yet"
        raise ConfigurationError(
            f"workflow {workflow_id} is not a workflow of project {project.slug} (id {project.id}); "
            f"its workflows are: {listed}. Fix {setting}"
        )
    return found


def workflow_progress(workflow: Workflow) -> dict[str, Any]:
    """The retirement counters of one workflow, as plain JSON-ready values."""
    progress: dict[str, Any] = {"id": int(workflow.id), "display_name": workflow.display_name}
    for name in WORKFLOW_PROGRESS_FIELDS:
        progress[name] = workflow.raw.get(name)
    progress["active"] = bool(workflow.raw.get("active", True))
    progress["fully_retired"] = (
        progress["subjects_count"] is not None
        and progress["subjects_count"] > 0
        and progress["subjects_count"] == progress["retired_set_member_subjects_count"]
    )
    return progress


def project_report(project: Project) -> dict[str, Any]:
    """What the connection check shows: the project and each workflow's progress."""
    return {
        "project": {
            "id": int(project.id),
            "slug": project.slug,
            "display_name": project.display_name,
            "private": bool(project.raw.get("private")),
        },
        "workflows": [workflow_progress(w) for w in project_workflows(project)],
    }


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as lines for a log or a terminal."""
    project = report["project"]
    visibility = "private" if project["private"] else "public"
    lines = [f"Project {project['slug']} (id {project['id']}, {project['display_name']!r}, {visibility})"]
    if not report["workflows"]:
        lines.append("  no workflows yet")
    for wf in report["workflows"]:
        state = "fully retired" if wf["fully_retired"] else "in progress"
        # Panoptes recounts subjects minutes after a link but retirements within seconds: more retired
        # than counted only means its background counters have not caught up yet.
        lagging = "; Panoptes' counters are still catching up" if (
            (wf["retired_set_member_subjects_count"] or 0) > (wf["subjects_count"] or 0)) else ""
        lines.append(
            f"  Workflow {wf['id']} {wf['display_name']!r}: "
            f"{wf['retired_set_member_subjects_count']} of {wf['subjects_count']} subjects retired "
            f"(completeness {float(wf['completeness'] or 0):.2f}, {state}{lagging}), "
            f"{wf['classifications_count']} classifications"
        )
    return lines


def ensure_project(owner: str, display_name: str, description: str, *, language: str = "en",
                   private: bool = True) -> tuple[Project, bool]:
    """The owner's project of that name (found by its slug), created if missing; and whether it was created."""
    if not display_name.strip() or not description.strip():
        raise ConfigurationError("a project needs a display name and a description")
    slug = f"{owner}/{parameterize(display_name)}"
    try:
        return Project.find(slug=slug), False
    except (PanoptesAPIException, StopIteration):
        pass
    project = Project()
    project.display_name = display_name
    project.description = description
    project.primary_language = language
    project.private = private
    project.save()
    return project, True
