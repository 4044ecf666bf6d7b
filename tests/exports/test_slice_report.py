"""SliceReport survives its JSON: what the DAG writes, the demo and the CLI read back."""

from __future__ import annotations

import json
from collections import Counter

from zooflow.exports.slicing import SliceReport


def test_report_round_trips_through_json() -> None:
    report = SliceReport(source="x.csv.gz", kind="classifications", spec={"gold": "exclude"}, rows_read=10, rows_kept=6,
                         rows_quarantined=1, quarantine_reasons=Counter({"created_at is not a Panoptes UTC time": 1}),
                         rows_filtered=Counter({"gold_standard": 3}), partitions={"2025-01-02": 6}, seconds=0.5)
    back = SliceReport.from_dict(json.loads(json.dumps(report.to_dict() | {"project": "a/b"})))
    assert back.to_dict() == report.to_dict()
    assert back.summary_lines() == report.summary_lines()
    assert isinstance(back.rows_filtered, Counter) and back.rows_filtered.most_common(1) == [("gold_standard", 3)]
