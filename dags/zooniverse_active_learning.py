"""The generic active-learning DAG: rounds for ``ZOOFLOW_PROJECT`` with ``ZOOFLOW_AL_CONFIG`` (the
one-entry shorthand of the projects file), on its exports and the config's cadence; or, when a
projects file makes one AL DAG per workflow, any project and config by hand. Its tasks and
documentation: ``zooflow.airflow.builders.active_learning``."""

from __future__ import annotations

from pathlib import Path

from zooflow.airflow.builders.active_learning import build_al_dag
from zooflow.airflow.params import DEFAULT_PROJECT
from zooflow.airflow.projects import projects_in_use
from zooflow.al.settings import config_cadence
from zooflow.config_dir import AL_CONFIG

_AD_HOC = projects_in_use(Path(__file__).parent)  # the projects file schedules each workflow itself
zooniverse_active_learning = build_al_dag(
    "zooniverse_active_learning", Path(__file__).parent, project=DEFAULT_PROJECT,
    cadence=None if _AD_HOC else config_cadence(AL_CONFIG.default()), scheduled_on_exports=not _AD_HOC,
)
