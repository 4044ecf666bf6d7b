"""Reading and checking a projects file: every entry on its own, so one bad entry hides none of the others.

The file is read with ``load_mapping`` (any unreadable file is one clear error), checked against the
JSON schema shipped beside this module (``projects.schema.json``, which editors can use too), then
each valid-looking entry is checked further: its schedule with croniter (what Airflow itself parses
cron expressions with), its slice with ``SliceSpec`` key by key, its active-learning configs read
for their ``workflow_id`` and ``cadence``, and its DAG ids against the entries before it.

This runs at every DAG parse, so it stays light: YAML, jsonschema and croniter (all three already
loaded in an Airflow process), no pandas, no Airflow.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from zooflow.config_files import load_mapping
from zooflow.errors import ConfigurationError
from zooflow.excerpts import excerpt, listing
from zooflow.exports.slice_spec import SliceSpec
from zooflow.projects_file.spec import (
    AL_PREFIX, DEFAULT_CONN_ID, DEFAULT_SCHEDULE, EXPORT_TYPES, EXPORTS_PREFIX, MAX_DAG_ID, ALEntry, EntryError,
    Problem, ProjectEntry, ProjectsFile, al_dag_id, exports_dag_id,
)

PROJECTS_ENV = "ZOOFLOW_PROJECTS"
PROJECT_ENV = "ZOOFLOW_PROJECT"
AL_CONFIG_ENV = "ZOOFLOW_AL_CONFIG"
DEFAULT_NAME = "projects.yaml"  # beside the DAGs
SCHEMA_FILE = "projects.schema.json"
PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
CRON_FIELDS = (("minute", "0-59"), ("hour", "0-23"), ("day of month", "1-31"), ("month", "1-12 or jan-dec"),
               ("day of week", "0-6 or sun-sat"))
ENTRY_KEYS = ("project", "conn_id", "schedule", "exports", "slice", "active_learning")  # the order errors are listed in
FILE_FIX = "make it a mapping with one key, projects, holding a list of entries '- project: owner/name'"
KINDS = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
         "number": "a number", "boolean": "true or false", "null": "empty"}


@functools.cache
def schema() -> dict[str, Any]:
    """The projects file's JSON schema, as shipped in the package."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator  # here: `zooflow --help` does not pay for it

    return Draft202012Validator(schema())


def projects_path(dags_folder: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The projects file in use: ``$ZOOFLOW_PROJECTS`` (relative: to the DAGs folder, as for the
    config folder), else ``projects.yaml`` beside the DAGs if there is one, else None. A file named by
    the variable is returned even when it is not there, so that reading it says so."""
    environ = os.environ if environ is None else environ
    if value := environ.get(PROJECTS_ENV, "").strip():
        path = Path(value).expanduser()
        return dags_folder / path if dags_folder and not path.is_absolute() else path
    if dags_folder and (dags_folder / DEFAULT_NAME).is_file():
        return dags_folder / DEFAULT_NAME
    return None


def load_projects(path: str | Path) -> ProjectsFile:
    """The projects file at ``path``, checked: its valid entries and one error per broken entry
    (plus one about the file itself when it is unreadable or not a projects file). Never raises for
    what the file holds."""
    path = Path(path)
    try:
        data = load_mapping(path, "projects file")
    except ConfigurationError as exc:
        fix = FILE_FIX if path.exists() else f"create it, or set {PROJECTS_ENV} to the path of the projects file"
        return ProjectsFile(path, errors=(EntryError(str(path), None, None, "", str(exc), fix),))
    return replace(_check(data, str(path), path.parent), path=path)


def shorthand_projects(environ: Mapping[str, str] | None = None) -> ProjectsFile | None:
    """The one-entry shorthand used when there is no projects file: ``$ZOOFLOW_PROJECT`` with
    ``$ZOOFLOW_AL_CONFIG`` as its one AL workflow, under the generic DAG ids ``zooniverse_exports``
    and ``zooniverse_active_learning`` (as before projects files). None when ZOOFLOW_PROJECT is empty."""
    environ = os.environ if environ is None else environ
    project = environ.get(PROJECT_ENV, "").strip()
    if not project:
        return None
    entry: dict[str, Any] = {"project": project}
    if al_config := environ.get(AL_CONFIG_ENV, "").strip():
        entry["active_learning"] = [{"config": str(Path(al_config).expanduser())}]
    checked = _check({"projects": [entry]}, "environment", None, dag_ids=(EXPORTS_PREFIX, AL_PREFIX))
    return replace(checked, path=None, errors=tuple(_as_shorthand(error) for error in checked.errors))


def deployment_projects(dags_folder: Path | None, environ: Mapping[str, str] | None = None) -> ProjectsFile | None:
    """What a deployment schedules: its projects file if it has one, else the ZOOFLOW_PROJECT
    shorthand, else None (only the generic, manual DAGs)."""
    path = projects_path(dags_folder, environ)
    return load_projects(path) if path is not None else shorthand_projects(environ)


def schedule_problem(text: str) -> str | None:
    """What is wrong with a cron expression or preset, or None when Airflow will take it."""
    from croniter import croniter  # here: only when there is a schedule to check

    text = text.strip()
    if text.startswith("@"):
        return None if text in PRESETS else f"{excerpt(repr(text))} is not a preset{_guess(text, PRESETS)}"
    fields = text.split()
    if len(fields) != 5:
        return (f"{excerpt(repr(text))} has {len(fields)} field(s); a cron expression has five: minute hour "
                "day-of-month month day-of-week")
    try:
        croniter(text)
        return None
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        failure = exc
    for position, (name, allowed) in enumerate(CRON_FIELDS):  # which field: croniter's message does not say
        probe = ["*"] * 5
        probe[position] = fields[position]
        try:
            croniter(" ".join(probe))
        except (ValueError, KeyError, IndexError, TypeError):
            return f"{excerpt(repr(text))}: the {name} field {excerpt(repr(fields[position]))} is not valid ({allowed})"
    return f"{excerpt(repr(text))} is not a valid cron expression ({excerpt(failure, 200)})"


# --- checking ------------------------------------------------------------------------------------------------


def _check(data: dict[str, Any], label: str, base: Path | None,
           dag_ids: tuple[str, str] | None = None) -> ProjectsFile:
    """``data`` (a projects file's mapping) checked; ``base`` is the folder relative AL config paths
    start from; ``dag_ids`` replaces the per-project DAG ids (the shorthand's generic ones)."""
    data = _plain(data)
    by_entry: dict[int, list[Any]] = {}
    file_problems: list[Problem] = []
    for error in _validator().iter_errors(data):
        path = list(error.absolute_path)
        if len(path) >= 2 and path[0] == "projects" and isinstance(path[1], int):
            by_entry.setdefault(path[1], []).append(error)
        else:
            file_problems.extend(_problems(error))
    errors: list[EntryError] = []
    if file_problems:
        first, *more = sorted(file_problems, key=lambda p: p.key)
        errors.append(EntryError(label, None, None, first.key, first.message, first.fix, more=tuple(more)))
    entries: list[ProjectEntry] = []
    claimed: dict[str, tuple[int, str, str]] = {}  # DAG id (case folded) -> entry index, its key, what makes it
    raw_entries = data.get("projects")
    for index, raw in enumerate(raw_entries if isinstance(raw_entries, list) else []):
        result = _check_entry(index, raw, by_entry.get(index, []), label, base, claimed, dag_ids)
        (entries if isinstance(result, ProjectEntry) else errors).append(result)
    return ProjectsFile(None, tuple(entries), tuple(errors))


def _check_entry(index: int, raw: Any, schema_errors: list[Any], label: str, base: Path | None,
                 claimed: dict[str, tuple[int, str, str]],
                 dag_ids: tuple[str, str] | None) -> ProjectEntry | EntryError:
    entry_key = f"projects[{index}]"
    problems = [problem for error in schema_errors for problem in _problems(error)]
    bad = {problem.key[len(entry_key):].lstrip(".").split(".")[0].split("[")[0] for problem in problems}
    raw = raw if isinstance(raw, dict) else {}
    project = str(raw["project"]).strip() if isinstance(raw.get("project"), (str, int)) else None
    known = project if project and "project" not in bad else None

    schedule = raw.get("schedule", DEFAULT_SCHEDULE)
    if "schedule" not in bad and (message := schedule_problem(schedule)):
        problems.append(Problem(f"{entry_key}.schedule", message, _fix(["projects", 0, "schedule"])))
    spec = None
    if isinstance(raw.get("slice", {}), dict):
        flagged = {problem.key for problem in problems if problem.key.startswith(f"{entry_key}.slice")}
        spec = _check_slice(f"{entry_key}.slice", raw.get("slice") or {}, flagged, problems)
    al_entries: list[tuple[str, Path, int | None, str | None]] = []  # key, config, workflow id, cadence
    if "active_learning" not in bad:
        for position, item in enumerate(raw.get("active_learning") or []):
            key = f"{entry_key}.active_learning[{position}].config"
            al_entries.append((key, *_check_al_config(key, item["config"], base, problems)))

    would_make: list[str] = []
    if known:
        exports_id = dag_ids[0] if dag_ids else exports_dag_id(known)
        if _claim(claimed, exports_id, (index, f"{entry_key}.project", known), problems):
            would_make.append(exports_id)
        for key, config, workflow_id, _ in al_entries:
            if workflow_id is not None:
                al_id = dag_ids[1] if dag_ids else al_dag_id(known, workflow_id)
                if _claim(claimed, al_id, (index, key, f"workflow {workflow_id} from {config}"), problems):
                    would_make.append(al_id)

    if problems:
        first, *more = sorted(problems, key=_entry_order)
        shown = excerpt(project, 60) if project else None
        return EntryError(label, index, shown, first.key, first.message, first.fix, tuple(would_make), tuple(more))
    return ProjectEntry(
        index=index, project=known, conn_id=raw.get("conn_id", DEFAULT_CONN_ID), schedule=schedule.strip(),
        exports=tuple(raw.get("exports") or EXPORT_TYPES), slice=spec,
        active_learning=tuple(ALEntry(position, config, workflow_id, cadence, dag_id)
                              for position, ((_, config, workflow_id, cadence), dag_id)
                              in enumerate(zip(al_entries, would_make[1:]))),
        dag_id=would_make[0],
    )


def _claim(claimed: dict[str, tuple[int, str, str]], dag_id: str, claimant: tuple[int, str, str],
           problems: list[Problem]) -> bool:
    """Claim ``dag_id`` for ``claimant`` (entry index, key, what); a DAG id already claimed (Airflow's
    are case-sensitive, Panoptes slugs are not) is a problem naming both places."""
    index, key, what = claimant
    if len(dag_id) > MAX_DAG_ID:
        problems.append(Problem(key, f"its DAG id would be {len(dag_id)} characters long ({excerpt(dag_id, 60)}); "
                                     f"Airflow takes at most {MAX_DAG_ID}", "name the project by its numeric id"))
        return False
    other = claimed.setdefault(dag_id.casefold(), claimant)
    if other == claimant:
        return True
    other_index, other_key, other_what = other
    if key.endswith(".project"):
        fix = (f"list each project once: merge projects[{other_index}] and projects[{index}] into one entry "
               "(all its active-learning workflows under active_learning)")
    else:
        fix = "list each active-learning workflow once: remove one of the two, or point one at another workflow's config"
    problems.append(Problem(key, f"{excerpt(what, 120)} would make the DAG {dag_id}, which {other_key} "
                                 f"({excerpt(other_what, 120)}) already makes", fix))
    return False


def _check_slice(key: str, mapping: dict[str, Any], flagged: set[str], problems: list[Problem]) -> SliceSpec | None:
    """The entry's slice spec, checked by ``SliceSpec`` itself: key by key (so the error names the
    key; keys the schema already ``flagged`` are left out), then as a whole (since before until)."""
    found = []
    for name, value in mapping.items():
        if any(flag == f"{key}.{name}" or flag.startswith((f"{key}.{name}.", f"{key}.{name}[")) for flag in flagged):
            continue
        try:
            SliceSpec.from_mapping({name: value})
        except ConfigurationError as exc:
            found.append(Problem(f"{key}.{name}", str(exc), _fix(["projects", 0, "slice", name])))
    if not found and not flagged:
        try:
            return SliceSpec.from_mapping(mapping)
        except ConfigurationError as exc:
            found.append(Problem(key, str(exc), _fix(["projects", 0, "slice"])))
    problems.extend(found)
    return None


def _check_al_config(key: str, name: str, base: Path | None,
                     problems: list[Problem]) -> tuple[Path, int | None, str | None]:
    """The AL config's path, ``workflow_id`` and ``cadence``: read lightly (not ``RoundConfig``, whose
    module brings the model libraries), as the DAG needs them at parse time."""
    config = Path(name.strip()).expanduser()
    if base is not None and not config.is_absolute():
        config = base / config
    where = f"a relative path starts from the projects file's folder, {os.path.abspath(base)}" if base is not None else "a relative path starts from this folder"
    try:
        data = load_mapping(config, "active-learning config")
    except ConfigurationError as exc:
        problems.append(Problem(key, str(exc), f"create the file, or correct the path: {where}"))
        return config, None, None
    workflow_id = data.get("workflow_id")
    if isinstance(workflow_id, str) and workflow_id.strip().isdigit():
        workflow_id = int(workflow_id)
    if type(workflow_id) is not int or workflow_id < 1:
        said = "has no workflow_id" if workflow_id is None else f"has workflow_id {excerpt(repr(workflow_id))}"
        problems.append(Problem(key, f"the active-learning config {config} {said}",
                                f"set workflow_id in {config.name} to the id of the Zooniverse workflow it labels"))
        workflow_id = None
    cadence = data.get("cadence")
    if cadence is not None:
        message = (schedule_problem(cadence) if isinstance(cadence, str) and cadence.strip()
                   else f"{excerpt(repr(cadence))} is not a cron expression or preset")
        if message:
            problems.append(Problem(key, f"cadence in {config}: {message}",
                                    f"{_fix(['projects', 0, 'schedule'])}; or remove cadence, and the AL DAG runs on "
                                    "each new classification export only"))
        cadence = cadence.strip() if isinstance(cadence, str) else None
    return config, workflow_id, cadence


def _entry_order(problem: Problem) -> tuple[int, str]:
    top = re.sub(r"^projects\[\d+\]\.?", "", problem.key).split(".")[0].split("[")[0]
    return (ENTRY_KEYS.index(top) if top in ENTRY_KEYS else -1, problem.key)


def _as_shorthand(error: EntryError) -> EntryError:
    """An error of the shorthand entry, in the terms of the environment variables it came from."""
    def shorthand(problem: Problem) -> Problem:
        if ".active_learning" in problem.key:
            return Problem(AL_CONFIG_ENV, problem.message,
                           f"set {AL_CONFIG_ENV} to the path of an active-learning config YAML file with its workflow_id")
        return Problem(PROJECT_ENV, problem.message, f"set {PROJECT_ENV} to {_description(['projects', 0, 'project'])}")

    first, *more = map(shorthand, error.problems)
    return replace(error, key=first.key, message=first.message, fix=first.fix, more=tuple(more))


# --- schema errors in the user's terms -----------------------------------------------------------------------


def _problems(error: Any) -> list[Problem]:
    """A jsonschema error as problems: where, what (in words, not schema terms), and the fix, from the
    schema's own descriptions (what editors show)."""
    path = list(error.absolute_path)
    key = _key(path)
    value = error.instance
    keyword = error.validator
    if keyword == "additionalProperties":
        node = _node(path)
        allowed = list(node.get("properties", {}))
        patterns = list(node.get("patternProperties", {}))
        extra = [name for name in value if name not in allowed and not any(re.search(p, str(name)) for p in patterns)]
        what = "the projects file" if not path else _title(path)
        also = " (and x-… keys, for YAML anchors)" if patterns else ""
        return [Problem(_key([*path, str(name)]), f"unknown key {excerpt(repr(name))}",
                        f"{_guess(str(name), allowed, ending='? ')}the keys of {what} are {', '.join(allowed)}{also}")
                for name in extra]
    if keyword == "required":
        missing = next(name for name in error.validator_value if name not in value)
        return [Problem(_key([*path, missing]), f"{missing} is missing",
                        f"add {missing}: {_description([*path, missing])}")]
    if keyword == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(KINDS.get(t, t) for t in expected)
        message = f"is empty, not {wanted}" if value is None else f"{excerpt(repr(value))} is {_kind(value)}, not {wanted}"
    elif keyword == "enum":
        choices = [str(choice) for choice in error.validator_value]
        message = f"{excerpt(repr(value))} is not one of {', '.join(choices)}{_guess(str(value), choices)}"
    elif keyword in ("minItems", "minLength"):
        message = "is empty"
    elif keyword == "uniqueItems":
        seen: list[Any] = []
        twice = [item for item in value if item in seen or seen.append(item)]
        message = f"lists {listing(twice, quote=True)} more than once"
    elif keyword in ("anyOf", "oneOf", "pattern"):
        presets = [c for c in _enums(_node(path)) if isinstance(c, str)]
        message = f"{excerpt(repr(value))} is not {_title(path)}{_guess(str(value), presets)}"
    else:
        message = excerpt(error.message, 200)
    return [Problem(key, message, f"use {_description(path)}")]


def _key(path: list[Any]) -> str:
    """``["projects", 1, "slice", "gold"]`` -> ``projects[1].slice.gold``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{excerpt(part, 60)}"
    return text


def _node(path: list[Any]) -> dict[str, Any]:
    """The schema describing the value at ``path`` (empty when none does)."""
    return _nodes(tuple(path))[-1]


@functools.lru_cache(maxsize=256)
def _nodes(path: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The schemas from the root down to ``path``, ``$ref`` resolved (the referring node's title and
    description kept over the target's)."""
    node = _resolved(schema())
    found = [node]
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
        node = _resolved(node)
        found.append(node)
    return found


def _resolved(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target = schema()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolved(target) | {k: v for k, v in node.items() if k != "$ref"}


def _title(path: list[Any]) -> str:
    return next((n["title"] for n in reversed(_nodes(tuple(path))) if "title" in n), "valid here")


def _description(path: list[Any]) -> str:
    return next((n["description"] for n in reversed(_nodes(tuple(path))) if "description" in n),
                "the form the projects file's schema describes")


def _fix(path: list[Any]) -> str:
    return f"use {_description(path)}"


def _enums(node: dict[str, Any]) -> list[Any]:
    found = list(node.get("enum", []))
    for option in node.get("anyOf", []) + node.get("oneOf", []):
        found += _enums(_resolved(option))
    return found


def _guess(text: str, choices: list[str] | tuple[str, ...], ending: str = "") -> str:
    """`` (did you mean 'schedule'?)``, or "" when nothing is close; with ``ending``, ``did you mean 'x'<ending>``."""
    close = difflib.get_close_matches(text, list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    return f"did you mean {close[0]!r}{ending}" if ending else f" (did you mean {close[0]!r}?)"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "empty"
    for kind, python in (("a mapping", dict), ("a list", list), ("text", str), ("a whole number", int), ("a number", float)):
        if isinstance(value, python):
            return kind
    return f"a {type(value).__name__}"


def _plain(value: Any) -> Any:
    """The YAML as JSON would have it: dates and datetimes (YAML reads ``since: 2025-01-01`` as one)
    become ISO text, which the schema and the slice spec both take."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
