"""Reading a result file: the JSON that ``l1select fit --format json`` writes, read back by
``plot``, ``transform`` and ``predict`` — one reader, one set of error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from l1select.errors import InputError

RESULT_HINT = "give the JSON written by 'l1select fit … --format json'"


def load_result(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The result document at ``path``, with every top-level key in ``required``.

    Raises :class:`InputError` when the file is missing, is a folder, is not JSON, or is not
    a schema_version 1 result holding those keys.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: no such result file; {RESULT_HINT}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a result file; {RESULT_HINT}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a result file ({exc}); {RESULT_HINT}") from None
    if (not isinstance(doc, dict) or doc.get("schema_version") != 1
            or any(k not in doc for k in required)):
        keys = f" with {', '.join(required)}" if required else ""
        raise InputError(f"{path} is not an l1select result (schema_version 1{keys}); "
                         f"{RESULT_HINT}")
    return doc
