"""Reading workflow task definitions: question tasks, answer labels, and translatable strings.

The API shows tasks with their text inline, but Panoptes stores each version as task structure with
string keys (``"T0.question"``, ``"T0.answers.0.label"``) plus a ``strings`` table, and the workflows
export shows exactly that. Classifications store answers as indexes; the classification export
turns them back into labels through the version the volunteer saw.
"""

from __future__ import annotations

from typing import Any

TRANSLATABLE = ("question", "instruction", "help", "label", "description")
QUESTION_TYPES = ("single", "multiple")


def extract_strings(tasks: dict) -> tuple[dict, dict[str, str]]:
    strings: dict[str, str] = {}

    def visit(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                child = f"{path}.{key}" if path else key
                if key in TRANSLATABLE and isinstance(value, str):
                    strings[child] = value
                    out[key] = child
                else:
                    out[key] = visit(value, child)
            return out
        if isinstance(node, list):
            return [visit(item, f"{path}.{index}") for index, item in enumerate(node)]
        return node

    return visit(tasks, ""), strings


def inject_strings(keyed: Any, strings: dict[str, str]) -> Any:
    if isinstance(keyed, dict):
        return {
            key: strings.get(value, value) if key in TRANSLATABLE and isinstance(value, str)
            else inject_strings(value, strings)
            for key, value in keyed.items()
        }
    if isinstance(keyed, list):
        return [inject_strings(item, strings) for item in keyed]
    return keyed


def question_task(tasks: dict, first_task: str | None) -> tuple[str, dict] | None:
    """The task volunteers answer: ``first_task`` when it is a question, else the first question."""
    ordered = ([first_task] if first_task in tasks else []) + sorted(tasks)
    for key in ordered:
        task = tasks[key]
        if isinstance(task, dict) and task.get("type") in QUESTION_TYPES and task.get("answers"):
            return key, task
    return None


def answer_labels(task: dict) -> list[str]:
    return [str(answer.get("label", "")) for answer in task.get("answers", [])]


def annotation_for_csv(annotation: dict, tasks: dict) -> dict:
    """Question answers as labels with the task's question as ``task_label``; other tasks pass through."""
    task = tasks.get(annotation.get("task"))
    if not isinstance(task, dict) or task.get("type") not in QUESTION_TYPES:
        return annotation
    labels = answer_labels(task)

    def label(index: Any) -> str | None:
        return labels[index] if isinstance(index, int) and 0 <= index < len(labels) else None

    value = annotation.get("value")
    value = [label(item) for item in value or []] if task["type"] == "multiple" else label(value)
    return {"task": annotation["task"], "task_label": task.get("question"), "value": value}
