"""One classification's annotations as tidy task rows and drawn marks, for every task type.

The founding scripts pasted a "building block" per task type; here each type Panoptes writes has
its columns (see ``task_columns``), and a drawing's marks also become rows of their own
(:mod:`zooflow.exports.marks`). A task's type comes from the workflows export when one is given,
then from the annotation's own ``taskType`` (the new front-end writes it), and otherwise from the
value's shape — where a text answer and a single-answer question look alike (both ``single``) and
an empty list says nothing (``empty``, typed later from the rest of the file, see ``flatten``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from zooflow.exports.marks import is_mark, mark_row, marks_per_tool
from zooflow.exports.workflow_export import TaskDefinitions, Tool

TASK_COLUMNS = (
    "task", "task_label", "task_type", "combo_task", "value", "answers", "value_labels", "text_empty", "choice",
    "choices_count", "choice_answers", "marks_count", "marks_per_tool",
)
MARK_TYPES = {"drawing", "transcription"}
ANSWER_LIST_TYPES = {"multiple", "shortcut"}


def infer_type(value: Any) -> str:
    """The task type a value's shape shows (``single`` for any plain value, text included)."""
    if isinstance(value, (str, int, float)) or value is None:
        return "single"
    if isinstance(value, list):
        if not value:
            return "empty"
        first = value[0]
        if isinstance(first, (str, int)):
            return "multiple"
        if isinstance(first, dict):
            if "choice" in first:
                return "survey"
            if "task" in first:
                return "combo"
            if "option" in first:
                return "dropdown"
            if "labelInformation" in first or {"start", "end"} <= first.keys():
                return "highlighter"
            if is_mark(first):
                return "drawing"
    return "unknown"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def task_columns(value: Any, kind: str, tools: list[Tool] | None = None,
                 options: dict[str, str] | None = None) -> dict[str, Any]:
    """The columns a task of type ``kind`` with this value fills (others stay null)."""
    items = value if isinstance(value, list) else None
    if kind == "survey" and items is not None:
        picks = [c for c in items if isinstance(c, dict)]
        return {"choice": ";".join(str(c.get("choice")) for c in picks) or None, "choices_count": len(picks),
                "choice_answers": _json([{"choice": c.get("choice"), "answers": c.get("answers") or {}} for c in picks])}
    if (kind in MARK_TYPES or kind == "empty") and items is not None:
        return {"marks_count": len(items), "marks_per_tool": marks_per_tool(items, tools)}
    if kind.startswith("dropdown") and (items is not None or isinstance(value, dict)):
        # a list of menus' picks, or the new front-end's simple dropdown: one {"selection": index}
        picks = [v.get("value", v.get("selection")) for v in (items if items is not None else [value])
                 if isinstance(v, dict)]
        labels = [(options or {}).get(str(v)) for v in picks]
        return {"value": ";".join(str(v) for v in picks), "answers": _json(picks),
                "value_labels": ";".join(str(label) for label in labels) if options and any(labels) else None}
    if kind == "text":
        return {"value": value if value is None or isinstance(value, str) else _json(value),
                "text_empty": value is None or (isinstance(value, str) and not value.strip())}
    if items is not None and all(isinstance(v, (str, int, float)) or v is None for v in items):
        return {"answers": json.dumps(items, ensure_ascii=False), "value": ";".join(str(v) for v in items)}
    if isinstance(value, (str, int, float)) or value is None:
        return {"value": value}
    return {"value": _json(value)}


class TaskTyper:
    """Each task's type and tools within one workflow version: declared, ``taskType``, or inferred."""

    def __init__(self, definitions: TaskDefinitions | None, workflow_id: str, workflow_version: str) -> None:
        self.definitions = definitions or TaskDefinitions()
        self.workflow = (str(workflow_id), str(workflow_version).split(".")[0])

    def declared(self, task: str) -> str | None:
        return self.definitions.types.get((*self.workflow, task))

    def tools(self, task: str) -> list[Tool] | None:
        return self.definitions.tools.get((*self.workflow, task))

    def options(self, task: str) -> dict[str, str] | None:
        return self.definitions.options.get((*self.workflow, task))

    def type_of(self, annotation: dict[str, Any]) -> str:
        task = str(annotation.get("task"))
        return self.declared(task) or annotation.get("taskType") or infer_type(annotation.get("value"))


def annotation_rows(annotation: dict[str, Any], typer: TaskTyper, combo_task: str | None = None,
                    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(task row, mark rows) per task in one annotation: a combo gives one per sub-task."""
    value = annotation.get("value")
    kind = typer.type_of(annotation)
    task = str(annotation.get("task"))
    if kind == "combo" and isinstance(value, list):
        for sub in value:
            if isinstance(sub, dict):
                yield from annotation_rows(sub, typer, combo_task=task)
        return
    tools = typer.tools(task)
    row = {"task": annotation.get("task"), "task_label": annotation.get("task_label"), "task_type": kind,
           "combo_task": combo_task} | task_columns(value, kind, tools, typer.options(task))
    marks = []
    if isinstance(value, list) and kind not in ("survey", "dropdown", "highlighter"):
        marks = [{"task": annotation.get("task")} | mark_row(mark, index, tools)
                 for index, mark in enumerate(value) if is_mark(mark)]
    yield row, marks


def attach_mark_answers(annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The annotations with the new front-end's answers about a mark moved into that mark's ``details``.

    The new front-end writes a mark's sub-task as ``details: [{"task": "T0.0.0"}]`` and its answer as
    an annotation of its own, ``{"task": "T0.0.0", "markIndex": 1, "value": ...}``: the answer goes
    to the mark it names (``{"task": "T0.0.0", "value": ...}``), not to a task row."""
    drawings = {a.get("task"): a["value"] for a in annotations if isinstance(a, dict) and isinstance(a.get("value"), list)}
    kept = []
    for annotation in annotations:
        if not isinstance(annotation, dict):  # by_task says so
            kept.append(annotation)
            continue
        task, index = str(annotation.get("task")), annotation.get("markIndex")
        marks = drawings.get(task.split(".")[0]) if "." in task else None
        if marks is None or not isinstance(index, int) or not 0 <= index < len(marks) or not is_mark(marks[index]):
            kept.append(annotation)
            continue
        details = marks[index].get("details")
        entry = next((d for d in details or [] if isinstance(d, dict) and d.get("task") == task and "value" not in d), None)
        if entry is not None:
            entry["value"] = annotation.get("value")
        else:
            marks[index]["details"] = [*(details or []), {"task": task, "value": annotation.get("value")}]
    return kept


def by_task(annotations: list[Any]) -> list[dict[str, Any]]:
    """One annotation per task: older survey and drawing exports repeat a task, one entry per
    choice or mark; their value lists are joined. Other repeats stay rows of their own."""
    merged: list[dict[str, Any]] = []
    seen: dict[Any, dict[str, Any]] = {}
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise ValueError("an annotation is not a JSON object")
        key = annotation.get("task")
        first = seen.get(key)
        if first is not None and isinstance(first.get("value"), list) and isinstance(annotation.get("value"), list):
            first["value"] = first["value"] + annotation["value"]
            continue
        copy = dict(annotation)
        merged.append(copy)
        seen.setdefault(key, copy)
    return merged

