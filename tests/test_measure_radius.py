"""The measurement pipeline with ``method = "splitting"`` and ``"auto"`` at a non-default outer radius.

A quad net in d = 8 whose alphas are set by hand (``alpha = 1.2`` on 3 coordinates, 0.43 on 4 and
0.52 on one) inside a run trained with ``task.outer_radius = 1.5``: its exact rates
(:mod:`spheres.maths.quadratic`) are 6.7e-2 on the inner sphere and 3.0e-3 on the outer sphere of
radius 1.5, against 0.24 at radius 1.3 and 0.93 at radius 1: a measurement of the outer sphere at
the wrong radius misses by a factor of 80 or more, far outside every interval here. Graded:

* the error-rate intervals (splitting and Monte Carlo) contain the exact rates at R = 1.5 and
  exclude those at 1.3 and 1.0;
* ``"auto"`` uses splitting exactly where Monte Carlo saw fewer than ``min_errors`` errors, and
  this net exercises both branches (many inner errors, few outer ones);
* the outer attack starts on the sphere of radius 1.5 and its mean d(E) is within 5% above the
  exact nearest-error distance on the same points, computed here from the alphas;
* the typed rows carry R = 1.5 and the bound ``1.5 d_cap(mu_outer)``.

One compiled measurement serves every call (``measurement=``), so the end-to-end tests cost one
training and one compilation of each program (marked slow); a cheap test in the default suite checks
that every measurement of the run is built for the task's radius.
"""

import dataclasses
import shutil

import jax
import numpy as np
import pytest
from scipy import stats

from spheres.core.errors import InputError
from spheres.core.io import write_bytes_atomic
from spheres.maths import quadratic, theory
from spheres.measure import attacks, pipeline
from spheres.measure.pipeline import MeasureConfig, make_run_measurement, measure_run, measure_step
from spheres.measure.results import read_rows
from spheres.nets import rundir
from spheres.nets.config import config_from_dict
from spheres.nets.models import quadratic_weights
from spheres.nets.runs import load_run, run_training
from spheres.nets.train import EVAL_SIZE

R = 1.5
#: the checkpoint measured (the run also saves step 1)
STEP = 200
ALPHAS = np.array([1.2] * 3 + [0.43] * 4 + [0.52], np.float32)
#: what the net computes: its kernel holds float32 sqrt(alpha), squared back in float64 by the exact analysis
NET_ALPHAS = np.sqrt(ALPHAS).astype(np.float32).astype(np.float64) ** 2
SPLIT = MeasureConfig(mc_samples=2000, attack_points=6, method="splitting", splitting_particles=40,
                      splitting_repeats=4, splitting_max_levels=40, attack_restarts=0, seed=3, steps=(STEP,))
#: the end-to-end tests train a run and compile every measurement (about 20 s of CPU); the cheap
#: guard of the radius is :func:`test_run_measurement_is_built_for_the_task_radius`
SLOW = pytest.mark.slow
AUTO = dataclasses.replace(SPLIT, method="auto", min_errors=40)  # inner ~134 MC errors, outer ~6


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A quad-w16 run trained for :data:`STEP` steps at R = 1.5 (``spheres.nets.runs.run_training``):
    its directory and the trained variables of its one net."""
    cfg = config_from_dict({"task": {"dim": 8, "outer_radius": R}, "model": {"name": "quad-w16"},
                            "train": {"steps": STEP, "batch_size": 16, "learning_rates": [3e-2], "seeds": [0],
                                      "train_sizes": [0], "checkpoints": 1, "chunk_steps": STEP}})
    out = tmp_path_factory.mktemp("radius") / "run"
    run_training(cfg, out, progress=False)
    return out, load_run(out).load_variables(STEP)


@pytest.fixture(scope="module")
def run_dir(trained):
    """The trained run with its checkpoint replaced by the net with :data:`ALPHAS`
    (``logit = ||W x||^2 - 1``, ``W`` = diag(sqrt(alpha)) padded with zero rows)."""
    out, trained_variables = trained
    variables = jax.tree.map(np.copy, trained_variables)
    params = variables["params"]
    kernel = np.zeros_like(params["hidden"]["kernel"])
    kernel[0, np.arange(8), np.arange(8)] = np.sqrt(ALPHAS)
    params["hidden"]["kernel"] = kernel
    params["w"] = np.ones_like(params["w"])
    params["b"] = -np.ones_like(params["b"])
    write_bytes_atomic(rundir.checkpoint_path(out, STEP), rundir.tree_to_bytes(variables))
    return out


def _expected_loss(variables, radius, n=200_000):
    """E[cross-entropy] of the net over the task with outer radius ``radius`` (labels 1/2 each),
    by float64 Monte Carlo here, and the per-example standard deviation."""
    W, w, b = quadratic_weights(jax.tree.map(lambda a: np.asarray(a[0]), variables))
    g = np.random.default_rng(0).normal(size=(n, 8))
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    logit = lambda x: w * np.sum((x @ W.T) ** 2, axis=1) + b  # noqa: E731
    losses = np.concatenate([np.logaddexp(0, logit(u)), np.logaddexp(0, -logit(radius * u))])
    return losses.mean(), losses.std()


@SLOW
def test_training_samples_the_task_radius(trained):
    """The loss the run reports (on EVAL_SIZE fresh task points) is the expected loss of its net at
    R = 1.5, not at the default 1.3: training and evaluation draw the outer sphere at the task's radius."""
    out, variables = trained
    run = load_run(out)
    assert run.config.task.outer_radius == R
    (final,) = [r for r in run.metrics if r["step"] == STEP]
    mean, sd = _expected_loss(variables, R)
    se = sd / np.sqrt(EVAL_SIZE) + 1e-3 * mean  # + the Monte Carlo error of the expectation
    assert abs(final["loss"] - mean) < 4 * se, (final["loss"], mean, se)
    for wrong in (1.0, 1.3):
        assert abs(final["loss"] - _expected_loss(variables, wrong)[0]) > 6 * se, wrong


@pytest.fixture(scope="module")
def measured(run_dir, tmp_path_factory):
    """``measure_run`` with ``method = "splitting"`` (through the files) and ``measure_step`` with
    ``"auto"``, sharing one compiled measurement."""
    run = load_run(run_dir)
    assert run.config.task.outer_radius == R
    m = make_run_measurement(run.config, SPLIT)
    split_dir = tmp_path_factory.mktemp("split") / "run"
    shutil.copytree(run_dir, split_dir)
    split_rows = measure_run(split_dir, SPLIT, progress=False, measurement=m)
    assert [r["step"] for r in split_rows] == [STEP]
    auto_rows = measure_step(run, STEP, AUTO, m)
    return run, m, split_dir, split_rows[0], auto_rows[0]


def exact(radius):
    return quadratic.error_rates(NET_ALPHAS, radius)


def test_run_measurement_is_built_for_the_task_radius():
    """The cheap guard (no training, nothing compiled: the programs are jitted lazily): every
    measurement of a run takes its outer radius from ``task.outer_radius``."""
    cfg = config_from_dict({"task": {"dim": 8, "outer_radius": R}, "model": {"name": "quad-w16"}})
    m = make_run_measurement(cfg, SPLIT)
    outer = m.splitting.with_config(dataclasses.replace(m.splitting.config, sphere="outer")).config
    assert m.monte_carlo.config.outer_radius == R and outer.radius == R and outer.label == 1
    assert m.splitting.config.radius == 1.0 and m.attack.radius == 1.0
    assert m.attack_outer.radius == R and m.attack_outer.label == 1


def test_the_net_separates_the_radii():
    """The premise: the exact outer rate at R = 1.5 is far from those at 1.3 and 1.0."""
    assert 2e-3 < exact(R).outer < 4e-3 and 0.05 < exact(R).inner < 0.09
    assert exact(1.3).outer > 50 * exact(R).outer and exact(1.0).outer > 0.9


@SLOW
def test_settings_carry_the_task_radius(measured):
    _, m, *_ = measured
    assert m.monte_carlo.config.outer_radius == R and m.splitting.config.outer_radius == R
    assert m.attack.radius == 1.0 and m.attack_outer.radius == R
    with pytest.raises(InputError) as info:  # a measurement compiled for another budget is refused
        measure_step(load_run(measured[0].path), STEP, dataclasses.replace(SPLIT, mc_samples=3000), m)
    assert info.value.field == "measurement"


def _covers(row, sphere, method):
    lo, hi = row[f"mu_{sphere}_lower"], row[f"mu_{sphere}_upper"]
    assert row[f"mu_{sphere}_method"] == method and row[f"mu_{sphere}_status"] == "ok", row
    truth = getattr(exact(R), sphere)
    assert lo <= truth <= hi, (sphere, method, lo, truth, hi)
    if sphere == "outer":  # the wrong radii lie outside the interval
        for wrong in (1.0, 1.3):
            assert not lo <= exact(wrong).outer <= hi, (wrong, lo, hi)


@SLOW
def test_splitting_rates_cover_the_exact_rates_at_r_1_5(measured):
    _, _, _, row, _ = measured
    assert row["outer_radius"] == R
    assert row["exact_mu_outer"] == pytest.approx(exact(R).outer, rel=1e-9)
    assert row["exact_mu_inner"] == pytest.approx(exact(R).inner, rel=1e-9)
    for sphere in ("inner", "outer"):
        _covers(row, sphere, "splitting")
        assert row[f"mu_{sphere}_samples"] == row[f"mu_{sphere}_splitting_evaluations"] > 0
        # the two halves of the 4 repeats were compared, and agree (a disagreement would say "disagree")
        assert row[f"mu_{sphere}_agreement_p"] > pipeline.AGREEMENT_ALPHA
    # the Monte Carlo counts beside them (kept in *_mc_*): a 99.99% CP interval contains the exact rates
    for sphere in ("inner", "outer"):
        k, n = row[f"mu_{sphere}_mc_errors"], row[f"mu_{sphere}_mc_samples"]
        lo, hi = (stats.beta.ppf(5e-5, k, n - k + 1) if k else 0.0), stats.beta.ppf(1 - 5e-5, k + 1, n - k)
        assert n == 2000 and lo <= getattr(exact(R), sphere) <= hi, (sphere, k)
    assert row["alphas_outside"] == int(np.sum((ALPHAS < 1 / R**2) | (ALPHAS > 1))) == 7  # 8 at R = 1.3


@SLOW
def test_auto_splits_exactly_where_monte_carlo_saw_few_errors(measured):
    _, _, _, split_row, row = measured
    methods = {}
    for sphere in ("inner", "outer"):
        # Monte Carlo runs first with the same keys whatever the method
        assert row[f"mu_{sphere}_mc_errors"] == split_row[f"mu_{sphere}_mc_errors"]
        methods[sphere] = "splitting" if row[f"mu_{sphere}_mc_errors"] < AUTO.min_errors else "monte_carlo"
        _covers(row, sphere, methods[sphere])
    assert methods == {"inner": "monte_carlo", "outer": "splitting"}  # both branches
    assert row["mu_outer"] == split_row["mu_outer"]  # the same splitting stream as method="splitting"
    assert row["mu_inner"] == row["mu_inner_mc_errors"] / 2000


@SLOW
def test_outer_attack_runs_on_the_sphere_of_radius_1_5(measured):
    """The exact d(E) on the attack's start points, recomputed here: the start points are drawn
    with the pipeline's documented key (``fold_in(k_attack, 1)``) on the sphere of radius R."""
    run, _, _, row, _ = measured
    key = jax.random.fold_in(jax.random.key(SPLIT.seed), STEP)
    _, k_attack, _ = jax.random.split(key, 3)
    acfg = attacks.AttackConfig(dim=8, points=SPLIT.attack_points, sphere="outer", outer_radius=R)
    xs = np.asarray(attacks.start_points(jax.random.fold_in(k_attack, 1), acfg), np.float64)
    np.testing.assert_allclose(np.linalg.norm(xs, axis=1), R, rtol=1e-5)
    xs *= R / np.linalg.norm(xs, axis=1, keepdims=True)
    # W = diag(sqrt(alpha)): the net's eigenbasis is the standard one up to order; distances are
    # rotation-invariant, so the exact distance on the points in that basis is the net's
    truth = quadratic.mean_nearest_error_distance(NET_ALPHAS, xs, R, label=1)
    assert truth.n_unreachable == 0 and 0 < truth.mean < 2 * R
    assert row["exact_mean_distance_outer"] == pytest.approx(truth.mean, rel=1e-6)
    assert row["attack_outer_failures"] == 0 and row["attack_outer_points"] == SPLIT.attack_points
    assert truth.mean - 1e-4 <= row["attack_outer_mean_distance"] <= 1.05 * truth.mean + 1e-4
    # the inner sphere's points stay on the unit sphere
    inner = quadratic.mean_nearest_error_distance(NET_ALPHAS, np.asarray(attacks.start_points(
        k_attack, dataclasses.replace(acfg, sphere="inner")), np.float64), 1.0)
    assert row["exact_mean_distance"] == pytest.approx(inner.mean, rel=1e-5)


@SLOW
def test_typed_rows_carry_the_radius_and_its_bound(measured):
    _, _, split_dir, row, _ = measured
    (typed,) = read_rows(split_dir / "results.csv")
    assert typed.outer_radius == R and typed.mu_outer_method == "exact" and typed.mu_outer == pytest.approx(exact(R).outer, rel=1e-9)
    assert typed.optimal_distance_outer == pytest.approx(R * float(theory.mean_distance_to_cap(typed.mu_outer, 8)),
                                                         rel=1e-12)
    assert typed.exact_distance_outer == row["exact_mean_distance_outer"]
    assert typed.accuracy_samples == EVAL_SIZE
