"""The pool: every item the learner may ask volunteers about, addressed by its id.

The founding scripts addressed items by row position and deleted queried rows from the arrays, so
after the first query every later index pointed at a different item. Here an item is only ever
named by the value in its id column (the ``#pool_id`` uploaded with its subject), and
``Pool.index_of`` turns ids into rows of this file as loaded, so nothing drifts between rounds,
across runs, or when the file is re-sorted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing

SUFFIXES = (".csv", ".csv.gz", ".parquet")


@dataclass(frozen=True, eq=False)
class Pool:
    """Feature rows keyed by pool id, and the labels already known for some of them."""

    ids: np.ndarray  # str, one per row, unique
    X: np.ndarray  # float64, rows x features
    feature_names: tuple[str, ...]
    known: dict[str, str] = field(repr=False)  # pool id -> label given in the file
    path: Path
    id_column: str
    label_column: str | None

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, pool_id: object) -> bool:
        return str(pool_id) in self._rows

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {pool_id: row for row, pool_id in enumerate(self.ids)}

    def index_of(self, pool_ids: Iterable[object]) -> np.ndarray:
        """Rows of the given ids, in the order given; an id not in the pool is an error."""
        wanted = [str(pool_id) for pool_id in pool_ids]
        missing = [pool_id for pool_id in wanted if pool_id not in self._rows]
        if missing:
            raise ConfigurationError(
                f"{len(missing)} pool id(s) are not in {self.path} (column {self.id_column!r}), e.g. "
                f"{listing(missing, quote=True)}; use the pool file the ids were uploaded from")
        return np.fromiter((self._rows[pool_id] for pool_id in wanted), dtype=np.int64, count=len(wanted))


def load_pool(
    path: str | os.PathLike[str],
    *,
    id_column: str = "id",
    label_column: str | None = None,
    feature_columns: Iterable[str] | None = None,
) -> Pool:
    """Read a pool from CSV (optionally gzipped) or Parquet.

    Features are ``feature_columns``, or else every numeric column but the id and label columns
    (text columns such as file names are left out). An empty label cell means "not known yet".
    """
    source = Path(path)
    frame = read_table(source, text_columns=(id_column, label_column))
    return pool_from_frame(frame, source, id_column=id_column, label_column=label_column,
                           feature_columns=feature_columns)


def read_table(source: Path, *, text_columns: Iterable[str | None] = ()):
    """A pool file as a DataFrame; ``text_columns`` of a CSV are read as written ("NA" and "None"
    can be class names), so only feature cells can be missing."""
    import pandas as pd  # here, not at the top: importing zooflow.al stays cheap for the DAG parser

    if not source.is_file():
        raise ConfigurationError(f"pool file {source} does not exist; check the path (a CSV or Parquet file)")
    name = source.name.lower()
    if name.endswith(".parquet"):
        frame = pd.read_parquet(source)
    elif name.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(source, converters={column: str for column in text_columns if column})
    else:
        raise ConfigurationError(f"pool file {source} is not {', '.join(SUFFIXES)}; convert it to CSV or Parquet")
    frame.columns = [str(column) for column in frame.columns]
    return frame


def pool_from_frame(frame, source: Path, *, id_column: str = "id", label_column: str | None = None,
                    feature_columns: Iterable[str] | None = None) -> Pool:
    """Check a pool table and turn it into a ``Pool``; ``source`` is named in errors and kept as ``path``."""
    if id_column not in frame.columns:
        raise ConfigurationError(
            f"pool file {source} has no id column {id_column!r} (columns: {listing(frame.columns, quote=True)}); "
            f"name the right one with id_column")
    if label_column and label_column not in frame.columns:
        raise ConfigurationError(
            f"pool file {source} has no label column {label_column!r}; name the right one or leave label_column out")
    if frame.empty:
        raise ConfigurationError(f"pool file {source} has no rows; the pool needs at least one item")
    ids = _ids(frame[id_column], source, id_column)
    names = _feature_names(frame, source, id_column, label_column, feature_columns)
    X = _features(frame[names], source)
    known: dict[str, str] = {}
    if label_column:
        for pool_id, value in zip(ids, frame[label_column]):
            label = cell_text(value)
            if label is not None:
                known[pool_id] = label
    return Pool(ids=ids, X=X, feature_names=tuple(names), known=known, path=source,
                id_column=id_column, label_column=label_column)


def cell_text(value: object) -> str | None:
    """An id or label as text, or None when empty; ``3.0`` (a number column with gaps) becomes ``"3"``.

    Ids and labels are compared as text everywhere (pool file, subject metadata, consensus), so a
    pool id uploaded as the number 12 still finds row ``"12"``."""
    if value is None:
        return None
    if isinstance(value, float):
        if np.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def _ids(column, source: Path, id_column: str) -> np.ndarray:
    ids = [cell_text(value) for value in column]
    empty = sum(pool_id is None for pool_id in ids)
    if empty:
        raise ConfigurationError(f"pool file {source}: {empty} row(s) have an empty {id_column!r}; give every item an id")
    seen: set[str] = set()
    duplicates = sorted({pool_id for pool_id in ids if pool_id in seen or seen.add(pool_id)})
    if duplicates:
        raise ConfigurationError(
            f"pool file {source}: {len(duplicates)} id(s) appear more than once in {id_column!r}, e.g. "
            f"{listing(duplicates, quote=True)}; ids must be unique (they name subjects across rounds)")
    return np.array(ids, dtype=str)


def _feature_names(frame, source: Path, id_column: str, label_column: str | None,
                   feature_columns: Iterable[str] | None) -> list[str]:
    import pandas as pd

    reserved = {id_column, label_column}
    if feature_columns is None:
        names = [c for c in frame.columns if c not in reserved and pd.api.types.is_numeric_dtype(frame[c])]
        if not names:
            raise ConfigurationError(
                f"pool file {source} has no numeric feature columns besides {id_column!r}"
                f"{f' and {label_column!r}' if label_column else ''}; add features or name them with feature_columns")
        return names
    names = list(dict.fromkeys(feature_columns))
    if not names:
        raise ConfigurationError(f"feature_columns for {source} is empty; name at least one column or leave it out")
    absent = [c for c in names if c not in frame.columns]
    if absent:
        raise ConfigurationError(f"pool file {source} has no feature column(s) {listing(absent, quote=True)}; fix feature_columns")
    clash = [c for c in names if c in reserved]
    if clash:
        raise ConfigurationError(f"{listing(clash, quote=True)} cannot be both a feature and the id or label column")
    text = [c for c in names if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise ConfigurationError(
            f"pool file {source}: feature column(s) {listing(text, quote=True)} are not numeric; "
            f"convert them to numbers or leave them out of feature_columns")
    return names


def _features(features, source: Path) -> np.ndarray:
    X = features.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(X)
    if bad.any():
        columns = [name for name, count in zip(features.columns, bad.sum(axis=0)) if count]
        raise ConfigurationError(
            f"pool file {source}: {int(bad.any(axis=1).sum())} row(s) have empty, NaN or infinite features in "
            f"{listing(columns, quote=True)}; fill or drop those rows, or leave the columns out with feature_columns")
    return X
