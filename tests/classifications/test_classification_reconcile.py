"""reconcile_export against a real sandbox export (completed classifications only): both directions,
only over the ids both cover, and incomplete classifications left out of the store's reads from then on."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from support.classified_projects import download_classification_export

from zooflow.classifications.reader import read_classifications
from zooflow.classifications.reconcile import reconcile_export
from zooflow.classifications.store import ClassificationStore, read_excluded
from zooflow.errors import ConfigurationError


def ids(root, project, **options) -> list[int]:
    return [int(i) for i in read_classifications(root, project.slug, **options)["classification_id"]]


def test_an_incomplete_classification_is_found_missing_from_the_export_and_left_out(project, root, panoptes_env) -> None:
    before = project.add(3)
    (incomplete,) = project.add_incomplete(1)
    after = project.add(2)
    project.pull(root)
    download_classification_export(project.slug, root)
    newer = project.add(3)  # made after the export was built
    project.pull(root)
    assert ids(root, project) == before + [incomplete] + after + newer  # the API serves it unmarked

    report = reconcile_export(root, project.slug)
    assert (report.compared_from, report.compared_to) == (before[0], after[-1])
    assert (report.export_classifications, report.store_classifications) == (5, 9)
    assert (report.missing_from_export, report.missing_from_export_examples) == (1, [incomplete])
    assert (report.missing_from_store, report.newer_than_export, report.excluded) == (0, 3, 1)
    assert ids(root, project) == before + after + newer
    assert ids(root, project, include_excluded=True) == before + [incomplete] + after + newer
    assert reconcile_export(root, project.slug).to_dict() == report.to_dict()  # a second check changes nothing


def test_what_the_export_has_beyond_the_store_is_not_missing_but_a_lost_row_is(project, root, panoptes_env) -> None:
    pulled = project.add(4)
    project.pull(root)
    beyond = project.add(2)  # in the export, not yet pulled
    download_classification_export(project.slug, root)
    store = ClassificationStore.at(root, project.slug)
    (part,) = [p for p in store.state().parts if p.min_id <= pulled[1] <= p.max_id]  # a part lost a row
    table = pq.read_table(store.folder / part.path)
    pq.write_table(table.filter(pc.not_equal(table.column("classification_id"), pulled[1])), store.folder / part.path)

    report = reconcile_export(root, project.slug)
    assert (report.missing_from_store, report.missing_from_store_examples) == (1, [pulled[1]])
    assert (report.compared_from, report.compared_to, report.store_last_id) == (pulled[0], pulled[-1], pulled[-1])
    assert report.missing_from_export == 0 and report.export_classifications == len(pulled + beyond)


def test_a_workflow_is_compared_alone_and_an_id_a_later_export_holds_is_read_again(project, root, panoptes_env, tmp_path) -> None:
    mine = project.add(2)
    (incomplete,) = project.add_incomplete(1)
    theirs = project.add(2, workflow_id=project.other_workflow_id)
    project.pull(root, workflow_id=project.other_workflow_id)
    project.pull(root)
    export = download_classification_export(project.slug, root)

    scoped = reconcile_export(root, project.slug, workflow_id=project.other_workflow_id)
    assert (scoped.export_classifications, scoped.store_classifications, scoped.missing_from_export) == (2, 2, 0)
    assert read_excluded(root, project.slug)["ids"] == []
    reconcile_export(root, project.slug, export=export)
    assert read_excluded(root, project.slug)["ids"] == [incomplete]
    assert ids(root, project) == mine + theirs

    # The volunteer finishes it later: Panoptes keeps the id, and the next export holds it.
    with gzip.open(export, "rt", encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    (row,) = [line for line in lines if line.startswith(f"{mine[0]},")]
    finished = f"{incomplete}," + row.removeprefix(f"{mine[0]},")
    later = tmp_path / "later-export.csv"
    later.write_text("".join(lines + [finished]), encoding="utf-8")
    report = reconcile_export(root, project.slug, export=later)
    assert (report.missing_from_export, report.excluded) == (0, 0)
    assert ids(root, project) == sorted(mine + [incomplete] + theirs)


def test_report_only_leaves_the_exclusions_alone(project, root, panoptes_env) -> None:
    project.add(1)
    project.add_incomplete(1)
    project.add(1)  # an incomplete classification after the export's last id would not be compared
    project.pull(root)
    download_classification_export(project.slug, root)
    report = reconcile_export(root, project.slug, exclude=False)
    assert report.missing_from_export == 1 and report.excluded == 0
    assert read_excluded(root, project.slug)["ids"] == []


def test_without_a_downloaded_export_it_says_how_to_get_one(project, root) -> None:
    with pytest.raises(ConfigurationError, match="no downloaded export"):
        reconcile_export(root, project.slug)


def test_a_file_that_is_not_a_classification_export_is_refused(project, root, tmp_path) -> None:
    other = tmp_path / "subjects.csv"
    pacsv.write_csv(pa.table({"subject_id": [1]}), other)
    with pytest.raises(ConfigurationError, match="not a readable classification export"):
        reconcile_export(root, project.slug, export=other)
