"""How soon the next active-learning batch goes up, and how long volunteers wait for it (issue 15).

Three ways of starting a round, each on a fresh sandbox and data root, on the digits workflow of
``set_up_digits_learning`` (retired after 3 classifications; the simulated volunteers answer from the
pool's true labels, known to the sandbox's oracle by ``#pool_id``):

- export: the round starts only once the batch is retired *and* a classification export built after
  that is downloaded; the exports DAG asks for one at 00:00 UTC every day (``request_step``, which
  holds a minute or two for Panoptes' 24-hour rule), the sandbox builds it ``--export-hours`` later,
  ``download_step`` fetches it and the round reads its labels from it (``labels_from: export``);
- incremental: every ``--cadence`` minutes (:00, :15, ...) ``plan_round`` and ``batch_retired_check``;
  once the batch is retired, ``pull_step`` (the classifications made since the last pull), then
  ``select_step`` (labels from the store) and ``upload_step``;
- refill: the same with ``refill_below``: the round starts once fewer than that many of the batch's
  subjects are unretired.

Time is simulated on the sandbox clock, which moves with the wall clock plus an offset the admin API
advances: a tick moves it to the next whole minute, waits until the background jobs that became due
have run (counters, status rows), then asks the volunteers (the sandbox's own ``volunteer_rate`` is 0)
for the classifications that arrived since the last tick: ``--rate`` a minute on average, at random
(``--arrivals poisson``, the default) or exactly (``even``). What they could not make (no unretired
subject left) is idle volunteer time. A round's own work (plan, check, pull, select, upload) takes
wall seconds, which pass on the sandbox clock too, so they count as simulated time, as they would on a
real deployment. While the workflow has nothing to classify, nothing can change until the loop's next
action, so the clock jumps straight to it (the next check, export request or export build) and all of
it is idle time: the same as ticking minute by minute, only faster. Airflow's own scheduling latency
(a run starting seconds after its time, each task's start-up) is not modelled.

Printed per variant and round: minutes from the current batch's last retirement (the latest
``retired_at`` of its subjects' statuses) to the next batch linked (negative: linked before the batch
was done, which is what refill does), the batch's subjects still unretired then, idle volunteer
minutes in the round (classifications turned away / rate) and, as a check, the minutes the workflow
had no unretired subject at all (from the statuses), the round's preparation time, and the volunteer
labels the round learned from (all so far, of the subjects uploaded so far, and how many are new since
the round before). Then idle minutes as a share of the simulated time from the first batch linked to
the last. The exit status is 1 when the refill loop (the first ``--refill-below``) leaves volunteers
idle for 5 % of the time or more. Everything is written to ``out/bench_cadence.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from panoptes_client import Panoptes, Project, SubjectWorkflowStatus, Workflow

from zooflow.al.round import RoundConfig
from zooflow.al.state import RoundState
from zooflow.al.steps import plan_round, pull_step, select_step, upload_step
from zooflow.exports.export_requests import ExportTarget, describe, export_complete
from zooflow.exports.limits import parse_time
from zooflow.exports.steps import download_step, request_step
from zooflow.panoptes import connect
from zooflow.retirement import batch_retired_check, retirement_count
from zooflow.sandbox import seed as sandbox_seed
from zooflow.sandbox.populate import demo_user_config, set_up_digits_learning
from zooflow.sandbox.process import SandboxProcess
from zooflow.storage import LocalStorage

OUT = Path(__file__).resolve().parent / "out"
VARIANTS = ("export", "incremental", "refill")
TITLES = {"export": "export-driven (daily export)", "incremental": "incremental (store, every {cadence} min)",
          "refill": "incremental + refill_below={refill_below}"}
RETIREMENT = 3  # classifications that retire a subject: set_up_digits_learning's workflow rule
IDLE_TARGET = 0.05  # the refill loop must leave volunteers idle for less than this share of the time
MINUTE = 60.0
DAY = 86400.0
JOBS_POLL_SECONDS = 0.02
EXPORT_POLL_SECONDS = 0.05
EXPORT_BUILD_TIMEOUT = 60.0  # wall seconds for the sandbox to build an export once it is due
DRAIN_LIMIT_MINUTES = 24 * 60  # after the last round: how long to let volunteers finish the earlier batches


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class RoundRecord:
    round: int
    linked_at: float  # sandbox epoch seconds
    set_id: int
    subject_ids: list[int]
    prep_seconds: float = 0.0  # wall (= sandbox) seconds from the gate opening to the batch linked
    labelled_by_volunteers: int = 0
    picks: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    accuracy: float | None = None
    previous_unretired_at_link: int | None = None  # subjects of the batch before still unretired at link time
    idle_minutes: float = 0.0  # idle volunteer minutes since the batch before was linked
    export_built_at: float | None = None  # export variant: the export the round read


class Simulation:
    """One variant on its own sandbox: the clock, the volunteers, the loop's actions and the record."""

    def __init__(self, variant: str, args: argparse.Namespace, folder: Path, refill_below: int = 0):
        self.variant = variant
        self.refill_below = refill_below
        self.args = args
        self.folder = folder
        self.rng = random.Random(args.seed)
        self.arrivals = np.random.default_rng(args.seed)
        self.rounds: list[RoundRecord] = []
        self.owed = 0.0  # classifications owed by the volunteers, not yet asked for
        self.dry = False  # the last ask found nothing to classify
        self.idle_minutes = 0.0
        self.idle_this_round = 0.0
        self.demanded = 0
        self.made = 0
        self.accruing = False
        self.last_served = 0.0
        self.ticks = 0
        self.jumps = 0
        self.checks = 0
        self.wall_in_rounds = 0.0
        self.export_requests: list[dict[str, Any]] = []
        self.pending_export: dict[str, Any] | None = None  # requested, not yet downloaded
        self.next_request_at: float | None = None

    # -- the sandbox clock ---------------------------------------------------------------------

    def now(self) -> float:
        """The sandbox clock: the wall clock plus the offset (same machine), read without a request."""
        return time.time() + self.offset

    def advance_to(self, target: float) -> None:
        step = target - self.now()
        if step > 0:
            self.admin.advance_clock(step)
            self.offset += step

    def wait_for_jobs(self) -> None:
        """Until the background jobs that are due have run; the clock is not moved."""
        while self.admin.state()["jobs_due"]:
            time.sleep(JOBS_POLL_SECONDS)

    # -- volunteers ----------------------------------------------------------------------------

    def serve(self) -> None:
        """Ask the volunteers for the classifications due since the last ask; what they cannot make is idle."""
        now = self.now()
        minutes, self.last_served = (now - self.last_served) / MINUTE if self.accruing else 0.0, now
        if self.dry:  # nothing has been linked since they found nothing to classify: all of it is idle
            self.idle(minutes)
            return
        if self.args.arrivals == "poisson":
            asked = int(self.arrivals.poisson(self.args.rate * minutes))
        else:
            self.owed += self.args.rate * minutes
            asked = int(self.owed)
            self.owed -= asked
        if not asked:
            return
        made = self.admin.run_volunteers(asked, seed=self.rng.randrange(2**31), workflow_id=self.workflow_id)
        self.demanded += asked
        self.made += made
        if made < asked:
            self.dry = True
            self.owed = 0.0
            self.idle((asked - made) / self.args.rate)

    def idle(self, minutes: float) -> None:
        if self.accruing:
            self.idle_minutes += minutes
            self.idle_this_round += minutes

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        started = time.monotonic()
        settings = {"volunteer_rate": 0.0, "export_delay": self.args.export_hours * 3600}
        with SandboxProcess(self.folder / "sandbox", seed="demo", settings=settings) as sandbox:
            self.admin = sandbox.admin
            self.offset = self.admin.state()["clock_offset_seconds"]
            with connect(demo_user_config(sandbox.endpoint)):
                digits = set_up_digits_learning(self.folder / "al", self.admin, k=self.args.batch, m=0,
                                                workflow_name="Digits")
                self.workflow_id = digits.workflow_id
                if retirement_count(Workflow.find(self.workflow_id).raw) != RETIREMENT:
                    raise SystemExit(f"the digits workflow no longer retires after {RETIREMENT} classifications")
                self.config = RoundConfig(
                    pool=self.folder / "al" / "digits.parquet", workflow_id=digits.workflow_id, k=self.args.batch,
                    m=0, seed=self.args.seed, labels_from="export" if self.variant == "export" else "store",
                    refill_below=self.refill_below,
                    cadence=None if self.variant == "export" else f"*/{self.args.cadence} * * * *")
                self.store = LocalStorage(self.folder / "data")
                self.slug = sandbox_seed.DEMO_PROJECT_SLUG
                self.project = Project.find(slug=self.slug)
                self.target = ExportTarget("project", int(self.project.id), "classifications")
                self.exports_dir = self.store.root.exports_dir(self.slug, "classifications")
                # Start on a fixed time of day (it matters to the export loop): the next day at --start-hour UTC.
                today = datetime.fromtimestamp(self.now(), timezone.utc).replace(hour=0, minute=0, second=0,
                                                                                    microsecond=0)
                self.advance_to((today + timedelta(days=1, hours=self.args.start_hour)).timestamp())
                self.loop()
                self.drain()
                finish = self.finish()
        finish["wall_seconds"] = round(time.monotonic() - started, 1)
        return finish

    def loop(self) -> None:
        self.start_round(gate_opened=self.now())  # the first batch: cold start, nothing to wait for
        self.accruing, self.last_served = True, self.now()
        self.next_request_at = self.next_midnight(self.now())
        next_check = self.next_check(self.now())
        limit = self.now() + self.args.max_days * DAY
        while len(self.rounds) < self.args.rounds + 1:
            if self.now() > limit:
                raise SystemExit(f"{self.variant}: {len(self.rounds) - 1} rounds after {self.args.max_days} simulated "
                                 "days; raise --max-days or check the loop")
            wake = self.next_wake(next_check)
            target = wake if self.dry else min(wake, self.next_minute(self.now()))
            self.jumps += self.dry
            self.ticks += 1
            self.advance_to(target)
            self.wait_for_jobs()
            self.serve()
            if self.variant == "export":
                self.export_actions()
            elif self.now() >= next_check:
                next_check = self.next_check(self.now())
                self.incremental_check()

    def next_wake(self, next_check: float) -> float:
        if self.variant != "export":
            return next_check
        wakes = [self.next_request_at]
        if self.pending_export:
            wakes.append(self.pending_export["ready_at"])
        return min(w for w in wakes if w is not None)

    @staticmethod
    def next_minute(now: float) -> float:
        return (math.floor(now / MINUTE) + 1) * MINUTE

    def next_check(self, now: float) -> float:
        every = self.args.cadence * MINUTE
        return (math.floor(now / every) + 1) * every

    @staticmethod
    def next_midnight(now: float) -> float:
        return (math.floor(now / DAY) + 1) * DAY

    # -- the incremental loop ------------------------------------------------------------------

    def incremental_check(self) -> None:
        """One run of the cadence: plan, the batch check; once it opens, pull, select and upload."""
        self.checks += 1
        opened = self.now()
        plan = plan_round(self.store, self.slug, self.config, f"check-{self.checks}")
        if plan["current_batch_sets"]:
            check = batch_retired_check(self.workflow_id, plan["current_batch_sets"], plan["retirement_mode"],
                                        plan["batch_subjects"], plan["expected_subjects"] or None,
                                        refill_below=plan["refill_below"])
            if not check.done:
                return
        pull_step(self.store, self.slug, self.config, project_id=int(self.project.id),
                  workflow=Workflow.find(self.workflow_id))
        self.start_round(gate_opened=opened, run_id=f"check-{self.checks}")

    # -- the export-driven loop ----------------------------------------------------------------

    def export_actions(self) -> None:
        now = self.now()
        if self.next_request_at is not None and now >= self.next_request_at:
            self.request_export()
        if self.pending_export and now >= self.pending_export["ready_at"]:
            self.export_arrived()

    def request_export(self) -> None:
        """The exports DAG's daily run: ask, or (a minute or two early for the 24 h rule) hold and ask again."""
        outcome = request_step(self.store, self.target, self.exports_dir)
        if outcome.action == "requested":
            requested = parse_time(outcome.requested_at).timestamp()
            started = self.export_job_started()
            self.pending_export = {"requested_at": outcome.requested_at,
                                   "ready_at": started + self.args.export_hours * 3600}
            self.export_requests.append({"requested_at": iso(requested)})
            self.next_request_at = self.next_midnight(self.now())
        elif outcome.request_in_seconds is not None:
            self.next_request_at = self.now() + outcome.request_in_seconds + 1  # RequestExportOperator's hold
        else:
            raise SystemExit(f"export: request step neither asked nor can say when to: {outcome.reason}")

    def export_job_started(self) -> float:
        """When the requested export's job started (its medium shows a job id): Panoptes starts it at once;
        the sandbox's export worker starts it on its next tick, which must come before the clock jumps on."""
        deadline = time.monotonic() + EXPORT_BUILD_TIMEOUT
        while True:
            body, _ = Panoptes.client().get(self.target.path)
            medium = body["media"][0]
            if medium["metadata"].get("job_id"):
                return parse_time(medium["updated_at"]).timestamp()
            if time.monotonic() > deadline:
                raise SystemExit(f"export: its job did not start within {EXPORT_BUILD_TIMEOUT:.0f} s ({medium})")
            time.sleep(EXPORT_POLL_SECONDS)

    def export_arrived(self) -> None:
        """The export's wait, download, and the AL DAG its Asset event starts: a round only if the export
        was built after the current batch's last retirement."""
        opened = self.now()
        deadline = time.monotonic() + EXPORT_BUILD_TIMEOUT
        requested_at = parse_time(self.pending_export["requested_at"])
        while not export_complete(media := describe(self.target), requested_at):
            if time.monotonic() > deadline:
                raise SystemExit(f"export: not built {EXPORT_BUILD_TIMEOUT:.0f} s after it was due ({media})")
            time.sleep(EXPORT_POLL_SECONDS)
        download_step(self.store, self.target, self.exports_dir, requested_at=self.pending_export["requested_at"])
        self.export_requests[-1]["built_at"] = iso(media.updated_at.timestamp())
        self.pending_export = None
        plan = plan_round(self.store, self.slug, self.config, f"export-{len(self.export_requests)}")
        check = batch_retired_check(self.workflow_id, plan["current_batch_sets"], plan["retirement_mode"],
                                    plan["batch_subjects"], plan["expected_subjects"] or None)
        last = self.last_retirement(self.rounds[-1].subject_ids)
        built = media.updated_at.timestamp()
        self.export_requests[-1]["round_started"] = bool(check.done and last is not None and last <= built)
        if self.export_requests[-1]["round_started"]:
            self.start_round(gate_opened=opened, run_id=f"export-{len(self.export_requests)}", export_built_at=built)

    # -- a round ------------------------------------------------------------------------------

    def start_round(self, *, gate_opened: float, run_id: str = "first", export_built_at: float | None = None) -> None:
        wall = time.monotonic()
        selection, _ = select_step(self.store, self.slug, self.config, run_id=run_id)
        self.serve()  # the demand until now still meets the batch before (or nothing at all)
        upload_step(self.store, self.slug, self.config, selection, project_record=self.project,
                    workflow=Workflow.find(self.workflow_id))
        linked = self.now()
        self.wall_in_rounds += time.monotonic() - wall
        record = RoundState(self.store.root.al_dir(self.slug, self.workflow_id)).rounds[-1]
        if record["round"] != selection.round or not record.get("uploaded_at"):
            raise SystemExit(f"{self.variant}: round {selection.round} is not recorded as uploaded")
        previous = self.rounds[-1] if self.rounds else None
        self.rounds.append(RoundRecord(
            round=selection.round, linked_at=linked, set_id=int(record["set_id"]),
            subject_ids=sorted(int(s) for s in record["subject_ids"].values()), prep_seconds=linked - gate_opened,
            labelled_by_volunteers=int(selection.metrics.get("labelled_by_volunteers", 0)), picks=len(selection.picks),
            reasons=selection.reasons, accuracy=selection.metrics.get("accuracy"),
            previous_unretired_at_link=self.unretired(previous.subject_ids) if previous else None,
            idle_minutes=self.idle_this_round, export_built_at=export_built_at))
        self.idle_this_round = 0.0
        self.dry = False
        self.serve()  # the upload's own seconds: they meet the new batch
        if len(self.rounds) == self.args.rounds + 1:
            self.accruing = False

    # -- the record ----------------------------------------------------------------------------

    def statuses(self, subject_ids: list[int]) -> list[dict[str, Any]]:
        found = []
        for start in range(0, len(subject_ids), 100):
            chunk = ",".join(map(str, subject_ids[start:start + 100]))
            found += [s.raw for s in SubjectWorkflowStatus.where(workflow_id=self.workflow_id, subject_ids=chunk,
                                                                 page_size=100)]
        return found

    def unretired(self, subject_ids: list[int]) -> int:
        return len(subject_ids) - sum(1 for s in self.statuses(subject_ids) if s.get("retired_at"))

    def last_retirement(self, subject_ids: list[int]) -> float | None:
        """When the batch's last subject retired; None while any is unretired."""
        statuses = self.statuses(subject_ids)
        if len(statuses) < len(subject_ids) or not all(s.get("retired_at") for s in statuses):
            return None
        return max(parse_time(s["retired_at"]).timestamp() for s in statuses)

    def drain(self) -> None:
        """After the last round, let the volunteers finish the batches before it (refill leaves some
        unretired), so each one's last retirement is known. Not counted in the idle time."""
        earlier = [s for r in self.rounds[:-1] for s in r.subject_ids]
        limit = self.now() + DRAIN_LIMIT_MINUTES * MINUTE
        while self.unretired(earlier) and self.now() < limit:
            self.advance_to(self.next_minute(self.now()) + 9 * MINUTE)
            self.wait_for_jobs()
            self.admin.run_volunteers(max(1, round(self.args.rate * 10)), seed=self.rng.randrange(2**31),
                                      workflow_id=self.workflow_id)

    def finish(self) -> dict[str, Any]:
        retired_at = {int(s["links"]["subject"]): parse_time(s["retired_at"]).timestamp()
                      for s in self.statuses([i for r in self.rounds for i in r.subject_ids]) if s.get("retired_at")}
        rows = []
        for before, this in zip(self.rounds, self.rounds[1:]):
            last = self.last_retirement(before.subject_ids)
            # The workflow was empty from the last retirement of everything linked so far to this link.
            earlier = [retired_at.get(i) for r in self.rounds if r.round < this.round for i in r.subject_ids]
            dry = (0.0 if None in earlier or max(earlier) >= this.linked_at
                   else (this.linked_at - max(earlier)) / MINUTE)
            rows.append({
                "round": this.round,
                "batch_linked_at": iso(before.linked_at),
                "batch_last_retired_at": iso(last) if last is not None else None,
                "next_linked_at": iso(this.linked_at),
                "minutes_retired_to_linked": None if last is None else round((this.linked_at - last) / MINUTE, 2),
                "unretired_at_link": this.previous_unretired_at_link,
                "idle_minutes": round(this.idle_minutes, 2),
                "dry_minutes": round(dry, 2),
                "round_minutes": round((this.linked_at - before.linked_at) / MINUTE, 2),
                "prep_seconds": round(this.prep_seconds, 2),
                "labels_used": this.labelled_by_volunteers,
                "new_labels": this.labelled_by_volunteers - before.labelled_by_volunteers,
                "subjects_uploaded_before": sum(len(r.subject_ids) for r in self.rounds if r.round < this.round),
                "accuracy": this.accuracy,
                "picks": this.picks,
                "reasons": this.reasons,
                "export_built_at": iso(this.export_built_at) if this.export_built_at else None,
            })
        simulated = (self.rounds[-1].linked_at - self.rounds[0].linked_at) / MINUTE
        return {
            "variant": self.variant,
            "title": TITLES[self.variant].format(cadence=self.args.cadence, refill_below=self.refill_below),
            "config": {k: v for k, v in self.config.to_dict().items()
                       if k in ("k", "m", "labels_from", "refill_below", "cadence", "retirement_mode", "min_votes")},
            "first_linked_at": iso(self.rounds[0].linked_at),
            "rounds": rows,
            "simulated_minutes": round(simulated, 2),
            "idle_minutes": round(self.idle_minutes, 2),
            "idle_share": self.idle_minutes / simulated if simulated else None,
            "dry_minutes": round(sum(r["dry_minutes"] for r in rows), 2),
            "classifications_asked": self.demanded,
            "classifications_made": self.made,
            "ticks": self.ticks,
            "jumps": self.jumps,
            "checks": self.checks,
            "round_wall_seconds": round(self.wall_in_rounds, 1),
            "exports": self.export_requests,
        }


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"Digits workflow, {args.batch} subjects a batch (k={args.batch}, m=0), retired after {RETIREMENT} "
          f"classifications; volunteers at {args.rate:g} classifications per simulated minute ({args.arrivals}; "
          f"{args.batch * RETIREMENT / args.rate:.0f} min of work a batch); {args.rounds} rounds after the first batch, "
          f"linked at {args.start_hour:02d}:00 UTC; the daily export is requested at 00:00 UTC and built "
          f"{args.export_hours:g} h later. Times are the sandbox clock (UTC).")
    print()
    header = (f"{'round':>5}  {'batch before: last retired':>26}  {'this batch linked':>19}  {'retired->linked':>15}  "
              f"{'unretired':>9}  {'idle min':>8}  {'dry min':>7}  {'prep s':>6}  {'labels used':>11}  {'new':>3}")
    for result in results:
        print(f"== {result['title']}")
        print(header)
        for row in result["rounds"]:
            gap = "n/a" if row["minutes_retired_to_linked"] is None else f"{row['minutes_retired_to_linked']:+.1f} min"
            print(f"{row['round']:>5}  {row['batch_last_retired_at'] or 'never':>26}  {row['next_linked_at']:>19}  "
                  f"{gap:>15}  {row['unretired_at_link']:>9}  {row['idle_minutes']:>8.1f}  {row['dry_minutes']:>7.1f}  "
                  f"{row['prep_seconds']:>6.1f}  {row['labels_used']:>5} of {row['subjects_uploaded_before']:<3}  "
                  f"{row['new_labels']:>3}")
        print(f"   idle {result['idle_minutes']:.1f} of {result['simulated_minutes']:.0f} simulated minutes "
              f"({result['idle_share']:.1%}; workflow empty {result['dry_minutes']:.1f} min); "
              f"{result['classifications_made']} classifications; {result['wall_seconds']:.0f} s wall")
        print()
    print(f"{'loop':<42}  {'retired->linked, mean':>21}  {'idle min':>8}  {'idle %':>6}  {'labels used per round':>21}")
    for result in results:
        gaps = [r["minutes_retired_to_linked"] for r in result["rounds"] if r["minutes_retired_to_linked"] is not None]
        mean = f"{sum(gaps) / len(gaps):+.1f} min" if gaps else "n/a"
        labels = ", ".join(str(r["labels_used"]) for r in result["rounds"])
        print(f"{result['title']:<42}  {mean:>21}  {result['idle_minutes']:>8.1f}  {result['idle_share']:>6.1%}  "
              f"{labels:>21}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds after the first batch (default 3)")
    parser.add_argument("--batch", type=int, default=20, help="subjects a batch: k, with m=0 (default 20)")
    parser.add_argument("--rate", type=float, default=0.5,
                        help="volunteer classifications per simulated minute (default 0.5: a batch is 2 h of work)")
    parser.add_argument("--cadence", type=int, default=15, help="minutes between the incremental loop's checks (default 15)")
    parser.add_argument("--refill-below", type=int, nargs="+", default=None,
                        help="refill once fewer than this many subjects are unretired (default: a quarter of the "
                             "batch); several values run one refill loop each, the first is the one the target "
                             "is checked on")
    parser.add_argument("--export-hours", type=float, default=2.0,
                        help="hours from the 00:00 UTC export request to the built file (default 2)")
    parser.add_argument("--start-hour", type=int, default=9, help="UTC hour the first batch is linked (default 9)")
    parser.add_argument("--arrivals", choices=("poisson", "even"), default="poisson",
                        help="poisson (default): classifications arrive at random at the steady mean rate; "
                             "even: exactly rate a minute, so every batch takes the same time")
    parser.add_argument("--seed", type=int, default=0, help="the volunteers' and the learner's seed (default 0)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="loops to run (default all three)")
    parser.add_argument("--max-days", type=float, default=10, help="give up after this many simulated days a variant")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the tables")
    args = parser.parse_args(argv)
    if args.refill_below is None:
        args.refill_below = [max(1, args.batch // 4)]
    logging.disable(logging.WARNING)
    # draw_learning_curve's legend on a first round with no held-out scores yet
    warnings.filterwarnings("ignore", message="No artists with labels")

    started = time.monotonic()
    results = []
    runs = [(v, n) for v in args.variants for n in (args.refill_below if v == "refill" else [0])]
    for variant, refill_below in runs:
        name = f"{variant}-{refill_below}" if variant == "refill" else variant
        results.append(Simulation(variant, args, OUT / "cadence" / name, refill_below).run())
        if not args.json:
            print(f"{name}: done in {results[-1]['wall_seconds']:.0f} s", file=sys.stderr)
    refill = next((r for r in results if r["variant"] == "refill"), None)  # the first --refill-below is the one checked
    met = refill is None or (refill["idle_share"] is not None and refill["idle_share"] < IDLE_TARGET)
    summary = {"settings": vars(args), "results": results, "wall_seconds": round(time.monotonic() - started, 1),
               "target": None if refill is None else {"idle_share": refill["idle_share"], "below": IDLE_TARGET, "met": met}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_cadence.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0 if met else 1
    print_table(results, args)
    print()
    if refill is not None:
        verdict = "met" if met else "NOT met"
        print(f"Target {verdict}: incremental + refill leaves volunteers idle {refill['idle_share']:.1%} of the time "
              f"(must be below {IDLE_TARGET:.0%}).")
    print(f"Wall time {summary['wall_seconds']:.0f} s.")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
