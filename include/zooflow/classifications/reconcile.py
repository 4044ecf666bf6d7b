"""Checking the store against a classification export: what one has and the other lacks.

The export is the archive: built by Panoptes from its database, completed classifications only. The
store follows ids as they arrive, so the two should hold the same ids over the range both cover —
from the export's first id to the lower of the export's last id and the store's ``last_id``.
Classifications made after the export was built are not compared (``newer_than_export``).

- **In the export, not in the store**: a classification the pull never saw — one saved unfinished and
  completed later (its id was passed while it was incomplete), or one that became visible after a
  higher id was read. Reported; the export holds them.
- **In the store, not in the export**: a classification the export leaves out — an incomplete one,
  which the API serves unmarked (:mod:`.records`). Reported, and with ``exclude`` (the default) written
  to ``excluded.json`` so the reader leaves them out from then on; an id a later export holds is taken
  off that list again.

Only the workflows the export holds are compared (a workflow's export against the project's store
compares that workflow), or the one workflow asked for.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from zooflow.classifications.reader import read_table, scope_stores
from zooflow.classifications.store import read_excluded, write_excluded
from zooflow.errors import ConfigurationError
from zooflow.excerpts import listing
from zooflow.exports.download import latest_download
from zooflow.paths import DataRoot

EXAMPLES = 5
ID_COLUMNS = ("classification_id", "workflow_id")


@dataclass
class ReconcileReport:
    project: str
    workflow_id: int | None
    export: str
    export_classifications: int = 0  # distinct ids in the export, within the scope
    export_unreadable_rows: int = 0
    store_classifications: int = 0
    store_last_id: int = 0
    compared_from: int | None = None  # the id range both cover
    compared_to: int | None = None
    missing_from_store: int = 0
    missing_from_store_examples: list[int] = field(default_factory=list)
    missing_from_export: int = 0
    missing_from_export_examples: list[int] = field(default_factory=list)
    newer_than_export: int = 0  # stored classifications above the export's last id: not compared
    excluded: int = 0  # ids excluded.json leaves out of the store's reads, after this check

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        scope = f"workflow {self.workflow_id}" if self.workflow_id is not None else "all workflows"
        if self.compared_from is None:
            return [f"{self.project} ({scope}): the export {self.export} holds nothing to compare"]
        return [
            f"{self.project} ({scope}): ids {self.compared_from}..{self.compared_to} compared; the export "
            f"{self.export} holds {self.export_classifications}, the store {self.store_classifications} "
            f"(up to id {self.store_last_id})",
            f"in the export, not in the store: {self.missing_from_store}"
            + (f" (e.g. {listing(self.missing_from_store_examples)})" if self.missing_from_store else ""),
            f"in the store, not in the export: {self.missing_from_export}"
            + (f" (e.g. {listing(self.missing_from_export_examples)}; left out when the store is read)"
               if self.missing_from_export else ""),
            f"newer than the export, not compared: {self.newer_than_export}; excluded in all: {self.excluded}",
        ]


def export_classification_ids(path: str | os.PathLike[str]) -> tuple[pa.Table, int]:
    """``classification_id`` and ``workflow_id`` of every row of a classification export (.csv or .csv.gz),
    read in blocks; and how many rows could not be parsed (left out)."""
    unreadable = 0

    def skip(_row: Any) -> str:
        nonlocal unreadable
        unreadable += 1
        return "skip"

    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            reader = pacsv.open_csv(
                stream, parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip),
                convert_options=pacsv.ConvertOptions(include_columns=list(ID_COLUMNS),
                                                     column_types={name: pa.int64() for name in ID_COLUMNS}))
            table = reader.read_all()
    except FileNotFoundError:
        raise ConfigurationError(f"no classification export at {path}") from None
    except (pa.ArrowInvalid, pa.ArrowKeyError, OSError) as exc:
        raise ConfigurationError(f"{path} is not a readable classification export: {exc}") from None
    return table, unreadable


def reconcile_export(root: DataRoot, project: str, *, export: str | os.PathLike[str] | None = None,
                     workflow_id: int | None = None, exclude: bool = True, examples: int = EXAMPLES) -> ReconcileReport:
    """Compare the store with a classification export (default: the project's latest download)."""
    path = Path(export) if export else latest_download(root.exports_dir(project, "classifications"))
    exported, unreadable = export_classification_ids(path)
    if workflow_id is not None:
        exported = exported.filter(pc.equal(exported.column("workflow_id"), int(workflow_id)))
    stored = read_table(root, project, workflow_id, columns=list(ID_COLUMNS), include_excluded=True)
    stored = stored.filter(pc.is_in(stored.column("workflow_id"), pc.unique(exported.column("workflow_id"))))
    in_export = np.unique(exported.column("classification_id").to_numpy())
    in_store = stored.column("classification_id").to_numpy()
    last_id = max(store.state().last_id for store in scope_stores(root, project, workflow_id))
    report = ReconcileReport(project=project, workflow_id=workflow_id, export=str(path),
                             export_classifications=len(in_export), export_unreadable_rows=unreadable,
                             store_classifications=len(in_store), store_last_id=last_id)
    excluded = np.array(read_excluded(root, project)["ids"], dtype=np.int64)
    if len(in_export):
        low, high = int(in_export[0]), int(in_export[-1])
        report.compared_from, report.compared_to = low, min(high, last_id)
        lacking = np.setdiff1d(in_export[in_export <= last_id], in_store, assume_unique=True)
        unexported = np.setdiff1d(in_store[(in_store >= low) & (in_store <= high)], in_export, assume_unique=True)
        report.missing_from_store, report.missing_from_store_examples = len(lacking), [int(i) for i in lacking[:examples]]
        report.missing_from_export, report.missing_from_export_examples = len(unexported), [int(i) for i in unexported[:examples]]
        report.newer_than_export = int((in_store > high).sum())
        if exclude:
            updated = np.union1d(np.setdiff1d(excluded, in_export), unexported)
            if not np.array_equal(updated, np.unique(excluded)):
                write_excluded(root, project, updated, str(path))
            excluded = updated
    else:
        report.newer_than_export = len(in_store)
    report.excluded = len(np.unique(excluded))
    return report
