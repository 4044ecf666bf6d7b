"""Remove duplicate subjects from a subject set: one subject kept per value of a metadata field.

The seed script unlinked subjects while paging the very list it was unlinking from, so pages shifted
and duplicates were skipped. Here the whole set is read first (one paged listing, not one GET per
subject), the plan is computed, and only then are the extras unlinked, in batches of 100 through the
link endpoint. Subjects are unlinked from the set, never deleted. Subjects without the field are
never removed. Values are compared as text (``7`` and ``"7"`` are the same value); a missing,
``null`` or empty value counts as "missing field".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from panoptes_client import Project, Subject, SubjectSet
from panoptes_client.panoptes import PanoptesAPIException

from zooflow.errors import ConfigurationError
from zooflow.panoptes import login_hint
from zooflow.subjects.choices import KEEP_CHOICES

UNLINK_BATCH = 100


@dataclass
class DedupeGroup:
    value: str
    kept: int
    removed: list[int] = field(default_factory=list)


@dataclass
class DedupePlan:
    subject_set_id: int
    project: str
    field: str
    keep: str
    total: int
    groups: dict[str, DedupeGroup]
    missing_field: list[int]

    @property
    def to_remove(self) -> list[int]:
        return sorted(sid for group in self.groups.values() for sid in group.removed)

    def report(self, *, removed: int = 0, applied: bool = False) -> dict[str, Any]:
        return {
            "subject_set_id": self.subject_set_id,
            "project": self.project,
            "field": self.field,
            "keep": self.keep,
            "applied": applied,
            "subjects": self.total,
            "unique": len(self.groups),
            "duplicates": len(self.to_remove),
            "removed": removed,
            "missing_field": len(self.missing_field),
            "missing_field_ids": list(self.missing_field),
            "groups": {
                value: {"kept": group.kept, "removed": list(group.removed)}
                for value, group in sorted(self.groups.items())
                if group.removed
            },
        }


def find_subject_set(subject_set_id: int | str) -> tuple[SubjectSet, str]:
    """The set and its project's slug (or id); a bad or unknown id is a :class:`ConfigurationError`."""
    try:
        set_id = int(str(subject_set_id).strip())
    except ValueError:
        raise ConfigurationError(
            f"subject set id {subject_set_id!r} is not a number; give the numeric id shown in the project builder"
        ) from None
    if set_id <= 0:
        raise ConfigurationError(f"subject set id {set_id} is not valid; give a positive numeric id")
    try:
        subject_set = SubjectSet.find(set_id)
    except PanoptesAPIException as exc:
        if "could not find" in str(exc).lower() or "not found" in str(exc).lower() or "404" in str(exc):
            raise ConfigurationError(
                f"subject set {set_id} does not exist or is not visible to this login ({exc}); "
                f"check the id in the project builder and the connection's user; {login_hint('subject set')}"
            ) from None
        raise
    if subject_set is None:
        raise ConfigurationError(
            f"subject set {set_id} does not exist or is not visible to this login; check the id"
        )
    project_id = (subject_set.raw.get("links") or {}).get("project")
    project = str(project_id or "unknown")
    if project_id:
        try:
            project = Project.find(project_id).slug or project
        except PanoptesAPIException:
            pass
    return subject_set, project


def metadata_text(value: Any) -> str | None:
    """A metadata value as text for comparison; ``None`` and blank text are "no value"."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _created(subject: Subject) -> datetime:
    raw = subject.raw.get("created_at")
    if not raw:
        return datetime.max.replace(tzinfo=timezone.utc)
    moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def plan_dedupe(subject_set_id: int | str, field: str, keep: str = "oldest") -> DedupePlan:
    """Read the whole set, then decide which subject to keep per value of ``metadata[field]``. Changes nothing."""
    if keep not in KEEP_CHOICES:
        raise ConfigurationError(f"keep must be one of {', '.join(KEEP_CHOICES)}, not {keep!r}")
    if not field or not str(field).strip():
        raise ConfigurationError("give the metadata field to de-duplicate on (for example filename)")
    subject_set, project = find_subject_set(subject_set_id)
    set_id = int(subject_set.id)
    # Everything is collected before anything is removed: unlinking while paging skips subjects.
    subjects = list(Subject.where(subject_set_id=set_id, page_size=100))
    by_value: dict[str, list[tuple[datetime, int]]] = {}
    missing: list[int] = []
    for subject in subjects:
        value = metadata_text((subject.metadata or {}).get(field))
        if value is None:
            missing.append(int(subject.id))
        else:
            by_value.setdefault(value, []).append((_created(subject), int(subject.id)))
    groups: dict[str, DedupeGroup] = {}
    for value, members in by_value.items():
        ordered = sorted(members)  # oldest first, then lowest id
        if keep == "newest":
            ordered = sorted(members, key=lambda m: (m[0], -m[1]), reverse=True)  # newest, then lowest id
        kept, *rest = ordered
        groups[value] = DedupeGroup(value=value, kept=kept[1], removed=sorted(m[1] for m in rest))
    return DedupePlan(
        subject_set_id=set_id, project=project, field=field, keep=keep,
        total=len(subjects), groups=groups, missing_field=sorted(missing),
    )


def apply_dedupe(plan: DedupePlan) -> dict[str, Any]:
    """Unlink the plan's extras from the set (batches of 100, no per-subject GET); returns the report."""
    ids = [str(sid) for sid in plan.to_remove]
    for start in range(0, len(ids), UNLINK_BATCH):
        batch = ids[start:start + UNLINK_BATCH]
        SubjectSet.http_delete(f"{plan.subject_set_id}/links/subjects/{','.join(batch)}", retry=True)
    return plan.report(removed=len(ids), applied=True)


def format_dedupe(report: dict[str, Any]) -> list[str]:
    verb = "removed" if report["applied"] else "would remove"
    lines = [
        f"Subject set {report['subject_set_id']} ({report['project']}), field {report['field']!r}, keep {report['keep']}: "
        f"{report['subjects']} subjects, {report['unique']} unique values, {report['duplicates']} duplicates, "
        f"{report['removed']} removed, {report['missing_field']} without the field (never removed)"
    ]
    for value, group in report["groups"].items():
        lines.append(f"  {value!r}: keep {group['kept']}, {verb} {', '.join(map(str, group['removed']))}")
    if not report["applied"] and report["duplicates"]:
        lines.append("Dry run: nothing was changed; run again with --apply (or dry run off) to unlink them.")
    return lines
