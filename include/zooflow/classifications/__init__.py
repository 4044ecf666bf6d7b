"""The incremental classification store: classifications pulled from Panoptes as they arrive.

A classification export is built at most once a day; ``GET /classifications/project?last_id=`` serves
the classifications made since a given id at any time (owners and collaborators). This package keeps
what that endpoint returns under the data root, so labels can be read minutes after volunteers give
them, and checks it against the daily export, which stays the archive.

- :mod:`.records` — one API record as one store row (the export's column names), and what marks a
  record incomplete.
- :mod:`.store` — the Parquet parts of one scope (the whole project, or one workflow) and the
  ``state.json`` that commits them: the resume point, exactly once.
- :mod:`.pull` — ``pull_classifications``: page by page from the last stored id, into the store.
- :mod:`.reconcile` — ``reconcile_export``: ids the export has and the store lacks, and the reverse.
- :mod:`.reader` — ``read_classifications``: one row per classification, for the next AL round.
- :mod:`.cli` — ``zooflow classifications pull|reconcile``.

Nothing here is imported by this file, so ``zooflow --help`` does not load pyarrow.
"""
