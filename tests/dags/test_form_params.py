"""The trigger forms refuse bad values when triggered, and show empty choices as words, not "null"."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.param import ParamValidationError



@pytest.fixture(scope="module")
def dags(dags_folder) -> dict:
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    return bag.dags


def accepts(dag, **conf) -> bool:
    """Whether a trigger with ``conf`` passes the form's checks (Param.resolve, as Airflow runs them)."""
    try:
        dag.params.validate()
        for name, value in conf.items():
            dag.params.get_param(name).resolve(value)
    except ParamValidationError:
        return False
    return True


@pytest.mark.parametrize("conf", [
    {"export_types": []},
    {"export_types": ["classifications", "classifications"]},
    {"since": "yesterday"},
    {"until": "2025-13"},
    {"workflow_ids": [0]},
    {"subject_set_ids": [-3]},
    {"subject_ids": ["12-"]},
    {"resource_id": 0},
    {"spec_file": "/etc/shadow"},
    {"spec_file": "../projects.yaml"},
    {"gold": "null"},
])
def test_the_exports_form_refuses(dags, conf) -> None:
    assert not accepts(dags["zooniverse_exports"], **conf)


@pytest.mark.parametrize("conf", [
    {"k": -1}, {"m": 1001}, {"threshold": 1.5}, {"seed": -1}, {"strategy": "random"},
    {"retirement_mode": "sometimes"}, {"config": "/etc/shadow"}, {"config": "sub/al.yaml"},
])
def test_the_active_learning_form_refuses(dags, conf) -> None:
    assert not accepts(dags["zooniverse_active_learning"], **conf)


def test_the_forms_accept_their_defaults_and_empty_fields(dags) -> None:
    exports, al = dags["zooniverse_exports"], dags["zooniverse_active_learning"]
    assert accepts(exports) and accepts(al)
    assert accepts(exports, workflow_ids=None, subject_ids=None, subject_set_ids=None, gold=None, spec_file=None,
                   since="2025-01-01", until="2025-01-31T12:00:00Z")
    assert accepts(exports, spec_file="example-slice.yaml")  # the example in dags/config
    assert accepts(al, k=None, m=0, threshold=None, strategy=None, seed=None, retirement_mode="precise", config=None)


def test_no_field_shows_null_or_asks_for_an_empty_list(dags) -> None:
    for dag_id, dag in dags.items():
        for name, param in dag.params.items():
            schema = dag.params.get_param(name).schema
            if None in schema.get("enum", []):
                assert schema.get("values_display", {}).get("null"), f"{dag_id}.{name} shows its empty choice as null"
            if param == [] and not schema.get("minItems"):
                assert "null" in schema["type"], f"{dag_id}.{name} is an optional list the form marks required"


def test_fields_that_fall_back_on_the_config_say_so(dags) -> None:
    al = dags["zooniverse_active_learning"]
    for name in ("k", "m", "threshold", "strategy", "seed", "retirement_mode"):
        param = al.params.get_param(name)
        assert "Empty: the config's value" in param.description, name


def test_every_run_setting_is_a_form_field_and_a_round_flag(dags) -> None:
    """The one list of overridable AL settings reaches the form, the operators and ``zooflow al round``."""
    from zooflow.al.settings import RUN_SETTINGS
    from zooflow.cli import build_parser

    dag = dags["zooniverse_active_learning"]
    plan = dag.get_task("plan")
    parser = build_parser()
    for setting in RUN_SETTINGS:
        assert setting.name in dag.params, setting.name
        assert plan.overrides[setting.name] == "{{ params.%s }}" % setting.name
        flag = "--" + setting.name.replace("_", "-")
        value = setting.choices[-1] if setting.choices else "1"
        args = parser.parse_args(["al", "round", "owner/name", "--config", "al.yaml", flag, value])
        assert getattr(args, setting.name) == setting.kind(value)
