"""docker-compose.yaml and the Dockerfile, checked without Docker.

These machines have the docker client but neither an engine nor the compose plugin, so
``docker compose config`` cannot run here. Instead the file goes through what compose does before it
starts anything: YAML with anchors and merge keys, variable interpolation, and validation against
the Compose Specification's JSON schema (a copy in ``data/``, see its README). On top of that come the
checks compose cannot make: that the deployment matches ``zooflow.deploy.environment`` (the single
description the native distributed run also uses), that the workers share the data root, that the
demo connection reaches the sandbox, and that the image is built from the pinned Airflow.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from importlib import resources
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

from zooflow.airflow_env import DEFAULT_CONN_ID, connection_env
from zooflow.cli import build_parser
from zooflow.deploy import environment
from zooflow.deploy.environment import COMPONENTS, Endpoints, endpoint_env, shared_env
from zooflow.panoptes import PanoptesConfig
from zooflow.paths import DATA_ROOT_ENV
from zooflow.sandbox import seed
from zooflow.sandbox.populate import demo_user_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

# The addresses the services reach each other at, inside the compose network.
HOSTS = {"postgres": "postgres:5432", "redis": "redis:6379", "api_server": "airflow-apiserver:8080"}
SANDBOX_SERVICE = "sandbox"
SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
}
# What a user puts in .env: the secrets and nothing else, so every other value is the file's default.
DOTENV = {variable: f"test-{variable.lower()}" for variable in SECRETS.values()}


# --- What compose does before it starts anything -------------------------------------------------


class InterpolationError(ValueError):
    """What ``docker compose`` reports for a ``${VAR:?message}`` whose variable is unset, or bad syntax."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Expand ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-x}``, ``${VAR-x}``, ``${VAR:?x}``, ``${VAR?x}``,
    ``${VAR:+x}`` and ``${VAR+x}`` the way compose does, nested defaults included.

    Written out here because the checks below are about the values the containers get, which only
    exist after interpolation, and compose itself cannot run on these machines.
    """
    value, end = _expand(text, 0, env, inside_braces=False)
    assert end == len(text)
    return value


def _expand(text: str, i: int, env: dict[str, str], *, inside_braces: bool) -> tuple[str, int]:
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if inside_braces and char == "}":
            return "".join(out), i
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1: i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            value, i = _braced(text, i + 2, env)
            out.append(value)
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            raise InterpolationError(f"invalid interpolation format in {text!r} at {i}")
    if inside_braces:
        raise InterpolationError(f"unclosed ${{ in {text!r}")
    return "".join(out), i


def _braced(text: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    match = _NAME.match(text, i)
    if not match:
        raise InterpolationError(f"invalid variable name in {text!r} at {i}")
    name, i = match.group(), match.end()
    operator = next((op for op in (":-", ":?", ":+", "-", "?", "+") if text.startswith(op, i)), "")
    if not operator and text[i: i + 1] != "}":
        raise InterpolationError(f"invalid interpolation format in {text!r} at {i}")
    operand, i = _expand(text, i + len(operator), env, inside_braces=True)
    i += 1  # the closing brace
    value = env.get(name)
    present = value is not None and (value != "" or ":" not in operator)
    if operator in (":-", "-"):
        return (value if present else operand), i
    if operator in (":?", "?"):
        if not present:
            raise InterpolationError(f"required variable {name} is missing a value: {operand}")
        return value, i
    if operator in (":+", "+"):
        return (operand if present else ""), i
    return value or "", i


def interpolate_all(node, env: dict[str, str]):
    """Interpolate every string value of a loaded compose document (compose leaves keys alone)."""
    if isinstance(node, dict):
        return {key: interpolate_all(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def load_compose(env: dict[str, str] | None = None) -> dict:
    """docker-compose.yaml as compose sees it with ``env`` as the shell plus .env."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return interpolate_all(raw, DOTENV if env is None else env)


def compose_validator() -> jsonschema.Validator:
    """A validator of the draft the schema declares: jsonschema does not recognise the schema's
    ``https://json-schema.org/draft-07/schema`` spelling by itself, so the draft is read here and a
    newer copy of the schema that changes draft makes this fail instead of validating by other rules."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    match = re.fullmatch(r"https?://json-schema\.org/draft-(\d+)/schema#?", schema["$schema"])
    assert match, f"unexpected $schema {schema['$schema']!r}"
    validators = {"04": jsonschema.Draft4Validator, "06": jsonschema.Draft6Validator, "07": jsonschema.Draft7Validator}
    validator_class = validators[match.group(1)]
    validator_class.check_schema(schema)
    return validator_class(schema)


def schema_errors(document: dict) -> list[str]:
    errors = sorted(compose_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}" for error in errors]


def airflow_service_names() -> set[str]:
    """Services built on the ``x-airflow-common`` anchor, read from the YAML node graph: an alias
    is the anchored node itself, so a service whose merge key points at that node is an Airflow one."""
    root = yaml.compose(COMPOSE_FILE.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    top = {key.value: value for key, value in root.value}
    common = top["x-airflow-common"]
    names = set()
    for key, service in top["services"].value:
        if any(k.value == "<<" and v is common for k, v in service.value):
            names.add(key.value)
    return names


def command_words(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def mounts(service: dict) -> dict[str, str | None]:
    """The service's volumes in short syntax, target -> source (None for an anonymous volume)."""
    found: dict[str, str | None] = {}
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), f"long-syntax volume {volume!r}: extend mounts() to read it"
        parts = volume.split(":")
        if len(parts) == 1:
            found[parts[0]] = None
        else:
            found[parts[1]] = parts[0]
    return found


def default_endpoints(user: str = "airflow", password: str = "airflow") -> Endpoints:
    return Endpoints(**HOSTS, db_user=user, db_password=password)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def airflow_services(compose) -> dict[str, dict]:
    names = airflow_service_names()
    return {name: compose["services"][name] for name in sorted(names)}


# --- The compose specification -------------------------------------------------------------------


def test_schema_copy_is_a_draft_07_compose_schema():
    validator = compose_validator()
    assert isinstance(validator, jsonschema.Draft7Validator)
    assert validator.schema["title"] == "Compose Specification"


def test_compose_file_follows_the_compose_specification(compose):
    assert schema_errors(compose) == []


def _unknown_service_key(doc: dict) -> None:
    doc["services"]["airflow-worker"]["replicas"] = 2  # belongs under deploy:


def _unknown_condition(doc: dict) -> None:
    doc["services"]["airflow-worker"]["depends_on"]["sandbox"]["condition"] = "service_ready"


def _healthcheck_interval_number(doc: dict) -> None:
    doc["services"]["sandbox"]["healthcheck"]["interval"] = 10


def _unknown_top_level_key(doc: dict) -> None:
    doc["service"] = doc.pop("services")


@pytest.mark.parametrize(
    ("break_it", "where"),
    [
        (_unknown_service_key, "services/airflow-worker"),
        (_unknown_condition, "services/airflow-worker/depends_on"),
        (_healthcheck_interval_number, "services/sandbox/healthcheck/interval"),
        (_unknown_top_level_key, "(top)"),
    ],
)
def test_validation_rejects_a_broken_compose_document(compose, break_it, where):
    """The validation above could pass by validating nothing; these documents must fail, at the spot broken."""
    broken = copy.deepcopy(compose)
    break_it(broken)
    errors = schema_errors(broken)
    assert errors, f"{break_it.__name__} was accepted"
    assert any(error.startswith(where) for error in errors), errors


def test_interpolation_follows_compose_rules():
    """The checks below trust interpolate(); these are the rules of the compose specification."""
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("$$HOME ${SET} $SET", env) == "$HOME value value"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-${SET}:8080}", env) == "d  d value:8080"
    assert interpolate("${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt}", env) == "alt  alt"
    assert interpolate("${SET:?never shown}", env) == "value"
    with pytest.raises(InterpolationError, match="UNSET is missing a value: say why"):
        interpolate("${UNSET:?say why}", env)
    with pytest.raises(InterpolationError, match="EMPTY"):
        interpolate("${EMPTY:?x}", env)
    with pytest.raises(InterpolationError):
        interpolate("${UNCLOSED", env)


# --- Agreement with zooflow.deploy.environment ---------------------------------------------------


def test_every_airflow_component_has_a_service(airflow_services):
    """Each ``airflow <component>`` of a Celery deployment runs in a service of the Airflow image
    whose entrypoint is the image's own, which runs the command as ``airflow <command>``."""
    commands = {
        name: " ".join(command_words(service))
        for name, service in airflow_services.items()
        if "entrypoint" not in service
    }
    missing = [component for component in COMPONENTS if component not in commands.values()]
    assert missing == [], f"no service runs {missing}; services run {commands}"


def test_airflow_services_are_the_expected_ones():
    """The anchor reaches every Airflow service (and the sandbox, which needs no database, is not one)."""
    assert airflow_service_names() == {
        "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
        "airflow-triggerer", "airflow-worker", "flower",
    }


def test_airflow_services_read_the_packaged_celery_env(airflow_services):
    packaged = resources.files(environment.__package__).joinpath(environment.ENV_FILE).read_text(encoding="utf-8")
    for name, service in airflow_services.items():
        env_files = service["env_file"] if isinstance(service["env_file"], list) else [service["env_file"]]
        assert env_files == ["include/zooflow/deploy/celery.env"], name
        assert (COMPOSE_FILE.parent / env_files[0]).read_text(encoding="utf-8") == packaged


@pytest.mark.parametrize(
    ("shell", "endpoints"),
    [
        ({}, default_endpoints()),
        ({"POSTGRES_USER": "zoo", "POSTGRES_PASSWORD": "not-the-default"}, default_endpoints("zoo", "not-the-default")),
    ],
    ids=["local-default-credentials", "credentials-from-env"],
)
def test_endpoints_equal_endpoint_env(shell, endpoints):
    """The addresses each Airflow service gets are exactly what the native run would build for
    these hosts, and the database login follows POSTGRES_USER/POSTGRES_PASSWORD, not a literal."""
    compose = load_compose(DOTENV | shell)
    expected = endpoint_env(endpoints)
    for name in airflow_service_names():
        env = compose["services"][name]["environment"]
        assert {key: env.get(key) for key in expected} == expected, name
    postgres = compose["services"]["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]) == (
        endpoints.db_user, endpoints.db_password, endpoints.db_name)


def test_endpoint_hosts_are_services(compose):
    for address in HOSTS.values():
        assert address.split(":")[0] in compose["services"], address
    apiserver_ports = compose["services"]["airflow-apiserver"]["ports"]
    assert any(mapping.split(":")[-1] == HOSTS["api_server"].split(":")[1] for mapping in apiserver_ports)


def test_services_do_not_override_celery_env(airflow_services):
    """A key set in both places would silently win in compose and not in the native run."""
    shared = shared_env()
    for name, service in airflow_services.items():
        assert sorted(set(service["environment"]) & set(shared)) == [], name


def test_celery_env_means_the_same_to_compose():
    """Compose reads env_file with its dotenv parser (which expands $, strips quotes and drops
    `` #`` comments); zooflow reads it literally. Values using none of these read the same in both."""
    for key, value in shared_env().items():
        assert not re.search(r"[$'\"`]| #", value), f"{key}={value} may read differently in compose"


# --- Secrets ---------------------------------------------------------------------------------------


def test_secrets_come_from_the_environment_only():
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    common_env = raw["x-airflow-common"]["environment"]
    for setting, variable in SECRETS.items():
        assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", common_env[setting]), common_env[setting]
    compose = load_compose()
    for name in airflow_service_names():
        env = compose["services"][name]["environment"]
        assert {setting: env[setting] for setting in SECRETS} == {
            setting: DOTENV[variable] for setting, variable in SECRETS.items()}, name


@pytest.mark.parametrize("variable", sorted(SECRETS.values()))
def test_compose_refuses_to_start_without_a_secret(variable):
    env = {key: value for key, value in DOTENV.items() if key != variable}
    with pytest.raises(InterpolationError, match=f"{variable} is missing a value: set {variable}"):
        load_compose(env)


def test_no_startup_pip_installs():
    """Dependencies come from the image built from the lock, never from pip at container start."""
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE_FILE.read_text(encoding="utf-8")


# --- Data root, DAGs, workers ----------------------------------------------------------------------


def test_workers_share_the_data_root_with_every_airflow_service(compose, airflow_services):
    workers = [name for name, service in airflow_services.items() if command_words(service) == ["celery", "worker"]]
    assert workers, "no Celery worker service"
    replicas = sum(int(airflow_services[name].get("deploy", {}).get("replicas", 1)) for name in workers)
    assert replicas >= 2, f"{replicas} Celery worker(s); the deployment shows two or more"

    data_roots = {name: service["environment"][DATA_ROOT_ENV] for name, service in airflow_services.items()}
    assert len(set(data_roots.values())) == 1, data_roots
    data_root = next(iter(data_roots.values()))
    sources = {name: mounts(service).get(data_root) for name, service in airflow_services.items()}
    assert len(set(sources.values())) == 1, f"{data_root} comes from different places: {sources}"
    source = next(iter(sources.values()))
    # A named volume (declared at the top level) is one volume for all containers and replicas;
    # an anonymous one (no source) would give each container its own.
    assert source in compose.get("volumes", {}), f"{data_root} is mounted from {source!r}, not a named volume"


def test_dags_and_plugins_are_mounted_from_the_repository(airflow_services):
    for name, service in airflow_services.items():
        found = mounts(service)
        for folder in ("dags", "plugins"):
            target = f"/opt/airflow/{folder}"
            assert target in found, f"{name} does not mount {target}"
            assert found[target] and (COMPOSE_FILE.parent / found[target]).resolve() == REPO / folder, name


# --- The sandbox and the demo connection ----------------------------------------------------------


def test_sandbox_serves_the_demo_seed_on_a_persistent_volume(compose):
    service = compose["services"][SANDBOX_SERVICE]
    words = command_words(service)
    assert words[0] == "zooflow"
    # zooflow's own parser: a flag the CLI does not have fails here, not in the container.
    args = build_parser().parse_args(words[1:])
    assert (args.command, args.sandbox_command) == ("sandbox", "serve")
    assert (args.host, args.port, args.seed) == ("0.0.0.0", 8080, "demo")
    assert str(PurePosixPath(args.data_dir)) in mounts(service), "the sandbox's state would die with its container"
    assert "/entrypoint" not in json.dumps(service.get("entrypoint")), "the image entrypoint would run `airflow zooflow`"


def test_default_connection_is_the_sandbox_demo_user(compose):
    sandbox_args = build_parser().parse_args(command_words(compose["services"][SANDBOX_SERVICE])[1:])
    demo = demo_user_config(f"http://{SANDBOX_SERVICE}:{sandbox_args.port}")
    (variable, expected), = connection_env(demo, DEFAULT_CONN_ID).items()
    for name in airflow_service_names():
        env = compose["services"][name]["environment"]
        assert json.loads(env[variable]) == json.loads(expected), name
        assert env["ZOOFLOW_PROJECT"] == seed.DEMO_PROJECT_SLUG, name


def test_connection_can_point_at_the_real_zooniverse():
    compose = load_compose(DOTENV | {
        "ZOONIVERSE_ENDPOINT": "https://www.zooniverse.org",
        "ZOONIVERSE_USERNAME": "someone", "ZOONIVERSE_PASSWORD": "their-password"})
    real = PanoptesConfig(endpoint="https://www.zooniverse.org", username="someone", password="their-password")
    (variable, expected), = connection_env(real).items()
    assert json.loads(compose["services"]["airflow-worker"]["environment"][variable]) == json.loads(expected)


def test_services_that_use_panoptes_wait_for_the_sandbox(compose):
    for name in ("airflow-worker", "airflow-triggerer"):
        assert compose["services"][name]["depends_on"][SANDBOX_SERVICE] == {"condition": "service_healthy"}, name


# --- Start-up order ----------------------------------------------------------------------------------


def test_depends_on_conditions_can_be_met(compose):
    """What the schema cannot see: a service waited on as healthy needs a healthcheck, one waited on
    to complete must not restart forever, and nothing may wait on a service only a profile starts."""
    services = compose["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert "profiles" not in services[target], f"{name} waits on {target}, which only a profile starts"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} restarts, so it never completes"


def test_airflow_components_wait_for_the_database_broker_and_migration(airflow_services):
    for name, service in airflow_services.items():
        if name == "airflow-init":
            continue
        depends = service["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert "healthcheck" in service, name
    # Workers run tasks through the api-server's execution API.
    assert airflow_services["airflow-worker"]["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
    assert airflow_services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_flower_only_with_its_profile(compose):
    assert compose["services"]["flower"]["profiles"] == ["flower"]
    assert command_words(compose["services"]["flower"]) == ["celery", "flower"]


# --- The image -----------------------------------------------------------------------------------------


def _lock_pin(package: str) -> str:
    text = (REPO / "requirements.lock").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==(\S+)$", text, flags=re.MULTILINE)
    assert match, f"{package} is not pinned in requirements.lock"
    return match.group(1)


def _dockerfile_from() -> tuple[str, str]:
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(froms) == 1, froms
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", froms[0])
    assert match, f"the image does not extend a pinned official Airflow image: {froms[0]}"
    return match.group(1), match.group(2)


def test_image_extends_the_airflow_the_lock_pins():
    airflow_version, python_version = _dockerfile_from()
    assert airflow_version == _lock_pin("apache-airflow")
    # The lock is resolved for one Python (make lock); the image must run that one.
    lock_python = re.search(r"--python-version\s+(\S+)", (REPO / "Makefile").read_text(encoding="utf-8")).group(1)
    assert python_version == lock_python


def test_image_installs_the_lock_and_the_package():
    text = DOCKERFILE.read_text(encoding="utf-8")
    runs = " ".join(re.findall(r"^RUN\s+(.*?)(?<!\\)$", text, flags=re.MULTILINE | re.DOTALL))
    assert re.search(r"pip install .*--requirement \S*requirements\.lock", runs), "the lock is not installed"
    assert "requirements.txt" not in text, "requirements.txt holds ranges; the image installs the lock"
    assert not re.search(r"pip install[^&]*(\s-e\s|--editable)", runs), "zooflow must be installed, not linked"
    # The packaged celery.env is what the installed zooflow.deploy reads inside the image.
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    assert "deploy/*.env" in package_data["zooflow"]


def test_image_and_compose_agree_on_the_data_root(compose):
    env = dict(re.findall(r"^ENV\s+(\w+)=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), flags=re.MULTILINE))
    assert env[DATA_ROOT_ENV] == compose["services"]["airflow-worker"]["environment"][DATA_ROOT_ENV]


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build():
    patterns = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".git", ".demo", "benchmarks/out"} <= patterns
