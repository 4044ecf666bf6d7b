"""Has the volunteers' current batch been fully labelled (retired)?

Panoptes writes a workflow's counters in background jobs, minutes after the fact: right after a
batch is linked, ``subjects_count == retired_set_member_subjects_count`` still holds for the batch
before (or 0 == 0 for a first one), so a gate built on that equality alone opens on a batch nobody
has labelled. The gate therefore only trusts what it has seen include the batch itself:

- "counts" (one request a look while waiting): the workflow's ``subjects_count`` must already count
  the batch the round linked (zooflow knows how many subjects the workflow had and how many it
  added), and every counted subject must be retired. Once the counters agree, the batch's own
  statuses are read once to confirm, so a stale counter never opens the gate.
- "precise": every subject of the batch's sets has a status row with ``retired_at`` (a missing row
  is a subject Panoptes has not got round to: not retired).

Either way a subject retired by its classification count must have the votes the workflow's rule
asks for, so a round never starts on a batch with fewer classifications than retirement needs.

With ``refill_below`` the gate opens before the batch is done: once fewer than that many of its
subjects are unretired, so the next batch is linked before volunteers run out. The workflow's
counters then also count what earlier refilled batches left unretired, so they only say whether the
batch is counted yet; the batch's own statuses decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from panoptes_client import Subject, SubjectWorkflowStatus, Workflow

from zooflow.checks import Check
from zooflow.errors import ConfigurationError
from zooflow.retirement_modes import MODES

STATUS_PAGE = 100
COUNT_RULE = "classification_count"
DEFAULT_RETIREMENT_COUNT = 15  # Panoptes' default rule when a workflow sets none


@dataclass(frozen=True)
class BatchStatus:
    """What the batch's own status rows say."""

    subjects: int
    retired: int
    no_status: int  # linked subjects Panoptes has not given a status row yet
    short_of_votes: int  # retired by count with fewer classifications than the rule
    classifications: int

    @property
    def unretired(self) -> int:
        return self.subjects - self.retired

    def done(self, refill_below: int = 0) -> bool:
        """All retired, or (with ``refill_below``) fewer than that many unretired; none short of votes."""
        return self.subjects > 0 and self.unretired < max(refill_below, 1) and not self.short_of_votes


def _subject_ids(subject_set_ids: Sequence[int]) -> list[int]:
    ids: set[int] = set()
    for set_id in subject_set_ids:
        ids.update(int(s.id) for s in Subject.where(subject_set_id=set_id, page_size=100))
    return sorted(ids)


def _statuses(workflow_id: int, subject_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(subject_ids), STATUS_PAGE):
        chunk = ",".join(str(i) for i in subject_ids[start: start + STATUS_PAGE])
        for status in SubjectWorkflowStatus.where(workflow_id=workflow_id, subject_ids=chunk, page_size=STATUS_PAGE):
            found[int(status.raw["links"]["subject"])] = status.raw
    return found


def retirement_count(workflow_raw: dict[str, Any]) -> int | None:
    """Votes the workflow's rule retires a subject after; None when the rule is not a count."""
    rule = workflow_raw.get("retirement") or {}
    if rule.get("criteria", COUNT_RULE) != COUNT_RULE:
        return None
    return int((rule.get("options") or {}).get("count", DEFAULT_RETIREMENT_COUNT))


def batch_status(workflow_id: int, subject_ids: Sequence[int], needed_votes: int | None) -> BatchStatus:
    statuses = _statuses(workflow_id, subject_ids)
    retired = [raw for raw in statuses.values() if raw.get("retired_at")]
    short = [raw for raw in retired if needed_votes and raw.get("retirement_reason") in (None, COUNT_RULE)
             and (raw.get("classifications_count") or 0) < needed_votes]
    return BatchStatus(subjects=len(subject_ids), retired=len(retired), no_status=len(subject_ids) - len(statuses),
                       short_of_votes=len(short),
                       classifications=sum(raw.get("classifications_count") or 0 for raw in statuses.values()))


def _precise(workflow_id: int, subject_set_ids: Sequence[int], batch_subjects: int | None,
             needed_votes: int | None, mode: str, prefix: str = "", refill_below: int = 0) -> Check:
    subject_ids = _subject_ids(subject_set_ids)
    sets = ", ".join(map(str, subject_set_ids))
    if batch_subjects and len(subject_ids) < batch_subjects:
        return Check(False, f"{prefix}set(s) {sets} list {len(subject_ids)} of the {batch_subjects} subjects linked",
                     {"subjects": len(subject_ids), "retired": 0, "mode": mode})
    status = batch_status(workflow_id, subject_ids, needed_votes)
    words = [f"{prefix}workflow {workflow_id}: {status.retired} of {status.subjects} subjects of set(s) {sets} retired"]
    if status.no_status:
        words.append(f"{status.no_status} without a status row yet")
    if status.short_of_votes:
        words.append(f"{status.short_of_votes} retired with fewer than the rule's {needed_votes} classifications")
    if refill_below and status.unretired:
        words.append(f"refill once fewer than {refill_below} are unretired")
    return Check(status.done(refill_below), "; ".join(words),
                 {"subjects": status.subjects, "retired": status.retired, "classifications": status.classifications,
                  "mode": mode, "refill_below": refill_below})


def batch_retired_check(workflow_id: int, subject_set_ids: Sequence[int] = (), mode: str = "counts",
                        batch_subjects: int | None = None, expected_subjects: int | None = None,
                        refill_below: int = 0) -> Check:
    """The batch-labelled sensor's check.

    :param subject_set_ids: the set(s) of the current batch.
    :param batch_subjects: how many subjects zooflow linked in that batch.
    :param expected_subjects: the workflow's ``subjects_count`` once Panoptes has counted the batch
        (what it counted before the upload, plus the batch); "counts" waits for at least this.
    :param refill_below: open once fewer than this many of the batch's subjects are unretired (0: all retired).
    """
    if mode not in MODES:
        raise ConfigurationError(f"retirement check mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not subject_set_ids:
        raise ConfigurationError("the retirement check needs the subject set(s) of the current batch")
    workflow = Workflow.find(workflow_id).raw
    needed_votes = retirement_count(workflow)
    if refill_below < 0:
        raise ConfigurationError(f"refill_below counts subjects and cannot be negative, not {refill_below}")
    if mode == "precise":
        return _precise(workflow_id, subject_set_ids, batch_subjects, needed_votes, mode, refill_below=refill_below)
    total = workflow.get("subjects_count") or 0
    retired = workflow.get("retired_set_member_subjects_count") or 0
    detail = {"subjects": total, "retired": retired, "mode": mode}
    expected = max(expected_subjects or 0, batch_subjects or 0, 1)
    if total < expected:
        return Check(False, f"workflow {workflow_id}: waiting for Panoptes' counters to include the batch "
                            f"(subjects_count {total}, {expected} once the batch is counted; {retired} retired)", detail)
    if retired < total and not refill_below:
        return Check(False, f"workflow {workflow_id}: {retired} of {total} subjects retired (counters)", detail)
    return _precise(workflow_id, subject_set_ids, batch_subjects, needed_votes, mode,
                    prefix=f"counters say {retired} of {total} retired; ", refill_below=refill_below)


def still_unretired_message(workflow_id: int, state: str, waited_seconds: float) -> str:
    return (
        f"the current batch of workflow {workflow_id} is not fully labelled after {waited_seconds / 3600:.1f} h ({state}). "
        "Volunteers may be slow, or subjects may have been left out of retirement: check the workflow's retirement "
        "rule and the project's activity; the next run looks again. Panoptes updates a workflow's counters in "
        "background jobs minutes after the fact; if they never include the batch (sets unlinked since the upload, "
        "say), the 'precise' mode checks each subject of the batch instead."
    )
