"""The shared message helpers of errors.py."""

from __future__ import annotations

from pathlib import Path

from l1select.errors import did_you_mean

PKG = Path(__file__).resolve().parents[2] / "l1select"


def test_did_you_mean_prefers_the_same_name_up_to_case_and_dashes():
    assert did_you_mean("n-alphas", ["alpha", "alphas", "n_alphas"]) == "did you mean 'n_alphas'?"
    assert did_you_mean("PRICE", ["price", "prices"]) == "did you mean 'price'?"


def test_did_you_mean_lists_close_names_or_nothing():
    assert did_you_mean("tagret", ["target", "seed"]) == "did you mean 'target'?"
    assert did_you_mean("nalphas", ["n_alphas", "alphas", "alpha", "seed"]) == \
        "did you mean 'n_alphas' or 'alphas' or 'alpha'?"
    assert did_you_mean("zzz", ["target", "seed"]) == ""


def test_did_you_mean_escapes_what_it_quotes():
    assert did_you_mean("a\nb", ["a\nb!"]) == "did you mean 'a\\nb!'?"


def test_every_suggestion_of_a_name_comes_from_the_one_helper():
    hand_written = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                    if p.name != "errors.py" and "did you mean" in p.read_text().lower()]
    assert not hand_written, f"use errors.did_you_mean in {hand_written}"
