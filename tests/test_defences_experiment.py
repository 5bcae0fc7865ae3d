"""The ``defences`` experiment: end to end on a tiny config (slow: the table against direct calls);
in the default suite, certified <= attack on every point of a checkpoint, the stable-ReLU count
against its own module, the squeezing detectors against a cap classifier with exact rates, and
mask folding."""

import tomllib
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spheres.experiments import defences as dexp
from spheres.experiments.reproduce import config_from_table, reproduce
from spheres.maths import theory
from spheres.maths.classifiers import cap_logit
from spheres.measure import certify
from spheres.measure.pipeline import MeasureConfig
from spheres.measure.results import DefenceRow, DetectorRow, TimingRow, read_rows
from spheres.nets import models, relu_stability
from spheres.nets.config import ExperimentConfig, TaskConfig, TrainConfig, parse_model_name
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
detector_clean_points = 50
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
def test_defences_smoke(tmp_path, monkeypatch):
    cfg = config_from_table(tomllib.loads(TINY))
    reproduce(cfg, tmp_path, progress=False)
    out = tmp_path / "defences"
    table = (out / dexp.RESULTS).read_text()
    # resumed: every certificate, detector row and timing comes from its cell, the table unchanged
    for name in ("certify_step", "detector_rows", "time_certification"):
        monkeypatch.setattr(dexp, name, lambda *a, **k: pytest.fail("recomputed on resume"))
    reproduce(cfg, tmp_path, progress=False)
    assert (out / dexp.RESULTS).read_text() == table
    rows = read_rows(out / dexp.RESULTS, DefenceRow)
    runs = {r.run for r in rows}
    assert runs == {"baseline", "pgd", "quad", "gradpen", "squeeze4", "masks", "rs"}
    assert {r.defence for r in rows if r.run == "quad"} == {"none (quad)", "adversarial (exact, quad)"}
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
    # every certified net is checked point by point (squeezed nets have no certificate)
    assert all((r.point_checks is None) == (r.certified is None) for r in rows)
    assert all(r.point_violations == 0 for r in rows if r.point_checks is not None)
    assert Path(out / "defences.png").exists()
    timing = read_rows(out / dexp.TIMING, TimingRow)
    assert {t.run for t in timing} == {"baseline", "rs"} and all(t.seconds_per_point_min > 0 for t in timing)
    det = read_rows(out / dexp.DETECTOR, DetectorRow)
    assert {d.detector for d in det} == {"flip", "score"} and all(d.bits == 4 and d.run == "baseline" for d in det)
    assert all(0 <= d.detected <= d.adversarial and 0 <= d.false_alarms <= d.clean == 2 * 50 for d in det)


def test_squeezing_detectors_against_a_cap_classifier_with_known_rates():
    """The cap classifier "outer iff x_1 / ||x|| > t" with -1/sqrt(d) < t < 0 and 1-bit squeezing: the
    squeezed point's direction is sign(x) / sqrt(d), so its prediction is [x_1 > 0] and the flip
    detector flags exactly the points with t < x_1 / ||x|| <= 0. Its false-alarm rate on uniform points
    is the exact cap measure P(t < x_1 <= 0); points just past the boundary from the inner side
    (errors of label 0, x_1 / ||x|| slightly above t) are all flagged, those just past it from the
    outer side (label 1, slightly below t) none."""
    dim, n = 16, 3000
    t = -0.5 / np.sqrt(dim)
    params = {"u": jnp.zeros(dim).at[0].set(1.0)[None], "t": jnp.full((1,), t)}  # one member
    program = dexp.make_detector_scores(cap_logit, 1, 3.0)
    clean, _ = dexp.clean_points(jax.random.key(0), dim, n, 1.3)
    cal, _ = dexp.clean_points(jax.random.key(1), dim, n, 1.3)
    # boundary crossers: direction with x_1 / ||x|| = t +- 1e-3, the rest uniform
    g = jax.random.normal(jax.random.key(2), (40, dim)).at[:, 0].set(0.0)
    rest = g / jnp.linalg.norm(g, axis=1, keepdims=True)

    def at(c):
        return jnp.concatenate([jnp.full((40, 1), c), np.sqrt(1 - c * c) * rest[:, 1:]], axis=1)

    f_in, s_in = program(params, at(t + 1e-3)[None])
    f_out, s_out = program(params, at(t - 1e-3)[None])
    f_clean, s_clean = program(params, clean[None])
    _, s_cal = program(params, cal[None])
    exact = float(theory.cap_measure(t, dim) - theory.cap_measure(0.0, dim))
    det_in = dexp.squeeze_detection(f_in[0], f_clean[0], s_in[0], s_cal[0], s_clean[0], 0.05)
    det_out = dexp.squeeze_detection(f_out[0], f_clean[0], s_out[0], s_cal[0], s_clean[0], 0.05)
    assert int(det_in.flip.detection.count) == 40 and int(det_out.flip.detection.count) == 0
    fa = det_in.flip.false_alarm
    se = np.sqrt(exact * (1 - exact) / fa.samples)
    assert fa.samples == 2 * n and abs(float(fa.value) - exact) < 4 * se, (float(fa.value), exact)
    assert float(fa.lower) <= exact <= float(fa.upper)
    # the calibrated score detector: about 5% false alarms on fresh clean points (exchangeable scores)
    sfa = det_in.score.false_alarm
    assert abs(float(sfa.value) - 0.05) < 4 * np.sqrt(0.05 * 0.95 / sfa.samples)


class _Run(NamedTuple):
    """The parts of :class:`spheres.nets.runs.Run` that certify_step reads (a run without a directory)."""

    config: ExperimentConfig
    members: list
    variables: dict

    def load_variables(self, step):
        return self.variables


@pytest.mark.slow  # default-suite budget; its logic is also checked by cheaper tests in this file
def test_certify_step_brackets_every_point_and_counts_stable_relus():
    """Two random 16-wide nets at d = 8 (random nets have errors close to every point): certified <=
    the attack's distance on every point with a found error, the certified mean equals a direct
    per-member call, and the stable fraction equals relu_stability's own count."""
    dim = 8
    cfg = ExperimentConfig(task=TaskConfig(dim=dim), model=parse_model_name("relu-w16-d2-nobn"),
                           train=TrainConfig(steps=1))
    keys = jax.random.split(jax.random.key(5), 2)
    v = jax.vmap(lambda k: models.init_variables(k, cfg.model, dim))(keys)
    mcfg = MeasureConfig(mc_samples=100, attack_points=12, method="monte_carlo")
    rc = dexp.make_run_certification(cfg, mcfg, 10, 0.05)
    run = _Run(cfg, [{"seed": 0}, {"seed": 1}], v)
    rows = dexp.certify_step(run, 3, mcfg, rc, check_points=True)
    xs, labels = dexp.attack_points(cfg, mcfg, 3, "inner")
    assert sum(r["point_checks"] for r in rows) >= 6 and all(r["point_violations"] == 0 for r in rows)
    res = rc.attack_models(v, xs, labels)
    direct = rc.certifier.models(jax.random.key(0), v, xs, labels)  # the compiled program, called directly
    for i, r in enumerate(rows):
        found = np.asarray(res.found[i])
        assert np.all(direct.radii[i][found] <= np.asarray(res.distance[i])[found] + 1e-6)
        np.testing.assert_allclose(r["certified"], direct.mean[i], rtol=1e-6)
        assert r["certified"] > 0 and r["hidden_units"] == 32
    # the point checks cover both spheres: the inner and the outer points with a found error
    xo, lo = dexp.attack_points(cfg, mcfg, 3, "outer")
    res_out = rc.attack_models(v, xo, lo)
    for i, r in enumerate(rows):
        assert r["point_checks"] == int(np.sum(res.found[i])) + int(np.sum(res_out.found[i]))
    sf = relu_stability.stable_fraction(jax.tree.map(lambda a: a[1], v), cfg.model, xs, 0.05)
    np.testing.assert_allclose(rows[1]["stable_fraction"], float(sf.overall.mean), rtol=1e-6)
    np.testing.assert_allclose(rows[1]["unstable_relus"], 32 * (1 - float(sf.overall.mean)), rtol=1e-6)


def test_each_defence_is_judged_against_its_own_baseline():
    assert dexp._reference("adversarial (exact, quad)") == "none (quad)"
    assert dexp._reference("none (quad)") == "none (quad)" and dexp._reference("adversarial (PGD)") == "none"
    t = dict(ratio_median=0.7, ratio_lower=0.69, ratio_upper=0.71)
    assert dexp._verdict(t, {"ratio_median": None}, "none (quad)").startswith("has no verdict (its baseline, 'none (quad)'")
    assert dexp._verdict(t, dict(ratio_median=0.6, ratio_lower=0.58, ratio_upper=0.62)).startswith("moves towards")
    assert dexp._verdict(t, dict(ratio_median=0.8, ratio_lower=0.78, ratio_upper=0.82)).startswith("falls below")
    assert dexp._verdict(t, dict(ratio_median=0.7, ratio_lower=0.6, ratio_upper=0.8)).startswith("moves along")


def test_certificates_are_cells_computed_once_and_refused_with_other_settings(tmp_path, monkeypatch):
    """A resumed defences run certifies nothing twice: one cell per checkpoint in runs/<run>/certify/,
    loaded (an infinite radius included) on the second call; other settings are refused by name."""
    calls = []

    def fake_certify(run, step, mcfg, rc, check_points=False):
        calls.append(("certify", step))
        return [dict(certified=float("inf"), certified_se=0.0, point_checks=3)]

    def fake_detectors(run, spec_run, step, cfg, rc, programs):
        calls.append(("detect", step))
        return [DetectorRow(run=spec_run, model="m", seed=0, step=step, bits=4, detector="flip", threshold=None,
                            target_false_alarm=None, adversarial=5, detected=2, detection=0.4, detection_lower=0.05,
                            detection_upper=0.85, clean=10, false_alarms=1, false_alarm=0.1, false_alarm_lower=0.0,
                            false_alarm_upper=0.45)]

    monkeypatch.setattr(dexp, "certify_step", fake_certify)
    monkeypatch.setattr(dexp, "detector_rows", fake_detectors)
    cfg = config_from_table(tomllib.loads(TINY)).section("defences")
    spec = dexp.specs(cfg)[0]
    first = dexp.certify_cells(cfg, spec, None, tmp_path, [1, 60], None, {4: None})
    assert calls == [("certify", 1), ("detect", 1), ("certify", 60), ("detect", 60)]
    again = dexp.certify_cells(cfg, spec, None, tmp_path, [1, 60], None, {4: None})
    assert len(calls) == 4 and again == first and again[0][60][0]["certified"] == float("inf")
    assert sorted(p.name for p in (tmp_path / dexp.CERTIFY_DIR / "cells").iterdir()) == [
        "step=00000001.json", "step=00000060.json"]
    import dataclasses
    other = dataclasses.replace(cfg, certify_bisections=9)
    with pytest.raises(Exception, match="certify_bisections"):
        dexp.certify_cells(other, spec, None, tmp_path, [1, 60], None, {4: None})


def test_quad_train_overrides_the_quad_run_only_and_names_bad_fields():
    from spheres.core.errors import InputError
    cfg = config_from_table(tomllib.loads(TINY.replace(
        'detector_clean_points = 50\n', 'detector_clean_points = 50\n[defences.quad_train]\nbatch_size = 64\n'
        'learning_rates = [0.003]\n'))).section("defences")
    trains = {s.run: dexp.spec_train(cfg, s) for s in dexp.specs(cfg)}
    assert trains["quad"].batch_size == 64 and trains["quad"].learning_rates == (0.003,)
    assert trains["quad"].adversarial == "exact" and trains["quad"].adv_epsilons == (0.0, 0.1)
    assert trains["baseline"].batch_size == 32 and trains["pgd"].batch_size == 32
    for text, field in (("steps = 0\n", "defences.quad_train.steps"), ("seeds = [1]\n", "defences.quad_train.seeds"),
                        ("nope = 1\n", "defences.quad_train.nope")):
        with pytest.raises(InputError) as info:
            config_from_table(tomllib.loads(TINY.replace(
                'detector_clean_points = 50\n', 'detector_clean_points = 50\n[defences.quad_train]\n' + text)))
        assert info.value.field == field, text


def test_verdicts_on_few_checkpoints_say_the_interval_is_a_range():
    t = dict(ratio_median=0.75, ratio_lower=0.68, ratio_upper=0.9, checked=3)
    base = dict(ratio_median=0.65, ratio_lower=0.6, ratio_upper=0.66, checked=4)
    v = dexp._verdict(t, base, "none (quad)")
    assert v.startswith("moves towards the bound") and "on 3 against the baseline's 4 checkpoint(s)" in v
    assert "weak evidence" in v
    assert dexp._verdict(t, dict(base, checked=1)).startswith("has no verdict (on 3 against the baseline's 1")
    assert "weak evidence" not in dexp._verdict(dict(t, checked=6), dict(base, checked=8))
