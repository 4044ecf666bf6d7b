"""The Assets the exports DAG produces and later DAGs schedule on.

The project is a run-time choice (the trigger form), so the producer emits through an alias and
names the concrete asset, ``zooniverse://<owner>/<name>/<export type>``, when it knows the project.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetAlias, AssetOrTimeSchedule, CronTriggerTimetable

EXPORTS_ALIAS = AssetAlias("zooniverse-exports")


def export_asset(project: str, export_type: str) -> Asset:
    return Asset(uri=f"zooniverse://{project}/{export_type}", name=f"zooniverse/{project}/{export_type}", group="zooniverse")


def on_assets_or_cadence(assets: list[Asset], cadence: str | None) -> Any:
    """A DAG schedule: each event of ``assets``, and also every ``cadence`` (a cron expression or preset,
    in UTC) when one is given; None (manual only) when neither is."""
    if not cadence:
        return assets or None
    timetable = CronTriggerTimetable(cadence, timezone="UTC")
    return AssetOrTimeSchedule(timetable=timetable, assets=assets) if assets else timetable
