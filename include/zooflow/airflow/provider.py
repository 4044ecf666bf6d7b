"""Provider metadata, found by Airflow through the ``apache_airflow_provider`` entry point.

It makes the ``zooniverse`` connection type, with its form, appear in the UI and in
``airflow providers hooks`` without importing the hook at start-up.
"""

from __future__ import annotations

from typing import Any

import zooflow
from zooflow.panoptes import DEFAULT_ENDPOINT

CONNECTION_TYPE = "zooniverse"
HOOK_CLASS = "zooflow.airflow.hooks.zooniverse.PanoptesHook"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "zooflow",
        "name": "Zooniverse (zooflow)",
        "description": "Zooniverse Panoptes exports, active learning and subject uploads for Airflow.",
        "versions": [zooflow.__version__],
        "integrations": [
            {
                "integration-name": "Zooniverse",
                "external-doc-url": "https://www.zooniverse.org",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Zooniverse", "python-modules": ["zooflow.airflow.hooks.zooniverse"]}],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Zooniverse",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API endpoint",
                        "login": "Zooniverse username",
                        "password": "Zooniverse password",
                    },
                    "placeholders": {
                        "host": DEFAULT_ENDPOINT,
                        "login": "your zooniverse.org login (leave empty for an OAuth application)",
                        "extra": '{"client_id": "...", "client_secret": "..."}',
                    },
                },
                "conn-fields": {
                    "client_id": {
                        "label": "OAuth client id",
                        "description": "For an OAuth application instead of a username (read-only on Panoptes).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_secret": {
                        "label": "OAuth client secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                },
            }
        ],
    }
