"""The active-learning DAG, built for one AL workflow of a project (an entry of the projects file) or
for ad hoc runs.

``build_al_dag`` makes the DAG that ``dags/zooniverse_active_learning.py`` (the generic one, whose form
chooses the AL config) and ``dags/zooniverse_projects.py`` (one per AL entry, its config fixed by the
projects file) declare: the same tasks, scheduled on the project's export Asset and the config's cadence.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, dag

from zooflow.airflow.assets import export_asset, on_assets_or_cadence
from zooflow.airflow.operators.al import (
    PlanRoundOperator, PullClassificationsOperator, RetireEarlyOperator, SelectRoundOperator, UploadRoundOperator,
)
from zooflow.airflow.operators.approval import BatchApprovalOperator
from zooflow.airflow.params import common_params, config_file_param, optional_choice, pipeline_dag, wait_settings
from zooflow.airflow.sensors.retirement import BatchRetiredSensor
from zooflow.al.learner import STRATEGIES
from zooflow.al.settings import CONSENSUS_METHODS, RUN_SETTING_NAMES
from zooflow.config_dir import AL_CONFIG
from zooflow.retirement import MODES

AL_DOC = """
### Zooniverse active learning

Once volunteers have labelled (retired) the current batch, chooses the next batch by active
learning and uploads it as a new subject set — the founding glitch pipeline, round after round.

1. **plan** — reads the project's active-learning config and the round state: which round is next,
   and which subject set is the batch volunteers are labelling now.
2. **retire_early** — with `retire_confidence` in the config, pulls the new classifications and retires
   (reason `consensus`) each uploaded subject whose label is already that clear after `min_votes` votes,
   so volunteers' clicks go to subjects that still need them. A dry run unless the form's or the config's
   `retire_dry_run` is off; every retirement is logged with the votes behind it.
3. **wait_for_batch** — waits (in the triggerer) until that batch is retired. Panoptes updates a
   workflow's counters in background jobs minutes after an upload, so right after linking they still
   read "all retired" for the batch before; the wait trusts them only once they count the batch it
   linked. By default (`counts`) the workflow's `subjects_count` must include the batch and equal its
   `retired_set_member_subjects_count`, then the batch's own statuses are read once to confirm; with
   `retirement_mode: precise`, every subject of the batch must have a retired status (a subject with
   no status row yet is not retired). A subject retired by its classification count must have the
   votes the workflow's rule asks for. The first round has no earlier batch and proceeds.
4. **pull_classifications** — brings the workflow's classifications made since the last pull into the
   data root's store (Panoptes' `classifications/project?last_id=`), so every label of the batch that just
   retired is used now rather than after the next daily export.
5. **select** — forms one label per subject from the store (or the latest export, with `labels_from:
   export`): majority with a minimum number of votes and an agreement threshold (ties and low agreement
   are reported and left out), or with `consensus: weighted` by each volunteer's skill (Dawid-Skene).
   Teaches a modAL learner only those labels and the pool's known ones, and chooses the `k` most
   informative items, up to `m` per class above a probability threshold, and with `explore_fraction` a
   share of random items. Draws their images and writes the manifest. Items already uploaded or
   labelled are never chosen again.
6. **approve** — with `approve_before_upload: true`, a human-in-the-loop request shows the round's report and
   contact sheet: Approve uploads, Reject uploads nothing and frees the items. Otherwise it asks nobody.
7. **upload** — creates the subject set, uploads the subjects in parallel with hidden metadata
   (`#pool_id`, `#al_round`, `#query_reason`, `#model_probability`; volunteers see none of it), links
   them, then links the set to the workflow. A rerun after a failure uploads only what is missing; a
   set left empty by a failure is removed. Skipped in a **dry run**, which does not wait for the current
   batch either: it previews the next one from the labels there are now, writing manifest and images only.

**A round starts three ways**: on the AL config's `cadence` (e.g. every 15 minutes; such a run looks at the
batch once and, if it is not retired, skips and ends in seconds — the normal loop, with the next batch up
minutes after the last retires); on each new classification export of the project (the Asset event of
`zooniverse_exports`; the run waits for the batch in the triggerer); and by hand with the form (trying
settings, the first round, a dry run). `refill_below` starts the next round while the last few subjects of
the batch are still being classified, so volunteers never find the workflow empty.
**Config**: a YAML file with at least `pool` (CSV or Parquet: an id column,
features, optionally known labels) and `workflow_id`; see the README. The form's `config` chooses one by
name in the config folder (`$ZOOFLOW_CONFIG_DIR`, default `config/` in the DAGs folder), never a path;
empty, the deployment's `$ZOOFLOW_AL_CONFIG`. Empty k, m, threshold, strategy, seed: the config's values.
**Outputs** under `$ZOOFLOW_DATA_ROOT/projects/<owner__name>/al/workflow-<id>/`: `state.json`, one folder
per round (manifest, images, model, metrics, consensus, uploaded ids) and `learning_curve.png`; and a
round report, `reports/al-round-report/workflow-<id>-round-NNN.html` (learning curve, class balance,
confusion matrix, the uploaded images with their query reasons), linked from the Zooniverse page.
**Reruns**: clearing a run reuses that run's own round; nothing is chosen, uploaded or linked twice.
"""
CONFIGS = "Empty: the config's value."


def al_params(*, project: str, conn_id: str, config: Param | None) -> dict[str, Param]:
    """The AL form: the run settings over the config's values; ``config`` the form's file choice (none when
    the projects file fixes the config)."""
    return common_params(wait_minutes=60, project=project, conn_id=conn_id) | ({"config": config} if config else {}) | {
        "subject_set_name": Param(None, type=["null", "string"], title="Subject set name",
                                  description="Empty: the config's template, e.g. al-round-002-2026-11-21."),
        "k": Param(None, type=["null", "integer"], minimum=0, maximum=1000, title="Most uncertain items (k)",
                   description=f"0 to 1000. {CONFIGS}"),
        "m": Param(None, type=["null", "integer"], minimum=0, maximum=1000, title="High-probability items per class (m)",
                   description=f"0 to 1000. {CONFIGS}"),
        "threshold": Param(None, type=["null", "number"], minimum=0, maximum=1, title="Probability threshold",
                           description=f"0 to 1: the m items per class are above it. {CONFIGS}"),
        "strategy": optional_choice(list(STRATEGIES), empty="the config's", title="Query strategy",
                                    description=f"How the k items are chosen. {CONFIGS}"),
        "seed": Param(None, type=["null", "integer"], minimum=0, maximum=2**32 - 1, title="Random seed",
                      description=f"0 to 2^32 - 1. {CONFIGS}"),
        "retirement_mode": optional_choice(list(MODES), empty="the config's", title="Batch retired when",
                                           description="counts: the workflow's counters; precise: every subject's "
                                                       f"status. {CONFIGS}"),
        "refill_below": Param(None, type=["null", "integer"], minimum=0, maximum=100000, title="Refill below (subjects)",
                              description="Start the next round once fewer of the batch's subjects are unretired, so "
                                          f"volunteers never run out; 0: once all are retired. {CONFIGS}"),
        "explore_fraction": Param(None, type=["null", "number"], minimum=0, maximum=1, title="Explore fraction",
                                  description="Random pool items added to each batch, as a share of k + m (reason "
                                              f"'explore'). {CONFIGS}"),
        "consensus": optional_choice(list(CONSENSUS_METHODS), empty="the config's", title="Consensus",
                                     description="majority: every vote alike; weighted: by each volunteer's skill "
                                                 f"(Dawid-Skene). {CONFIGS}"),
        "retire_confidence": Param(None, type=["null", "number", "string"], title="Retire early at confidence",
                                   description="Retire an uploaded subject once its label is this clear after "
                                               "min_votes votes: a probability above 0.5, or auto (as sure as a "
                                               f"majority of the workflow's full count would be). {CONFIGS}"),
        "retire_dry_run": Param(None, type=["null", "boolean"], title="Early retirement: dry run",
                                description="On: only log which subjects would be retired. Empty: the config's "
                                            "retire_dry_run, which is on unless the config turns it off."),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Write manifest and images; upload nothing."),
    }


def build_al_dag(dag_id: str, dags_folder: Path, *, project: str, config_path: Path | None = None,
                 cadence: str | None = None, scheduled_on_exports: bool = True, conn_id: str = "zooniverse_default",
                 tags: tuple[str, ...] = (), doc_md: str = AL_DOC, description: str | None = None) -> DAG:
    """The AL DAG, scheduled on ``project``'s classification exports (when there is a project and
    ``scheduled_on_exports``) and on ``cadence``. With ``config_path`` the config is that file; without, the form chooses one by name in
    the config folder (empty: ``$ZOOFLOW_AL_CONFIG``)."""
    form_config = None if config_path else config_file_param(
        AL_CONFIG, dags_folder, title="Active-learning config (YAML)", empty="the deployment's default ($ZOOFLOW_AL_CONFIG)")
    common: dict[str, Any] = {
        "project": "{{ params.project }}",
        "config": None if config_path else "{{ params.config }}",
        "config_path": str(config_path) if config_path else None,
        "overrides": {key: "{{ params.%s }}" % key for key in RUN_SETTING_NAMES},
        "zooniverse_conn_id": "{{ params.conn_id }}",
    }

    @dag(
        dag_id=dag_id,
        # A new classification export of the project starts a round, and so does the cadence (a scheduled run
        # only looks: it ends at once when the batch is not ready); else manual only.
        schedule=on_assets_or_cadence(
            [export_asset(project, "classifications")] if project and scheduled_on_exports else [], cadence),
        **pipeline_dag(kind="active-learning", tags=tags, doc_md=doc_md, description=description,
                       retry_delay=timedelta(minutes=1), params=al_params(project=project, conn_id=conn_id,
                                                                          config=form_config)),
    )
    def active_learning():
        plan = PlanRoundOperator(task_id="plan", **common)
        retire = RetireEarlyOperator(task_id="retire_early", retire_dry_run="{{ params.retire_dry_run }}", **common)
        wait = BatchRetiredSensor(
            task_id="wait_for_batch",
            workflow_id=plan.output["workflow_id"],
            subject_set_ids=plan.output["current_batch_sets"],
            batch_subjects=plan.output["batch_subjects"],
            expected_subjects=plan.output["expected_subjects"],
            retirement_mode=plan.output["retirement_mode"],
            refill_below=plan.output["refill_below"],
            dry_run="{{ params.dry_run }}",
            look_once="{{ dag_run.run_type == 'scheduled' }}",  # the cadence's runs look once and end
            **wait_settings(),
        )
        pull = PullClassificationsOperator(task_id="pull_classifications", **common)
        select = SelectRoundOperator(task_id="select", set_name="{{ params.subject_set_name }}",
                                     dry_run="{{ params.dry_run }}", **common)
        approve = BatchApprovalOperator(task_id="approve", selection=select.output, dry_run="{{ params.dry_run }}",
                                        **{k: v for k, v in common.items() if k != "zooniverse_conn_id"})
        upload = UploadRoundOperator(task_id="upload", selection=select.output, **common)
        plan >> retire >> wait >> pull >> select >> approve >> upload

    return active_learning()
