"""What a workflows export says about each task: its type, its tools, its dropdown options.

A classification export names a task only by its key (``T0``) and, for drawings, a tool by its
index; the workflows export (one row per workflow version) holds the rest, with the text behind
string keys (``T0.question``) in its ``strings`` column. Flatten reads it once, so a text answer is
typed ``text`` rather than guessed to be a ``single`` answer, a mark gets its tool's label and shape,
and a dropdown value its option's label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# (workflow_id, major workflow version, task key): a task's definition is per workflow version
TaskKey = tuple[str, str, str]


@dataclass(frozen=True)
class Tool:
    label: str | None
    type: str | None


@dataclass
class TaskDefinitions:
    """The tasks of every workflow version in a workflows export."""

    types: dict[TaskKey, str] = field(default_factory=dict)
    tools: dict[TaskKey, list[Tool]] = field(default_factory=dict)
    options: dict[TaskKey, dict[str, str]] = field(default_factory=dict)  # dropdown: option value -> label

    def add(self, record: dict[str, str], task: dict[str, Any]) -> None:
        key = (str(record.get("workflow_id")), str(record.get("version", "")), task["task"])
        if task["task_type"]:
            self.types[key] = task["task_type"]
        if task["tool_list"]:
            self.tools[key] = task["tool_list"]
        if task["option_labels"]:
            self.options[key] = task["option_labels"]


def parse_json_cell(record: dict[str, str], column: str, default: str) -> Any:
    try:
        return json.loads(record.get(column) or default)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{column} is not valid JSON ({exc.msg} at character {exc.pos})") from None


def _resolve(node: Any, strings: dict[str, str]) -> Any:
    """Task definitions with their string keys (``T0.question``) replaced by the text."""
    if isinstance(node, dict):
        return {k: strings.get(v, v) if isinstance(v, str) else _resolve(v, strings) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(item, strings) for item in node]
    return node


def _option_labels(task: dict[str, Any]) -> dict[str, str]:
    """A dropdown's options, value -> label, over all its menus (``selects``) and their conditions;
    a simple dropdown (the new front-end's) lists its options, each selected by its index."""
    labels = {}
    for index, option in enumerate(task.get("options") if isinstance(task.get("options"), list) else []):
        labels[str(index)] = option.get("label") if isinstance(option, dict) else option
    for select in task.get("selects") or []:
        options = select.get("options") if isinstance(select, dict) else None
        for group in (options or {}).values() if isinstance(options, dict) else []:
            for option in group if isinstance(group, list) else []:
                if isinstance(option, dict) and "value" in option:
                    labels[str(option["value"])] = option.get("label")
    return labels


def workflow_tasks(record: dict[str, str]) -> list[dict[str, Any]]:
    """The tasks of one row of a workflows export (one workflow version), text spelled out."""
    tasks = parse_json_cell(record, "tasks", "{}")
    strings = parse_json_cell(record, "strings", "{}")
    if not isinstance(tasks, dict) or not isinstance(strings, dict):
        raise ValueError("tasks and strings must be JSON objects")
    version, minor = record.get("version", ""), record.get("minor_version", "")
    rows = []
    for key, task in _resolve(tasks, strings).items():
        if not isinstance(task, dict):
            continue
        answers = [a.get("label") for a in task.get("answers") or [] if isinstance(a, dict)]
        tools = [Tool(t.get("label"), t.get("type")) for t in task.get("tools") or [] if isinstance(t, dict)]
        choices = task.get("choicesOrder") or sorted((task.get("choices") or {}).keys())
        rows.append({
            "workflow_id": record.get("workflow_id"), "display_name": record.get("display_name"),
            "workflow_version": f"{version}.{minor}" if minor else version, "version": version,
            "minor_version": minor, "active": record.get("active"), "first_task": record.get("first_task"),
            "task": key, "task_type": task.get("type"),
            "question": task.get("question") or task.get("instruction"),
            "answers": json.dumps(answers, ensure_ascii=False) if answers else None,
            "tools": json.dumps([t.__dict__ for t in tools], ensure_ascii=False) if tools else None,
            "choices": json.dumps(choices, ensure_ascii=False) if choices else None,
            "next": task.get("next"),
            "tool_list": tools,
            "option_labels": _option_labels(task),
        })
    return rows


WORKFLOW_TASK_COLUMNS = (
    "workflow_id", "display_name", "workflow_version", "version", "minor_version", "active", "first_task",
    "task", "task_type", "question", "answers", "tools", "choices", "next",
)


def task_table_row(task: dict[str, Any]) -> dict[str, Any]:
    """A task of :func:`workflow_tasks` as a row of the flattened workflows export."""
    return {name: task[name] for name in WORKFLOW_TASK_COLUMNS}
