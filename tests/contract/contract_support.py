"""Helpers the contract tests share: making projects, workflows and subjects with the real client,
waiting for exports, and reading export CSVs the safe way (bytes, then UTF-8)."""

from __future__ import annotations

import csv
import io
import struct
import time
import uuid
import zlib
from pathlib import Path

import requests
from panoptes_client import Project, Subject, SubjectSet, Workflow

from zooflow.sandbox import seed


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def png_bytes(shade: int) -> bytes:
    """A valid 2x2 PNG (libmagic must recognise it), different per ``shade``."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = b"".join(b"\x00" + bytes([shade % 256, 0, 0]) * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b"")


def write_png(directory: Path, shade: int) -> Path:
    path = directory / f"subject-{shade}.png"
    path.write_bytes(png_bytes(shade))
    return path


def make_project(name: str | None = None, private: bool = True) -> Project:
    project = Project()
    project.display_name = name or unique("Contract")
    project.description = "made by a contract test"
    project.primary_language = "en"
    project.private = private
    project.save()
    return project


def make_workflow(project: Project, name: str | None = None, retire_after: int = 3) -> Workflow:
    workflow = Workflow()
    workflow.links.project = project
    workflow.display_name = name or unique("Workflow")
    workflow.primary_language = "en"
    workflow.tasks = seed.DEMO_TASKS
    workflow.first_task = seed.DEMO_TASK
    workflow.retirement = {"criteria": "classification_count", "options": {"count": retire_after}}
    workflow.save()
    return workflow


def make_set(project: Project, name: str | None = None) -> SubjectSet:
    subject_set = SubjectSet()
    subject_set.links.project = project
    subject_set.display_name = name or unique("set")
    subject_set.save()
    return subject_set


def make_subjects(project: Project, count: int, metadata=lambda i: {}) -> list[Subject]:
    """Subjects with external image URLs (nothing to upload, so they are quick to make)."""
    subjects = []
    for i in range(count):
        subject = Subject()
        subject.links.project = project
        subject.add_location({"image/png": f"https://example.org/{uuid.uuid4().hex}.png"})
        subject.metadata.update(metadata(i))
        subject.save()
        subjects.append(subject)
    return subjects


def linked_workflow_with_subjects(project: Project, count: int, metadata=lambda i: {}, retire_after: int = 3):
    workflow = make_workflow(project, retire_after=retire_after)
    subject_set = make_set(project)
    subjects = make_subjects(project, count, metadata)
    subject_set.add(subjects)
    workflow.add_subject_sets(subject_set)
    return workflow, subject_set, subjects


def wait_ready(exportable, export_type: str, timeout: float = 10.0) -> dict:
    """Poll ``describe_export`` quickly (``wait_export`` sleeps 2 s between polls)."""
    deadline = time.monotonic() + timeout
    while True:
        description = exportable.describe_export(export_type)
        if description["media"][0]["metadata"]["state"] == "ready":
            return description
        if time.monotonic() > deadline:
            raise AssertionError(f"{export_type} export not ready after {timeout}s: {description}")
        time.sleep(0.1)


def eventually(read, expected, timeout: float = 5.0):
    """Poll ``read()`` until it returns ``expected`` (background jobs run on a 0.1 s tick); the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def stays_creating(exportable, export_type: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if exportable.describe_export(export_type)["media"][0]["metadata"]["state"] != "creating":
            return False
        time.sleep(0.1)
    return True


def raw_bytes(url: str, headers: dict | None = None) -> requests.Response:
    """The blob exactly as served (gzip bytes), without requests' transparent decompression."""
    response = requests.get(url, headers=headers or {}, stream=True)
    response.raw_bytes = response.raw.read(decode_content=False)
    return response


def csv_rows(response: requests.Response) -> list[dict]:
    """Decode an export download as UTF-8 (the client's csv helpers would use ISO-8859-1)."""
    text = b"".join(response.iter_content(chunk_size=65536)).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))
