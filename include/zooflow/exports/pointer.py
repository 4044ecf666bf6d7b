"""Reading an exports folder's ``latest.json``: the one record of which download is verified.

The downloader writes it, and the request step, the reports and the backfill read it; one reader
means a damaged record is reported the same way everywhere. Its path comes from ``DataRoot``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from zooflow.paths import DataRoot


def read_pointer(exports_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``latest.json`` of an exports folder ({} when there is none); a ValueError naming it when it is damaged."""
    path = DataRoot.latest_pointer(exports_dir)
    try:
        pointer = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # a bad encoding is a ValueError too
        raise ValueError(f"the record {path} is damaged ({exc})") from None
    if not isinstance(pointer, dict):
        raise ValueError(f"the record {path} is damaged (not a JSON object)")
    return pointer
