"""The ``attributions`` experiment: a tiny reproduction graded against exact answers, and its summary logic."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spheres.core.errors import InputError
from spheres.core.io import read_csv
from spheres.experiments import attributions as X
from spheres.experiments.reproduce import config_from_table, reproduce
from spheres.maths import quadratic
from spheres.measure import attributions as A
from spheres.nets.models import quadratic_weights
from spheres.nets.runs import load_run

TINY = {
    "experiments": ["attributions"],
    "attributions": {
        "models": ["quad-w{dim}"], "min_accuracy": 0.0,
        "task": {"dim": 8},
        "train": {"steps": 60, "batch_size": 32, "learning_rates": [0.01], "checkpoints": 1, "chunk_steps": 60,
                  "adversarial": "pgd", "adv_steps": 2, "adv_epsilons": [0.0, 0.2]},
        "attribute": {"points": 8, "ig_steps": 4, "starts": 2, "bands": 2, "shapley_samples": 64},
    },
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("attributions")
    report = reproduce(config_from_table(TINY), out / "results", progress=False, figures_dir=out / "figures",
                       command="test", config_path="inline")
    return out, report


@pytest.mark.slow  # default-suite budget: the measurements are graded in test_attributions.py, the
# experiment end to end by `make demo` and here in `make test-all`
def test_tiny_reproduction_grades_against_exact_answers(tiny):
    out, report = tiny
    rows = read_csv(out / "results" / "attributions" / X.RESULTS)
    assert {float(r["adv_eps"]) for r in rows} == {0.0, 0.2} and len(rows) == 4   # steps 1 and 60, two nets
    assert sum(int(r["selected"]) for r in rows) == 2
    # Shapley efficiency on the saved values: sum_j phi_j = v(all) - v(none), per row
    for r in rows:
        assert X.shapley_efficiency_gap(r) < 1e-9
    # the table's gradient-radial alignment is the mean of cos(grad f(x), x/|x|) recomputed here, and the
    # quad net's exact answer on the same points: grad f = 2 V A V^T x (up to scale), cos = |A z|.|z| ...
    run_dir = out / "results" / "attributions" / "runs" / "quad-w8-d8"
    run = load_run(run_dir)
    step = run.checkpoint_steps[-1]
    variables = run.load_variables(step)
    from spheres.maths.geometry import sample_batch
    key = jax.random.fold_in(jax.random.key(0), step)
    xs, _ = sample_batch(jax.random.split(key, 3)[0], 8, 8, run.config.task.outer_radius)
    xs = np.asarray(xs, np.float64)
    last = [r for r in rows if int(r["step"]) == step]
    for i, r in enumerate(sorted(last, key=lambda r: int(r["member"]))):
        W, w, b = quadratic_weights(jax.tree.map(lambda a: np.asarray(a[i]), variables))
        dec = quadratic.alphas_from_weights(W, w, b)
        z = xs @ np.asarray(dec.rotation)
        az = z * np.asarray(dec.alphas)
        exact = np.sum(az * z, 1) / (np.linalg.norm(az, axis=1) * np.linalg.norm(z, axis=1))   # cos(V A z, V z)
        assert r["grad_radial"] == pytest.approx(float(np.mean(exact)), abs=2e-4)
        assert r["grad_radial_se"] == pytest.approx(float(np.std(exact, ddof=1) / math.sqrt(8)), rel=1e-2, abs=1e-5)
    # the radial ideal has alignment 1 exactly (the measure the findings grade against)
    ideal = jax.vmap(lambda x: A.gradient_alignment(lambda p, y: jnp.linalg.norm(y) - p, 1.15, x))(jnp.asarray(xs))
    assert np.allclose(np.asarray(ideal), 1.0, atol=1e-6)
    s = report["attributions"]["summary"]
    assert s["nets"] == 2 and s["selected"] == 2 and len(s["pairs"]) == 1
    pair = s["pairs"][0]
    assert pair["eps"] == 0.2 and pair["grad_radial"]["diff"] == pytest.approx(
        pair["grad_radial"]["to"] - pair["grad_radial"]["from"])
    assert (out / "figures" / "attributions_alignment.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "figures" / "attributions_bands.png").read_bytes()[:4] == b"\x89PNG"
    readme = (out / "figures" / "README.md").read_text()
    assert "Shapley efficiency" in readme and "1 pairs" in readme


def test_selection_takes_the_last_checkpoint_of_nets_above_the_threshold():
    def row(eps, step, acc):
        return {"model": "m", "dim": 8, "seed": 0, "learning_rate": 0.1, "train_size": 0, "adv_eps": eps,
                "step": step, "accuracy": acc}

    rows = X.select([row(0.0, 1, 0.99), row(0.0, 10, 0.95), row(0.1, 1, 0.99), row(0.1, 10, 0.5)], 0.9)
    assert [r["selected"] for r in rows] == [0, 1, 0, 0]


def test_difference_and_its_verdict():
    a = {"c": 0.5, "c_se": 0.03, "c_n": 10}
    b = {"c": 0.6, "c_se": 0.04, "c_n": 12}
    d = X.difference(a, b, "c")
    assert d["diff"] == pytest.approx(0.1) and d["diff_se"] == pytest.approx(0.05)
    assert d["verdict"] == "within 2 SE"   # 0.1 is exactly 2 SE: not more than 2 SE
    assert X.difference(a, {**b, "c": 0.7}, "c")["verdict"] == "rises"
    assert X.difference(b, a, "c")["verdict"] == "within 2 SE"
    assert X.difference({**b, "c": 0.8}, a, "c")["verdict"] == "falls"
    assert X.difference(a, {"c": None, "c_se": None}, "c") is None
    # two columns of one row (BIG against IG): the same arithmetic, the counts of each column
    row = {"ig": 0.5, "ig_se": 0.03, "ig_n": 10, "big": 0.7, "big_se": 0.04, "big_n": 12}
    d = X.column_difference(row, "ig", "big")
    assert d["diff"] == pytest.approx(0.2) and d["diff_se"] == pytest.approx(0.05) and d["verdict"] == "rises"
    assert (d["from_n"], d["to_n"]) == (10, 12)


def test_rank_correlation_against_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    c = X.rank_correlation(list(x), list(y))
    assert c["rho"] == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert c["n"] == 12 and c["se0"] == pytest.approx(1 / math.sqrt(11))
    assert X.rank_correlation([1.0, None, 2.0], [1.0, 2.0, 3.0]) is None   # fewer than 3 complete pairs


def test_config_needs_a_standard_and_a_robust_budget():
    bad = {**TINY["attributions"], "train": {**TINY["attributions"]["train"], "adv_epsilons": [0.1, 0.2]}}
    with pytest.raises(InputError) as info:
        config_from_table({"experiments": ["attributions"], "attributions": bad})
    assert info.value.field == "attributions.train.adv_epsilons"
