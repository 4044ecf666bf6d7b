"""The local SQLite metadata database that `airflow_env` names: a second writer waits for the lock.

CI once failed `airflow backfill create` with "database is locked" while the scheduler and
dag-processor were writing: Python's sqlite3 gives up after 5 s. The connection string carries a
longer wait, and this checks that SQLAlchemy (the engine Airflow builds from it) honours it.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import sqlalchemy as sa

from zooflow.airflow_env import SQLITE_LOCK_SECONDS, airflow_env

HELD_SECONDS = 6  # longer than sqlite3's default 5 s wait


def test_a_writer_waits_out_another_holding_the_lock_longer_than_five_seconds(tmp_path) -> None:
    env = airflow_env(airflow_home=tmp_path, dags_folder=tmp_path, data_root=tmp_path / "data", base={})
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    database = tmp_path / "airflow.db"
    with sqlite3.connect(database) as setup:
        setup.execute("CREATE TABLE runs (id INTEGER)")
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO runs VALUES (1)")
    release = threading.Timer(HELD_SECONDS, lambda: holder.execute("COMMIT"))
    release.start()
    engine = sa.create_engine(url)
    started = time.monotonic()
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO runs VALUES (2)"))
    finally:
        release.join()
        holder.close()
        engine.dispose()
    waited = time.monotonic() - started
    assert HELD_SECONDS - 1 < waited < SQLITE_LOCK_SECONDS
    with sqlite3.connect(database) as check:
        assert [row[0] for row in check.execute("SELECT id FROM runs ORDER BY id")] == [1, 2]
