"""The splitting budget rule of ``method = "auto"``: splitting is spent on a sphere only for models whose
Monte Carlo error rate on the other sphere is at most ``splitting_max_other_error``; the others keep their
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


def test_splitting_skipped_exactly_where_the_other_sphere_errs_too_much(early_run):
    step = early_run.checkpoint_steps[-1]
    # min_errors above the sample count: Monte Carlo always "sees too few", so only the rule decides
    base = dict(mc_samples=2000, attack_points=2, method="auto", min_errors=5000, splitting_particles=20,
                splitting_repeats=2, splitting_max_levels=30, attack_restarts=0)
    mc = measure_step(early_run, step, MeasureConfig(**{**base, "method": "monte_carlo"}))
    rates = sorted({r[f"mu_{s}"] for r in mc for s in ("inner", "outer")})
    threshold = (rates[len(rates) // 2 - 1] + rates[len(rates) // 2]) / 2  # splits the six rates in half
    rows = measure_step(early_run, step, MeasureConfig(**base, splitting_max_other_error=threshold))
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


def test_the_budget_rule_is_validated_and_resumes_old_measurements():
    with pytest.raises(InputError, match="--splitting-max-other-error"):
        MeasureConfig(splitting_max_other_error=0.0)
    with pytest.raises(InputError, match="--splitting-max-other-error"):
        MeasureConfig(splitting_max_other_error=1.5)
    # the default is not part of the saved settings, so measurements saved before the rule still resume
    assert "splitting_max_other_error" not in MeasureConfig().settings()
    assert MeasureConfig(splitting_max_other_error=0.1).settings()["splitting_max_other_error"] == 0.1
