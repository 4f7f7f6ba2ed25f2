"""The cyclic garbage collector paused while a stage makes many objects that all live on."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Pause automatic cyclic garbage collection for the block; on again after it, if it was.

    Reference counting still frees everything that is not in a cycle. On wide data the stages
    after the fits make about 100,000 small objects (a ``FeatureResult`` per feature, the
    per-feature objects of the recipe, the column summary and the JSON document) and keep
    them all. Every 700 of them start a collection, and one in about a hundred of those is a
    full one, which walks every object of the process: 0.1 to 0.15 s of a wide run's last
    second, finding nothing to free. Cycles made in the block are collected by the first
    collection after it.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
