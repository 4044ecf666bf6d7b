"""read_classifications: the store as the next AL round reads it, compared cell by cell with the export."""

from __future__ import annotations

import json

import pandas as pd
from panoptes_client import User
from support.classified_projects import download_classification_export

from zooflow.classifications.reader import read_classifications
from zooflow.classifications.records import COLUMNS
from zooflow.sandbox import seed


def test_the_store_reads_like_the_export_where_the_api_serves_the_same(project, root, panoptes_env) -> None:
    project.add(2)
    project.add(1, user_login=seed.DEMO_USER)
    project.add(1, workflow_id=project.other_workflow_id)
    project.pull(root)
    export = pd.read_csv(download_classification_export(project.slug, root), dtype=str, keep_default_na=False)
    stored = read_classifications(root, project.slug)

    assert tuple(stored.columns) == COLUMNS
    assert stored["classification_id"].tolist() == [int(i) for i in export["classification_id"]]
    for (_, mine), (_, theirs) in zip(stored.iterrows(), export.iterrows()):
        assert str(mine["workflow_id"]) == theirs["workflow_id"]
        assert mine["workflow_version"] == theirs["workflow_version"]
        assert ("" if pd.isna(mine["user_id"]) else str(mine["user_id"])) == theirs["user_id"]
        assert mine["created_at"].strftime("%Y-%m-%d %H:%M:%S UTC") == theirs["created_at"]
        assert mine["subject_ids"] == theirs["subject_ids"]
        assert json.loads(mine["metadata"]) == json.loads(theirs["metadata"])
        # The API serves the answer's index; the export writes its text (see zooflow.classifications.records).
        (answer,) = json.loads(mine["annotations"])
        (written,) = json.loads(theirs["annotations"])
        assert (answer["task"], seed.DEMO_ANSWERS[answer["value"]]) == (written["task"], written["value"])
    assert stored["user_id"].dropna().tolist() == [int(User.me().id)]


def test_a_workflow_in_two_stores_is_read_once_per_classification(project, root) -> None:
    project.add(1)
    theirs = project.add(3, workflow_id=project.other_workflow_id)
    project.pull(root)
    project.pull(root, workflow_id=project.other_workflow_id)  # the same three, in the workflow's own store
    later = project.add(1, workflow_id=project.other_workflow_id)
    project.pull(root, workflow_id=project.other_workflow_id)
    frame = read_classifications(root, project.slug, project.other_workflow_id, columns=["classification_id", "created_at"])
    assert list(frame.columns) == ["classification_id", "created_at"]
    assert frame["classification_id"].tolist() == theirs + later


def test_an_empty_store_reads_as_an_empty_table_with_the_columns(root) -> None:
    frame = read_classifications(root, "nobody/nothing", 5)
    assert frame.empty and tuple(frame.columns) == COLUMNS
    assert str(frame["created_at"].dtype) == "datetime64[ms, UTC]" and str(frame["classification_id"].dtype) == "Int64"
