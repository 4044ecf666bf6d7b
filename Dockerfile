# zooflow's Airflow image: the official Airflow image, every Python package at the version
# requirements.lock pins, the zooflow package (which also registers the Zooniverse provider) and the
# DAGs. docker-compose.yaml builds it for every Airflow service and for the sandbox.
#
# The tag's Airflow version must equal the lock's apache-airflow pin, and its Python the version the
# lock is compiled for (`make lock`); tests/deploy/test_compose.py checks both.
FROM apache/airflow:3.3.2-python3.11

# The base image installs into the airflow user's environment (VIRTUAL_ENV=/home/airflow/.local),
# which uv and pip use as they are. The lock pins every package, so it alone decides each version;
# nothing is installed at container start (no _PIP_ADDITIONAL_REQUIREMENTS).
COPY --chown=airflow:0 requirements.lock /opt/zooflow/requirements.lock
RUN uv pip install --no-cache --requirement /opt/zooflow/requirements.lock

# zooflow itself, as a regular (not editable) install. --no-deps: its dependencies came from the
# lock above; --no-build-isolation: build with the lock's setuptools rather than fetch another.
# Reading celery.env proves the package data made it into the installed package.
COPY --chown=airflow:0 pyproject.toml README.md /tmp/zooflow-src/
COPY --chown=airflow:0 include/ /tmp/zooflow-src/include/
RUN uv pip install --no-cache --no-deps --no-build-isolation /tmp/zooflow-src \
    && rm -rf /tmp/zooflow-src \
    && python -c "from zooflow.deploy.environment import shared_env; shared_env()"

# The DAGs and plugins, so the image runs without the source tree; docker-compose.yaml mounts
# the working copies over them for development. `plugin[s]` rather than `plugins/`: git does not
# keep an empty directory, and a wildcard that matches nothing is not an error (BuildKit).
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugin[s] /opt/airflow/plugins/

# Mount points of the named volumes for the data root and the sandbox. A new named volume takes
# the owner of the directory it is mounted on, so the airflow user can write to it from the start.
USER root
RUN mkdir -p /opt/zooflow/data /opt/zooflow/sandbox \
    && chown -R airflow:0 /opt/zooflow \
    && chmod -R g+rwX /opt/zooflow
USER airflow

ENV ZOOFLOW_DATA_ROOT=/opt/zooflow/data
