"""Has the volunteers' current batch been fully labelled (retired)?

Two rules. "counts" is the founding one: the workflow's ``subjects_count`` equals its
``retired_set_member_subjects_count``; it costs one request, but Panoptes updates both counters in
background workers, so they lag and can drift. "precise" asks ``subject_workflow_statuses`` about
every subject of the batch's sets, which is exact and costs a request per hundred subjects.
"""

from __future__ import annotations

from collections.abc import Sequence

from panoptes_client import Subject, SubjectWorkflowStatus, Workflow

from zooflow.checks import Check
from zooflow.errors import ConfigurationError

MODES = ("counts", "precise")
STATUS_PAGE = 100


def _subject_ids(subject_set_ids: Sequence[int]) -> list[int]:
    ids: set[int] = set()
    for set_id in subject_set_ids:
        ids.update(int(s.id) for s in Subject.where(subject_set_id=set_id, page_size=100))
    return sorted(ids)


def retired_subject_ids(workflow_id: int, subject_ids: Sequence[int]) -> set[int]:
    retired: set[int] = set()
    for start in range(0, len(subject_ids), STATUS_PAGE):
        chunk = ",".join(str(i) for i in subject_ids[start: start + STATUS_PAGE])
        for status in SubjectWorkflowStatus.where(workflow_id=workflow_id, subject_ids=chunk, page_size=STATUS_PAGE):
            if status.raw.get("retired_at"):
                retired.add(int(status.raw["links"]["subject"]))
    return retired


def batch_retired_check(workflow_id: int, subject_set_ids: Sequence[int] = (), mode: str = "counts") -> Check:
    """The batch-labelled sensor's check. ``subject_set_ids`` (the current batch) is needed in precise mode."""
    if mode not in MODES:
        raise ConfigurationError(f"retirement check mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "counts":
        workflow = Workflow.find(workflow_id)
        total, retired = workflow.raw.get("subjects_count") or 0, workflow.raw.get("retired_set_member_subjects_count") or 0
        return Check(total == retired, f"workflow {workflow_id}: {retired} of {total} subjects retired (counters)",
                     {"subjects": total, "retired": retired, "mode": mode})
    if not subject_set_ids:
        raise ConfigurationError("the precise retirement check needs the subject set(s) of the current batch")
    subject_ids = _subject_ids(subject_set_ids)
    retired = retired_subject_ids(workflow_id, subject_ids)
    return Check(len(retired) == len(subject_ids),
                 f"workflow {workflow_id}: {len(retired)} of {len(subject_ids)} subjects of set(s) "
                 f"{', '.join(map(str, subject_set_ids))} retired", {"subjects": len(subject_ids), "retired": len(retired), "mode": mode})


def still_unretired_message(workflow_id: int, state: str, waited_seconds: float) -> str:
    return (
        f"the current batch of workflow {workflow_id} is not fully labelled after {waited_seconds / 3600:.1f} h ({state}). "
        "Volunteers may be slow, or subjects may have been left out of retirement: check the workflow's retirement "
        "rule and the project's activity; the next run looks again. In 'counts' mode Panoptes' counters can lag "
        "or drift — the 'precise' mode checks each subject instead."
    )
