"""spheres measure: every member x checkpoint measured, exact quad values agree with the estimates,
resumable, bad input exits 2 and writes nothing."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from spheres import cli
from spheres.core.errors import InputError
from spheres.core.io import read_csv
from spheres.measure import attacks, montecarlo, splitting
from spheres.measure.pipeline import MeasureConfig, measure_run
from spheres.nets.config import config_from_dict
from spheres.maths import quadratic
from spheres.nets.models import make_logit_fn, quadratic_weights
from spheres.nets.runs import load_run, run_training

MCFG = MeasureConfig(mc_samples=20_000, attack_points=20, method="monte_carlo")


@pytest.fixture(scope="module")
def quad_run(tmp_path_factory):
    cfg = config_from_dict({"task": {"dim": 8}, "model": {"name": "quad-w16"},
                            "train": {"steps": 300, "batch_size": 50, "learning_rates": [1e-2], "seeds": [0, 1],
                                      "train_sizes": [0], "checkpoints": 3, "chunk_steps": 300}})
    out = tmp_path_factory.mktemp("runs") / "quad"
    run_training(cfg, out, progress=False)
    return out


def test_quad_run_measured_and_graded_against_exact(quad_run, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(quad_run, run_dir)
    rows = measure_run(run_dir, MCFG, progress=False)
    assert len(rows) == 2 * 3  # members x checkpoints
    assert read_csv(run_dir / "measurements.csv") == rows  # the table is the returned rows, value for value
    run = load_run(run_dir)
    alphas = {i: quadratic.alphas_from_weights(*quadratic_weights(jax.tree.map(lambda a: np.asarray(a[i]),
                                                                                 run.load_variables(step))))
              for i in range(2) for step in [300]}
    covered = clt_checked = 0
    for r in rows:
        for sphere in ("inner", "outer"):
            exact, lo, hi = r[f"exact_mu_{sphere}"], r[f"mu_{sphere}_lower"], r[f"mu_{sphere}_upper"]
            assert r[f"mu_{sphere}_samples"] == 20_000 and r[f"mu_{sphere}_method"] == "monte_carlo"
            covered += lo <= exact <= hi
        # the attack's distance is an upper bound on the exact nearest-error distance, on the same points
        if r["attack_failures"] == 0 and r["exact_unreachable"] == 0:
            assert r["attack_mean_distance"] >= r["exact_mean_distance"] - 1e-4
            assert r["attack_mean_distance"] <= 1.05 * r["exact_mean_distance"] + 1e-4
        if r["step"] == 300:  # counted here from the final net's alphas, not by the code under test
            dec = alphas[r["member"]]
            a = np.asarray(dec.alphas, np.float64)
            assert r["alphas_outside"] == int(np.sum((a < 1 / 1.3**2) | (a > 1))) and r["orientation"] == \
                dec.orientation.value
            if r["orientation"] == "outer_if_greater":  # the paper's Eq. 3: Phi(sum(a-1) / sqrt(2 sum (a-1)^2))
                lam, clt_checked = a - 1, clt_checked + 1
                assert r["clt_mu_inner"] == pytest.approx(float(stats.norm.cdf(lam.sum() / np.sqrt(2 * lam @ lam))),
                                                          rel=1e-9)
        assert r["clt_mu_inner"] is not None and 0 <= r["clt_mu_inner"] <= 1
    assert clt_checked >= 1
    # 12 conservative 95% intervals: P(more than 3 misses) < 0.3% even at exactly 95% coverage
    assert covered >= 9


def test_member_rows_carry_their_hyperparameters(quad_run, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(quad_run, run_dir)
    rows = measure_run(run_dir, MeasureConfig(mc_samples=2000, attack_points=4, method="monte_carlo", steps=(300,)),
                       progress=False)
    assert [(r["member"], r["seed"], r["step"]) for r in rows] == [(0, 0, 300), (1, 1, 300)]
    assert all(r["model"] == "quad-w16" and r["dim"] == 8 for r in rows)


@pytest.mark.slow  # default-suite budget; the contract is also checked by a cheaper test
def test_interrupted_measurement_resumes_to_the_same_table(quad_run, tmp_path):
    import shutil
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(quad_run, a)
    shutil.copytree(quad_run, b)
    cfg = MeasureConfig(mc_samples=4000, attack_points=6, method="monte_carlo")
    full = measure_run(a, cfg, progress=False)

    class Stop(Exception):
        pass

    def stop_after_first(step):
        raise Stop

    with pytest.raises(Stop):
        measure_run(b, cfg, progress=False, on_step=stop_after_first)
    assert len(read_csv(b / "measurements.partial.csv")) == 2 and not (b / "measurements.csv").exists()
    computed = []
    import spheres.measure.pipeline as m
    original = m.measure_step
    m.measure_step = lambda run, step, *rest: computed.append(step) or original(run, step, *rest)
    try:
        resumed = measure_run(b, cfg, progress=False)
    finally:
        m.measure_step = original
    assert computed == [s for s in sorted({r["step"] for r in full})][1:]  # the first step was not redone
    assert resumed == full
    assert (a / "measurements.csv").read_text() == (b / "measurements.csv").read_text()


@pytest.mark.slow  # default-suite budget; the contract is also checked by a cheaper test
def test_member_rows_are_the_single_model_measurements(quad_run, tmp_path):
    """The ensemble contract of the pipeline: member i's row is what the single-model measurements
    give with member i's keys (Monte Carlo counts and splitting values bit for bit; the vmapped
    attack to float32 rounding)."""
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(quad_run, run_dir)
    step = 300
    mcfg = MeasureConfig(mc_samples=3000, attack_points=3, method="splitting", splitting_particles=20,
                         splitting_repeats=2, splitting_max_levels=40, seed=4, steps=(step,))
    rows = measure_run(run_dir, mcfg, progress=False)
    run = load_run(run_dir)
    dim, radius = run.config.task.dim, run.config.task.outer_radius
    logit_fn = make_logit_fn(run.config.model, dim)
    k_mc, k_attack, k_split = jax.random.split(jax.random.fold_in(jax.random.key(mcfg.seed), step), 3)
    counter = montecarlo.make_monte_carlo(logit_fn, montecarlo.MonteCarloConfig(dim=dim, samples=3000,
                                                                              outer_radius=radius))
    split_cfg = splitting.SplittingConfig(dim=dim, outer_radius=radius, n_particles=20, n_repeats=2, max_levels=40)
    inner = splitting.make_splitting(logit_fn, split_cfg)
    splitter = {"inner": inner, "outer": inner.with_config(dataclasses.replace(split_cfg, sphere="outer"))}
    attack_cfg = attacks.AttackConfig(dim=dim, points=3, outer_radius=radius)
    search = attacks.make_attack(logit_fn, attack_cfg.schedule)
    xs = attacks.start_points(k_attack, attack_cfg)
    variables = jax.tree.map(jnp.asarray, run.load_variables(step))
    for i, row in enumerate(rows):
        params = jax.tree.map(lambda a: a[i], variables)
        mc = counter(jax.random.fold_in(k_mc, i), params)
        assert (row["mu_inner_mc_errors"], row["mu_outer_mc_errors"]) == (int(mc.inner.count), int(mc.outer.count))
        for label, sphere in enumerate(("inner", "outer")):
            est = splitter[sphere](jax.random.fold_in(jax.random.fold_in(k_split, label), i), params)
            assert row[f"mu_{sphere}_splitting_evaluations"] == est.evaluations
            if est.status == "ok":
                assert row[f"mu_{sphere}_method"] == "splitting"
                assert (row[f"mu_{sphere}"], row[f"mu_{sphere}_lower"], row[f"mu_{sphere}_upper"]) == \
                    (est.value, est.lower, est.upper)
            else:
                assert row[f"mu_{sphere}_method"] == "monte_carlo" and est.status in row[f"mu_{sphere}_status"]
        d = attacks.summarize(search(params, xs, 0))
        assert (row["attack_points"], row["attack_failures"]) == (d.points, d.failures)
        np.testing.assert_allclose(row["attack_mean_distance"], d.value, rtol=1e-5)


def test_cli_json_and_errors(quad_run, tmp_path, capsys):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(quad_run, run_dir)
    assert cli.main(["measure", str(run_dir), "--mc-samples", "1000", "--attack-points", "3", "--method",
                     "monte_carlo", "--step", "300", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # the typed rows: the experiments' column names, with the cap bound beside the measurement
    assert len(rows) == 2 and {"mu", "mu_lower", "mu_upper", "mu_method", "distance", "distance_se",
                               "distance_points", "distance_failures", "optimal_distance", "ratio",
                               "consistent_with_bound", "mu_outer", "distance_outer", "clt_mu"} <= set(rows[0])
    from spheres.maths import theory
    for r in rows:  # quad nets: exact rates; the bound is the exact cap value at them
        assert r["mu_method"] == "exact" and r["mu_lower"] == r["mu"] == r["mu_upper"]
        if 0 < r["mu"] < 1:
            assert r["optimal_distance"] == pytest.approx(float(theory.mean_distance_to_cap(r["mu"], 8)), rel=1e-12)

    for argv, needle in [
        (["measure", str(tmp_path / "missing")], "no such run directory"),
        (["measure", str(run_dir), "--step", "7"], "--step"),
        (["measure", str(run_dir), "--method", "monte_carlo", "--mc-samples", "1000", "--attack-points", "3",
          "--step", "300", "--seed", "5"], "--seed"),
    ]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
    for argv in (["measure", str(run_dir), "--mc-samples", "0"], ["measure", str(run_dir), "--attack-points", "-1"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        assert "--" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


def test_corrupt_run_directory(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.toml").write_text("[task\n")
    with pytest.raises(InputError):
        measure_run(tmp_path / "bad", MCFG, progress=False)
    assert not (tmp_path / "bad" / "measure").exists()


def test_bad_budgets_name_the_flag():
    for kwargs, flag in [({"mc_samples": 0}, "--mc-samples"), ({"attack_points": 1}, "--attack-points"),
                         ({"method": "magic"}, "--method"), ({"splitting_particles": 3}, "--splitting-particles")]:
        with pytest.raises(InputError) as info:
            MeasureConfig(**kwargs)
        assert info.value.field == flag
