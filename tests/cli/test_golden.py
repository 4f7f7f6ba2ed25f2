"""Golden results for the bundled sample: any change in any number is seen.

The files in ``tests/cli/golden/`` are what ``fit --format json`` printed for
``sample_data/housing.csv``; they are rewritten only by ``pytest --update-golden``
(review the diff before committing it). Only ``tool.version`` and ``input.source`` (the
absolute path of the checkout) are left out of the comparison; ``input.sha256`` pins the data.
"""

from __future__ import annotations

import json
import math

import pytest
from cli_helpers import HOUSING_CSV, REPO, fit_json

GOLDEN = REPO / "tests" / "cli" / "golden"

# Relative tolerance 1e-6: the solver stops at a duality gap of tol=1e-10 relative to the
# null deviance, so coefficients and CV errors agree far below 1e-6 between runs, BLAS builds
# and numba versions; a change of method or of a default moves them by much more.
RTOL = 1e-6
# Absolute tolerance 1e-6 for numbers near zero (a coefficient that is 0 in one run and
# 1e-13 in another); every meaningful quantity here is either much larger (prices ~1e5,
# MSEs ~1e9) or a fraction compared at this absolute precision.
ATOL = 1e-6

CASES = {
    "housing_default": ["--target", "price"],
    "housing_enet_stability": ["--target", "price", "--model", "elasticnet",
                               "--l1-ratio", "0.5,0.9", "--stability", "10", "--rule", "min",
                               "--corr-threshold", "0.8", "--refit", "ols"],
}


def _comparable(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    doc["tool"].pop("version")
    doc["input"].pop("source")
    return doc


def assert_matches(got, want, where: str = "$") -> None:
    """Structure, strings, booleans and integers exactly; floats within RTOL/ATOL."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: {got!r} is not an object"
        assert sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_matches(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list), f"{where}: {got!r} is not a list"
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_matches(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool) and isinstance(got, int | float):
        assert math.isclose(got, want, rel_tol=RTOL, abs_tol=ATOL), (
            f"{where}: {got!r} != {want!r} (rtol {RTOL}, atol {ATOL})")
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("case", list(CASES))
def test_sample_data_matches_golden(case, update_golden):
    doc = _comparable(fit_json(HOUSING_CSV, *CASES[case]))
    path = GOLDEN / f"{case}.json"
    if update_golden:
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; create it with 'pytest --update-golden'"
    want = json.loads(path.read_text(encoding="utf-8"))
    assert_matches(doc, want)


def test_comparison_sees_a_changed_number():
    want = {"a": [1.0, 2.5], "n": 3, "s": "x"}
    assert_matches({"a": [1.0, 2.5 * (1 + 1e-7)], "n": 3, "s": "x"}, want)
    with pytest.raises(AssertionError, match=r"\$\.a\[1\]"):
        assert_matches({"a": [1.0, 2.5 * (1 + 1e-5)], "n": 3, "s": "x"}, want)
    with pytest.raises(AssertionError, match=r"\$\.n"):
        assert_matches({"a": [1.0, 2.5], "n": 4, "s": "x"}, want)
    with pytest.raises(AssertionError, match="keys"):
        assert_matches({"a": [1.0, 2.5], "n": 3}, want)
