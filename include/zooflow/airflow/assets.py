"""The Assets the exports DAG produces and later DAGs schedule on.

The project is a run-time choice (the trigger form), so the producer emits through an alias and
names the concrete asset, ``zooniverse://<owner>/<name>/<export type>``, when it knows the project.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

EXPORTS_ALIAS = AssetAlias("zooniverse-exports")


def export_asset(project: str, export_type: str) -> Asset:
    return Asset(uri=f"zooniverse://{project}/{export_type}", name=f"zooniverse/{project}/{export_type}", group="zooniverse")
