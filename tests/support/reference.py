"""Zooniverse's own extractors (panoptes-aggregation) in an environment of their own, for the reference tests.

panoptes-aggregation 5.3.1 pins packaging<24.3 while Airflow 3.3.2 needs packaging>=25, so it cannot be
installed into the project's .venv. ``reference_python()`` builds ``.venv-reference`` in the repository root
from ``requirements-reference.lock`` with uv, once: the venv keeps a stamp with the lock's hash and the
interpreter's version, and is reused for as long as both match. Parallel test runs (pytest-xdist, two
terminals) take a file lock around the check and the build, so only one builds and the others wait for it.
``run_reference(args)`` runs ``tests/support/reference_extract.py`` with that interpreter.

A missing environment is built, never skipped; when it cannot be built (no uv, no index and a cold uv
cache, a broken lock) ``ReferenceUnavailable`` says why and what to run by hand.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements-reference.lock"
VENV = REPO / ".venv-reference"
STAMP = VENV / ".zooflow-reference-stamp"
GUARD = REPO / ".venv-reference.flock"
SCRIPT = Path(__file__).resolve().with_name("reference_extract.py")
BUILD_TIMEOUT = 600  # seconds; a warm uv cache needs a few, a cold one downloads about 100 MB

# How the last reference_python() call went, for the test's summary: "reused" or "built in 4.2 s".
LAST_BUILD: dict[str, object] = {}


class ReferenceUnavailable(RuntimeError):
    """The reference environment cannot be built here."""


def _by_hand() -> str:
    return (f"To build it by hand: python3 -m uv venv --python {sys.executable} {VENV} && "
            f"python3 -m uv pip sync --python {VENV}/bin/python {LOCK}")


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run([*command, "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def uv_command() -> list[str]:
    """How to run uv: from the interpreter running the tests, on PATH, or the Makefile's ``$(PYTHON) -m uv``.

    As the Makefile does, uv is installed with pip into ``$PYTHON`` (python3) when none of those has it.
    """
    base = os.environ.get("PYTHON", "python3")
    candidates = [[sys.executable, "-m", "uv"]]
    if shutil.which("uv"):
        candidates.append([shutil.which("uv")])
    candidates.append([base, "-m", "uv"])
    for command in candidates:
        if _works(command):
            return command
    installed = subprocess.run([base, "-m", "pip", "install", "--quiet", "uv"], capture_output=True, text=True)
    if installed.returncode == 0 and _works([base, "-m", "uv"]):
        return [base, "-m", "uv"]
    raise ReferenceUnavailable(
        f"uv is needed to build the reference environment {VENV.name} and none was found "
        f"({sys.executable} -m uv, uv on PATH, {base} -m uv), and `{base} -m pip install uv` failed: "
        f"{installed.stderr.strip()[-400:]}\nInstall uv (python3 -m pip install uv) and run the tests again.")


def _wanted_stamp() -> str:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    return json.dumps({"lock_sha256": digest, "python": sys.version.split()[0]}, sort_keys=True)


def _current() -> bool:
    python = VENV / "bin" / "python"
    return python.exists() and STAMP.exists() and STAMP.read_text(encoding="utf-8") == _wanted_stamp()


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ReferenceUnavailable(f"{what} took longer than {BUILD_TIMEOUT} s. {_by_hand()}") from None
    if done.returncode != 0:
        raise ReferenceUnavailable(
            f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-1200:]}\n"
            f"It needs the package index or a uv cache holding every package of {LOCK.name}. {_by_hand()}")


def reference_python() -> Path:
    """The reference venv's interpreter, building or refreshing the venv first when its stamp is stale."""
    if not LOCK.exists():
        raise ReferenceUnavailable(f"{LOCK} is missing: run `make lock` to compile it from requirements-reference.txt")
    with open(GUARD, "a+") as guard:
        started = time.monotonic()
        fcntl.flock(guard, fcntl.LOCK_EX)  # released when the file is closed, even if this process dies
        waited = time.monotonic() - started
        if _current():
            LAST_BUILD.update(state="reused", seconds=0.0, waited=round(waited, 1))
            return VENV / "bin" / "python"
        uv = uv_command()
        started = time.monotonic()
        STAMP.unlink(missing_ok=True)
        _run([*uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(VENV)],
             f"Creating {VENV.name} with uv")
        _run([*uv, "pip", "sync", "--quiet", "--python", str(VENV / "bin" / "python"), str(LOCK)],
             f"Installing {LOCK.name} into {VENV.name} with uv")
        STAMP.write_text(_wanted_stamp(), encoding="utf-8")
        LAST_BUILD.update(state="built", seconds=round(time.monotonic() - started, 1), waited=round(waited, 1))
        return VENV / "bin" / "python"


def run_reference(args: list[str], *, timeout: float = 240) -> subprocess.CompletedProcess:
    """``reference_extract.py args`` run by the reference interpreter, isolated from this environment."""
    python = reference_python()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(python), "-I", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
