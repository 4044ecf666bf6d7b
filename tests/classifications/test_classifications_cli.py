"""``zooflow classifications pull|reconcile``: the --json shapes and the readable lines."""

from __future__ import annotations

import json

from support.classified_projects import download_classification_export

from zooflow.cli import main

PULL_KEYS = {"project", "workflow_id", "store", "previous_last_id", "fetched", "total", "last_id", "incomplete_skipped",
             "duplicates_skipped", "pages", "parts_written", "seconds"}


def run_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_pull_json_counts_new_and_stored_classifications(project, root, panoptes_env, capsys) -> None:
    made = project.add(3)
    first = run_json(capsys, "classifications", "pull", project.slug, "--data-root", str(root.root), "--page-size", "2")
    assert set(first) == PULL_KEYS
    assert (first["fetched"], first["total"], first["last_id"], first["pages"]) == (3, 3, made[-1], 3)
    later = project.add(2, workflow_id=project.other_workflow_id)
    second = run_json(capsys, "classifications", "pull", str(project.id), "--data-root", str(root.root),
                      "--workflow-id", str(project.other_workflow_id))
    assert (second["fetched"], second["total"], second["last_id"], second["workflow_id"]) == (2, 2, later[-1],
                                                                                                project.other_workflow_id)
    assert main(["classifications", "pull", project.slug, "--data-root", str(root.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{project.slug} (all workflows): 2 new classifications in 2 pages, {lines[0].split(', ')[-1]}",
                     f"5 stored up to id {later[-1]} in {root.classifications_dir(project.slug) / 'project'}"]


def test_reconcile_json_reports_both_directions(project, root, panoptes_env, capsys) -> None:
    project.add(1)
    (incomplete,) = project.add_incomplete(1)
    project.add(1)
    assert main(["classifications", "pull", project.slug, "--data-root", str(root.root)]) == 0
    download_classification_export(project.slug, root)
    report = run_json(capsys, "classifications", "reconcile", project.slug, "--data-root", str(root.root), "--report-only")
    assert (report["missing_from_export"], report["missing_from_export_examples"], report["excluded"]) == (1, [incomplete], 0)
    assert (report["missing_from_store"], report["missing_from_store_examples"], report["newer_than_export"]) == (0, [], 0)
    assert main(["classifications", "reconcile", project.slug, "--data-root", str(root.root)]) == 0
    text = capsys.readouterr().out
    assert f"in the store, not in the export: 1 (e.g. {incomplete}; left out when the store is read)" in text
    assert "in the export, not in the store: 0\n" in text and "excluded in all: 1" in text


def test_a_project_that_is_not_there_is_one_clear_line(root, panoptes_env, capsys) -> None:
    assert main(["classifications", "pull", "nobody/no-such-project", "--data-root", str(root.root)]) == 2
    assert "project 'nobody/no-such-project' was not found" in capsys.readouterr().err
