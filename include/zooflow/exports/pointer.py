"""Reading an exports folder's records: ``latest.json``, the one record of which download is verified,
and ``pending.json``, a download the slice has still to check.

The downloader writes them, and the request step, the reports and the backfill read ``latest.json``;
one reader means a damaged record is reported the same way everywhere. ``latest.json``'s path comes
from ``DataRoot``; ``pending.json`` lies beside it, and only the download and slice steps read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zooflow.paths import DataRoot

PENDING = "pending.json"


def pending_pointer(exports_dir: str | os.PathLike[str]) -> Path:
    """An exports folder's ``pending.json``: a download whose gzip check is left to the slice (file, size,
    export time). Never the same file as ``latest.json``'s."""
    return Path(exports_dir) / PENDING


def read_pointer(exports_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``latest.json`` of an exports folder ({} when there is none); a ValueError naming it when it is damaged."""
    return _read(DataRoot.latest_pointer(exports_dir))


def read_pending(exports_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``pending.json`` of an exports folder ({} when there is none); a ValueError naming it when it is damaged."""
    return _read(pending_pointer(exports_dir))


def _read(path: Path) -> dict[str, Any]:
    try:
        pointer = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # a bad encoding is a ValueError too
        raise ValueError(f"the record {path} is damaged ({exc})") from None
    if not isinstance(pointer, dict):
        raise ValueError(f"the record {path} is damaged (not a JSON object)")
    return pointer
