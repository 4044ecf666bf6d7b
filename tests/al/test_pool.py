"""Loading a pool: ids by value, default features, known labels, and errors that say what to fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from al_support import blobs

from zooflow.al.pool import load_pool
from zooflow.errors import ConfigurationError


def write(frame: pd.DataFrame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["pool.csv", "pool.csv.gz", "pool.parquet"])
def test_ids_features_and_known_labels(tmp_path, name):
    frame = blobs(n_per_class=4)
    frame.loc[[0, 1], "truth"] = ""
    frame.loc[2, "truth"] = "None"  # a class name, not a missing value
    pool = load_pool(write(frame, tmp_path / name), label_column="truth")
    assert pool.feature_names == ("f1", "f2", "f3")  # not id, label or the text column
    assert pool.ids.tolist() == frame["id"].tolist() and pool.X.dtype == np.float64
    np.testing.assert_allclose(pool.X, frame[["f1", "f2", "f3"]].to_numpy())
    assert len(pool.known) == len(frame) - 2 and pool.known[frame.id[2]] == "None"
    assert frame.id[0] not in pool.known
    assert (pool.id_column, pool.label_column, pool.path.name) == ("id", "truth", name)
    assert len(pool) == 12 and "p000" in pool and "nope" not in pool


def test_rows_are_found_by_id_value_so_nothing_drifts(tmp_path):
    frame = blobs(n_per_class=5)
    pool = load_pool(write(frame, tmp_path / "a.csv"))
    shuffled = load_pool(write(frame.iloc[::-1], tmp_path / "b.csv"))
    wanted = ["p007", "p002", "p011"]
    np.testing.assert_array_equal(pool.X[pool.index_of(wanted)], shuffled.X[shuffled.index_of(wanted)])
    assert pool.index_of(wanted).tolist() == [frame.index[frame.id == w][0] for w in wanted]
    with pytest.raises(ConfigurationError, match=r"1 pool id\(s\) are not in .*'p999'"):
        pool.index_of(["p001", "p999"])


def test_numeric_ids_and_numeric_labels_become_text(tmp_path):
    frame = pd.DataFrame({"id": [10, 11, 12], "x": [0.1, 0.2, 0.3], "label": [3.0, np.nan, 1.0]})
    pool = load_pool(write(frame, tmp_path / "p.parquet"), label_column="label")
    assert pool.ids.tolist() == ["10", "11", "12"] and pool.feature_names == ("x",)
    assert pool.known == {"10": "3", "12": "1"}
    assert pool.index_of([12]).tolist() == [2]


def test_named_feature_columns(tmp_path):
    path = write(blobs(n_per_class=3), tmp_path / "p.csv")
    pool = load_pool(path, feature_columns=["f3", "f1"])
    assert pool.feature_names == ("f3", "f1") and pool.X.shape == (9, 2)


@pytest.mark.parametrize("change, options, message", [
    (lambda f: f.rename(columns={"id": "key"}), {}, r"no id column 'id'.*id_column"),
    (lambda f: f.assign(id=["p000"] * len(f)), {}, r"1 id\(s\) appear more than once.*'p000'.*unique"),
    (lambda f: f.assign(id=[""] + list(f.id[1:])), {}, r"1 row\(s\) have an empty 'id'"),
    (lambda f: f[["id", "stream", "truth"]], {"label_column": "truth"}, r"no numeric feature columns.*feature_columns"),
    (lambda f: f, {"feature_columns": ["f1", "stream"]}, r"'stream'.* not numeric.*convert"),
    (lambda f: f, {"feature_columns": ["f1", "f9"]}, r"no feature column\(s\) 'f9'"),
    (lambda f: f, {"feature_columns": ["f1", "id"]}, r"'id' cannot be both"),
    (lambda f: f.assign(f2=[np.nan] + list(f.f2[1:])), {}, r"1 row\(s\) have empty, NaN or infinite features in 'f2'.*fill or drop"),
    (lambda f: f.assign(f3=[np.inf] + list(f.f3[1:])), {}, r"infinite features in 'f3'"),
    (lambda f: f, {"label_column": "class"}, r"no label column 'class'"),
    (lambda f: f.iloc[:0], {}, r"has no rows"),
])
def test_errors_name_the_problem_and_the_fix(tmp_path, change, options, message):
    path = write(change(blobs(n_per_class=3)), tmp_path / "pool.csv")
    with pytest.raises(ConfigurationError, match=message):
        load_pool(path, **options)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_pool(tmp_path / "nope.csv")
    other = tmp_path / "pool.xlsx"
    other.write_bytes(b"x")
    with pytest.raises(ConfigurationError, match="convert it to CSV or Parquet"):
        load_pool(other)
