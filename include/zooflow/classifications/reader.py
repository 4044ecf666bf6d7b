"""Reading the store: one row per classification, for the AL round's labels.

A workflow's classifications can sit in two stores — the all-workflows one and the workflow's own —
each complete up to its own ``last_id``; the reader joins them and keeps each id once. Classifications
reconcile found missing from the export (incomplete ones) are left out unless asked for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from zooflow.classifications.records import COLUMNS
from zooflow.classifications.store import ClassificationStore, read_excluded
from zooflow.paths import DataRoot


def scope_stores(root: DataRoot, project: str, workflow_id: int | None) -> list[ClassificationStore]:
    """The stores holding a scope's classifications: the project's, and the workflow's own when one is named."""
    stores = [ClassificationStore.at(root, project)]
    if workflow_id is not None:
        stores.append(ClassificationStore.at(root, project, workflow_id))
    return stores


def read_table(root: DataRoot, project: str, workflow_id: int | None = None, *, columns: list[str] | None = None,
               include_excluded: bool = False) -> pa.Table:
    """The scope's classifications as a pyarrow table in id order, each id once."""
    wanted = list(columns or COLUMNS)
    needed = list(dict.fromkeys(["classification_id", "workflow_id", *wanted]))
    tables = [store.read_table(needed) for store in scope_stores(root, project, workflow_id)]
    table = pa.concat_tables(tables)
    if workflow_id is not None:
        table = table.filter(pc.equal(table.column("workflow_id"), int(workflow_id)))
    if not include_excluded and (excluded := read_excluded(root, project)["ids"]):
        table = table.filter(pc.invert(pc.is_in(table.column("classification_id"), pa.array(excluded, pa.int64()))))
    table = table.sort_by("classification_id")
    ids = table.column("classification_id").to_numpy()
    if len(ids) > 1:
        table = table.filter(pa.array(np.concatenate(([True], ids[1:] != ids[:-1]))))
    return table.select(wanted)


def read_classifications(root: DataRoot | str | None, project: str, workflow_id: int | None = None, *,
                         columns: list[str] | None = None, include_excluded: bool = False) -> pd.DataFrame:
    """The classifications stored for ``project`` (one workflow's, when ``workflow_id`` is given) as a
    DataFrame with the export's column names (:mod:`.records` says which), one row per classification id,
    in id order. Ids are nullable integers, ``created_at`` a UTC timestamp, JSON columns text."""
    root = root if isinstance(root, DataRoot) else DataRoot(root)
    table = read_table(root, project, workflow_id, columns=columns, include_excluded=include_excluded)
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
