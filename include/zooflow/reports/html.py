"""A small builder for self-contained HTML pages: one file that opens anywhere, offline.

Reports live in the data root, which may be object storage a browser cannot reach folder by folder;
so a page carries everything it shows: the style sheet inline and every image as a base64 PNG data
URI. Links to outputs are relative, so they work wherever the data root is copied or synced to.

Text is escaped as it is put into the page. Fragments the builder made are ``Markup`` (already
safe), so they can be nested without being escaped twice, and a workflow called ``<b>Cats</b>``
shows as that text, never as markup.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0; background: #f6f8fa; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; min-height: 100vh; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
p.meta { color: #59636e; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { color: #59636e; font-weight: 600; }
td.number { text-align: right; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #59636e; font-size: 0.9em; margin-top: 4px; }
.sheet { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 14px; }
.sheet figure { margin: 0; }
.sheet img { image-rendering: pixelated; width: 100%; }
.note { background: #fff8c5; border: 1px solid #d4a72c66; padding: 8px 12px; border-radius: 6px; }
ul { margin: 6px 0 16px; padding-left: 22px; }
code { font-size: 0.92em; }
"""


class Markup(str):
    """HTML that is safe to put into a page as it is: made by this builder from escaped text."""


def escape(value: object) -> Markup:
    """Text for a page: escaped, unless it is ``Markup`` already."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def element(tag: str, *children: object, **attributes: object) -> Markup:
    """``<tag attr="...">children</tag>``; ``class_`` gives ``class``, and None leaves an attribute out."""
    attrs = "".join(f' {name.rstrip("_").replace("_", "-")}="{escape(value)}"'
                    for name, value in attributes.items() if value is not None)
    return Markup(f"<{tag}{attrs}>{''.join(escape(child) for child in children)}</{tag}>")


def join(parts: Iterable[object]) -> Markup:
    return Markup("".join(escape(part) for part in parts))


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str) -> Markup:
    """A PNG embedded in the page, with its text alternative."""
    return Markup(f'<img src="{png_data_uri(png)}" alt="{escape(alt)}">')


def figure(content: object, caption: object | None = None) -> Markup:
    return element("figure", content, element("figcaption", caption) if caption is not None else Markup(""))


def image(png: bytes, alt: str, caption: object | None = None) -> Markup:
    """One embedded PNG with an optional caption."""
    return figure(img(png, alt), caption)


def sheet(cells: Iterable[Markup]) -> Markup:
    """Figures in a grid (a contact sheet)."""
    return element("div", join(cells), class_="sheet")


def note(text: object) -> Markup:
    """A plain statement that stands out: why a chart is missing, what a dry run did not do."""
    return element("p", text, class_="note")


def bullet_list(items: Iterable[object]) -> Markup:
    return element("ul", join(element("li", item) for item in items))


def _cell(value: object) -> Markup:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return element("td", value, class_="number" if numeric else None)


def table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> Markup:
    """A table; numbers are right-aligned so columns of counts read at a glance."""
    head = element("tr", join(element("th", name) for name in header))
    body = join(element("tr", join(_cell(value) for value in row)) for row in rows)
    return element("table", element("thead", head), element("tbody", body))


def key_figures(pairs: Iterable[tuple[str, object]]) -> Markup:
    """The figures a reader looks for first, as a two-column table of name and value."""
    return element("table", join(element("tr", element("th", name), _cell(value)) for name, value in pairs))


def section(title: str, *content: object) -> Markup:
    return join([element("h2", title), *content])


def link(text: object, target: str | os.PathLike[str], page: Path) -> Markup:
    """A link from ``page`` to ``target``, relative, so it still works when the data root moves."""
    href = Path(os.path.relpath(Path(target), Path(page).parent)).as_posix()
    return element("a", text, href=href)


def utc_text(moment: datetime) -> str:
    """``2026-11-21 09:30:00 UTC``: every time in a report is UTC, and says so."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def page(title: str, *, project: str, generated_at: datetime, body: Iterable[object]) -> str:
    """The whole document: title, project and time, then the sections."""
    meta = element("p", f"Project {project} · generated {utc_text(generated_at)}", class_="meta")
    return ("<!DOCTYPE html>\n"
            + element("html",
                      element("head", Markup('<meta charset="utf-8">'),
                              Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
                              element("title", f"{title} · {project}"), element("style", Markup(STYLE))),
                      element("body", element("main", element("h1", title), meta, join(body))),
                      lang="en")
            + "\n")
