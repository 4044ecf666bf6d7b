"""A flattened table written as its rows come, in memory that does not grow with the export.

A flattened export's columns are known only at its end: each subject's metadata keys become
columns, and a task type may appear on the last row. So rows are kept a chunk at a time and spilled
to Parquet parts in a hidden folder beside the output; at the end each part is read back, given the
union of the columns (in the base order, then the rest sorted) and the types every part agrees on,
and appended to one CSV and one Parquet file (a row group per part), each replacing its output
atomically. A column whose parts disagree (numbers in one, text in another) becomes text. The
tables of one flatten are all staged before any replaces its output, so a flatten that fails
(a damaged export, a full disk) leaves the last complete tables as they were.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

CHUNK_ROWS = 20_000
CHUNK_TEXT_BYTES = 32 << 20  # text held in the ``sized_columns`` of one chunk (long freehand lines)


def table_base(out_base: Path) -> Path:
    """``out_base`` without a ``.csv`` or ``.parquet`` ending; any other dot is part of the name,
    so ``flat/run.2024-06`` stays whole."""
    return out_base.with_suffix("") if out_base.suffix in (".csv", ".parquet") else out_base


def table_file(out_base: Path, fmt: str) -> Path:
    """The file of ``out_base``'s table in format ``fmt``."""
    base = table_base(out_base)
    return base.with_name(f"{base.name}.{fmt}")


def _final_type(types: list[Any]) -> Any:
    import pyarrow as pa

    seen = {t for t in types if not pa.types.is_null(t)}
    if not seen:
        return pa.string()
    if all(pa.types.is_integer(t) for t in seen):
        return pa.int64()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in seen):
        return pa.float64()
    if seen == {pa.bool_()}:
        return pa.bool_()
    return pa.string()


def _pandas_type(column: Any) -> str:
    """A column of Python objects as flags when it holds only True, False and nulls, else as text."""
    present = column.dropna()
    return "boolean" if len(present) and all(isinstance(v, bool) for v in present) else "string"


class FlatTable:
    """Rows in, ``<out_base><suffix>.csv`` and/or ``.parquet`` out.

    :param base_columns: the columns that come first, in this order, present even when empty.
    :param integer_columns: counts kept as integers (pandas would make them floats beside a null).
    :param float_columns: numbers that stay numbers even when a part (or the whole table) has none.
    :param sized_columns: text columns whose length varies by orders (a freehand line's points): a
        chunk is also spilled once they hold ``chunk_text_bytes``, so memory does not grow with them.
    """

    def __init__(self, out_path: Path, base_columns: Iterable[str], *, formats: tuple[str, ...],
                 integer_columns: Iterable[str] = (), float_columns: Iterable[str] = (),
                 sized_columns: Iterable[str] = (), chunk_rows: int = CHUNK_ROWS,
                 chunk_text_bytes: int = CHUNK_TEXT_BYTES) -> None:
        self.out_path = out_path  # each format replaces its suffix
        self.base_columns = list(base_columns)
        self.formats = formats
        self.integer_columns = set(integer_columns)
        self.float_columns = set(float_columns)
        self.chunk_rows = chunk_rows
        self.sized_columns = tuple(sized_columns)
        self.chunk_text_bytes = chunk_text_bytes
        self._text_bytes = 0
        self.rows_written = 0
        self._rows: list[dict[str, Any]] = []
        self._parts: list[Path] = []
        self._columns: dict[str, list[Any]] = {name: [] for name in self.base_columns}
        self._spill_dir: Path | None = None

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        start = len(self._rows)
        self._rows.extend(rows)
        for row in self._rows[start:] if self.sized_columns else ():
            self._text_bytes += sum(len(row.get(name) or "") for name in self.sized_columns)
        if len(self._rows) >= self.chunk_rows or self._text_bytes >= self.chunk_text_bytes:
            self._spill()

    def _spill(self) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = pd.DataFrame(self._rows)
        self._rows, self._text_bytes = [], 0
        for column in self.integer_columns & set(frame.columns):
            numbers = pd.to_numeric(frame[column], errors="coerce")
            if (numbers.dropna() % 1 == 0).all():  # counts, and viewports that are whole pixels
                frame[column] = numbers.astype("Int64")
        typed = {c: _pandas_type(frame[c]) for c in frame.columns if frame[c].dtype == object or frame[c].isna().all()}
        table = pa.Table.from_pandas(frame.astype(typed), preserve_index=False)
        for name, kind in zip(table.column_names, table.schema.types):
            self._columns.setdefault(name, []).append(kind)
        if self._spill_dir is None:
            self.out_path.parent.mkdir(parents=True, exist_ok=True)  # a new partition's folder
            self._spill_dir = Path(tempfile.mkdtemp(prefix=f".{self.out_path.name}.", dir=self.out_path.parent))
        part = self._spill_dir / f"part-{len(self._parts):05d}.parquet"
        pq.write_table(table, part)
        self._parts.append(part)
        self.rows_written += len(frame)

    def stage(self, prepare: Callable[[Any], Any] | None = None) -> dict[Path, Path]:
        """Write the outputs to temporary files beside them: ``{output: temporary file}``, for
        :func:`publish` to put in place once every table of a flatten is staged.

        :param prepare: applied to each part's frame as it is read back (late fixes, such as typing
            a task that only later rows showed the type of).
        """
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        if self._rows or not self._parts:
            self._spill()
        columns = self.base_columns + sorted(c for c in self._columns if c not in self.base_columns)
        schema = pa.schema([(c, pa.float64() if c in self.float_columns else _final_type(self._columns[c]))
                            for c in columns])
        targets = {fmt: table_file(self.out_path, fmt) for fmt in ("csv", "parquet") if fmt in self.formats}
        temps = {fmt: Path(tempfile.mkstemp(prefix=f".{t.name}.", suffix=".tmp", dir=t.parent)[1])
                 for fmt, t in targets.items()}
        try:
            writer = pq.ParquetWriter(temps["parquet"], schema) if "parquet" in temps else None
            with open(temps.get("csv", os.devnull), "w", encoding="utf-8", newline="") as text:
                for number, part in enumerate(self._parts):
                    frame = pd.read_parquet(part).reindex(columns=columns)
                    table = _cast(prepare(frame) if prepare else frame, schema)
                    if writer is not None:
                        writer.write_table(table)
                    if "csv" in temps:
                        mapper = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}.get
                        table.to_pandas(types_mapper=mapper).to_csv(text, index=False, header=number == 0,
                                                                    lineterminator="\n")
            if writer is not None:
                writer.close()
            for temp in temps.values():
                with open(temp, "rb+") as written:
                    os.fsync(written.fileno())
        except BaseException:
            unstage(dict(zip(targets.values(), temps.values())))
            raise
        finally:
            self.discard()
        return {targets[fmt]: temps[fmt] for fmt in targets}

    def discard(self) -> None:
        """Remove the spilled parts (after the outputs are written, or when flattening failed)."""
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir = None
        self._parts = []


def _cast(frame: Any, schema: Any) -> Any:
    """A part as an Arrow table of the final schema (a column its parts disagreed on, as text)."""
    import pyarrow as pa

    arrays = []
    for field in schema:
        column = frame[field.name]
        array = pa.nulls(len(column), field.type) if column.isna().all() else pa.Array.from_pandas(column)
        arrays.append(array if array.type == field.type else array.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def publish(staged: dict[Path, Path]) -> list[str]:
    """Each staged table in place of its output (one rename each); returns the outputs."""
    for target, temp in staged.items():
        os.replace(temp, target)
    return [str(target) for target in staged]


def unstage(staged: dict[Path, Path]) -> None:
    """Remove staged files that were not published."""
    for temp in staged.values():
        temp.unlink(missing_ok=True)
