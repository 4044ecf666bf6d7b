"""Reading a subject manifest the way panoptes-cli does, and refusing a bad one before any upload.

Conventions (panoptes-cli ``upload-subjects``): a column whose values name local media files is a
file column, one whose values are http(s) URLs is a remote location, and every column becomes
metadata under its own name, so ``#``-prefixed keys stay hidden from everyone and ``!``-prefixed
ones from volunteers. Files are resolved against the manifest's folder and may not leave it.
"""

from __future__ import annotations

import csv
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from zooflow.errors import ConfigurationError
from zooflow.excerpts import excerpt, listing
from zooflow.subjects.upload import ALLOWED_MIME, UploadItem

MAX_BYTES = 1_000_000  # the Zooniverse project builder's limit per media file


@dataclass(frozen=True)
class Manifest:
    items: tuple[UploadItem, ...]
    key_column: str
    skipped_missing: tuple[str, ...]  # rows left out because their files are missing (only when allowed)


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _media_type(value: str) -> str | None:
    mime = mimetypes.guess_type(value.split("?")[0])[0]
    return mime if mime in ALLOWED_MIME else None


def _size(file: Path) -> int | None:
    """The file's size, or None when there is no such file (a name too long for the file system included)."""
    try:
        return file.stat().st_size if file.is_file() else None
    except OSError:
        return None


def read_manifest(path: str | Path, *, key_column: str | None = None, allow_missing: bool = False,
                  max_bytes: int = MAX_BYTES) -> Manifest:
    """The manifest's rows as upload items, keyed by ``key_column`` (default: the first file or URL column)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise ConfigurationError(f"manifest {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"manifest {path} is not UTF-8 text; save it as UTF-8 CSV") from None
    if not rows:
        raise ConfigurationError(f"manifest {path} has no rows")
    columns = list(rows[0])
    media_columns = [c for c in columns if all(_media_type(row[c] or "") for row in rows)]
    if not media_columns:
        raise ConfigurationError(
            f"manifest {path} has no column of media files or URLs (.png, .jpg, .gif, .svg, .mp3, .mp4, .txt, .json); "
            f"columns are: {listing(columns, 20)}"
        )
    key = key_column or media_columns[0]
    if key not in columns:
        raise ConfigurationError(
            f"manifest {path} has no column {excerpt(repr(key))} to match subjects on; columns are: {listing(columns, 20)}")
    folder = path.parent.resolve()
    outside, missing, too_big, items, skipped = [], [], [], [], []
    for number, row in enumerate(rows, start=2):
        files, urls, row_missing = [], [], False
        for column in media_columns:
            value = row[column].strip()
            if _is_url(value):
                urls.append((_media_type(value), value))
                continue
            file = (folder / value).resolve()
            if not file.is_relative_to(folder):
                outside.append(f"line {number}: {value}")
            elif (size := _size(file)) is None:
                missing.append(f"line {number}: {value}")
                row_missing = True
            elif size > max_bytes:
                too_big.append(f"line {number}: {value} ({size / 1e6:.1f} MB)")
            files.append(file)
        if row_missing and allow_missing:
            skipped.append(row[key])
            continue
        items.append(UploadItem(key=str(row[key]), metadata=dict(row), files=tuple(files), urls=tuple(urls)))
    problems = []
    if outside:
        problems.append(f"{len(outside):,} file(s) lie outside the manifest's folder {folder} (no ../ or absolute paths): "
                        + listing(outside, 10, separator="; "))
    if missing and not allow_missing:
        problems.append(f"{len(missing):,} file(s) are missing (allow missing files to upload the rest): "
                        + listing(missing, 20, separator="; "))
    if too_big:
        problems.append(f"{len(too_big):,} file(s) exceed the {max_bytes / 1e6:.1f} MB upload limit; shrink them: "
                        + listing(too_big, 10, separator="; "))
    if not problems and not items:
        problems.append(f"every row's files are missing ({len(missing):,} file(s): {listing(missing, 20, separator='; ')}), "
                        f"so there is nothing to upload; put the files in {folder} or fix their paths")
    if problems:
        raise ConfigurationError(f"manifest {path}: " + " | ".join(problems) + ". Nothing was created or uploaded.")
    return Manifest(tuple(items), key, tuple(skipped))
