"""jsontext writes the same characters as json.dumps, compact and indented."""

from __future__ import annotations

import json
import random
from collections import OrderedDict

import pytest

from l1select import jsontext

# Values json writes in more than one way if one is careless: exponents, signed zeros, the
# smallest subnormal, big integers, escapes, non-ASCII, and a '%' (the rows are formatted).
FLOATS = [0.0, -0.0, 1.0, 1e-05, 1e16, 1.5e300, 5e-324, -2.5, 0.1 + 0.2, 123456789.125]
STRINGS = ["", "x", 'quo"te', "back\\slash", "new\nline", "tab\t", "é ü 漢", "%s %d %%",
           "\x00\x1f", "\ud83d\ude00"]
INTS = [0, -1, 7, 2 ** 70, -(2 ** 64)]
SCALARS = [None, True, False, *FLOATS, *STRINGS, *INTS]


def _value(rng: random.Random, depth: int):
    roll = rng.random()
    if depth <= 0 or roll < 0.5:
        return rng.choice(SCALARS)
    if roll < 0.7:
        return [_value(rng, depth - 1) for _ in range(rng.randrange(4))]
    if roll < 0.75:
        return tuple(_value(rng, depth - 1) for _ in range(rng.randrange(3)))
    return {rng.choice(STRINGS) + str(i): _value(rng, depth - 1)
            for i in range(rng.randrange(4))}


def _table(rng: random.Random, n: int) -> list[dict]:
    """Objects with the same keys whose values are of one type per key or mixed, some of
    them lists and objects."""
    return [{"name": rng.choice(STRINGS) + str(i), "coef": rng.choice(FLOATS),
             "selected": rng.random() < 0.5, "maybe": rng.choice([None, *FLOATS]),
             "alternates": None if rng.random() < 0.7 else [rng.choice(STRINGS)],
             "nested": {} if rng.random() < 0.5 else {"a": [1, 2.5], "b": {}},
             "n": rng.choice(INTS)}
            for i in range(n)]


def _documents():
    rng = random.Random(20261202)
    docs = [{}, [], {"a": []}, [[]], {"a": {}}, "x", 1.5, None]
    docs += [_value(rng, 5) for _ in range(200)]
    for n in (jsontext.TABLE_MIN - 1, jsontext.TABLE_MIN, 300):
        docs.append({"features": _table(rng, n), "tool": {"name": "l1select"},
                     "path": [{"alpha": f, "mean": f} for f in FLOATS * 10]})
    # Tables that are not quite: one object with the keys in another order, or one more key.
    odd = _table(rng, 100)
    odd[50] = dict(reversed(list(odd[50].items())))
    more = _table(rng, 100)
    more[99]["more"] = [1]
    docs += [odd, more, {"t": [odd, more]}]
    return docs


@pytest.mark.parametrize("indent", [None, 2])
def test_the_text_is_what_json_dumps_writes(indent):
    for doc in _documents():
        assert jsontext.dumps(doc, indent) == json.dumps(doc, indent=indent,
                                                         allow_nan=False), doc


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_float_raises_like_json(indent, bad):
    rows = [{"name": "x", "coef": 1.0} for _ in range(100)]
    for doc in ([bad], {"a": bad}, rows[:50] + [{"name": "y", "coef": bad}] + rows[50:],
                rows[:50] + [{"name": "y", "coef": [bad]}] + rows[50:]):
        with pytest.raises(ValueError):
            json.dumps(doc, indent=indent, allow_nan=False)
        with pytest.raises(ValueError):
            jsontext.dumps(doc, indent)


@pytest.mark.parametrize("indent", [None, 2])
def test_what_it_does_not_write_itself_json_writes(indent):
    """Non-string keys, subclasses of dict and list: json's own text; an unknown type:
    json's own error."""
    rows = [{"name": "x", "coef": 1.0} for _ in range(100)]
    for doc in ({1: "a", None: 2.5, 1.5: True}, OrderedDict(b=1, a=[2]),
                {"t": rows + [OrderedDict(name="y", coef=2.0)]},
                type("Sub", (list,), {})([1, 2]), {"t": rows + [{"name": "z", 3: 1.0}]}):
        assert jsontext.dumps(doc, indent) == json.dumps(doc, indent=indent, allow_nan=False)
    with pytest.raises(TypeError):
        jsontext.dumps({"a": object()}, indent)
