"""The round state's run ids: a rerun of the same Airflow run ("Clear") finds the round it chose and
gets it back untouched, while another run goes on to the next round; state files written before run
ids were kept still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from al_support import blobs

from zooflow.al.round import RoundConfig, select_round
from zooflow.al.state import RoundState


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_round_belongs_to_the_run_that_chose_it_and_to_runs_that_resumed_it(tmp_path) -> None:
    state = RoundState(tmp_path)
    state.record_selection(1, run_id="manual__A", picked=["p1"])
    assert state.round_of_run("manual__A")["round"] == 1
    assert state.round_of_run("manual__B") is None
    state.add_run(1, "asset_triggered__B")  # B resumed the round A left unfinished
    state.add_run(1, "asset_triggered__B")
    assert state.round_of_run("asset_triggered__B")["round"] == 1
    assert state.rounds[0]["run_ids"] == ["manual__A", "asset_triggered__B"]
    state.record_upload(1, set_id=7, subject_ids={"p1": 70})
    state.record_selection(2, run_id="manual__C", picked=["p2"])
    assert [state.round_of_run(r)["round"] for r in ("manual__A", "asset_triggered__B", "manual__C")] == [1, 1, 2]
    assert state.uploaded(1) and not state.uploaded(2)


def test_a_state_file_without_run_ids_still_loads(tmp_path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"rounds": [
        {"round": 1, "selected_at": "2026-01-01T00:00:00+00:00", "set_name": "al-round-001", "picked": ["p1"],
         "uploaded_at": "2026-01-01T01:00:00+00:00", "set_id": 5},
        {"round": 2, "selected_at": "2026-01-02T00:00:00+00:00", "set_name": "al-round-002", "picked": ["p2"]},
    ]}))
    state = RoundState(tmp_path)
    assert state.round_of_run("manual__A") is None
    assert state.pending()["round"] == 2 and state.next_round() == 3 and state.current_batch()["sets"] == [5]
    state.add_run(2, "manual__A")
    assert state.round_of_run("manual__A")["round"] == 2


def test_a_rerun_gets_its_round_back_without_choosing_again(tmp_path) -> None:
    pool = tmp_path / "pool.csv"
    frame = blobs(n_per_class=5).drop(columns="truth")
    frame.to_csv(pool, index=False)
    np.savez(tmp_path / "pool.images.npz", **{i: np.eye(4) for i in frame["id"]})
    config = RoundConfig(pool=pool, workflow_id=1, k=3, m=0)
    state = RoundState(tmp_path / "al")
    first = select_round(config, state, [], run_id="manual__A")
    for uploaded in (False, True):  # cleared before its upload, and after it
        if uploaded:
            state.record_upload(first.round, set_id=7, subject_ids={})
        written = files(state.folder)
        pool.unlink()  # choosing again would need the pool: the rerun must not read it
        again = select_round(config, state, [], run_id="manual__A")
        assert (again.round, again.picks, again.set_name, again.manifest) == (
            first.round, first.picks, first.set_name, first.manifest)
        assert files(state.folder) == written  # no redraw, no new record, no new learning curve
        frame.to_csv(pool, index=False)

    other = select_round(config, state, [], run_id="manual__B")
    assert other.round == first.round + 1 and not {p["pool_id"] for p in other.picks} & {p["pool_id"] for p in first.picks}
    assert state.round_of_run("manual__A")["round"] == 1 and state.round_of_run("manual__B")["round"] == 2
