# The two commands a new user needs:  make demo  and  make test.
# Each builds .venv from requirements.lock on first use (installing uv with pip when missing)
# and does nothing extra once the environment matches the lock. uv run as `python -m uv` installs
# into the interpreter that runs it unless told otherwise, hence --python everywhere.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zooflow-installed
UV := $(PYTHON) -m uv

.PHONY: demo test test-distributed test-faults soak up down lock clean-demo

$(STAMP): requirements.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@[ -x $(BIN)/python ] || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

demo: $(STAMP)
	$(BIN)/zooflow demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Subsets of `make test`, for when you work on one part.
# Celery workers, Postgres and Redis as processes (Debian's packages are installed when missing).
test-distributed: $(STAMP)
	$(BIN)/python -m pytest -m distributed

# Faults and bad input, ending with a table of what was tried, what the user saw and what was lost.
test-faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults

# 20 cycles of the export and AL DAGs with 5 % of requests failing; prints what was lost (must be nothing).
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --cycles 20 --fault-rate 0.05

# A local Airflow (SQLite) with the sandbox and the connection configured; prints the UI address.
up: $(STAMP)
	$(BIN)/zooflow up

down: $(STAMP)
	$(BIN)/zooflow down

# Regenerate the locks after editing requirements.txt or requirements-reference.txt (the test-only
# reference, panoptes-aggregation, has its own lock and venv: its pins clash with Airflow's).
lock:
	$(UV) pip compile requirements.txt -o requirements.lock --python-version 3.11 --no-header
	$(UV) pip compile requirements-reference.txt -o requirements-reference.lock --python-version 3.11 --no-header

clean-demo:
	rm -rf .demo
