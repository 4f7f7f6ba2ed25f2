"""Where the bytes are: a path (a file, a folder, a glob, a URL, ``-`` for stdin) becomes a
:class:`Source`, its files in reading order and their format, without reading them; and the
pieces every format shares (column names, opening a file or a URL).

A folder or a glob is read as one table, in sorted file-name order; a remote URL (``s3://``,
``gs://``, ``https://``…) through fsspec.
"""

from __future__ import annotations

import glob as globlib
import os
import re
import sys
from dataclasses import dataclass, field

from l1select.errors import ConfigError, InputError, list_names, quoted

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
UNSUPPORTED = {
    ".xlsx": "Excel workbooks", ".xls": "Excel workbooks", ".json": "JSON files",
    ".jsonl": "JSON lines files", ".feather": "Feather files", ".arrow": "Arrow IPC files",
    ".orc": "ORC files", ".avro": "Avro files", ".zip": "zip archives", ".sav": "SPSS files",
    ".dta": "Stata files",
}
# The optional extra that brings the fsspec filesystem of each URL scheme.
REMOTE_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http",
                 "https": "http", "az": "azure", "abfs": "azure", "abfss": "azure"}
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class Source:
    """Where the data comes from. ``path`` is what the user gave (``-`` for stdin); ``files``
    the files it stands for, in reading order."""

    path: str
    format: str  # "csv" | "parquet"
    delimiter: str = ","
    compression: str | None = None
    files: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    @property
    def is_stdin(self) -> bool:
        return self.path == "-"

    @property
    def decimal_comma(self) -> bool:
        """Numbers in text may use a decimal comma: CSV whose delimiter is not a comma."""
        return self.format == "csv" and self.delimiter != ","

    def with_(self, **kw) -> Source:
        return Source(**{**self.__dict__, **kw})


@dataclass(frozen=True)
class Header:
    """The column names of a source (stripped of surrounding spaces and a byte-order mark;
    blank names become ``unnamed_N``): ``renamed`` maps each name that changed back to what
    the file says, by which a Parquet file's column is read."""

    names: list[str]
    renamed: dict[str, str] = field(default_factory=dict)


@dataclass
class Scan:
    """Filled in while a source is read (:func:`l1select.io.batches`): the hash of the bytes
    read, and the row count."""

    sha256: str | None = None
    n_rows: int = 0


def short_error(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters, for a one-line error."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


# -- where the bytes are -----------------------------------------------------------------------

def is_url(path: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path) is not None and \
        not path.startswith("file://")


def filesystem(path: str):
    """The fsspec filesystem and path for a URL, or a clear error naming the extra to install."""
    scheme = path.split("://", 1)[0].lower()
    extra = REMOTE_EXTRAS.get(scheme, "remote")
    try:
        import fsspec
    except ImportError:
        raise ConfigError(f"Reading {scheme}:// URLs needs fsspec: pip install "
                          f"'l1select[{extra}]'") from None
    try:
        fs, root = fsspec.core.url_to_fs(path)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"Reading {scheme}:// URLs needs the '{extra}' extra: pip install "
                          f"'l1select[{extra}]' ({short_error(exc)})") from None
    return fs, root


def open_binary(path: str):
    """A binary file object for a local path or a URL."""
    if is_url(path):
        fs, root = filesystem(path)
        return fs.open(root, "rb")
    return open(path.removeprefix("file://"), "rb")  # noqa: SIM115 - the caller closes it


def _format_of(path: str) -> tuple[str, str | None, str]:
    """(format, compression, delimiter) of one file from its name, or an error."""
    lower = path.lower().split("?", 1)[0]
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet", None, ","
    if lower.endswith(CSV_SUFFIXES):
        tab = lower.endswith((".tsv", ".tsv.gz"))
        return "csv", "gzip" if lower.endswith(".gz") else None, "\t" if tab else ","
    for suffix, what in UNSUPPORTED.items():
        if lower.endswith(suffix):
            raise InputError(f"{path}: {what} are not supported; export the data to CSV or "
                             "Parquet")
    try:
        with open_binary(path) as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({short_error(exc)})") from None
    if head == PARQUET_MAGIC:
        return "parquet", None, ","
    if head[:2] == b"\x1f\x8b":
        return "csv", "gzip", ","
    suffix = os.path.splitext(lower)[1] or "(none)"
    raise InputError(f"{path}: unsupported file type '{suffix}'; give a .csv, .tsv, .csv.gz or "
                     ".parquet file")


def _data_files(names: list[str]) -> list[str]:
    return sorted(n for n in names if n.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES)
                  and not os.path.basename(n).startswith(("_", ".")))


def _expand(path: str) -> list[str]:
    """The files a path stands for: itself, a folder's data files, or a glob's matches."""
    has_glob = any(ch in path for ch in "*?[")
    if is_url(path):
        fs, root = filesystem(path)
        scheme = path.split("://", 1)[0]
        try:
            if has_glob:
                found = fs.glob(root)
            elif fs.isdir(root):
                found = [f for f in fs.find(root) if not fs.isdir(f)]
            elif fs.exists(root):
                return [path]
            else:
                raise InputError(f"{path}: no such file; check the URL")
        except OSError as exc:
            raise InputError(f"{path}: cannot list it ({short_error(exc)})") from None
        files = _data_files([f if "://" in f else f"{scheme}://{f}" for f in found])
    elif has_glob:
        files = _data_files(globlib.glob(path, recursive=True))
    elif os.path.isdir(path):
        files = _data_files([os.path.join(dp, f) for dp, _, fs_ in os.walk(path) for f in fs_])
    elif os.path.exists(path):
        return [path]
    else:
        raise InputError(f"{path}: no such file; check the path")
    if not files:
        raise InputError(f"{path}: no CSV or Parquet files there; check the path or pattern")
    return files


def detect(path: str) -> Source:
    """Resolve ``path`` to its files and their format, without reading them."""
    if path == "-":
        return Source(path="-", format="csv", files=("-",))
    files = _expand(path)
    kinds = {_format_of(f) for f in files}
    formats = {k[0] for k in kinds}
    if len(formats) > 1:
        raise InputError(f"{path} mixes CSV and Parquet files; keep one format per source")
    fmt, compression, delimiter = _format_of(files[0])
    return Source(path=path, format=fmt, delimiter=delimiter, compression=compression,
                  files=tuple(files))


def stdin_bytes() -> bytes:
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(
            "stdin is a terminal, not data: pipe a CSV file in "
            "(cat data.csv | l1select fit - --target COL) or give a file path"
        )
    return sys.stdin.buffer.read()


def clean_names(raw: list[str], where: str) -> Header:
    # Checked in bulk first: most files' names are all clean and distinct (20,000 names:
    # 30 ms one by one).
    names = [name.strip().lstrip("\ufeff").strip() for name in raw]
    renamed = {}
    if names != raw:
        for i, (clean, name) in enumerate(zip(names, raw, strict=True)):
            if not clean:
                clean = names[i] = f"unnamed_{i + 1}"
            if clean != name:
                renamed[clean] = name
    dupes = []
    if len(set(names)) != len(names):
        seen: set[str] = set()
        for name in names:
            if name in seen and name not in dupes:
                dupes.append(name)
            seen.add(name)
    if dupes:
        raise InputError(f"{where}: duplicate column names {', '.join(map(quoted, dupes))}; "
                         "rename them so that every column has its own name")
    return Header(names, renamed)


def check_same_header(path: str, names: list[str], header: Header, source: Source) -> None:
    """Raise :class:`InputError` unless a later file of ``source`` has the first file's columns."""
    if names != header.names:
        have, expected = set(names), set(header.names)
        missing = [n for n in header.names if n not in have]
        extra = [n for n in names if n not in expected]
        what = (f"lacks {list_names(missing, 5)}" if missing else
                f"has extra {list_names(extra, 5)}" if extra else "orders them differently")
        raise InputError(f"{path}: its columns differ from {source.files[0]} ({what}); every "
                         f"file of {source.display} needs the same columns")




def size_of(path: str) -> int | None:
    """The size in bytes of a local file or a URL, or None when it cannot be told."""
    try:
        if is_url(path):
            fs, root = filesystem(path)
            return int(fs.size(root))
        return os.path.getsize(path)
    except (OSError, TypeError, ValueError):
        return None
