"""The Airflow UI's "Zooniverse" page and each DAG run's "Zooniverse" tab (an Airflow 3 UI plugin).

Only wiring lives here; what is listed and how it reads comes from ``zooflow.catalog``:

- ``fastapi_apps``: a small FastAPI app mounted by the api-server at ``/zooniverse``. ``/zooniverse/``
  is the page (recent failed runs with their error, from Airflow's database and task logs; then
  projects, recent exports with age, size and state, active-learning rounds, recent runs, reports), ``/zooniverse/runs/<dag_id>/<run_id>`` one run's summary, and
  ``/zooniverse/files/<path>`` a report (HTML), JSON record, PNG, or a CSV/Parquet file a report links,
  under ``$ZOOFLOW_DATA_ROOT/projects``
  (nothing else: no ``..``, no hidden files, no symlink leading out).
- ``external_views``: a top-level "Zooniverse" entry in the UI's navigation that shows the page
  inside the UI (an iframe the UI keeps in step with its own address bar), and a "Zooniverse" tab
  on every DAG run, showing what that run left under the data root. Their ``href`` is relative:
  the UI resolves it against its ``<base href>``, so a ``[api] base_url`` with a path still works.

Access: FastAPI apps of plugins are not protected by Airflow on their own, so every route here asks
the auth manager for the user, from the UI's session cookie or a Bearer token as the REST API does,
and requires read access to DAG runs: of the zooflow DAGs for the page and the files, and of the
run's own DAG for a run's tab. A browser without a session is sent to the login page.

This module is imported by every Airflow process that loads plugins (task processes do, for
macros), so it imports only FastAPI and the small catalog module at import time; Airflow's API
security code is imported when a request arrives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from airflow.plugins_manager import AirflowPlugin

from zooflow.catalog import (
    AL_DAG,
    REPORT_DAGS,
    SERVED_SUFFIXES,
    build_catalog,
    render_catalog,
    render_no_local_root,
    render_run,
    resolve_file,
    run_summary,
)
from zooflow.errors import ConfigurationError
from zooflow.airflow.failed_runs import recent_failed_runs, render_failed_runs
from zooflow.paths import DataRoot, data_root_setting, display_root

URL_PREFIX = "/zooniverse"
ZOONIVERSE_DAGS = ("zooniverse_exports", AL_DAG)
FAILURE_DAGS = tuple(dict.fromkeys((*ZOONIVERSE_DAGS, *REPORT_DAGS.values())))  # every zooflow DAG's failures are listed
# A report is HTML someone else's code wrote; served from Airflow's own origin it could script the UI.
# Sandboxed it gets an opaque origin: it may run its own scripts but reaches neither the UI nor its API.
REPORT_HEADERS = {"Content-Security-Policy": "sandbox allow-scripts allow-popups", "X-Content-Type-Options": "nosniff"}
ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#3182ce" stroke-width="2">'
        '<circle cx="12" cy="12" r="9"/><ellipse cx="12" cy="12" rx="9" ry="3.5" transform="rotate(-25 12 12)"/>'
        '<circle cx="12" cy="12" r="2" fill="#3182ce"/></svg>')

app = FastAPI(title="zooflow: Zooniverse", docs_url=None, redoc_url=None, openapi_url=None)
_bearer = HTTPBearer(auto_error=False)


async def _user(request: Request, bearer: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Any:
    """The user, exactly as Airflow's REST API finds it: a Bearer token, else the UI's session cookie."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, bearer)


def _readable(user: Any, dag_ids: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``dag_ids`` whose runs the user may read."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    manager = get_auth_manager()
    return tuple(dag_id for dag_id in dag_ids if manager.is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user))


def _may_read_runs(user: Any, dag_ids: tuple[str, ...]) -> None:
    refused = [dag_id for dag_id in dag_ids if dag_id not in _readable(user, dag_ids)]
    if refused:
        raise HTTPException(status_code=403, detail=f"you may not read the runs of {', '.join(refused)}")


async def _zooflow_reader(user: Any = Depends(_user)) -> Any:
    _may_read_runs(user, ZOONIVERSE_DAGS)
    return user


async def _run_reader(dag_id: str, user: Any = Depends(_user)) -> Any:
    _may_read_runs(user, (dag_id,))
    return user


@app.exception_handler(HTTPException)
async def _login_first(request: Request, exc: HTTPException) -> Response:
    """A browser without a session goes to Airflow's login page and comes back; API clients get the 401."""
    if exc.status_code == 401 and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(get_auth_manager().get_url_login(next_url=request.url.path + query), status_code=303)
    return await http_exception_handler(request, exc)


def _data_root() -> tuple[DataRoot | None, str]:
    """The api-server's data root, or None with the reason when it is object storage (not listed yet)."""
    setting = data_root_setting()
    try:
        return DataRoot(setting), display_root(setting)
    except ConfigurationError:
        return None, display_root(setting)


def _deployment() -> tuple[list[str], dict[tuple[str | None, str, str | None], str]]:
    """The projects the deployment schedules (its projects file, or ``ZOOFLOW_PROJECT``), listed on the
    page before they have written anything, and the DAG each project's runs belong to."""
    from airflow.configuration import conf

    from zooflow.catalog import AL_DAG, EXPORT_REPORT, report_dag
    from zooflow.projects_file import deployment_projects

    projects = deployment_projects(Path(conf.get("core", "dags_folder")))
    entries = projects.entries if projects else ()
    dags = {(report_dag(EXPORT_REPORT), e.project, None): e.dag_id for e in entries}
    dags |= {(AL_DAG, e.project, str(al.workflow_id)): al.dag_id for e in entries for al in e.active_learning}
    return [e.project for e in entries], dags


def _file_href(request: Request) -> Any:
    prefix = request.scope.get("root_path", "").rstrip("/")
    return lambda path: f"{prefix}/files/{quote(path)}"


def _no_local_root(label: str) -> HTMLResponse:
    return HTMLResponse(render_no_local_root(label))


@app.get("/", response_class=HTMLResponse)
def page(request: Request, user: Any = Depends(_zooflow_reader)) -> HTMLResponse:
    root, label = _data_root()
    if root is None:
        return _no_local_root(label)
    expected, dags = _deployment()
    catalog = build_catalog(root, expected=expected, dags=dags)
    watched = tuple(dict.fromkeys((*FAILURE_DAGS, *dags.values())))  # the projects' own DAGs fail here too
    failed = render_failed_runs(recent_failed_runs(_readable(user, watched)), catalog.generated_at)
    return HTMLResponse(render_catalog(catalog, _file_href(request), data_root_label=label, first=failed),
                        headers={"Cache-Control": "no-store"})


@app.get("/runs/{dag_id}/{run_id:path}", response_class=HTMLResponse)
def run(request: Request, dag_id: str, run_id: str, _: Any = Depends(_run_reader)) -> HTMLResponse:
    root, label = _data_root()
    if root is None:
        return _no_local_root(label)
    return HTMLResponse(render_run(run_summary(root, dag_id, run_id), _file_href(request)),
                        headers={"Cache-Control": "no-store"})


@app.get("/files/{path:path}")
def file(path: str, _: Any = Depends(_zooflow_reader)) -> FileResponse:
    root, _label = _data_root()
    found = resolve_file(root, path) if root is not None else None
    if found is None:
        raise HTTPException(status_code=404, detail="no such report under the data root's projects/")
    media_type = SERVED_SUFFIXES[found.suffix.lower()]
    return FileResponse(found, media_type=media_type, headers=REPORT_HEADERS | {"Cache-Control": "no-store"})


@app.get("/icon.svg")
def icon() -> Response:
    return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


class ZooniversePlugin(AirflowPlugin):
    name = "zooniverse"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Zooniverse"}]
    external_views = [
        {"name": "Zooniverse", "href": "zooniverse/", "destination": "nav", "url_route": "zooniverse",
         "nav_top_level": True, "icon": "zooniverse/icon.svg"},
        {"name": "Zooniverse", "href": "zooniverse/runs/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "zooniverse-run", "icon": "zooniverse/icon.svg"},
    ]

