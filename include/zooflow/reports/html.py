"""Pages from the Jinja2 templates beside this module: the reports, the Zooniverse page and a run's tab.

Reports live in the data root, which may be object storage a browser cannot reach folder by folder;
so a page carries everything it shows: the style sheet inline and every image as a base64 PNG data
URI. Links to outputs are relative, so they work wherever the data root is copied or synced to. The
UI's pages share the base template and style sheet, so the reports and the UI look alike.

Escaping has one path: Jinja2's autoescape, as each value is put into a page. Workflow, project and
set names come from Panoptes and from whoever wrote the files, so a workflow called ``<b>Cats</b>``
shows as that text, never as markup; the only HTML is the templates' own.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@dataclass(frozen=True)
class Chart:
    """An image for a page (a PNG) with its text alternative and an optional caption."""

    png: bytes
    alt: str
    caption: str | None = None


@dataclass(frozen=True)
class Anchor:
    """A link as a page shows it."""

    text: str
    href: str


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def link(text: str, target: str | os.PathLike[str], page: Path) -> Anchor:
    """A link from ``page`` to ``target``, relative, so it still works when the data root moves."""
    return Anchor(text, Path(os.path.relpath(Path(target), Path(page).parent)).as_posix())


def utc_text(moment: datetime) -> str:
    """``2026-11-21 09:30:00 UTC``: every time in a report is UTC, and says so."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


_ENVIRONMENT = Environment(loader=PackageLoader("zooflow.reports", "templates"), autoescape=True,
                           undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENVIRONMENT.filters["data_uri"] = png_data_uri


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file under ``templates/``) makes of ``context``."""
    return _ENVIRONMENT.get_template(template).render(**context)


def render_report(template: str, *, title: str, project: str, generated_at: datetime, **context: Any) -> str:
    """A report page: its title, project and time of writing, then what ``template`` makes of ``context``."""
    return render(template, title=title, project=project, generated_at=utc_text(generated_at), **context)
