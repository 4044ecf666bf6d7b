"""Reading a report back as a reader would: its text, tables, links and decoded images.

The page is parsed with the standard library's HTML parser, not searched with patterns, so a test
sees the cells and captions a browser would show; images are decoded from their data URIs into pixel
arrays, so "the chart is there" means pixels were drawn, not that a tag exists.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from matplotlib.image import imread

DATA_URI = "data:image/png;base64,"


@dataclass
class Image:
    alt: str
    pixels: np.ndarray  # height x width x channels, floats in [0, 1]


@dataclass
class Page:
    text: str = ""
    images: list[Image] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)  # rows of cell texts, the header row first
    captions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def table(self, first_header: str) -> list[list[str]]:
        """The rows (header row left out) of the table whose first header cell is ``first_header``."""
        (found,) = [t for t in self.tables if t and t[0] and t[0][0] == first_header]
        return found[1:]

    def figures(self) -> dict[str, str]:
        """The key-figures table (header cells on the left) as name -> value."""
        (found,) = [t for t in self.tables if t and len(t[0]) == 2 and t[0][0] in ("Run", "Workflow")]
        return dict(found)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._text: list[str] = []
        self._cell: list[str] | None = None
        self._capture: list[str] | None = None  # caption or note text being read
        self._capture_into: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.page.tags.append(tag)
        if tag == "img":
            src = attributes.get("src") or ""
            assert src.startswith(DATA_URI), f"an image that is not an embedded PNG: {src[:40]}"
            pixels = imread(io.BytesIO(base64.b64decode(src[len(DATA_URI):], validate=True)), format="png")
            self.page.images.append(Image(attributes.get("alt") or "", pixels))
        elif tag == "table":
            self.page.tables.append([])
        elif tag == "tr":
            self.page.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a":
            self.page.links.append(attributes.get("href") or "")
        elif tag == "figcaption" or (tag == "p" and attributes.get("class") == "note"):
            self._capture = []
            self._capture_into = self.page.captions if tag == "figcaption" else self.page.notes
        elif tag == "div" and self._capture is not None and self._capture:
            self._capture.append(" | ")  # caption lines stay apart

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.page.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("figcaption", "p") and self._capture is not None:
            self._capture_into.append("".join(self._capture).strip())
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self.lasttag in ("style", "title"):
            return  # not shown in the page itself
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._capture is not None:
            self._capture.append(data)


def read_page(path: Path) -> Page:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    parser.page.text = " ".join("".join(parser._text).split())
    return parser.page


def chart_problems(image: Image, *, min_width: int = 300, min_height: int = 150) -> list[str]:
    """Why a chart would look empty to a reader: too small, one flat colour, or no coloured marks
    (axes and labels are black and grey; bars, lines, points and heat-map cells are coloured)."""
    rgb = image.pixels[..., :3]
    height, width = rgb.shape[:2]
    problems = []
    if width < min_width or height < min_height:
        problems.append(f"{image.alt!r} is only {width}x{height} pixels")
    if rgb.std() < 0.05:
        problems.append(f"{image.alt!r} is almost one flat colour (std {rgb.std():.3f})")
    coloured = float(((rgb.max(axis=2) - rgb.min(axis=2)) > 0.25).mean())
    if coloured < 0.001:  # empty axes have none; a learning curve of one round has about 0.13 %
        problems.append(f"{image.alt!r} has no coloured marks ({coloured:.2%} of its pixels)")
    return problems


def thumbnail_problems(image: Image, *, largest: int = 160) -> list[str]:
    """Why a thumbnail would be useless: empty, larger than a thumbnail, or blank."""
    rgb = image.pixels[..., :3]
    height, width = rgb.shape[:2]
    problems = []
    if not (16 <= max(height, width) <= largest):
        problems.append(f"{image.alt!r} is {width}x{height} pixels, not a thumbnail")
    if rgb.std() < 0.05 or len(np.unique(rgb.reshape(-1, 3), axis=0)) < 4:
        problems.append(f"{image.alt!r} is blank")
    return problems


def broken_links(page: Page, page_path: Path) -> list[str]:
    """Links that do not lead to a file: each must be relative and resolve beside the report."""
    return [href for href in page.links
            if os.path.isabs(href) or "://" in href or not (page_path.parent / href).is_file()]
