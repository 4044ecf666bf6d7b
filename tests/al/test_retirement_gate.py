"""The batch-retired gate against the sandbox's realistic defaults: counters written by background jobs.

Right after a batch is linked, Panoptes still reports the counters of the batch before (0 == 0 for a
first batch, N == N after one), so the founding rule — ``subjects_count == retired`` — opens at once
on a batch nobody has labelled. Each step below checks that this trap is really there (the founding
equality holds) and that zooflow's gate does not fall into it.
"""

from __future__ import annotations

import pytest
from panoptes_client import Subject, Workflow

from zooflow.al.round import RoundConfig, select_round, upload_round
from zooflow.al.state import RoundState
from zooflow.panoptes import connect
from zooflow.projects import find_project
from zooflow.retirement import batch_retired_check
from zooflow.sandbox import seed
from zooflow.sandbox.populate import demo_user_config, set_up_digits_learning
from zooflow.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gate")
    with SandboxProcess(folder / "sandbox", seed="demo") as sandbox:  # the sandbox's defaults: no instant counters
        config = demo_user_config(sandbox.endpoint)
        with connect(config):
            digits = set_up_digits_learning(folder / "al", sandbox.admin, k=4, m=0, workflow_name="Digits")
            yield {"sandbox": sandbox, "admin": sandbox.admin, "config": RoundConfig.load(digits.config),
                   "state": RoundState(folder / "state"), "project": find_project(seed.DEMO_PROJECT_SLUG)}


def _upload_next_round(world) -> dict:
    config, state = world["config"], world["state"]
    selection = select_round(config, state, [])
    upload_round(selection, state, world["project"], Workflow.find(config.workflow_id))
    return state.current_batch()


def _gate(world, batch: dict, mode: str = "counts"):
    return batch_retired_check(world["config"].workflow_id, batch["sets"], mode, batch["subjects"],
                               batch["expected_subjects"])


def _founding_rule_would_open(world) -> bool:
    raw = Workflow.find(world["config"].workflow_id).raw
    return raw["subjects_count"] == raw["retired_set_member_subjects_count"]


def _volunteers_retire_the_batch(world) -> None:
    for _ in range(30):
        if not world["admin"].run_volunteers(10, seed=3, workflow_id=world["config"].workflow_id):
            return
    raise AssertionError("the simulated volunteers never ran out of unretired subjects")


def test_a_first_batch_is_not_retired_while_the_counters_read_zero_of_zero(world) -> None:
    batch = _upload_next_round(world)
    assert batch["subjects"] == 4 and batch["expected_subjects"] == 4
    assert _founding_rule_would_open(world)  # 0 == 0: the trap
    check = _gate(world, batch)
    assert not check.done and "waiting for Panoptes' counters to include the batch" in check.state
    assert not _gate(world, batch, "precise").done  # no status rows yet, or none retired


def test_the_gate_opens_only_once_the_volunteers_retired_the_counted_batch(world) -> None:
    batch = world["state"].current_batch()
    world["admin"].settle()
    check = _gate(world, batch)
    assert not check.done and "0 of 4 subjects retired" in check.state  # counted now, but nobody has classified
    _volunteers_retire_the_batch(world)
    assert not _gate(world, batch).done  # the retired counter lags the retirements
    world["admin"].settle()
    check = _gate(world, batch)
    assert check.done, check.state
    assert check.detail["classifications"] >= 4 * 3  # the digits workflow retires after 3 classifications
    assert _gate(world, batch, "precise").done


def test_a_second_batch_is_not_retired_while_the_counters_still_read_the_first(world) -> None:
    batch = _upload_next_round(world)
    assert batch["expected_subjects"] == 8
    assert _founding_rule_would_open(world)  # 4 == 4 from the first batch: the trap again
    check = _gate(world, batch)
    assert not check.done and "subjects_count 4, 8 once the batch is counted" in check.state
    world["admin"].settle()
    assert not _gate(world, batch).done and not _gate(world, batch, "precise").done


def test_subjects_retired_without_the_rules_votes_do_not_open_the_gate(world) -> None:
    batch = world["state"].current_batch()
    workflow = Workflow.find(world["config"].workflow_id)
    members = [int(s.id) for set_id in batch["sets"] for s in Subject.where(subject_set_id=set_id, page_size=100)]
    workflow.retire_subjects(members, reason="classification_count")  # a retirement no vote backs
    world["admin"].settle()
    for mode in ("counts", "precise"):
        check = _gate(world, batch, mode)
        assert not check.done and "fewer than the rule's 3 classifications" in check.state, (mode, check.state)



def test_refill_opens_the_gate_while_a_few_subjects_are_still_unretired(world) -> None:
    batch = _upload_next_round(world)
    workflow_id = world["config"].workflow_id
    world["admin"].settle()
    for step in range(60):  # one classification at a time, until one subject of the batch is left
        world["admin"].run_volunteers(1, seed=100 + step, workflow_id=workflow_id)
        world["admin"].settle()
        if _gate(world, batch, "precise").detail["retired"] == batch["subjects"] - 1:
            break
    else:
        raise AssertionError("the batch never reached one unretired subject")
    for mode in ("counts", "precise"):
        assert not _gate(world, batch, mode).done, mode  # all retired: not yet
        assert not batch_retired_check(workflow_id, batch["sets"], mode, batch["subjects"], batch["expected_subjects"],
                                       refill_below=1).done, mode  # fewer than 1 unretired: not yet either
        check = batch_retired_check(workflow_id, batch["sets"], mode, batch["subjects"], batch["expected_subjects"],
                                    refill_below=2)
        assert check.done and "refill once fewer than 2 are unretired" in check.state, (mode, check.state)
        assert check.detail["refill_below"] == 2
