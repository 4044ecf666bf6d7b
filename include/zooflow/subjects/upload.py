"""Uploading subjects into a subject set: in parallel, resumable, and never twice.

The stock client swallows failed media uploads, makes one GET per subject when linking, and
leaves an empty set behind when a run dies. Here each item carries a key in its metadata (for
example ``#pool_id``); subjects are created first, their media PUT and checked by us, each
confirmed subject is written to a journal at once, and only then are they linked in batches. A
rerun reads the set and the journal and does only what is missing, so a crash mid-upload costs
nothing and no item ends up in the set twice.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from panoptes_client import Panoptes, Project, Subject, SubjectSet, Workflow
from panoptes_client.panoptes import PanoptesAPIException
from tenacity import RetryError

from zooflow.errors import ConfigurationError, PanoptesError
from zooflow.retries import BLOB_UPLOAD, PANOPTES_SERVER_ERRORS, BlobRefused

log = logging.getLogger(__name__)

LINK_BATCH = 100
UPLOAD_THREADS = 5
ALLOWED_MIME = {"image/jpeg", "image/png", "image/gif", "image/svg+xml", "audio/mpeg", "video/mp4", "audio/mp4",
                "video/mpeg", "text/plain", "application/json"}


@dataclass(frozen=True)
class UploadItem:
    """One subject to be: its key (unique in the set), local files and/or remote URLs, and metadata."""

    key: str
    metadata: dict[str, Any]
    files: tuple[Path, ...] = ()
    urls: tuple[tuple[str, str], ...] = ()  # (mime type, URL) already hosted elsewhere


@dataclass
class UploadReport:
    subject_set_id: int
    created_set: bool
    already_linked: int = 0
    created: int = 0
    resumed: int = 0  # created by an earlier, interrupted run and linked now
    linked: int = 0
    subject_ids: dict[str, int] = field(default_factory=dict)  # key -> subject id, for every item

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("subject_set_id", "created_set", "already_linked", "created", "resumed", "linked")} | {
            "subject_ids": dict(self.subject_ids)}


def mime_of(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0]
    if mime not in ALLOWED_MIME:
        raise ConfigurationError(f"{path.name}: Panoptes does not accept {mime or 'this file type'}; "
                                 f"allowed are {', '.join(sorted(ALLOWED_MIME))}")
    return mime


class Journal:
    """Append-only record of subjects whose media are confirmed: ``{"key", "subject_id"}`` per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict[str, int]:
        entries: dict[str, int] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                    entries[str(record["key"])] = int(record["subject_id"])
                except (ValueError, KeyError):
                    continue  # a line torn by a crash: that subject is simply made again
        return entries

    def add(self, key: str, subject_id: int) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "subject_id": subject_id}) + "\n")
                handle.flush()
                os.fsync(handle.fileno())


def find_subject_set(project: Project, display_name: str) -> SubjectSet | None:
    """The project's set with this name (names are unique per project on Panoptes)."""
    return next((s for s in SubjectSet.where(project_id=project.id, page_size=100) if s.display_name == display_name), None)


def _create_set(project: Project, set_name: str) -> SubjectSet:
    """Create the set, trying again after a server error. A 5xx may hide a set that was made, so the
    name (unique per project) is looked up before each new attempt: never two sets for one batch."""
    for attempt in PANOPTES_SERVER_ERRORS.copy():
        with attempt:
            if attempt.retry_state.attempt_number > 1 and (made := find_subject_set(project, set_name)) is not None:
                return made
            return _save_new_set(project, set_name)
    raise AssertionError("unreachable: the policy returns or raises")


def _save_new_set(project: Project, set_name: str) -> SubjectSet:
    subject_set = SubjectSet()
    subject_set.links.project = project
    subject_set.display_name = set_name
    subject_set.save()
    return subject_set


def set_members_by_key(subject_set_id: int, key_field: str) -> dict[str, int]:
    """key -> subject id for the set's members, one paged listing (not one GET per subject)."""
    members: dict[str, int] = {}
    for subject in Subject.where(subject_set_id=subject_set_id, page_size=100):
        key = (subject.metadata or {}).get(key_field)
        if key is not None:
            members.setdefault(str(key), int(subject.id))
    return members


def _put_media(url: str, mime: str, data: bytes) -> None:
    try:
        _put_media_once(url, mime, data)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        error = str(last) if isinstance(last, BlobRefused) else last.__class__.__name__
        raise PanoptesError(f"uploading media failed after {exc.last_attempt.attempt_number} attempts ({error})") from None


@BLOB_UPLOAD.wraps
def _put_media_once(url: str, mime: str, data: bytes) -> None:
    response = requests.put(url, data=data, headers={"Content-Type": mime, "x-ms-blob-type": "BlockBlob"}, timeout=120)
    if response.status_code not in (200, 201):
        raise BlobRefused(f"HTTP {response.status_code}")


def _create_subject(client: Panoptes, project: Project, item: UploadItem) -> int:
    """POST the subject, then PUT each file ourselves and check it: a subject is only returned once whole."""
    media = [(mime_of(path), path.read_bytes()) for path in item.files]
    with client:
        subject = Subject()
        subject.links.project = project
        subject.locations = [mime for mime, _ in media] + [{mime: url} for mime, url in item.urls]
        subject.metadata.update(item.metadata)
        subject.save()
        upload_urls = [next(iter(location.values())) for location in subject.raw["locations"][: len(media)]]
        try:
            for (mime, data), url in zip(media, upload_urls):
                _put_media(url, mime, data)
        except PanoptesError:
            _discard(subject)
            raise
    return int(subject.id)


def _discard(subject: Subject) -> None:
    """A subject whose media never arrived is deleted, so no keyed orphan outlives the failure."""
    try:
        Subject.find(subject.id).delete()
    except PanoptesAPIException as exc:
        log.warning("Could not delete subject %s, whose media failed to upload: %s", subject.id, exc)


def _link(subject_set_id: int, subject_ids: Sequence[int]) -> None:
    """POST the link endpoint directly in batches (``SubjectSet.add`` would GET once per subject)."""
    for start in range(0, len(subject_ids), LINK_BATCH):
        batch = [str(i) for i in subject_ids[start: start + LINK_BATCH]]
        SubjectSet.http_post(f"{subject_set_id}/links/subjects", json={"subjects": batch}, retry=True)


def upload_subjects(
    project: Project,
    set_name: str,
    items: Iterable[UploadItem],
    *,
    key_field: str,
    journal_path: Path,
    workflow: Workflow | None = None,
    threads: int = UPLOAD_THREADS,
    on_progress: Callable[[int, int], None] | None = None,
) -> UploadReport:
    """Make ``set_name`` hold exactly one subject per item, then link it to ``workflow``.

    Run inside ``with client:``. Keys must be unique. Subjects are linked only once every upload
    has succeeded, and the set is linked to the workflow last, so volunteers never see half a
    batch; a set that had no members when this call began and still has none after a failure is
    deleted, so no empty set is left behind. Confirmed uploads stay in the journal for the rerun.
    """
    items = list(items)
    _check(items, key_field)
    keys = [item.key for item in items]
    client = Panoptes.client()
    subject_set = find_subject_set(project, set_name)
    report = UploadReport(subject_set_id=0, created_set=subject_set is None)
    if subject_set is None:
        subject_set = _create_set(project, set_name)
        log.info("Created subject set %s %r", subject_set.id, set_name)
    set_id = report.subject_set_id = int(subject_set.id)
    started_empty = _is_empty(set_id)
    try:
        linked = set_members_by_key(set_id, key_field)
        journal = Journal(journal_path)
        confirmed = {k: v for k, v in journal.read().items() if k in keys and k not in linked}
        missing = [item for item in items if item.key not in linked and item.key not in confirmed]
        report.already_linked = sum(1 for k in keys if k in linked)
        report.resumed = len(confirmed)
        log.info("Subject set %s: %d of %d items already linked, %d uploaded earlier and not yet linked, %d to upload",
                 set_id, report.already_linked, len(items), report.resumed, len(missing))
        created = _create_all(client, project, missing, journal, threads, on_progress)
        report.created = len(created)
        to_link = [*confirmed.values(), *created.values()]
        _link(set_id, to_link)
        report.linked = len(to_link)
        found = {**linked, **confirmed, **created}
        report.subject_ids = {key: found[key] for key in keys}
        if workflow is not None:
            current = Workflow.find(workflow.id)
            if str(set_id) not in {str(s) for s in current.raw["links"].get("subject_sets", [])}:
                current.add_subject_sets([subject_set])
                log.info("Linked subject set %s to workflow %s", set_id, workflow.id)
    except BaseException:
        if started_empty and _is_empty(set_id):
            _delete_empty_set(set_id)
        raise
    return report


def _check(items: list[UploadItem], key_field: str) -> None:
    """Everything that can be known wrong before the first request, so bad input changes nothing."""
    keys = [item.key for item in items]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ConfigurationError(f"upload keys ({key_field}) must be unique; repeated: {repeated[:5]}")
    missing = [str(path) for item in items for path in item.files if not path.is_file()]
    if missing:
        raise ConfigurationError(f"{len(missing)} media file(s) do not exist: {', '.join(missing[:5])}")
    for item in items:
        for path in item.files:
            mime_of(path)


def _create_all(client: Panoptes, project: Project, items: list[UploadItem], journal: Journal, threads: int,
                on_progress: Callable[[int, int], None] | None) -> dict[str, int]:
    """Create every item; journal each success as it lands, and after all have run raise the first failure."""
    created: dict[str, int] = {}
    errors: list[tuple[str, BaseException]] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = {pool.submit(_create_subject, client, project, item): item for item in items}
        for done, future in enumerate(as_completed(futures), start=1):
            item = futures[future]
            try:
                subject_id = future.result()
            except Exception as exc:  # noqa: BLE001 - collected, the first one is raised below
                errors.append((item.key, exc))
                continue
            journal.add(item.key, subject_id)
            created[item.key] = subject_id
            if on_progress:
                on_progress(done, len(items))
    if errors:
        key, first = errors[0]
        raise PanoptesError(
            f"{len(errors)} of {len(items)} subjects could not be uploaded (first: {key}: {first}); the {len(created)} "
            "that were are kept for the rerun, which uploads only the rest"
        ) from first
    return created


def _is_empty(set_id: int) -> bool:
    return next(iter(Subject.where(subject_set_id=set_id, page_size=1)), None) is None


def _delete_empty_set(set_id: int) -> None:
    try:
        SubjectSet.find(set_id).delete()
        log.info("Removed subject set %s, left empty by the failed upload", set_id)
    except PanoptesAPIException as exc:
        log.warning("Could not remove the empty subject set %s: %s", set_id, exc)
