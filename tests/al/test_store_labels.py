"""Labels from the classification store: what the API gives (answer indexes, subject ids) read as the
export would show it, so the consensus is the same whichever source a round reads; and the other
settings of issue 15 that live in the plain library: exploration, rejected rounds, config checks."""

from __future__ import annotations

import json

import pytest
from al_support import blobs, classification

from zooflow.al.labels import consensus_labels, store_rows
from zooflow.al.learner import EXPLORE, select_batch
from zooflow.al.pool import load_pool
from zooflow.al.round import RoundConfig
from zooflow.al.state import RoundState
from zooflow.errors import ConfigurationError

TASKS = {"T0": {"type": "single", "question": "Is this a glitch?",
                "answers": [{"label": "Yes, a glitch"}, {"label": "No"}, {"label": "Not sure"}]},
         "T9": {"type": "single", "answers": [{"label": "Yes"}, {"label": "No"}]}}
LABELS = [answer["label"] for answer in TASKS["T0"]["answers"]]
# subject id -> pool id, as the rounds recorded them; subject 90 was not uploaded by zooflow
SUBJECT_POOL = {"11": "p1", "12": "p2", "13": "p3"}
VOTES = [(11, 0), (11, 0), (11, 1), (12, 1), (12, 1), (12, 1), (13, 2), (13, 0), (90, 0)]


def store_row(subject_id: int, answer, *, classification_id: int) -> dict:
    return {"classification_id": classification_id, "subject_ids": str(subject_id),
            "annotations": json.dumps([{"task": "T0", "value": answer}, {"task": "T9", "value": 1}])}


def test_stored_classifications_give_the_same_consensus_as_their_export_rows() -> None:
    stored = [store_row(subject, answer, classification_id=1000 + n) for n, (subject, answer) in enumerate(VOTES)]
    exported = [classification(LABELS[answer], {subject: {"#pool_id": SUBJECT_POOL[str(subject)]}
                                                if str(subject) in SUBJECT_POOL else {}},
                               classification_id=1000 + n) for n, (subject, answer) in enumerate(VOTES)]
    from_store = consensus_labels(store_rows(stored, SUBJECT_POOL, TASKS), min_votes=2)
    from_export = consensus_labels(exported, min_votes=2)
    assert from_store.labels == from_export.labels == {"p1": "Yes, a glitch", "p2": "No"}
    assert from_store.votes == from_export.votes and from_store.ties == ["p3"]
    assert from_store.without_pool_id == from_export.without_pool_id == 1  # subject 90


def test_an_answer_the_tasks_do_not_name_is_not_counted_as_a_label() -> None:
    rows = [store_row(11, 7, classification_id=1), store_row(11, None, classification_id=2),
            {"classification_id": 3, "subject_ids": "11", "annotations": "not json"}]
    report = consensus_labels(store_rows(rows, SUBJECT_POOL, TASKS), min_votes=1)
    assert report.labels == {} and report.without_task == 2 and report.malformed_rows == 1


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("pool") / "blobs.csv"
    blobs(n_per_class=40).to_csv(path, index=False)
    return load_pool(path, label_column="truth")


def test_exploration_adds_its_share_of_random_free_items(pool) -> None:
    labelled = dict(list(pool.known.items())[:12])
    exclude = set(list(pool.ids)[12:20])
    plain = select_batch(pool, labelled, exclude=exclude, k=6, m=2, threshold=0.5, seed=3)
    spiced = select_batch(pool, labelled, exclude=exclude, k=6, m=2, threshold=0.5, seed=3, explore_fraction=0.25)
    explored = [p.pool_id for p in spiced.picks if p.reason == EXPLORE]
    assert len(explored) == 2 and [p for p in spiced.picks if p.reason != EXPLORE] == plain.picks
    assert len({p.pool_id for p in spiced.picks}) == len(spiced.picks)
    assert not set(explored) & (set(labelled) | exclude)
    with pytest.raises(ConfigurationError, match="explore_fraction"):
        select_batch(pool, labelled, k=6, m=0, explore_fraction=1.5)


def test_a_rejected_round_stays_on_record_and_frees_its_items(tmp_path) -> None:
    state = RoundState(tmp_path)
    state.record_selection(1, run_id="manual__A", picked=["p1", "p2"])
    state.record_upload(1, set_id=7, subject_ids={"p1": 70, "p2": 71})
    state.record_selection(2, run_id="manual__B", picked=["p3", "p4"])
    assert state.pending()["round"] == 2
    state.reject(2, by="reviewer")
    assert state.pending() is None and state.next_round() == 3
    assert state.uploaded_pool_ids() == {"p1", "p2"} and state.rounds[1]["rejected_by"] == "reviewer"
    assert state.subject_pool() == {"70": "p1", "71": "p2"}
    with pytest.raises(ValueError, match="uploaded already"):
        state.reject(1)


@pytest.mark.parametrize("setting, value, message", [
    ("labels_from", "api", "labels_from must be one of store, export"),
    ("refill_below", -1, "refill_below counts subjects"),
    ("explore_fraction", 2.0, "explore_fraction is a share"),
    ("approve_before_upload", "yes", "approve_before_upload is true or false"),
])
def test_the_new_settings_are_checked(tmp_path, setting, value, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RoundConfig(pool=tmp_path / "pool.csv", workflow_id=1, **{setting: value})


def test_weighted_labels_count_clear_items_and_report_volunteer_skill() -> None:
    from zooflow.al.weighted import weighted_labels

    rows = [dict(store_row(subject, answer, classification_id=1000 + n), user_id=str(n % 3 + 1),
                 created_at=f"2026-01-01 10:{n:02d}:00") for n, (subject, answer) in enumerate(VOTES)]
    report = weighted_labels(store_rows(rows, SUBJECT_POOL, TASKS), min_votes=2, retire_confidence=0.6)
    assert report.method == "weighted" and report.labels["p2"] == "No"
    assert set(report.clear_early) <= set(report.labels) and "p2" in report.clear_early
    assert len(report.skills) == 3 and all(0 <= s <= 1 for s in report.skills)  # three volunteers
    assert report.without_pool_id == 1 and report.rows_read == len(VOTES)  # subject 90 is not zooflow's
    assert any("volunteer skill (Dawid-Skene)" in line for line in report.summary_lines())
