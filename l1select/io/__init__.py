"""Read: a source becomes a stream of Arrow record batches of the needed columns (and tables
are written back out for ``transform`` and ``predict``).

A source is a CSV file (delimiter sniffed, ``.tsv``, ``.gz``), a Parquet file, ``-`` for CSV on
stdin, a folder or a glob of such files (read as one table, in sorted file-name order), or a
remote URL (``s3://``, ``gs://``, ``https://``…) read through fsspec.

The parts: :mod:`~l1select.io.sources` (where the bytes are), :mod:`~l1select.io.csv` and
:mod:`~l1select.io.parquet` (one reader per format, each with a partition reader the Dask
engine shares), :mod:`~l1select.io.reader` (the ways in, whatever the format) and
:mod:`~l1select.io.write` (writing tables). The names below are what the rest of l1select uses.
"""

from l1select.io.csv import Retype, lf_splittable, utf8_text
from l1select.io.reader import (
    ReadResult,
    batches,
    estimate_rows,
    open_header,
    read,
    with_retypes,
)
from l1select.io.sources import Header, Scan, Source, detect, is_url
from l1select.io.write import TableWriter

__all__ = [
    "Header", "ReadResult", "Retype", "Scan", "Source", "TableWriter", "batches", "detect",
    "estimate_rows", "is_url", "lf_splittable", "open_header", "read", "utf8_text",
    "with_retypes",
]
