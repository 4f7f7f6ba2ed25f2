"""Atomic file writes, shared by the commands and by batch runs.

A reader (or an interrupted run) sees either the old file or the new one, never half of one:
the text goes to a temporary file in the same folder, which is then renamed over the target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8, newlines untranslated; or bytes as they are) to ``path``
    atomically.

    The folder must exist. On any error, including an interrupt, the temporary file is removed
    and ``path`` is left as it was.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp makes the file private (0600); give it the mode open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        if isinstance(text, bytes):
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    # Reading the umask means setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
