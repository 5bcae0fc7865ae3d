"""The ``defences`` experiment end to end on a tiny config: the table against direct calls, and
certified <= attack on every point; mask folding is exact."""

import tomllib
from pathlib import Path

import jax
import numpy as np
import pytest

from spheres.experiments import defences as dexp
from spheres.experiments.reproduce import config_from_table, reproduce
from spheres.measure import certify
from spheres.measure.pipeline import MeasureConfig
from spheres.measure.results import DefenceRow, read_rows
from spheres.nets import models
from spheres.nets.config import parse_model_name
from spheres.nets.rundir import load_run

TINY = """
experiments = ["defences"]
[defences]
model = "relu-w16-d2-nobn"
quad_model = "quad-w20"
adv_epsilons = [0.1]
grad_penalties = [1.0]
squeeze_bits = [4]
mask_keep_rates = [0.75]
rs_weights = [1.0]
certify_bisections = 8
[defences.task]
dim = 10
[defences.train]
steps = 60
batch_size = 32
learning_rates = [0.01]
checkpoints = 1
chunk_steps = 60
[defences.measure]
mc_samples = 2000
attack_points = 6
method = "monte_carlo"
"""


def test_fold_masks_reproduces_the_masked_net():
    cfg = parse_model_name("relu-w8-d2-masked")
    v = models.init_variables(jax.random.key(1), cfg, 5)
    v["masks"] = models.draw_masks(jax.random.key(2), 0.5, cfg)
    xs = jax.random.normal(jax.random.key(3), (7, 5))
    ref = jax.vmap(lambda x: models.make_logit_fn(cfg, 5)(v, x))(xs)
    folded = certify.fold_layers(dexp.fold_masks(v))
    got = jax.vmap(lambda x: certify.layers_logit(folded, x))(xs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_defences_smoke(tmp_path):
    cfg = config_from_table(tomllib.loads(TINY))
    reproduce(cfg, tmp_path, progress=False)
    out = tmp_path / "defences"
    rows = read_rows(out / dexp.RESULTS, DefenceRow)
    runs = {r.run for r in rows}
    assert runs == {"baseline", "pgd", "quad-baseline", "quad-exact", "gradpen", "squeeze4", "masks", "rs"}
    for r in rows:
        if r.run == "squeeze4":
            assert r.certified is None
            continue
        assert r.certified is not None and r.certified_points == 6
        if r.distance is not None and r.distance_failures == 0:
            assert r.certified <= r.distance + 1e-6  # a lower end below the upper end, point by point in mean
    # the table's certified radius equals a direct call on the baseline's checkpoint
    base = next(r for r in rows if r.run == "baseline")
    run = load_run(out / "runs" / "baseline")
    xs, labels = dexp.attack_points(run.config, MeasureConfig(mc_samples=2000, attack_points=6, method="monte_carlo"),
                                    base.step)
    est = certify.make_certifier(certify.CertifyConfig(bisections=8)).models(
        jax.random.key(0), run.load_variables(base.step), xs, labels)
    np.testing.assert_allclose(base.certified, est.mean[0], rtol=1e-6)
    assert base.point_checks is not None and base.point_violations == 0
    assert Path(out / "defences.png").exists()
