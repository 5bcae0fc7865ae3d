"""The unreached-pocket diagnostic: independent splitting estimates of different rates are flagged,
estimates of one rate are not (at a stated false-alarm rate)."""

import math

import jax
import numpy as np
import pytest
from scipy import stats

from spheres.core.errors import InputError
from spheres.maths import stats as estimates
from spheres.measure import splitting as sp


def fake(log_value, se, confidence=0.95):
    """A LogRateEstimate with natural-log value ``log_value`` and log standard error ``se``."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    l10 = log_value / math.log(10)
    h = z * se / math.log(10)
    return estimates.LogRateEstimate(
        value=math.exp(log_value), lower=10 ** (l10 - h), upper=10 ** (l10 + h), log10_value=l10,
        log10_lower=l10 - h, log10_upper=l10 + h, confidence=confidence, rel_std=se, rel_std_ideal=se,
        evaluations=1, runs=8, particles=100, levels=1, log10_level_probability=l10, acceptance=0.3,
        method="splitting", status="ok")


def test_false_alarm_rate_and_power_with_exact_standard_errors():
    """With estimates drawn from their stated normal law, the flag fires at rate alpha = 0.05 (2000
    trials: binomial SE 0.005, band +-0.015); two rates 1.5x apart with se = 0.1 are flagged in >= 95%."""
    rng = np.random.default_rng(0)
    alpha, trials = 0.05, 2000
    same = sum(sp.check_agreement([fake(-10 + 0.1 * rng.normal(), 0.1) for _ in range(4)], alpha).flagged
               for _ in range(trials))
    assert abs(same / trials - alpha) < 0.015, same / trials
    shift = math.log(1.5)
    diff = sum(sp.check_agreement([fake(-10 + 0.1 * rng.normal(), 0.1), fake(-10 + shift + 0.1 * rng.normal(), 0.1)],
                                  alpha).flagged for _ in range(200))
    # z = 0.405 / 0.141 = 2.87: power P(|N(2.87, 1)| > 1.96) = 0.82 for one pair
    assert 0.72 < diff / 200 < 0.92, diff / 200


def test_real_splitting_estimates_of_different_rates_are_flagged_and_of_one_rate_not():
    d = 20
    cfg = sp.SplittingConfig(dim=d, n_particles=100, n_repeats=8)
    a = np.full(d, 0.5, np.float32)
    a[0] = 12.0   # inner error rate ~ P(x_1^2 > 0.5/11.5) ~ 1e-1.5
    b = a.copy()
    b[0] = 4.0    # much rarer
    split = sp.make_splitting(sp.ellipsoid_logit, cfg)
    same = [split(jax.random.key(k), sp.ellipsoid_params(a, cfg)) for k in range(3)]
    other = split(jax.random.key(9), sp.ellipsoid_params(b, cfg))
    assert not sp.check_agreement(same, 0.01).flagged
    res = sp.check_agreement(same[:2] + [other], 0.01)
    assert res.flagged and res.dof == 2 and res.p_value < 1e-6


def test_bad_input():
    with pytest.raises(InputError) as info:
        sp.check_agreement([fake(-1, 0.1)])
    assert info.value.field == "estimates"
    with pytest.raises(InputError) as info:
        sp.check_agreement([fake(-1, 0.1), fake(-1, 0.1)], alpha=1.5)
    assert info.value.field == "alpha"
    with pytest.raises(InputError):
        sp.check_agreement([fake(-1, 0.1), fake(-1, 0.1)._replace(status="stalled")])


def _runs(log_estimates, rel_var=0.01, status=None):
    """SplittingRuns of shape (models, M) with the given per-run natural-log estimates."""
    y = np.asarray(log_estimates, np.float32)
    full = lambda v, dt: np.full(y.shape, v, dt)  # noqa: E731
    return sp.SplittingRuns(log_estimate=y, log_level_probability=y, level=full(0.0, np.float32),
                            n_levels=full(20, np.int32), n_evaluations=full(1000, np.int32),
                            status=full(sp.REACHED, np.int32) if status is None else np.asarray(status, np.int32),
                            rel_var_ideal=full(rel_var, np.float32), acceptance=full(0.3, np.float32),
                            theta=full(0.5, np.float32))


def test_pipeline_flags_repeats_whose_halves_disagree():
    """The pipeline's check over the two halves of one estimate's repeats: halves drawn from one law
    pass; a second half 3x lower (log 1.1 apart with spread 0.1) is flagged and its row says
    "disagree"; with fewer than 4 repeats, or a half that did not reach the error region, there is
    nothing to check."""
    from spheres.measure import pipeline
    from spheres.measure.results import ResultRow
    split = sp.make_splitting(sp.ellipsoid_logit, sp.SplittingConfig(dim=4, n_repeats=8))
    rng = np.random.default_rng(1)
    same = -10 + 0.1 * rng.normal(size=8)
    shifted = np.concatenate([-10 + 0.1 * rng.normal(size=4), -10 - math.log(3) + 0.1 * rng.normal(size=4)])
    agree, disagree = pipeline.repeat_agreement(split, _runs([same, shifted]))
    assert not agree.flagged and agree.n_estimates == 2 and agree.p_value > 0.05
    assert disagree.flagged and disagree.p_value < 1e-3
    # Q by hand: the two half-estimates and the standard errors their intervals imply
    halves = [split.summarize(_runs([shifted[:4]])), split.summarize(_runs([shifted[4:]]))]
    z = stats.norm.ppf(0.975)
    y = [float(h.log10_value[0]) * math.log(10) for h in halves]
    se = [float(h.log10_upper[0] - h.log10_lower[0]) * math.log(10) / (2 * z) for h in halves]
    w = 1 / np.square(se)
    ybar = np.sum(w * y) / np.sum(w)
    assert disagree.q == pytest.approx(float(np.sum(w * (np.asarray(y) - ybar) ** 2)), rel=1e-9)

    cols = pipeline._agreement_columns("mu_inner", disagree)
    assert cols["mu_inner_status"].startswith("disagree") and cols["mu_inner_agreement_p"] == disagree.p_value
    assert pipeline._agreement_columns("mu_inner", agree) == {"mu_inner_agreement_p": agree.p_value}
    row = {"model": "relu-w4-d1", "dim": 4, "seed": 0, "learning_rate": 0.01, "train_size": 0, "step": 1,
           "loss": 0.1, "accuracy": 1.0, "outer_radius": 1.3, "mu_inner": 4.5e-5, "mu_inner_lower": 3e-5,
           "mu_inner_upper": 6e-5, "mu_inner_method": "splitting", "mu_outer": 0.0, "mu_outer_lower": 0.0,
           "mu_outer_upper": 1e-3, "mu_outer_method": "monte_carlo", "mu_outer_status": "ok", **cols}
    assert ResultRow.from_measurement(row).mu_status == cols["mu_inner_status"]  # carried into the tables

    assert pipeline.repeat_agreement(split, _runs([same[:3]])) == [None]  # too few repeats for two spreads
    failed = np.full(8, sp.REACHED)
    failed[6] = sp.MAX_LEVELS
    assert pipeline.repeat_agreement(split, _runs([same], status=[failed])) == [None]
