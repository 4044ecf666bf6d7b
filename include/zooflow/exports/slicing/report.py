"""What a slice did, as the DAG, the CLI, the demo and the export report read it.

The report outlives the run: it is saved as JSON (the DAG's report file, an XCom) and read back by
code that never slices (the DAG's later tasks, the demo, the export report), so it is a record of
its own with its two readings, JSON and summary lines, apart from the code that fills it in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from zooflow.exports.slicing.output import PARTITION


@dataclass
class SliceReport:
    source: str
    kind: str
    spec: dict[str, Any]
    rows_read: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: Counter = field(default_factory=Counter)
    rows_filtered: Counter = field(default_factory=Counter)
    partitions: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    quarantine_file: str | None = None
    seconds: float = 0.0
    finished_at: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceReport:
        """A report read back from its JSON (the DAG's report file, an XCom)."""
        known = {f.name for f in fields(cls)}
        report = cls(**{k: v for k, v in data.items() if k in known})
        report.quarantine_reasons = Counter(report.quarantine_reasons)
        report.rows_filtered = Counter(report.rows_filtered)
        return report

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "spec": self.spec,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "rows_filtered": dict(self.rows_filtered),
            "partitions": dict(sorted(self.partitions.items())),
            "outputs": self.outputs,
            "quarantine_file": self.quarantine_file,
            "seconds": round(self.seconds, 3),
            "finished_at": self.finished_at,
        }

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.kind} export {self.source}: {self.rows_read} rows read, {self.rows_kept} kept, "
            f"{self.rows_quarantined} quarantined, {sum(self.rows_filtered.values())} outside the slice "
            f"({self.seconds:.1f} s)"
        ]
        lines += [f"  quarantined ({count}): {reason}" for reason, count in self.quarantine_reasons.most_common()]
        lines += [f"  filtered by {name}: {count}" for name, count in self.rows_filtered.most_common()]
        lines += [f"  {PARTITION}={day}: {rows} rows" for day, rows in sorted(self.partitions.items())]
        return lines
