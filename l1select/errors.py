"""Errors raised for the user, and the exit codes they map to.

Library code raises these with a message written for the person at the terminal: what is wrong
and what to do. The command layer turns them into one ``Error: …`` line and an exit code.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class L1SelectError(Exception):
    """Base class of every error meant for the user."""

    exit_code = EXIT_DATA


class InputError(L1SelectError):
    """The input cannot be read: missing file, unsupported format, corrupt or ragged file."""

    exit_code = EXIT_DATA


class DataError(L1SelectError):
    """The input was read but its contents cannot be used: bad target, infinite values, …"""

    exit_code = EXIT_DATA


class ConfigError(L1SelectError):
    """A usage or configuration error: options that contradict each other, impossible values."""

    exit_code = EXIT_USAGE


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: anything a
# terminal could take for a line break or an instruction.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escaped(text: object) -> str:
    """``text`` with its control characters and line breaks written as escapes (``\\n``,
    ``\\t``, ``\\x07``, ``\\u2028``), so that a message quoting a name or a value from the
    data (a header may hold anything) stays one line."""
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group()) or (
        f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"),
        str(text))


def quoted(name: object) -> str:
    """A column name (or a cell value) as messages quote it: ``'name'``, escaped."""
    return f"'{escaped(name)}'"


def did_you_mean(name: str, choices: list[str], n: int = 3) -> str:
    """Return a ``did you mean 'x'?`` clause for the closest names, or an empty string."""
    import difflib

    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    if not close:
        return ""
    names = " or ".join(quoted(lowered[c]) for c in close)
    return f"did you mean {names}?"


def list_names(names: list[str], limit: int = 8) -> str:
    """Comma-separated names (escaped), shortened with an ellipsis after ``limit``."""
    shown = ", ".join(escaped(n) for n in names[:limit])
    return shown + (", …" if len(names) > limit else "")
