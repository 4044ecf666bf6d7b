"""Setting a project up: the project, its question workflow, and its first subject set from a manifest.

Every step finds what exists before creating anything, so a rerun creates nothing new; the
manifest is read and checked first, so a bad one changes nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panoptes_client import Panoptes

from zooflow.errors import ConfigurationError
from zooflow.projects import ensure_project, find_project
from zooflow.slugs import parameterize
from zooflow.subjects.manifest import read_manifest
from zooflow.subjects.upload import find_subject_set, set_members_by_key, upload_subjects
from zooflow.workflows import ensure_question_workflow, find_workflow, question_tasks


@dataclass(frozen=True)
class ProjectSpec:
    display_name: str
    description: str
    workflow_name: str
    question: str
    answers: tuple[str, ...]
    manifest: Path
    subject_set: str
    language: str = "en"
    private: bool = True
    retirement_count: int = 15
    allow_missing: bool = False


def plan_setup(spec: ProjectSpec) -> dict[str, Any]:
    """What setting up would create, changing nothing (the dry run)."""
    question_tasks(spec.question, spec.answers)
    manifest = read_manifest(spec.manifest, allow_missing=spec.allow_missing)
    owner = Panoptes.client().username
    slug = f"{owner}/{parameterize(spec.display_name)}"
    plan: dict[str, Any] = {"project": {"slug": slug, "exists": False}, "workflow": {"exists": False},
                            "subject_set": {"exists": False, "to_upload": len(manifest.items)},
                            "skipped_missing": list(manifest.skipped_missing), "key_column": manifest.key_column}
    try:
        project = find_project(slug)
    except ConfigurationError:  # not found: it would be created
        return plan
    plan["project"] |= {"exists": True, "id": int(project.id)}
    workflow = find_workflow(project, spec.workflow_name)
    plan["workflow"] = {"exists": workflow is not None} | ({"id": int(workflow.id)} if workflow else {})
    subject_set = find_subject_set(project, spec.subject_set)
    if subject_set is not None:
        present = set_members_by_key(int(subject_set.id), manifest.key_column)
        plan["subject_set"] = {"exists": True, "id": int(subject_set.id),
                               "to_upload": sum(1 for item in manifest.items if item.key not in present)}
    return plan


def setup_project(spec: ProjectSpec, journal_path: Path) -> dict[str, Any]:
    """Create (or find) the project, its workflow and its first set, and upload the manifest's subjects."""
    question_tasks(spec.question, spec.answers)
    manifest = read_manifest(spec.manifest, allow_missing=spec.allow_missing)
    project, project_created = ensure_project(Panoptes.client().username, spec.display_name, spec.description,
                                              language=spec.language, private=spec.private)
    workflow, workflow_created = ensure_question_workflow(project, spec.workflow_name, spec.question, spec.answers,
                                                          retirement_count=spec.retirement_count, language=spec.language)
    upload = upload_subjects(project, spec.subject_set, manifest.items, key_field=manifest.key_column,
                             journal_path=journal_path, workflow=workflow)
    return {
        "project": {"id": int(project.id), "slug": project.slug, "created": project_created},
        "workflow": {"id": int(workflow.id), "created": workflow_created},
        "subject_set": upload.to_dict() | {"name": spec.subject_set},
        "skipped_missing": list(manifest.skipped_missing),
    }
