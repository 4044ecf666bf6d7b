"""Drawn marks, one row each: where the mark is and what shape it has.

A drawing task's value is a list of marks. The old front-end writes ``tool`` (the tool's index) and
``tool_label``; the new one writes ``toolIndex``, ``toolType`` and ``frame``, and draws freehand as
``pathX``/``pathY`` where the old one wrote ``points``. Both come out the same here: the tool's
index, label and shape, the frame, the shape's parameters under the names panoptes_aggregation's
shape extractors use (``SHAPE_PARAMETERS``), the points of a polygon or freehand line as
``[[x, y], ...]``, and the mark's sub-task answers (``details``) as JSON.

The shape comes from the workflows export when one is given, then from the mark's ``toolType``,
and otherwise from which parameters the mark has.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from zooflow.exports.workflow_export import Tool

# panoptes_aggregation's shape_tools.SHAPE_LUT, as one list of parameter names
SHAPE_PARAMETERS = ("x", "y", "x1", "y1", "x2", "y2", "r", "rx", "ry", "width", "height", "angle", "radius", "spread",
                    "rotation", "x_center", "y_center", "displayTime")
MARK_COLUMNS = (
    "classification_id", "user_name", "subject_id", "workflow_id", "workflow_version", "created_at", "task",
    "mark_index", "frame", "tool_index", "tool_label", "shape", *SHAPE_PARAMETERS, "points", "details",
)
MARK_KEYS = {"tool", "toolIndex", "toolType", "pathX", "pathY", "points", *SHAPE_PARAMETERS}
# Which shape a mark is when nothing names it: the first rule whose parameters it has all of. The
# old front-end's circle has an angle too, as its triangle has: x, y, r and angle are a circle
# (far the commoner tool) unless the workflows export says triangle.
_SHAPE_RULES = (
    ("polygon", ("points",)), ("freehandLine", ("pathX",)), ("temporalRotateRectangle", ("x_center",)),
    ("line", ("x1", "x2")), ("fan", ("radius", "spread")), ("ellipse", ("rx", "ry")), ("circle", ("r",)), ("rotateRectangle", ("width", "height", "angle")), ("rectangle", ("width", "height")),
    ("column", ("x", "width")), ("temporalPoint", ("x", "y", "displayTime")), ("point", ("x", "y")),
    ("fullWidthLine", ("y",)), ("fullHeightLine", ("x",)),
)


def is_mark(value: Any) -> bool:
    return isinstance(value, dict) and bool(MARK_KEYS & value.keys())


def tool_index(mark: dict[str, Any]) -> Any:
    return mark.get("tool", mark.get("toolIndex"))


def _tool(mark: dict[str, Any], tools: list[Tool] | None) -> Tool | None:
    index = tool_index(mark)
    if tools and isinstance(index, int) and 0 <= index < len(tools):
        return tools[index]
    return None


def tool_label(mark: dict[str, Any], tools: list[Tool] | None) -> str | None:
    declared = _tool(mark, tools)
    return (declared.label if declared else None) or mark.get("tool_label")


def shape_of(mark: dict[str, Any], tools: list[Tool] | None) -> str | None:
    declared = _tool(mark, tools)
    if declared and declared.type:
        return declared.type
    if mark.get("toolType"):
        return str(mark["toolType"])
    return next((shape for shape, keys in _SHAPE_RULES if all(k in mark for k in keys)), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _points(mark: dict[str, Any]) -> list[list[float | None]] | None:
    if isinstance(mark.get("points"), list):
        return [[_number(p.get("x")), _number(p.get("y"))] for p in mark["points"] if isinstance(p, dict)]
    if isinstance(mark.get("pathX"), list) and isinstance(mark.get("pathY"), list):
        return [[_number(x), _number(y)] for x, y in zip(mark["pathX"], mark["pathY"])]
    return None


def mark_row(mark: dict[str, Any], index: int, tools: list[Tool] | None) -> dict[str, Any]:
    """The columns of one mark from ``tool_index`` on (the classification's columns are added by the caller)."""
    row: dict[str, Any] = {
        "mark_index": index,
        "frame": mark.get("frame") if isinstance(mark.get("frame"), int) else 0,
        "tool_index": tool_index(mark),
        "tool_label": tool_label(mark, tools),
        "shape": shape_of(mark, tools),
    }
    row |= {name: _number(mark.get(name)) for name in SHAPE_PARAMETERS}
    points = _points(mark)
    if row["x"] is None and row["x1"] is not None:  # a line is anchored at its start
        row["x"], row["y"] = row["x1"], row["y1"]
    if row["x"] is None and points:  # a polygon or freehand line at its first point
        row["x"], row["y"] = points[0]
    row["points"] = json.dumps(points) if points is not None else None
    details = mark.get("details")
    row["details"] = json.dumps(details, sort_keys=True, ensure_ascii=False) if details is not None else None
    return row


def _tool_key(mark: Any, tools: list[Tool] | None) -> str:
    if not isinstance(mark, dict):
        return ""
    label, index = tool_label(mark, tools), tool_index(mark)
    return str(label or (index if index is not None else ""))


def marks_per_tool(marks: list[Any], tools: list[Tool] | None) -> str:
    """``{tool label (or index): count}`` as JSON, for the tidy table's drawing rows."""
    counts = Counter(_tool_key(mark, tools) for mark in marks)
    return json.dumps(dict(counts), sort_keys=True, ensure_ascii=False)
