"""Errors raised for the user, and the exit codes they map to.

Library code raises these with a message written for the person at the terminal: what is wrong
and what to do. The command layer turns them into one ``Error: …`` line and an exit code.
"""

from __future__ import annotations

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


def did_you_mean(name: str, choices: list[str], n: int = 3) -> str:
    """Return a ``did you mean 'x'?`` clause for the closest names, or an empty string."""
    import difflib

    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    if not close:
        return ""
    names = " or ".join(f"'{lowered[c]}'" for c in close)
    return f"did you mean {names}?"


def list_names(names: list[str], limit: int = 8) -> str:
    """Comma-separated names, shortened with an ellipsis after ``limit``."""
    shown = ", ".join(names[:limit])
    return shown + (", …" if len(names) > limit else "")
