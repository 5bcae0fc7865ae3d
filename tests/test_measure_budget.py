"""The splitting budget rule of ``method = "auto"``: splitting is spent on a sphere only for models whose
Monte Carlo error rate on the other sphere is at most ``max_other_error``; the others keep their
Monte Carlo numbers and say why."""

import shutil

import pytest

from spheres.core.errors import InputError
from spheres.measure.pipeline import MeasureConfig, measure_step
from spheres.nets.config import config_from_dict
from spheres.nets.runs import load_run, run_training


@pytest.fixture(scope="module")
def early_run(tmp_path_factory):
    # barely trained quad nets: error rates of a few percent to tens of percent on both spheres
    cfg = config_from_dict({"task": {"dim": 8}, "model": {"name": "quad-w16"},
                            "train": {"steps": 40, "batch_size": 50, "learning_rates": [1e-2], "seeds": [0, 1, 2],
                                      "train_sizes": [0], "checkpoints": 2, "chunk_steps": 40}})
    out = tmp_path_factory.mktemp("runs") / "quad"
    run_training(cfg, out, progress=False)
    return load_run(out)


@pytest.mark.slow  # default-suite budget; its logic is also checked by cheaper tests in this file
def test_splitting_skipped_exactly_where_the_other_sphere_errs_too_much(early_run):
    step = early_run.checkpoint_steps[-1]
    # min_errors above the sample count: Monte Carlo always "sees too few", so only the rule decides
    base = dict(mc_samples=2000, attack_points=2, method="auto", min_errors=5000, splitting_particles=20,
                splitting_repeats=2, splitting_max_levels=30, attack_restarts=0)
    mc = measure_step(early_run, step, MeasureConfig(**{**base, "method": "monte_carlo"}))
    rates = sorted({r[f"mu_{s}"] for r in mc for s in ("inner", "outer")})
    threshold = (rates[len(rates) // 2 - 1] + rates[len(rates) // 2]) / 2  # splits the six rates in half
    rows = measure_step(early_run, step, MeasureConfig(**base, max_other_error=threshold))
    split = skipped = 0
    for r, m in zip(rows, mc):
        for sphere, other in (("inner", "outer"), ("outer", "inner")):
            assert r[f"mu_{other}_mc_errors"] == m[f"mu_{other}_errors"]  # same Monte Carlo stream
            status = r[f"mu_{sphere}_status"]
            if m[f"mu_{other}"] > threshold:
                skipped += 1
                assert status.startswith("splitting skipped") and r[f"mu_{sphere}_method"] == "monte_carlo"
                assert r[f"mu_{sphere}"] == m[f"mu_{sphere}"] and r[f"mu_{sphere}_upper"] == m[f"mu_{sphere}_upper"]
            else:
                split += 1
                assert not status.startswith("splitting skipped")
                assert r[f"mu_{sphere}_splitting_evaluations"] > 0
    assert split and skipped  # both branches ran


@pytest.mark.slow  # default-suite budget (it trains the fixture's nets); the settings check below is in the default suite
def test_no_splitting_where_the_rate_is_exact_when_asked(early_run):
    step = early_run.checkpoint_steps[-1]
    base = dict(mc_samples=2000, attack_points=2, method="auto", min_errors=5000, attack_restarts=0)
    rows = measure_step(early_run, step, MeasureConfig(**base, split_exact=False))
    for r in rows:
        for sphere in ("inner", "outer"):
            assert r[f"mu_{sphere}_status"].startswith("splitting not run: the rate is exact")
            assert r[f"mu_{sphere}_method"] == "monte_carlo" and f"mu_{sphere}_splitting_evaluations" not in r
            assert 0 <= r[f"exact_mu_{sphere}"] <= 1  # the number the tables report
    assert "split_exact" not in MeasureConfig().settings()  # the default resumes old measurements
    assert MeasureConfig(split_exact=False).settings()["split_exact"] is False
    with pytest.raises(InputError, match="split_exact"):
        MeasureConfig(split_exact="no")


def test_split_exact_is_validated_and_resumes_old_measurements():
    assert "split_exact" not in MeasureConfig().settings()
    assert MeasureConfig(split_exact=False).settings()["split_exact"] is False
    with pytest.raises(InputError, match="split_exact"):
        MeasureConfig(split_exact="no")


def test_the_budget_rule_is_validated_and_resumes_old_measurements():
    with pytest.raises(InputError, match="--max-other-error"):
        MeasureConfig(max_other_error=0.0)
    with pytest.raises(InputError, match="--max-other-error"):
        MeasureConfig(max_other_error=1.5)
    # the default is not part of the saved settings, so measurements saved before the rule still resume
    assert "max_other_error" not in MeasureConfig().settings()
    assert MeasureConfig(max_other_error=0.1).settings()["max_other_error"] == 0.1


def test_restarts_are_spent_only_on_models_within_the_rule():
    import types

    import jax
    import numpy as np

    from spheres.measure import attacks
    from spheres.measure.pipeline import _restart

    n_models, n, d = 3, 5, 4
    xs = jax.random.normal(jax.random.key(0), (n, d))

    def result(found):
        found = np.asarray(found, bool)
        return attacks.AttackResult(distance=np.where(found, 0.5, np.inf).astype(np.float32),
                                    point=np.zeros(found.shape + (d,), np.float32), found=found,
                                    initially_wrong=np.zeros_like(found), ascent_steps=np.zeros(found.shape, np.int32))

    first = result(np.tile([True, False, False, True, False], (n_models, 1)))
    calls = []
    m = types.SimpleNamespace(restart_models=lambda v, x, s, lab: calls.append(1) or result(np.ones((n_models, n))))
    mcfg = MeasureConfig(attack_restarts=2, max_other_error=0.1)
    worth = np.array([True, False, True])
    merged, rescued = _restart(m, None, xs, None, first, jax.random.key(1), mcfg, worth)
    assert rescued.tolist() == [3, 0, 3]  # the failed points of the models within the rule are rescued
    assert merged.found[1].tolist() == [True, False, False, True, False]  # the other keeps its failures
    assert len(calls) == 1  # nothing left to restart after the first round
    calls.clear()
    _restart(m, None, xs, None, first, jax.random.key(1), mcfg, np.zeros(n_models, bool))
    assert not calls  # no model within the rule: no restart is run at all
