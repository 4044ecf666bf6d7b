"""The store's files on their own: what a killed append leaves behind, the exactly-once guard, merging
small parts, the lock, and a store that belongs to another project."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest

from zooflow.classifications.records import store_row
from zooflow.classifications.store import SMALL_PARTS_PER_DATE, STATE_FILE, ClassificationStore
from zooflow.errors import ConfigurationError

PROJECT_ID = 42
START = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def rows(first: int, n: int, *, hours_apart: float = 0.01) -> list[dict]:
    return [store_row({"id": str(i), "created_at": (START + timedelta(hours=(i - first) * hours_apart)).isoformat(),
                       "metadata": {"workflow_version": "1.1"}, "annotations": [{"task": "T0", "value": 0}],
                       "links": {"workflow": "7", "user": None, "subjects": [str(i)]}})
            for i in range(first, first + n)]


@pytest.fixture()
def store(tmp_path) -> ClassificationStore:
    return ClassificationStore(tmp_path / "classifications" / "project")


def files(store: ClassificationStore) -> set[str]:
    return {p.relative_to(store.folder).as_posix() for p in store.folder.rglob("*") if p.is_file()}


def test_what_a_killed_append_left_is_removed_and_each_id_is_stored_once(store) -> None:
    with store.appending(PROJECT_ID) as appender:
        appender.append(rows(1, 5), 5)
    committed = files(store)
    (part,) = [p for p in store.state().parts]
    # A pull killed after writing its next part but before swapping state.json, and one killed inside a write:
    shutil.copy(store.folder / part.path, store.folder / "created_date=2026-12-01/part-000000000006-000000000009.parquet")
    (store.folder / "created_date=2026-12-02").mkdir()
    (store.folder / "created_date=2026-12-02/.part-000000000010-000000000010.parquet.x1y2.tmp").write_bytes(b"half")
    (store.folder / f".{STATE_FILE}.z9.tmp").write_text("{")
    assert store.ids().tolist() == [1, 2, 3, 4, 5]  # readers see only what state.json lists

    with store.appending(PROJECT_ID) as appender:
        assert files(store) == committed
        appender.append(rows(6, 4), 9)
    assert store.ids().tolist() == list(range(1, 10))
    assert store.state().total == 9


def test_an_append_that_would_store_an_id_twice_is_refused(store) -> None:
    with store.appending(PROJECT_ID) as appender:
        appender.append(rows(1, 3), 3)
        with pytest.raises(ValueError, match="would hold an id twice"):
            appender.append(rows(3, 2), 4)
    assert store.ids().tolist() == [1, 2, 3]


def test_ids_left_out_still_move_the_resume_point(store) -> None:
    with store.appending(PROJECT_ID) as appender:
        assert appender.append([], 12) == 0
    assert (store.state().last_id, store.state().total, store.state().parts) == (12, 0, ())


def test_many_small_appends_to_one_date_are_merged_into_one_part(store) -> None:
    with store.appending(PROJECT_ID) as appender:
        for batch in range(SMALL_PARTS_PER_DATE + 1):
            appender.append(rows(batch * 3 + 1, 3), batch * 3 + 3)
    (part,) = store.state().parts
    assert (part.rows, part.min_id, part.max_id) == (27, 1, 27)
    assert files(store) == {STATE_FILE, ".lock", part.path}
    assert store.ids().tolist() == list(range(1, 28))


def test_rows_of_one_batch_go_to_their_own_dates(store) -> None:
    with store.appending(PROJECT_ID) as appender:
        assert appender.append(rows(1, 4, hours_apart=10), 4) == 2  # 10:00, 20:00 on 1 December; then 2 December
    assert sorted((p.date, p.rows) for p in store.state().parts) == [("2026-12-01", 2), ("2026-12-02", 2)]


def test_two_pulls_of_one_store_cannot_write_at_once(store) -> None:
    with store.appending(PROJECT_ID):
        with pytest.raises(ConfigurationError, match="another pull is writing"):
            with store.appending(PROJECT_ID):
                pass


def test_a_store_of_another_project_is_refused(store) -> None:
    with store.appending(PROJECT_ID) as appender:
        appender.append(rows(1, 1), 1)
    with pytest.raises(ConfigurationError, match="holds project 42's classifications, not project 43's"):
        with store.appending(43):
            pass


def test_a_damaged_state_file_says_what_to_do(store) -> None:
    store.folder.mkdir(parents=True)
    (store.folder / STATE_FILE).write_text("{not json")
    with pytest.raises(ConfigurationError, match="move .* aside and pull again"):
        store.state()
