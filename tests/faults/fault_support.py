"""Helpers the fault tests share (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from zooflow.sandbox import seed

SLUG = seed.DEMO_PROJECT_SLUG

EXPORTS_CONF = {"project": SLUG, "poll_seconds": 1, "wait_timeout_minutes": 0.5}


def al_conf(world, **extra) -> dict:
    return {"project": SLUG, "config": Path(world.al_config).name, "poll_seconds": 1, "wait_timeout_minutes": 0.5} | extra


def task(run, task_id: str):
    (ti,) = [t for t in run.get_task_instances() if t.task_id == task_id]
    return ti


HEADER = ("classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,created_at,"
          "gold_standard,expert,metadata,annotations,subject_data,subject_ids")


def classification_line(n: int, padding: int = 0, annotations: str = '[{""task"":""T0"",""value"":1}]') -> str:
    """One valid export row; ``padding`` random bytes in its metadata keep gzip from shrinking a big file."""
    import json
    import os

    metadata = json.dumps({"session": os.urandom(padding).hex()} if padding else {}).replace('"', '""')
    return (f'{n},vol{n % 50},{n % 50},ip,1,Glitch classification,1.1,2026-11-20 12:00:00 UTC,,,'
            f'"{metadata}","{annotations}","{{}}",{n % 20 + 1}')


def write_classifications_export(path, rows: int, *, padding: int = 0, header: str = HEADER,
                                 extra_lines: tuple[bytes, ...] = ()):
    """A classifications export in Panoptes' layout, gzipped, with ``extra_lines`` appended as raw bytes."""
    import gzip

    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(header.encode() + b"\n")
        for n in range(1, rows + 1):
            handle.write(classification_line(n, padding).encode() + b"\n")
        for line in extra_lines:
            handle.write(line + b"\n")
    return path
