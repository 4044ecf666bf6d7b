"""Pulling the classifications made since the last one stored, page by page, into the store.

``GET /classifications/project?project_id=P&last_id=L[&workflow_id=W]`` answers in id order with no
total count; the page's ``next_href`` carries the next ``last_id``. Panoptes takes that id as the
greatest of the page's ids compared *as strings*, so a page that crosses a power of ten (…98, 99, 100)
sends the next request from 99 and serves 100 again: ids at or below the highest one already seen are
skipped (and counted). Pages are read with the client's own ``Classification.http_get``, which retries
a 5xx as every panoptes-client read does (the stock paginator's follow-up requests do not).

Rows are buffered and appended in batches of ``flush_rows``; the pull's memory is one batch and one
page. A pull that fails part-way appends what it had fetched before raising, and a pull that is killed
loses only its buffer: the next one resumes from the committed ``last_id`` (:mod:`.store`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from panoptes_client import Classification

from zooflow.classifications.records import is_incomplete, store_row
from zooflow.classifications.store import ClassificationStore
from zooflow.errors import PanoptesError
from zooflow.paths import DataRoot

KEY = "classifications"  # the JSON API key of the records and their meta
PAGE_SIZE = 100  # the most Panoptes serves in one page
FLUSH_ROWS = 10_000


@dataclass
class PullReport:
    project: str
    workflow_id: int | None
    store: str
    previous_last_id: int
    fetched: int = 0  # new classifications stored by this pull
    total: int = 0  # classifications in the store afterwards
    last_id: int = 0
    incomplete_skipped: int = 0
    duplicates_skipped: int = 0  # ids served again by overlapping pages
    pages: int = 0
    parts_written: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        scope = f"workflow {self.workflow_id}" if self.workflow_id is not None else "all workflows"
        skipped = [f"{n} {what}" for n, what in ((self.incomplete_skipped, "incomplete left out"),
                                                  (self.duplicates_skipped, "repeated ids skipped")) if n]
        return [
            f"{self.project} ({scope}): {self.fetched} new classification{'s' * (self.fetched != 1)} in "
            f"{self.pages} page{'s' * (self.pages != 1)}, {self.seconds:.1f} s" + (f" ({', '.join(skipped)})" if skipped else ""),
            f"{self.total} stored up to id {self.last_id} in {self.store}",
        ]


def _pages(params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Each page's records, following ``next_href`` until a page comes back empty or without one."""
    query = dict(params)
    while True:
        body, _ = Classification.http_get("project", params=dict(query))
        body = body or {}
        records = body.get(KEY) or []
        yield records
        next_href = (body.get("meta") or {}).get(KEY, {}).get("next_href")
        if not records or not next_href:
            return
        following = {**params, **dict(parse_qsl(urlsplit(next_href).query))}
        if int(following.get("last_id", 0)) <= int(query["last_id"]):
            raise PanoptesError(f"Panoptes' next page ({next_href}) does not move past last_id {query['last_id']}")
        query = following


def pull_classifications(
    root: DataRoot,
    project: str,
    *,
    project_id: int,
    workflow_id: int | None = None,
    page_size: int = PAGE_SIZE,
    flush_rows: int = FLUSH_ROWS,
    progress: Callable[[PullReport], None] | None = None,
) -> PullReport:
    """Fetch every classification above the store's ``last_id`` and append the complete ones.

    ``project`` names the store's folder (the slug, as the exports are kept under it); ``project_id``
    is what Panoptes is asked for. Call inside ``with client:`` (a logged-in project owner or
    collaborator). ``progress`` is called after each page with the report so far.
    """
    store = ClassificationStore.at(root, project, workflow_id)
    started = time.monotonic()
    with store.appending(project_id) as appender:
        report = PullReport(project=project, workflow_id=workflow_id, store=str(store.folder),
                            previous_last_id=appender.state.last_id)
        params: dict[str, Any] = {"project_id": project_id, "page_size": page_size, "last_id": appender.state.last_id}
        if workflow_id is not None:
            params["workflow_id"] = workflow_id
        highest = appender.state.last_id
        buffer: list[dict[str, Any]] = []

        def flush() -> None:
            rows = buffer.copy()
            buffer.clear()  # a batch that fails to append is fetched again by the next pull, not appended twice
            report.parts_written += appender.append(rows, highest)
            report.fetched += len(rows)

        try:
            for records in _pages(params):
                report.pages += 1
                for record in sorted(records, key=lambda r: int(r["id"])):
                    if int(record["id"]) <= highest:
                        report.duplicates_skipped += 1
                        continue
                    if is_incomplete(record):
                        report.incomplete_skipped += 1
                    else:
                        buffer.append(store_row(record))
                    highest = int(record["id"])  # only once the record is handled: an unreadable one stops here
                if len(buffer) >= flush_rows:
                    flush()
                if progress:
                    progress(report)
        except BaseException:
            if buffer:  # what was fetched is kept: the next pull resumes after it
                flush()
            raise
        flush()
        report.total, report.last_id = appender.state.total, appender.state.last_id
    report.seconds = round(time.monotonic() - started, 3)
    return report
