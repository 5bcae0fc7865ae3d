"""The paper's two claims about nets that almost never err, computed from result rows: how close the
nets at error <= 1e-6 on both spheres come to the bound, and how often the attack finds an error where
plain sampling sees none. Rows are hand-made, so every count and median is known."""

import dataclasses

import numpy as np

import pytest

from spheres.experiments import common
from spheres.maths import stats
from spheres.measure.results import ResultRow

from test_results import measurement


def base_row(**fields) -> ResultRow:
    return dataclasses.replace(ResultRow.from_measurement(measurement()), **{"selected": 1, **fields})


def exact_quad(mu, ratio, failures=0, points=200, **fields):
    return base_row(model="quad-w1000", mu=mu, mu_lower=mu, mu_upper=mu, mu_method="exact", mu_outer=mu,
                    mu_outer_lower=mu, mu_outer_upper=mu, mu_outer_method="exact", ratio=ratio,
                    ratio_outer=ratio, distance=0.1, distance_outer=0.1, distance_points=points,
                    distance_outer_points=points, distance_failures=failures, distance_outer_failures=failures,
                    **fields)


def test_monte_carlo_counts_travel_into_the_rows():
    m = measurement()
    assert ResultRow.from_measurement(m).mu_mc_errors is None  # no count column: unknown, not 0
    m.update(mu_inner_mc_errors=0, mu_outer_mc_errors=4)
    row = ResultRow.from_measurement(m)
    assert (row.mu_mc_errors, row.mu_outer_mc_errors) == (0, 4)


def test_low_error_regime_counts_only_selected_nets_below_the_level_on_both_spheres():
    rows = [exact_quad(5e-7, 0.8), exact_quad(3e-7, 0.6),
            exact_quad(2e-6, 0.1),                     # above the level
            exact_quad(1e-8, 0.2, selected=0),          # not selected
            dataclasses.replace(exact_quad(1e-8, 0.3), mu_outer_upper=5e-6)]  # the outer interval reaches above
    s = common.low_error_stats(rows)
    assert s["checkpoints"] == 2
    assert s["inner"]["median"] == pytest.approx(0.7) and s["inner"]["points"] == 2
    assert (s["inner"]["min"], s["inner"]["max"]) == (0.6, 0.8)
    # the closest is sought among the selected rows only (an unselected one-class net can be lower)
    none = common.low_error_stats([exact_quad(2e-6, 0.1), exact_quad(4e-6, 0.1), exact_quad(1e-9, 0.1, selected=0)])
    assert none["checkpoints"] == 0 and none["closest"] == 2e-6
    text = " ".join(common.regime_findings("t", {"selected": 2, "low_error": none}))
    assert "no selected checkpoint reaches an error rate of at most 1.00e-06" in text and "2.00e-06" in text
    assert "per model, the selected checkpoint with the lowest upper end" in text and "quad-w1000 2.00e-06" in text
    # a net with attack failures enters no ratio, and the finding says how many were left out
    s = common.low_error_stats([exact_quad(5e-7, 0.8), exact_quad(5e-7, 0.9, failures=3)])
    assert (s["inner"]["points"], s["inner"]["of"], s["inner"]["with_failures"]) == (1, 2, 1)
    text = " ".join(common.regime_findings("t", {"selected": 2, "low_error": s}))
    assert "over the 1 of the 2 with a complete d(E); 1 left out for attack failures" in text


def test_rare_errors_split_into_exact_and_monte_carlo_groups_with_an_exact_interval():
    relu = dict(mu_method="splitting", mu_samples=100000, mu=3e-6, mu_upper=6e-6, distance=0.2,
                distance_points=200, ratio=0.5)
    rows = [exact_quad(5e-8, 0.9, failures=10),      # fewer than one error expected in 1e7 samples
            exact_quad(5e-8, 0.7, failures=0),
            exact_quad(1e-6, 0.5),                    # ten expected: not in the exact group
            base_row(mu_mc_errors=0, distance_failures=2, **relu),
            base_row(mu_mc_errors=3, distance_failures=0, **relu),   # Monte Carlo saw errors
            base_row(mu_mc_errors=0, distance_failures=0, selected=0, **relu)]  # not selected
    s = common.rare_error_stats(rows)
    g = s["inner"]["exact"]
    assert (g["checkpoints"], g["points"], g["found"]) == (2, 400, 390)
    lo, hi = stats.clopper_pearson(390, 400)
    assert (g["found_lower"], g["found_upper"]) == (pytest.approx(float(lo)), pytest.approx(float(hi)))
    assert g["ratio"]["points"] == 1 and g["ratio"]["median"] == 0.7  # the net with failures enters no ratio
    assert (g["found_fraction_min"], g["found_fraction_median"]) == (0.95, 0.975)
    mc = s["inner"]["monte_carlo"]
    assert (mc["checkpoints"], mc["points"], mc["found"], mc["samples"]) == (1, 200, 198, [100000])
    assert mc["ratio"]["points"] == 0
    text = " ".join(common.regime_findings("t", {"selected": 5, "rare_errors": s}))
    assert "from 390 of 400 attacked points" in text and "from 198 of 200" in text and "1e+05 samples" in text
    assert "per checkpoint median 0.975, lowest 0.95" in text
    # no rows in a group, or rows without attacked points: no finding, no division by zero
    empty = common.rare_error_stats([base_row(mu_mc_errors=0, distance_points=None, **{
        k: v for k, v in relu.items() if k != "distance_points"})])
    assert empty["inner"]["monte_carlo"]["points"] == 0
    lines = common.regime_findings("t", {"selected": 1, "rare_errors": empty})
    assert len(lines) == 2 and all("had zero Monte Carlo errors" in line and "no test" in line for line in lines)


def test_extra_run_steps_still_needed_follow_the_curve_exactly():
    """A net of ``extra_runs`` whose rates fall as an exact power law, outer twice inner: the steps
    to 1e-6 on both come from the outer sphere, 1e-6 = 2e-2 (t / 1000)^-2 at t = 1000 sqrt(2e4)."""
    from spheres.experiments import tradeoff
    rows = []
    for t in (1000, 2000, 4000, 8000):
        mu = 1e-2 * (t / 1000) ** -2.0
        rows.append(base_row(step=t, mu=mu, mu_lower=mu / 1.2, mu_upper=mu * 1.2, mu_method="splitting",
                             mu_outer=2 * mu, mu_outer_lower=2 * mu / 1.2, mu_outer_upper=2.4 * mu,
                             mu_outer_method="splitting", run="long", train_size=0))
    rows.append(dataclasses.replace(rows[0], run=None))  # the model's own ensemble is left out
    (e,) = tradeoff.extra_run_stats(rows)
    assert e["run"] == "long" and e["checkpoints"] == [1000, 2000, 4000, 8000] and e["last_step"] == 8000
    assert e["limiting_sphere"] == "outer" and e["extrapolated"]
    assert e["steps"] == pytest.approx(1000 * 2e4 ** 0.5, rel=1e-6)
    assert e["steps_lower"] < e["steps"] < e["steps_upper"]
    assert e["slope_inner"] == pytest.approx(-2.0) and e["worst_upper"] == pytest.approx(2.4 * rows[3].mu)
    (text,) = tradeoff._extra_run_findings({"extra_runs": [e]})
    assert "1.41e+05 steps" in text and "outer sphere limits" in text
    # a net that got there and stayed: measured, with the step
    low = [dataclasses.replace(r, mu_upper=r.mu * 1e-3, mu_outer_upper=r.mu * 1e-3) for r in rows[:4]]
    (m,) = tradeoff.extra_run_stats(low, level=1e-5)
    assert not m["extrapolated"] and m["steps"] == 1000


def test_schedule_law_fits_the_end_points_of_schedules_that_differ_only_in_length():
    """Three schedules of one recipe whose END rates follow mu(S) = 1e-2 (S / 1000)^-1 inner and twice
    that outer: the law's slope is -1 and 1e-6 on both spheres comes at S = 1000 x 2e4 (outer limits);
    a run of another shape (batch size) is no member of the group; mid-schedule checkpoints do not enter."""
    import tomllib
    from spheres.experiments import tradeoff
    from spheres.experiments.reproduce import config_from_table
    toml = ('experiments = ["tradeoff"]\n[tradeoff]\nmodels = ["relu-w8-d1"]\n[tradeoff.train]\nsteps = 10\n'
            'train_sizes = [0]\n')
    for label, steps, batch in (("a", 1000, 50), ("b", 4000, 50), ("c", 16000, 50), ("other", 2000, 64)):
        toml += (f'[tradeoff.extra_runs.{label}]\nmodel = "relu-w8-d1"\nsteps = {steps}\nbatch_size = {batch}\n'
                 f'checkpoints = {3 if label == "c" else 1}\nchunk_steps = {steps}\n')
    cfg = config_from_table(tomllib.loads(toml)).section("tradeoff")
    groups = tradeoff.schedule_groups(cfg)
    assert groups == {"a + b + c": ([("a", 1000), ("b", 4000), ("c", 16000)], 50)}
    rows = []
    for label, t in (("a", 1000), ("b", 4000), ("c", 16000), ("c", 4000), ("other", 2000)):
        mu = 1e-2 * (t / 1000) ** -1.0 * (3.0 if label == "c" and t == 4000 else 1.0)  # mid-schedule: off the law
        rows.append(base_row(model="relu-w8-d1", step=t, run=label, train_size=0, mu=mu, mu_lower=mu / 1.1,
                             mu_upper=mu * 1.1, mu_method="splitting", mu_outer=2 * mu, mu_outer_lower=2 * mu / 1.1,
                             mu_outer_upper=2.2 * mu, mu_outer_method="splitting"))
    (e,) = tradeoff.schedule_law(rows, groups)
    assert e["runs"] == ["a", "b", "c"] and e["lengths"] == [1000, 4000, 16000] and e["batch_size"] == 50
    assert e["slope_inner"] == pytest.approx(-1.0) and e["slope_outer"] == pytest.approx(-1.0)
    assert e["limiting_sphere"] == "outer" and e["steps"] == pytest.approx(1000 * 2e4, rel=1e-6)
    assert e["steps_lower"] < e["steps"] < e["steps_upper"]
    (text,) = tradeoff._schedule_law_findings({"schedule_law": [e]})
    assert "2.00e+07 steps" in text and "b = -1.00" in text and "1250.0x the longest" in text


def test_schedule_law_on_scattered_lengths_uses_students_t_and_rejects_a_bad_form():
    """Three lengths whose end rates bend (the middle one 3x off a power law, errors of ~10%): the
    residuals set the scale, the 95% interval takes Student's t with 1 dof (12.7 SE, not 1.96), the fit
    is rejected at p < 0.05, and no answer lies below the longest schedule run."""
    import math
    from scipy import stats as scipy_stats
    from spheres.experiments import recipes, tradeoff
    rows = []
    for label, t in (("a", 1000), ("b", 4000), ("c", 16000)):
        mu = 1e-2 * (t / 1000) ** -1.0 * (3.0 if label == "b" else 1.0)
        rows.append(base_row(model="relu-w8-d1", step=t, run=label, train_size=0, mu=mu, mu_lower=mu / 1.1,
                             mu_upper=mu * 1.1, mu_method="splitting", mu_outer=mu, mu_outer_lower=mu / 1.1,
                             mu_outer_upper=mu * 1.1, mu_outer_method="splitting"))
    (e,) = tradeoff.schedule_law(rows, {"a + b + c": ([("a", 1000), ("b", 4000), ("c", 16000)], 50)})
    assert e["dof_outer"] == 1 and e["chi2_outer"] > 1
    assert e["quantile_outer"] == pytest.approx(scipy_stats.t.ppf(0.975, 1))
    assert e["p_value_outer"] < 0.05
    fit = recipes.curve_fit(rows, "outer", decades=math.inf)
    r = recipes.extrapolate(fit, 1e-6)
    assert math.log10(r.upper / r.lower) == pytest.approx(2 * 12.706 * r.log10_se, rel=1e-3)
    assert e["steps_lower"] >= 16000
    (text,) = tradeoff._schedule_law_findings({"schedule_law": [e]})
    assert "REJECTED" in text and "Student's t x 12.7 SE" in text


def test_an_unreached_level_is_never_placed_before_the_last_checkpoint():
    from spheres.experiments import recipes
    # a wide fit whose lower end would fall before the last checkpoint, which did not reach the level
    fit = recipes.PowerLaw(0.0, -1.0, np.diag([1.0, 0.1]), 3, 100.0, 1000.0)
    r = recipes.steps_to_reach([100, 300, 1000], [1e-2, 5e-3, 2e-3], [1.1e-2, 5.5e-3, 2.2e-3], fit, 1e-4)
    assert r.extrapolated and r.lower >= 1000 and r.steps >= 1000


def _law_rows(lengths, factor=1.0, run_of=lambda t: f"s{t}"):
    """End points mu(S) = 1e-2 (S / 1000)^-1 inner and twice that outer (10% intervals), times ``factor``."""
    rows = []
    for t in lengths:
        mu = 1e-2 * (t / 1000) ** -1.0 * factor
        rows.append(base_row(model="relu-w8-d1", dim=16, step=t, run=run_of(t), train_size=0, seed=0,
                             learning_rate=0.003, mu=mu, mu_lower=mu / 1.1, mu_upper=mu * 1.1, mu_method="splitting",
                             mu_outer=2 * mu, mu_outer_lower=2 * mu / 1.1, mu_outer_upper=2.2 * mu,
                             mu_outer_method="splitting"))
    return rows


def _prior_law(tmp_path):
    """An earlier tradeoff's law (3 schedules of 1,000, 4,000 and 16,000 steps) and its results table."""
    import json
    from spheres.experiments import tradeoff
    from spheres.measure.results import write_rows
    prior = _law_rows((1000, 4000, 16000))
    (e,) = tradeoff.schedule_law(prior, {"g": ([(f"s{t}", t) for t in (1000, 4000, 16000)], 500)})
    (tmp_path / "law.json").write_text(json.dumps([e]))
    write_rows(tmp_path / "results.csv", prior)
    return tmp_path / "law.json", tmp_path / "results.csv"


def _law_config(law, results, steps=64000, batch=500):
    import tomllib
    from spheres.experiments.reproduce import config_from_table
    toml = (f'experiments = ["tradeoff"]\n[tradeoff]\nmodels = ["relu-w8-d1"]\nprior_law = "{law}"\n'
            f'prior_results = "{results}"\n[tradeoff.task]\ndim = 16\n[tradeoff.train]\nsteps = {steps}\n'
            f'batch_size = {batch}\nlearning_rates = [0.003]\ntrain_sizes = [0]\n')
    return config_from_table(tomllib.loads(toml)).section("tradeoff")


def test_a_longer_schedule_on_the_law_falls_inside_its_prediction_and_the_refit_keeps_the_slope(tmp_path):
    """The earlier law (slope -1 on both spheres) predicts 1e-2 / 64 inner and twice that outer at
    64,000 steps; an end point there on the law is inside, the refit over 4 lengths keeps slope -1 and
    puts 1e-6 on both spheres at 2e7 steps (the outer sphere limits); one 10x above is OUTSIDE."""
    from spheres.experiments import tradeoff
    law, results = _prior_law(tmp_path)
    cfg = _law_config(law, results)
    (t,) = tradeoff.law_tests(_law_rows((16000, 64000), run_of=lambda t: None), cfg)
    assert t["length"] == 64000 and t["prior_lengths"] == [1000, 4000, 16000] and t["run"] == "relu-w8-d1"
    assert t["predicted_inner"] == pytest.approx(1e-2 / 64, rel=1e-6)
    assert t["predicted_outer"] == pytest.approx(2e-2 / 64, rel=1e-6)
    assert t["predicted_inner_lower"] < t["predicted_inner"] < t["predicted_inner_upper"]
    assert t["inside_inner"] and t["inside_outer"]
    assert t["refit_lengths"] == [1000, 4000, 16000, 64000]
    assert t["refit_outer"]["slope"] == pytest.approx(-1.0) and t["refit_outer"]["points"] == 4
    assert t["refit_limiting_sphere"] == "outer" and t["refit_steps"] == pytest.approx(2e7, rel=1e-6)
    (text,) = tradeoff._law_test_findings({"law_test": [t]})
    assert "inside the prediction on the inner sphere" in text and "4.0x the longest" in text
    assert "2.00e+07 steps" in text and "above 1.00e-06 on at least one sphere" in text
    assert "normal, x 1.96 SE" in text and "a weak test" not in text and "0.00 SD from the fit" in text
    # 10x above the law: outside on both spheres (the earlier fit has no scatter: a 1.96-SE interval)
    (off,) = tradeoff.law_tests(_law_rows((64000,), factor=10.0, run_of=lambda t: None), cfg)
    assert off["inside_inner"] is False and off["inside_outer"] is False
    assert off["predicted_inner_upper"] < 10 * 1e-2 / 64
    assert "OUTSIDE the prediction on the outer sphere" in tradeoff._law_test_findings({"law_test": [off]})[0]


def test_the_law_test_skips_other_recipes_and_names_bad_inputs(tmp_path):
    from spheres.core.errors import InputError
    from spheres.experiments import tradeoff
    law, results = _prior_law(tmp_path)
    # another batch size is another recipe; a length the law had is no test
    assert tradeoff.law_tests(_law_rows((64000,), run_of=lambda t: None), _law_config(law, results, batch=50)) == []
    assert tradeoff.law_tests(_law_rows((16000,), run_of=lambda t: None),
                              _law_config(law, results, steps=16000)) == []
    with pytest.raises(InputError, match="prior_results"):
        _law_config(law, "")
    with pytest.raises(InputError, match="prior_law.*no such file"):
        _law_config(tmp_path / "missing.json", results)
    (tmp_path / "short.csv").write_text(results.read_text().splitlines()[0] + "\n")
    with pytest.raises(InputError, match="lacks an end point"):
        tradeoff.law_tests(_law_rows((64000,), run_of=lambda t: None), _law_config(law, tmp_path / "short.csv"))


def test_the_law_test_figure_draws_from_the_saved_table(tmp_path):
    import json
    from spheres.core.io import json_safe
    from spheres.experiments import tradeoff
    from spheres.plotting.tradeoff import draw_law_test
    law, results = _prior_law(tmp_path)
    tests = tradeoff.law_tests(_law_rows((64000,), factor=3.0, run_of=lambda t: None), _law_config(law, results))
    (tmp_path / "law_test.json").write_text(json.dumps(json_safe(tests)))
    (png,) = draw_law_test(tmp_path / "law_test.json", tmp_path / "law_test.png")
    assert png.stat().st_size > 10_000
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(Exception, match="non-empty list"):
        draw_law_test(tmp_path / "empty.json", tmp_path / "x.png")


def test_the_prediction_interval_adds_the_scaled_new_error_and_takes_students_t():
    """A fit with chi2/dof = 4 on 1 dof: the new end point's SD (0.1) is scaled by 4 like the fit's
    errors, the multiplier is t(0.975, 1) = 12.71, and the stated-error z uses neither scaling."""
    import math
    from scipy import stats as scipy_stats
    from spheres.experiments import recipes
    cov = np.array([[0.04, -0.01], [-0.01, 0.01]])  # already scaled by chi2 = 4, as fit_power_law leaves it
    fit = recipes.PowerLaw(-1.0, -0.5, cov, 3, 10.0, 1000.0, chi2=4.0, dof=1)
    centre, lo, hi = recipes.predict(fit, 1e4, sigma=0.1)
    g = np.array([1.0, 4.0])
    se = math.sqrt(g @ cov @ g + 0.1**2 * 4.0)  # 0.04 - 0.08 + 0.16 = 0.12; + 0.04
    assert centre == pytest.approx(-3.0)
    assert hi - centre == pytest.approx(scipy_stats.t.ppf(0.975, 1) * se, rel=1e-9)
    assert centre - lo == pytest.approx(hi - centre, rel=1e-12)
    z = recipes.stated_z(fit, 1e4, -2.5, sigma=0.1)
    assert z == pytest.approx(0.5 / math.sqrt(0.12 / 4.0 + 0.01), rel=1e-9)


def test_the_law_test_refuses_a_table_that_is_not_the_laws_and_handles_a_rate_of_zero(tmp_path):
    import json
    from spheres.core.errors import InputError
    from spheres.experiments import tradeoff
    law, results = _prior_law(tmp_path)
    e = json.loads(law.read_text())
    e[0]["slope_outer"] = -0.7  # the law says another slope than its end points give
    (tmp_path / "other.json").write_text(json.dumps(e))
    with pytest.raises(InputError, match="not one run's"):
        tradeoff.law_tests(_law_rows((64000,), run_of=lambda t: None), _law_config(tmp_path / "other.json", results))
    cfg = _law_config(law, results)
    zero = [dataclasses.replace(r, mu=0.0, mu_lower=0.0) for r in _law_rows((64000,), run_of=lambda t: None)]
    high = [dataclasses.replace(zero[0], mu_upper=1e-2)]  # no error seen, upper end inside the interval
    (t,) = tradeoff.law_tests(high, cfg)
    assert t["inside_inner"] is None and t["stated_z_inner"] is None and t["inside_outer"] is True
    assert "not tested against the prediction on the inner sphere" in tradeoff._law_test_findings({"law_test": [t]})[0]
    low = [dataclasses.replace(zero[0], mu_upper=1e-6)]  # its upper end below the whole interval
    (t,) = tradeoff.law_tests(low, cfg)
    assert t["inside_inner"] is False
