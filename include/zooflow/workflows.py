"""Workflows a project needs: find one by name, or create it with a single-answer question.

Find-or-create keeps project setup and the demo idempotent: a rerun finds what the first run made.
"""

from __future__ import annotations

from collections.abc import Sequence

from panoptes_client import Project, Workflow

from zooflow.errors import ConfigurationError


def question_tasks(question: str, answers: Sequence[str], task: str = "T0") -> dict:
    if not question.strip():
        raise ConfigurationError("the workflow's question is empty")
    cleaned = [a.strip() for a in answers if a and a.strip()]
    if len(cleaned) < 2 or len(set(cleaned)) != len(cleaned):
        raise ConfigurationError(f"a question needs at least two distinct answers, got {list(answers)!r}")
    return {task: {"type": "single", "question": question, "help": "", "required": True,
                   "answers": [{"label": answer} for answer in cleaned]}}


def find_workflow(project: Project, display_name: str) -> Workflow | None:
    return next((w for w in Workflow.where(project_id=project.id) if w.display_name == display_name), None)


def ensure_question_workflow(project: Project, display_name: str, question: str, answers: Sequence[str], *,
                             retirement_count: int = 15, language: str = "en") -> tuple[Workflow, bool]:
    """The project's workflow of that name, created if missing; and whether it was created."""
    tasks = question_tasks(question, answers)
    if retirement_count < 1:
        raise ConfigurationError("subjects retire after at least one classification")
    existing = find_workflow(project, display_name)
    if existing is not None:
        return existing, False
    workflow = Workflow()
    workflow.links.project = project
    workflow.display_name = display_name
    workflow.primary_language = language
    workflow.tasks = tasks
    workflow.first_task = "T0"
    workflow.retirement = {"criteria": "classification_count", "options": {"count": retirement_count}}
    workflow.active = True
    workflow.save()
    return workflow, True
