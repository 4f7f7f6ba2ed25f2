"""Output files, written atomically: the one mechanism behind every file l1select writes (results,
tables from transform and predict, pictures, reports, batch outputs).

A reader (or an interrupted run) sees either the old file or the new one, never half of one:
the bytes go to a temporary file in the same folder, which is then renamed over the target.
The file gets the permissions a newly created file gets under the user's umask, as with any
other tool, not the private mode of a temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from l1select.errors import InputError


def check_folder(path: str | Path) -> None:
    """Raise :class:`InputError` (exit 1) when the folder that would hold ``path`` does not
    exist: called before the work, so that a long run is not lost to a typo."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"Cannot write {target}: folder {folder} does not exist; create it "
                         "or give another path")


class PendingFile:
    """A file being written under a temporary name beside ``path``: :meth:`commit` moves it into
    place, :meth:`discard` removes it. ``tmp`` is the name to write to."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_folder(self.path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                            dir=folder)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None
        os.close(fd)
        try:
            # mkstemp makes the file private (0600); give it the mode open() would have.
            os.chmod(self.tmp, 0o666 & ~_umask())
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise _cannot_write(self.path, exc) from None
        self.tmp = None

    def discard(self) -> None:
        if self.tmp is not None and os.path.exists(self.tmp):
            os.unlink(self.tmp)
        self.tmp = None


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8, newlines untranslated; or bytes as they are) to ``path``
    atomically.

    The folder must exist. On any error, including an interrupt, the temporary file is removed
    and ``path`` is left as it was.
    """
    pending = PendingFile(path)
    try:
        if isinstance(text, bytes):
            with open(pending.tmp, "wb") as fh:
                fh.write(text)
        else:
            with open(pending.tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def _cannot_write(path: Path, exc: OSError) -> InputError:
    return InputError(f"Cannot write {path} ({exc.strerror or exc}); give a path that can be "
                      "written")


def _umask() -> int:
    try:  # Linux says it without changing it (safe while other threads create files)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere reading the umask means setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
