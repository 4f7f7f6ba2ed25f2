"""Typer's conversion of option values, without importing pydantic for the plain ones.

Typer converts every parameter's value through a pydantic ``TypeAdapter``, even a value that
is absent or already of its type: a ``fit`` imported pydantic and built some forty adapters
(70–110 ms, 8 MiB) before reading a byte. :class:`Coerce` takes over the values that need no
validation: an absent value, a text, a number written plainly (``5``, ``-0.5``, ``1e-3``), a
choice, a path, each as Typer's own pydantic-free helpers (``coerce_cli_choice``,
``coerce_cli_path``) or Python's constructors convert it. Anything else — a value with bounds,
a parser, an unusual spelling of a number, or any value that fails — goes to Typer's own
conversion, so results and error messages are Typer's (``tests/cli/test_cli_coerce.py``
checks both on every option of every command).

It relies on Typer's parameter internals (``_runtime_param``, ``type_descriptor``); a Typer
without them keeps its own conversion (:func:`install` does nothing).
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

try:
    from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path
except ImportError:  # another Typer: its own conversion stays
    coerce_cli_choice = coerce_cli_path = routes_to_path = None  # type: ignore[assignment]

_UNSET = object()
# Numbers as a user writes them, which pydantic (lax mode) and int()/float() read alike; other
# spellings ("1_000", " 5", "+5", "inf", "5.") are left to pydantic.
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class Coerce:
    """A parameter's conversion: the plain cases here, the rest by Typer's (built on first
    need). Has Typer's ``coerce(value, param, ctx)``."""

    __slots__ = ("_desc", "_typer")

    def __init__(self, descriptor) -> None:
        self._desc = descriptor
        self._typer = None

    def typer_conversion(self):
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(self._desc)
        return self._typer

    def coerce(self, value: Any, param, ctx) -> Any:
        try:
            out = _plain(self._desc, value, param, ctx)
        except Exception:  # Typer's conversion says what is wrong, in its words
            out = _UNSET
        if out is _UNSET:
            return self.typer_conversion().coerce(value, param=param, ctx=ctx)
        return out


def install(params) -> None:
    """Give each Typer parameter of ``params`` a :class:`Coerce` (once)."""
    if coerce_cli_choice is None:
        return
    for param in params:
        desc = getattr(param, "type_descriptor", None)
        if (desc is not None and getattr(desc, "file_annotation", _UNSET) is None
                and getattr(param, "_runtime_param", _UNSET) is None):
            param._runtime_param = Coerce(desc)


def _plain(desc, value: Any, param, ctx) -> Any:
    multi = param.multiple or param.nargs == -1
    if value is None:
        return () if multi else None
    info = desc.parameter_info
    if info.parser is not None:
        return _UNSET
    annotation = desc.annotation
    if multi:
        if get_origin(annotation) is not list or not isinstance(value, (list, tuple)):
            return _UNSET
        (item,) = get_args(annotation)
        out = [_leaf(item, info, v, param, ctx) for v in value]
        return _UNSET if any(v is _UNSET for v in out) else out
    return _leaf(annotation, info, value, param, ctx)


def _leaf(annotation: Any, info, value: Any, param, ctx) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return coerce_cli_choice(value, choices=list(annotation),
                                 case_sensitive=info.case_sensitive, ctx=ctx)
    if get_origin(annotation) is Literal:
        return coerce_cli_choice(value, choices=get_args(annotation),
                                 case_sensitive=info.case_sensitive, ctx=ctx)
    if annotation is str:
        return value if type(value) is str else _UNSET
    if annotation is int or annotation is float:
        if info.min is not None or info.max is not None or info.clamp:
            return _UNSET
        if type(value) is annotation:
            return value
        if type(value) is str and (_INT if annotation is int else _FLOAT).fullmatch(value):
            return annotation(value)
        return _UNSET
    if routes_to_path(annotation, info):
        path_type = info.path_type
        if path_type is None and isinstance(annotation, type) and issubclass(annotation, Path):
            path_type = annotation
        if path_type is None or not issubclass(path_type, Path):
            return _UNSET
        if type(value) is str and value:
            value = path_type(value)
        if not isinstance(value, path_type):
            return _UNSET
        return coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)
    return _UNSET
