"""Categoricals as real tables have them: the level rule, rare-level pooling, per-column answers."""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from l1select.prepare import Profiler, is_categorical
from tests.unit.test_engines import assert_same


def _profile(table, target="y", max_levels=None, batch_rows=None):
    prof = Profiler(table.schema, target, None, max_levels, "mean", "t.csv")
    step = batch_rows or max(table.num_rows, 1)
    for start in range(0, table.num_rows, step):
        prof.update(table.slice(start, step), start)
    recipe, warnings, _ = prof.recipe()
    return recipe, warnings


def _columns(recipe):
    return {c.name: c.kind for c in recipe.columns}


def _mixed(n, seed=0):
    """A table of n rows: real categoricals, IDs, names, free text and codes."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "neighborhood": [f"N{v:02d}" for v in rng.integers(0, 28, n)],
        "state": [f"S{v:02d}" for v in rng.integers(0, 50, n)],
        "order_code": [f"ORD-{i:06d}" for i in range(n)],
        "name": [f"{a} {b}" for a, b in zip(rng.integers(0, 3000, n), rng.integers(0, 3000, n),
                                            strict=True)],
        "comment": [f"the {i}th comment, said {v} times" for i, v in
                    enumerate(rng.integers(0, 9, n))],
        # zip-like codes: letters and digits, 400 values
        "zone": [f"Z{v:03d}A" for v in rng.integers(0, 400, n)],
        "y": rng.normal(size=n),
    })


def test_real_categoricals_kept_ids_names_free_text_excluded():
    recipe, warnings = _profile(_mixed(2000))
    kinds = _columns(recipe)
    assert kinds["neighborhood"] == "categorical"  # 28 levels in 2,000 rows
    assert kinds["state"] == "categorical"  # 50 levels in 2,000 rows
    for name in ("order_code", "name", "comment", "zone"):
        assert name not in kinds
    msg = next(w.message for w in warnings if w.code == "excluded_column")
    for name in ("order_code", "name", "comment", "zone"):
        assert name in msg
    assert "--max-levels" in msg and "rarely repeat" in msg


def test_the_issue_sizes_28_levels_in_1500_rows_50_in_2000():
    assert is_categorical(28, 1500, None)
    assert is_categorical(50, 2000, None)
    assert not is_categorical(1001, 10**7, None)  # past 1,000 levels, however many rows
    assert not is_categorical(201, 2000, None)  # seen fewer than 10 times on average
    assert is_categorical(200, 2000, None)
    assert is_categorical(5000, 10, 5000)  # an explicit --max-levels replaces the rule
    assert not is_categorical(21, 10**6, 20)


def test_codes_become_categorical_once_they_repeat_enough():
    # 400 zone codes: seen 5 times on average in 2,000 rows, 25 times in 10,000.
    recipe, _ = _profile(_mixed(10_000))
    assert _columns(recipe)["zone"] == "categorical"


def test_small_tables():
    rng = np.random.default_rng(1)
    table = pa.table({"city": ["a", "b", "c"] * 10,
                      "grade": [f"g{v}" for v in rng.integers(0, 8, 30)],
                      "who": [f"person {i}" for i in range(30)],
                      "y": rng.normal(size=30)})
    kinds = _columns(_profile(table)[0])
    assert kinds["city"] == "categorical" and kinds["grade"] == "categorical"
    assert "who" not in kinds
    # Ten rows with ten distinct values: nothing repeats, so not a categorical.
    tiny = pa.table({"who": [f"p{i}" for i in range(10)], "x": np.sin(np.arange(10.0)),
                     "y": np.arange(10.0)})
    assert "who" not in _columns(_profile(tiny)[0])


def test_explicit_max_levels_keeps_a_mostly_unique_column():
    table = _mixed(300)
    assert "order_code" not in _columns(_profile(table)[0])
    kinds = _columns(_profile(table, max_levels=300)[0])
    assert kinds["order_code"] == "categorical"
    assert _columns(_profile(table)[0])["neighborhood"] == "categorical"  # 28 levels, 300 rows
    recipe, warnings = _profile(table, max_levels=30)
    assert "neighborhood" in _columns(recipe) and "state" not in _columns(recipe)
    assert any("more than 30 distinct values" in w.message for w in warnings)


@pytest.mark.parametrize("batch_rows", [37, 100, 999])
def test_the_rule_does_not_depend_on_the_batches(batch_rows):
    table = _mixed(2000)
    assert _profile(table, batch_rows=batch_rows) == _profile(table)


def test_merged_profiles_decide_as_one_pass():
    table = _mixed(2000)
    parts = []
    for start in (0, 700, 1500):
        stop = {0: 700, 700: 1500, 1500: 2000}[start]
        prof = Profiler(table.schema, "y", None, None, "mean", "t.csv")
        prof.update(table.slice(start, stop - start), start)
        parts.append(prof)
    first = parts[0]
    for later in parts[1:]:
        first.merge(later)
    assert first.recipe()[:2] == _profile(table)


# -- rare levels pooled into column=(other) ------------------------------------------------------

def _pooled_csv(path, n=400, seed=0, missing=0.05):
    """A 12-level categorical whose last 4 levels are rare (3–8 rows each), missing values in
    it and in a numeric column, and a target it drives."""
    rng = np.random.default_rng(seed)
    common = rng.integers(0, 8, n)
    level = np.array([f"L{v}" for v in common], dtype=object)
    rare_rows = rng.choice(n, 3 + 4 + 6 + 8, replace=False)
    level[rare_rows] = ["R0"] * 3 + ["R1"] * 4 + ["R2"] * 6 + ["R3"] * 8
    effect = {f"L{i}": e for i, e in enumerate(rng.normal(size=8))}
    effect.update({f"R{i}": 2.0 for i in range(4)})
    x = rng.normal(size=(n, 3))
    y = np.array([effect[v] for v in level]) + x @ [1.0, -0.5, 0.0] + rng.normal(size=n)
    level[rng.random(n) < missing] = None
    x[rng.random(n) < missing, 1] = np.nan
    pacsv.write_csv(pa.table({"grade": pa.array(level.tolist(), pa.string()),
                               "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "y": y}), path)
    return path


def _fit(path, engine, **kw):
    from l1select.pipeline import select_features
    from l1select.types import FitParams

    kw.setdefault("target", "y")
    return select_features(str(path), FitParams(engine=engine, n_alphas=25, **kw))


def test_rare_levels_pool_into_other(tmp_path):
    res = _fit(_pooled_csv(tmp_path / "d.csv"), "gram")
    names = [f.name for f in res.features]
    assert [n for n in names if n.startswith("grade=")] == \
        [f"grade=L{i}" for i in range(8)] + ["grade=(other)"]
    col = next(c for c in res.recipe["columns"] if c["name"] == "grade")
    assert col["pooled"] == ["R0", "R1", "R2", "R3"]
    assert "pooled" not in next(c for c in res.recipe["columns"] if c["name"] == "x0")
    warn = next(w for w in res.warnings if w.code == "pooled_levels")
    assert "grade (4 of 12)" in warn.message and "--min-level-count" in warn.message
    # --min-level-count 1 pools nothing: no (other) feature at all.
    none = _fit(tmp_path / "d.csv", "gram", min_level_count=1)
    assert "grade=(other)" not in [f.name for f in none.features]
    assert "grade=R3" in [f.name for f in none.features]


def test_levels_are_counted_on_the_training_rows_only(tmp_path):
    # R3 has 8 rows: kept at --min-level-count 8, pooled once a test split takes any of them.
    path = _pooled_csv(tmp_path / "d.csv", missing=0.0)
    kept = [f.name for f in _fit(path, "gram", min_level_count=8).features]
    assert "grade=R3" in kept and "grade=R2" not in kept
    split = _fit(path, "gram", min_level_count=8, test_size=0.5)
    assert "grade=R3" not in [f.name for f in split.features]
    assert [f.name for f in split.features] == \
        [f.name for f in _fit(path, "data", min_level_count=8, test_size=0.5).features]


@pytest.mark.parametrize("engine", ["gram", "data"])
@pytest.mark.parametrize("case", [dict(), dict(test_size=0.3),
                                  dict(model="elasticnet", l1_ratios=(0.5,)),
                                  dict(missing="drop")], ids=["lasso", "test", "enet", "drop"])
def test_pooled_categorical_same_numbers_in_every_engine(tmp_path, engine, case):
    path = _pooled_csv(tmp_path / "d.csv")
    a, b = _fit(path, engine, **case), _fit(path, "reference", **case)
    assert [f.name for f in a.features] == [f.name for f in b.features]
    assert "grade=(other)" in [f.name for f in a.features]
    assert_same(a, b)
    if "test_size" in case:
        # the same pooled design on the test rows: the same error up to solver noise
        assert a.test["mse"] == pytest.approx(b.test["mse"], rel=1e-9)


def test_pooled_categorical_stability_halves_agree(tmp_path):
    path = _pooled_csv(tmp_path / "d.csv")
    a, b = _fit(path, "gram", stability=4), _fit(path, "data", stability=4)
    # Each half's selection at each alpha is a 0/1 decision; solved to a gap of 1e-10 the two
    # engines make the same decisions, so the frequencies are equal, not merely close.
    assert [f.stability for f in a.features] == [f.stability for f in b.features]


def test_auto_engine_follows_the_feature_count_after_encoding(tmp_path):
    # 3 source columns, but 160 levels in 300 rows: wider than n/2 once one-hot encoded.
    rng = np.random.default_rng(3)
    n = 300
    code = [f"c{v}" for v in rng.permutation(np.arange(n) % 160)]
    x = rng.normal(size=n)
    path = tmp_path / "d.csv"
    pacsv.write_csv(pa.table({"code": code, "x": x, "y": x + rng.normal(size=n)}), path)
    wide = _fit(path, "auto", max_levels=200, min_level_count=1)
    assert wide.engine == "data" and len(wide.features) == 161
    # Pooled (each level has fewer than 10 rows), the same column is narrow: the gram engine.
    # Every level pooled leaves code=(other) constant: dropped, and both warnings say so.
    narrow = _fit(path, "auto", max_levels=200)
    assert narrow.engine == "gram" and [f.name for f in narrow.features] == ["x"]
    text = " ".join(w.message for w in narrow.warnings)
    assert "code (160 of 160)" in text and "constant columns: code=(other)" in text


def test_auto_engine_leaves_the_pass_once_the_levels_outgrow_the_gram(tmp_path, monkeypatch):
    from l1select.engines import streaming

    monkeypatch.setattr(streaming, "GRAM_MAX_FEATURES", 40)
    rng = np.random.default_rng(4)
    n = 1000
    level = rng.integers(0, 60, n)
    x = rng.normal(size=n)
    path = tmp_path / "d.csv"
    pacsv.write_csv(pa.table({"code": [f"c{v}" for v in level], "x": x,
                              "y": x + level / 30 + rng.normal(size=n)}), path)
    auto, forced = _fit(path, "auto"), _fit(path, "gram")
    assert auto.engine == "data" and forced.engine == "gram"
    assert [f.name for f in auto.features] == [f.name for f in forced.features]
    assert len(auto.features) > 50  # the levels (a few rare ones pooled) and x
    assert_same(auto, forced)


# -- the issue's "done when" and --group-categoricals -------------------------------------------

def _done_csv(path, n=3000, seed=0):
    """A 30-level and a 60-level categorical that drive the target, a 12-level one that does
    not, a customer ID, a numeric driver and numeric noise."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 30, n), rng.integers(0, 60, n), rng.integers(0, 12, n)
    x = rng.normal(size=n)
    y = rng.normal(size=30)[a] + 0.7 * rng.normal(size=60)[b] + 0.5 * x + rng.normal(size=n)
    pacsv.write_csv(pa.table({
        "customer_id": [f"C-{v:09d}" for v in rng.permutation(10**6)[:n]],
        "region": [f"R{v}" for v in a], "state": [f"S{v}" for v in b],
        "noise_cat": [f"N{v}" for v in c], "x": x, "noise": rng.normal(size=n), "y": y}), path)
    return path


def test_done_when_defaults_keep_both_categoricals_and_exclude_the_id(tmp_path):
    res = _fit(_done_csv(tmp_path / "d.csv"), "auto")
    cols = {c["column"]: c for c in res.columns}
    assert "customer_id" not in cols
    assert any("customer_id" in w.message for w in res.warnings if w.code == "excluded_column")
    assert cols["region"]["kind"] == cols["state"]["kind"] == "categorical"
    assert cols["region"]["selected"] and cols["state"]["selected"]
    assert cols["state"]["n_features"] >= 55  # 60 levels of ~50 rows: few or none pooled


def test_group_categoricals_selects_whole_columns(tmp_path):
    path = _done_csv(tmp_path / "d.csv")
    res = _fit(path, "auto", group_categoricals=True, stability=3)
    assert res.engine == "gram" and res.params["group_categoricals"] is True
    cols = {c["column"]: c for c in res.columns}
    assert cols["region"]["n_selected"] == cols["region"]["n_features"]
    assert cols["state"]["n_selected"] == cols["state"]["n_features"]
    assert cols["noise_cat"]["n_selected"] == 0
    for name in ("region", "state", "noise_cat"):
        feats = [f for f in res.features if f.column == name]
        # Fold frequency and stability are per column: the same for every level.
        assert len({f.fold_frequency for f in feats}) == 1
        assert len({f.stability for f in feats}) == 1


def test_group_categoricals_all_rows_fit_meets_the_kkt_conditions(tmp_path):
    """The pipeline's all-rows fit at the chosen alpha against the group-lasso optimality
    conditions on the design standardized here, independently of the engine's statistics."""
    from l1select.prepare import design_matrix
    from l1select.types import ColumnSpec, FeatureSpec, Recipe

    path = _done_csv(tmp_path / "d.csv", n=1500, seed=5)
    res = _fit(path, "gram", group_categoricals=True, model="elasticnet", l1_ratios=(0.8,))
    rec = res.recipe
    recipe = Recipe(rec["target"],
                    tuple(ColumnSpec(c["name"], c["kind"], tuple(c["levels"] or ()),
                                     tuple(c.get("pooled") or ())) for c in rec["columns"]),
                    tuple(FeatureSpec(f["name"], f["column"], f["kind"], f["level"])
                          for f in rec["features"]))
    table = pacsv.read_csv(path)
    X = design_matrix(table, recipe)
    y = np.asarray(table.column("y"))
    n = y.size
    Xs = (X - X.mean(0)) / X.std(0)
    w = np.array([f.coef_std for f in res.features])
    r = y - y.mean() - Xs @ w
    alpha, l1_ratio = res.alpha["chosen"], 0.8
    grad = Xs.T @ r / n - alpha * (1 - l1_ratio) * w
    cols = [f.column for f in res.features]
    for col in dict.fromkeys(cols):
        m = np.array([c == col for c in cols])
        bound = alpha * l1_ratio * np.sqrt(m.sum())
        nrm = np.linalg.norm(w[m])
        # 1e-6 of the bound: the engine stops at a duality gap of 1e-10·var(y).
        if nrm > 0:
            np.testing.assert_allclose(grad[m], bound * w[m] / nrm, atol=1e-6 * bound)
        else:
            assert np.linalg.norm(grad[m]) <= bound * (1 + 1e-6)


@pytest.mark.parametrize(("kw", "needle"), [
    (dict(engine="data"), "--engine data cannot solve it"),
    (dict(force=("x",)), "takes no --force"),
    (dict(adaptive=True), "takes no --force, --penalty-factor or --adaptive"),
])
def test_group_categoricals_usage_errors(tmp_path, kw, needle):
    from l1select.errors import ConfigError
    from l1select.pipeline import validate
    from l1select.types import FitParams

    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        validate(FitParams(target="y", group_categoricals=True, **kw))


@pytest.mark.parametrize("case", [dict(), dict(test_size=0.3),
                                  dict(model="elasticnet", l1_ratios=(0.5,)),
                                  dict(missing="drop"), dict(standardize=False)],
                         ids=["lasso", "test", "enet", "drop", "raw"])
def test_group_categoricals_gram_matches_the_reference_engine(tmp_path, case):
    # The reference engine imputes and standardizes each fold's rows explicitly and forms
    # their Gram; the gram engine derives it from the pooled one-pass statistics.
    path = _pooled_csv(tmp_path / "d.csv")
    a = _fit(path, "gram", group_categoricals=True, **case)
    b = _fit(path, "reference", group_categoricals=True, **case)
    assert [f.name for f in a.features] == [f.name for f in b.features]
    assert_same(a, b)
    grade = [f.coef_std for f in a.features if f.column == "grade"]
    assert all(v != 0 for v in grade) or not any(grade)  # the column is in or out whole


def test_group_categoricals_stability_same_in_gram_and_reference(tmp_path):
    path = _pooled_csv(tmp_path / "d.csv")
    a = _fit(path, "gram", group_categoricals=True, stability=3)
    b = _fit(path, "reference", group_categoricals=True, stability=3)
    assert [f.stability for f in a.features] == [f.stability for f in b.features]
