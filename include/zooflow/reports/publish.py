"""Writing a report: the HTML page and, beside it, its key figures as JSON.

The JSON sibling (same stem) lets a UI list and compare reports without parsing HTML. Both files are
written atomically, the page first: a reader that finds the JSON finds its page too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from zooflow.files import atomic_write_bytes, atomic_write_json
from zooflow.paths import DataRoot


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path

    def paths(self) -> tuple[Path, Path]:
        """Both files, for a data store to push."""
        return self.html, self.json


def write_report(root: DataRoot, html_path: Path, page: str, figures: dict[str, Any], generated_at: datetime) -> ReportFiles:
    """Write ``page`` to ``html_path`` and ``figures`` to the ``.json`` beside it.

    The JSON gains ``generated_at`` (UTC, ISO 8601) and ``html``: the page's path relative to the data
    root, the same wherever the root lives (a folder, a bucket, a worker's cache of it).
    """
    atomic_write_bytes(html_path, page.encode("utf-8"))
    json_path = html_path.with_suffix(".json")
    atomic_write_json(json_path, figures | {"generated_at": generated_at.isoformat(),
                                            "html": html_path.relative_to(root.root).as_posix()})
    return ReportFiles(html_path, json_path)
