"""Read: a source becomes a stream of Arrow record batches of the needed columns (and tables
are written back out for ``transform`` and ``predict``).

A source is a CSV file (delimiter sniffed, ``.tsv``, ``.gz``), a Parquet file, ``-`` for CSV on
stdin, a folder or a glob of such files (read as one table, in sorted file-name order), or a
remote URL (``s3://``, ``gs://``, ``https://``…) read through fsspec.

The parts: :mod:`~l1select.io.sources` (where the bytes are), :mod:`~l1select.io.csv` and
:mod:`~l1select.io.parquet` (one reader per format, each with a partition reader the Dask
engine shares; :mod:`~l1select.io.pages` decodes the Parquet pages of long row groups),
:mod:`~l1select.io.reader` (the ways in, whatever the format) and :mod:`~l1select.io.write`
(writing tables), :mod:`~l1select.io.result` (reading a result file back). The names below
are what the rest of l1select uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Each public name and the part that defines it. The parts are imported on first use (PEP 562),
# so reading a result file (``plot``) does not import Arrow.
_EXPORTS = {
    "Retype": "csv", "lf_splittable": "csv", "utf8_text": "csv",
    "ReadResult": "reader", "batches": "reader", "estimate_rows": "reader",
    "open_header": "reader", "read": "reader", "with_retypes": "reader",
    "Header": "sources", "Scan": "sources", "Source": "sources", "detect": "sources",
    "is_url": "sources",
    "load_result": "result",
    "TableWriter": "write",
}
_PARTS = ("csv", "parquet", "reader", "result", "sources", "write")

__all__ = [
    "Header", "ReadResult", "Retype", "Scan", "Source", "TableWriter", "batches", "detect",
    "estimate_rows", "is_url", "lf_splittable", "load_result", "open_header", "read",
    "utf8_text", "with_retypes",
]

if TYPE_CHECKING:
    from l1select.io.csv import Retype, lf_splittable, utf8_text
    from l1select.io.reader import (
        ReadResult,
        batches,
        estimate_rows,
        open_header,
        read,
        with_retypes,
    )
    from l1select.io.result import load_result
    from l1select.io.sources import Header, Scan, Source, detect, is_url
    from l1select.io.write import TableWriter


def __getattr__(name: str):
    if name in _PARTS:
        return importlib.import_module(f"l1select.io.{name}")
    part = _EXPORTS.get(name)
    if part is None:
        raise AttributeError(f"module 'l1select.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"l1select.io.{part}"), name)
    globals()[name] = value
    return value
