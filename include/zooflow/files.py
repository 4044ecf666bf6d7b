"""Atomic writes (a reader sees the old file or the new one, never half of either), and private files.

Atomic writes go through ``mkstemp``, so they are readable by their owner only (0600). Logs and files
that hold a generated password are created 0600 too (:func:`open_private`), since a state folder may
sit in a shared home or repository checkout.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

PRIVATE = 0o600


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))


def open_private(path: str | os.PathLike[str]) -> IO[bytes]:
    """``path`` opened for appending, created 0600, and made 0600 if an older run left it readable by others."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = open(os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE), "ab")
    os.fchmod(handle.fileno(), PRIVATE)
    return handle
