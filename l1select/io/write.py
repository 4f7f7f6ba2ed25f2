"""Writing tables: record batches to CSV (a file or stdout) or Parquet, for ``transform`` and
``predict``; every file through the one atomic writer (:mod:`l1select.files`).
"""

from __future__ import annotations

import csv
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from l1select.errors import ConfigError, InputError
from l1select.files import PendingFile, check_folder
from l1select.io.sources import PARQUET_SUFFIXES


class TableWriter:
    """Writes record batches to CSV (a file or stdout) or Parquet, chosen by the file name.

    A file is written atomically (:class:`l1select.files.PendingFile`, as every output file):
    a failed or interrupted run never leaves a half-written file; :meth:`abort` removes it.
    CSV cells are written with Python's csv module: strings as they are (quoted only when they
    must be), floats at full precision.
    """

    def __init__(self, output: str | None):
        self.output = None if output in (None, "-") else output
        self.format = "csv"
        if self.output is not None:
            lower = self.output.lower()
            if lower.endswith(PARQUET_SUFFIXES):
                self.format = "parquet"
            elif not lower.endswith((".csv", ".tsv", ".txt")):
                raise ConfigError(f"--output {self.output}: give a .csv, .tsv or .parquet name")
            check_folder(self.output)
        self._file: PendingFile | None = None
        self._fh = None
        self._csv = None
        self._pq = None
        self.rows = 0

    def _open(self, schema: pa.Schema) -> None:
        if self.output is not None:
            self._file = PendingFile(self.output)
        if self.format == "parquet":
            self._pq = pq.ParquetWriter(self._file.tmp, schema)
            return
        if self._file is None:
            self._fh = sys.stdout
        else:
            self._fh = open(self._file.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        delim = "\t" if (self.output or "").lower().endswith(".tsv") else ","
        self._delim = delim
        self._csv = csv.writer(self._fh, delimiter=delim, lineterminator="\n")
        self._csv.writerow(schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._csv is None and self._pq is None:
            self._open(batch.schema)
        self.rows += batch.num_rows
        if self._pq is not None:
            self._pq.write_batch(batch)
            return
        cols = [_cells(c) for c in batch.columns]
        rows = zip(*cols, strict=True)
        if not any(_holds_cr(c) for c in batch.columns):
            self._csv.writerows(rows)
            return
        # Python 3.11's csv writer leaves a cell with a CR but no LF unquoted, and a reader
        # would end the record there: such rows are written here.
        for row in rows:
            if any(isinstance(v, str) and "\r" in v for v in row):
                self._fh.write(self._delim.join(_quoted(v, self._delim) for v in row) + "\n")
            else:
                self._csv.writerow(row)

    def close(self, schema: pa.Schema | None = None) -> None:
        """Finish the output (an empty one gets its header), and move it into place."""
        if self._csv is None and self._pq is None and schema is not None:
            self._open(schema)
        if self._pq is not None:
            self._pq.close()
        elif self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
        elif self._fh is sys.stdout:
            sys.stdout.flush()
        if self._file is not None:
            self._file.commit()
            self._file = None

    def restart(self) -> None:
        """Throw away what was written (a column changed type mid-file): start again."""
        opened = self._csv is not None or self._pq is not None
        if opened and self.output is None:
            raise InputError("a column changed type after rows went to stdout; write to a "
                             "file with --output, or fix the column")
        self.abort()
        self._fh = self._csv = self._pq = None
        self.rows = 0

    def abort(self) -> None:
        try:
            if self._pq is not None:
                self._pq.close()
            if self._fh is not None and self._fh is not sys.stdout:
                self._fh.close()
        finally:
            if self._file is not None:
                self._file.discard()
            self._file = None


def _holds_cr(column: pa.Array) -> bool:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    import pyarrow.compute as pc

    return bool(pc.any(pc.match_substring(column, "\r")).as_py())


def _quoted(value, delim: str) -> str:
    """A CSV cell as the csv module writes it, quoted also when it holds a CR."""
    if value is None:
        return ""
    text = str(value)
    if any(ch in text for ch in (delim, '"', "\r", "\n")):
        return '"' + text.replace('"', '""') + '"'
    return text


def _cells(column: pa.Array) -> list:
    """A column as CSV cells: None for missing, repr for floats (shortest exact form)."""
    values = column.to_pylist()
    if pa.types.is_floating(column.type):
        return [None if v is None else ("" if v != v else repr(v)) for v in values]
    if pa.types.is_boolean(column.type):
        return [None if v is None else ("true" if v else "false") for v in values]
    return values
