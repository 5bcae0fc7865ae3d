"""Experiment ``defences``: robust training, squeezing, masks and ReLU stability against the cap bound.

The cap bound is a theorem about ANY classifier, so no defence can put a net above the curve
``d(E) <= d_cap(mu)``; a defence can only move a net along it (trading error rate for distance) or
below it. Each defence kind is ONE training run of the baseline model whose numeric strengths are
the ensemble axes of the run (traced ``Hyper`` fields: ``adv_eps``, ``grad_penalty``,
``mask_keep``, ``rs_weight``); the squeezing bit depth sets the model's front end (static), so it
is one run per bit depth; the quad net's baseline is the ``eps = 0`` member of its exact-training
run. Every checkpoint is measured on both spheres by :func:`spheres.measure.pipeline.measure_run`,
and on each sphere's attacked points the certified radius (CROWN over the L2 ball,
:mod:`spheres.measure.certify`) gives the lower end of the bracket ``[certified, attack]`` of
``d(E)``. Runs of the same model share their compiled measurements (compilation is most of the
cost of a small run).

Beside the table (``defences_results.csv``, one :class:`DefenceRow` per net x checkpoint):

* the feature-squeezing DETECTOR guarding the baseline (``defences_detector.csv``, one
  :class:`DetectorRow` per member x checkpoint x bit depth x detector): detection rate on the
  attack's outputs (the pipeline's first-pass attack on both spheres, rerun here to get its
  points) and false-alarm rate on fresh clean points, with Clopper-Pearson intervals;
* on every certified net, both spheres, the point-by-point check certified radius <= attack distance;
* per run, CROWN's time per point and the provably stable / unstable ReLUs on the RS ball. The
  CROWN here multiplies dense matrices through every ReLU whatever its state, so ReLU stability
  cannot make it faster (Xiao et al.'s speed-up is that of an exact MILP verifier, whose binary
  variables are the unstable ReLUs); the findings say so and report what stability does change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spheres.core.cells import CellStore, check_settings, step_cell_id
from spheres.core.config import check_float, check_int, to_table
from spheres.core.io import json_restore, json_safe
from spheres.core.errors import InputError

from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.maths import analysis, stats
from spheres.maths.geometry import sample_sphere
from spheres.measure import attacks, certify
from spheres.measure.pipeline import MeasureConfig, RunMeasurement, make_run_measurement, measure_run
from spheres.measure.results import DefenceRow, DetectorRow, TimingRow, read_rows, write_rows
from spheres.nets import defences, relu_stability
from spheres.nets.config import ExperimentConfig, TaskConfig, TrainConfig, parse_model_name
from spheres.nets.runs import run_training
from spheres.nets.rundir import load_run
from spheres.plotting._common import load_json
from spheres.plotting.defences import draw_defences

RESULTS = "defences_results.csv"
#: per run, the resumable cells of its certificates and detectors (``runs/<run>/certify/``)
CERTIFY_DIR = "certify"
DETECTOR = "defences_detector.csv"
TIMING = "defences_timing.csv"


@dataclass(frozen=True)
class DefencesConfig:
    """The baseline net and each defence at several strengths, at ``task.dim``.

    Attributes:
      task: the two spheres.
      model: the baseline ReLU model (no batch norm keeps the certified bracket simple).
      baseline_seeds: the baseline's seeds (its ensemble axis; the defences' is their strength).
      quad_model: the quadratic net trained with its exact worst case ("" = skip).
      train: the recipe shared by every run (its defence lists are ignored: set here).
      measure: measurement budgets.
      adv_epsilons: PGD-on-the-sphere chord budgets (one run, swept).
      quad_learning_rate: the quad net's learning rate.
      quad_train: ``{field = value}`` replacing fields of ``train`` for the quad net's run (after
        ``quad_learning_rate``; e.g. the recipe study's batch 500, at which it learns far faster).
      grad_penalties: input-gradient penalty weights (one run, swept).
      squeeze_bits: feature-squeezing bit depths (one run each: the front end is static).
      mask_keep_rates: random-mask keep rates (one run, swept).
      rs_weights: ReLU-stability weights (one run, swept), with ``rs_epsilon`` and ``l1_weight``.
      certify_bisections: bisection halvings of CROWN's certified radius.
      select_max_error: a point is faded when its error on either sphere exceeds this.
      squeeze_range: the squeezer's half range (units of ``||x|| / sqrt(d)``), front end and detector.
      detector_clean_points: clean points per sphere for the squeezing detector's calibration, and as
        many again for its false-alarm count.
      detector_false_alarm: the score detector's target false-alarm rate.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    model: str = "relu-w1000-d2-nobn"
    quad_model: str = "quad-w1000"
    baseline_seeds: tuple[int, ...] = (0, 1, 2)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(checkpoints=6))
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    adv_epsilons: tuple[float, ...] = (0.05, 0.1, 0.2)
    quad_learning_rate: float = 1e-2
    quad_train: tuple[tuple[str, Any], ...] = ()
    grad_penalties: tuple[float, ...] = (0.1, 1.0)
    squeeze_bits: tuple[int, ...] = (2, 4, 6)
    mask_keep_rates: tuple[float, ...] = (0.5, 0.75, 0.9)
    rs_weights: tuple[float, ...] = (0.1, 1.0)
    rs_epsilon: float = 0.05
    l1_weight: float = 1e-5
    certify_bisections: int = 16
    select_max_error: float = 0.01
    squeeze_range: float = 3.0
    detector_clean_points: int = 500
    detector_false_alarm: float = 0.05

    def __post_init__(self):
        m = parse_model_name(self.model)
        if m.arch != "relu" or m.defended:
            raise InputError("model", f"must be a bare relu model, got {self.model!r}")
        if self.quad_model and parse_model_name(self.quad_model).arch != "quad":
            raise InputError("quad_model", f"must be a quad model or empty, got {self.quad_model!r}")
        for name in ("adv_epsilons", "grad_penalties", "mask_keep_rates", "rs_weights", "squeeze_bits"):
            v = getattr(self, name)
            if not isinstance(v, tuple):
                raise InputError(name, "must be a list (empty: skip the defence)")
        for e in self.adv_epsilons:
            check_float("adv_epsilons", e, 0.0, lo_open=True, hi=2.0)
        for g in self.grad_penalties + self.rs_weights:
            check_float("grad_penalties/rs_weights", g, 0.0, lo_open=True)
        for k in self.mask_keep_rates:
            check_float("mask_keep_rates", k, 0.0, lo_open=True, hi=1.0)
        for b in self.squeeze_bits:
            check_int("squeeze_bits", b, 1, hi=16)
        check_float("rs_epsilon", self.rs_epsilon, 0.0, lo_open=True)
        check_float("l1_weight", self.l1_weight, 0.0)
        check_float("quad_learning_rate", self.quad_learning_rate, 0.0, lo_open=True)
        if not isinstance(self.quad_train, tuple) or any(not isinstance(p, tuple) or len(p) != 2
                                                         for p in self.quad_train):
            raise InputError("quad_train", "must be a table of [train] fields = values")
        bad = {"adversarial", "adv_epsilons", "seeds", "train_sizes"} & {k for k, _ in self.quad_train}
        if bad:
            raise InputError(f"quad_train.{sorted(bad)[0]}", "set by the experiment (the quad net's exact "
                                                             "training and its strengths), not here")
        self.quad_train_config()  # every override a valid [train] field
        check_int("certify_bisections", self.certify_bisections, 1, hi=60)
        check_float("select_max_error", self.select_max_error, 0.0, hi=1.0)
        check_float("squeeze_range", self.squeeze_range, 0.0, lo_open=True)
        check_int("detector_clean_points", self.detector_clean_points, 1)
        check_float("detector_false_alarm", self.detector_false_alarm, 0.0, hi=1.0, hi_open=True)


    def quad_train_config(self) -> TrainConfig:
        """``train`` for the quad net's run: ``quad_learning_rate``, then ``quad_train``'s fields."""
        base = dataclasses.replace(self.train, learning_rates=(self.quad_learning_rate,))
        return common.train_of(base, (("quad", dict(self.quad_train)),), "quad", where="quad_train")


@dataclass(frozen=True)
class Spec:
    """One training run: its name, the defence kind, the model, the train overrides, the strength's member field."""

    run: str
    defence: str
    model: str
    train: dict[str, Any]
    strength_field: str | None
    strength: float | None = None
    zero_defence: str | None = None  # the defence name of members whose strength is 0 (an undefended net)
    base: TrainConfig | None = None  # the training ``train`` replaces fields of (None: the experiment's)


def specs(cfg: DefencesConfig) -> list[Spec]:
    """The runs of the experiment, baseline first."""
    out = [Spec("baseline", "none", cfg.model, dict(seeds=cfg.baseline_seeds), None, 0.0)]
    if cfg.adv_epsilons:
        out.append(Spec("pgd", "adversarial (PGD)", cfg.model, dict(adversarial="pgd", adv_epsilons=cfg.adv_epsilons),
                        "adv_eps"))
    if cfg.quad_model and cfg.adv_epsilons:
        # eps = 0 is plain training (the worst case of a zero-radius cap is the point itself): the
        # quad baseline is a member of the exact-training run, one compiled program for both
        out.append(Spec("quad", "adversarial (exact, quad)", cfg.quad_model,
                        dict(adversarial="exact", adv_epsilons=(0.0,) + cfg.adv_epsilons), "adv_eps",
                        zero_defence="none (quad)", base=cfg.quad_train_config()))
    elif cfg.quad_model:
        out.append(Spec("quad", "none (quad)", cfg.quad_model, {}, None, 0.0, base=cfg.quad_train_config()))
    if cfg.grad_penalties:
        out.append(Spec("gradpen", "gradient penalty", cfg.model, dict(grad_penalties=cfg.grad_penalties),
                        "grad_penalty"))
    suffix = f"r{cfg.squeeze_range:g}" if cfg.squeeze_range != 3.0 else ""  # the model name's range tag
    for b in cfg.squeeze_bits:
        out.append(Spec(f"squeeze{b}", "feature squeezing", f"{cfg.model}-sq{b}{suffix}", {}, None, float(b)))
    if cfg.mask_keep_rates:
        out.append(Spec("masks", "random masks", f"{cfg.model}-masked", dict(mask_keep_rates=cfg.mask_keep_rates),
                        "mask_keep"))
    if cfg.rs_weights:
        out.append(Spec("rs", "ReLU stability + L1", cfg.model,
                        dict(rs_weights=cfg.rs_weights, rs_epsilons=(cfg.rs_epsilon,), l1_weights=(cfg.l1_weight,)),
                        "rs_weight"))
    return out


def spec_train(cfg: DefencesConfig, spec: Spec) -> TrainConfig:
    """The training of one spec's run: its base (the experiment's ``train`` unless set) with the spec's fields."""
    return dataclasses.replace(spec.base or cfg.train, **spec.train)


def fold_masks(variables: dict[str, Any]) -> dict[str, Any]:
    """The same network without its mask collection: ``relu(z) m = relu(z m)`` for ``m`` in {0, 1},
    so each mask multiplies its layer's output columns (the batch-norm scale and offset when the
    layer has batch norm, else the dense kernel's columns and bias). Leaves may carry a member axis."""
    if "masks" not in variables:
        return variables
    params = jax.tree.map(lambda a: a, dict(variables["params"]))
    for name, m in variables["masks"].items():
        layer = name[len("mask"):]
        if f"norm{layer}" in params:
            norm = dict(params[f"norm{layer}"])
            norm["scale"], norm["bias"] = norm["scale"] * m, norm["bias"] * m
            params[f"norm{layer}"] = norm
        else:
            dense = dict(params[f"dense{layer}"])
            dense["kernel"] = dense["kernel"] * m[..., None, :]
            if "bias" in dense:
                dense["bias"] = dense["bias"] * m
            params[f"dense{layer}"] = dense
    return {k: v for k, v in {**variables, "params": params}.items() if k != "masks"}


def attack_points(run_cfg: ExperimentConfig, mcfg: MeasureConfig, step: int,
                  sphere: str = "inner") -> tuple[jax.Array, jax.Array]:
    """The points (and labels) the pipeline attacks at ``step`` on ``sphere`` (the same key derivation
    as :func:`spheres.measure.pipeline.measure_step`): ``(attack_points, d)`` and int32 ``(attack_points,)``."""
    key = jax.random.fold_in(jax.random.key(mcfg.seed), step)
    _, k_attack, _ = jax.random.split(key, 3)
    acfg = attacks.AttackConfig(dim=run_cfg.task.dim, points=mcfg.attack_points, sphere=sphere,
                                outer_radius=run_cfg.task.outer_radius)
    k = k_attack if sphere == "inner" else jax.random.fold_in(k_attack, 1)
    return attacks.check_points(attacks.start_points(k, acfg), acfg.label)


def clean_points(key: jax.Array, dim: int, n: int, outer_radius: float) -> tuple[jax.Array, jax.Array]:
    """``n`` uniform points of EACH sphere (inner first) and their labels: ``(2 n, d)``, int32 ``(2 n,)``."""
    k_in, k_out = jax.random.split(key)
    inner = jax.vmap(lambda k: sample_sphere(k, dim, 1.0))(jax.random.split(k_in, n))
    outer = jax.vmap(lambda k: sample_sphere(k, dim, outer_radius))(jax.random.split(k_out, n))
    return jnp.concatenate([inner, outer]), jnp.concatenate([jnp.zeros(n, jnp.int32), jnp.ones(n, jnp.int32)])


class RunCertification(NamedTuple):
    """The compiled per-run measurements of this experiment, built once per run by :func:`make_run_certification`.

    Attributes:
      certifier: CROWN (relu nets) or the quad net's closed form (:class:`spheres.measure.certify.Certifier`);
        ``None`` for squeezed nets (the quantiser is discontinuous: no certificate applies).
      stable_masks: ``(variables (M, ...), xs (n, d)) -> bool (M, n, depth, h)``, the provably stable
        hidden units of every member on ``B(x, rs_epsilon)``; ``None`` for quad nets.
      attack_models: the pipeline's first-pass attack over members (``(variables, xs, labels) ->
        AttackResult (M, n)``), used where the experiment needs the attack's points.
      logit_fn: the run's ``logit_fn``.
    """

    certifier: certify.Certifier | None
    stable_masks: Callable | None
    attack_models: Callable
    logit_fn: Callable


def make_run_certification(run_cfg: ExperimentConfig, mcfg: MeasureConfig, bisections: int, rs_eps: float,
                           certifier: certify.Certifier | None = None,
                           measurement: RunMeasurement | None = None) -> RunCertification:
    """Build :class:`RunCertification` for the run ``run_cfg`` (compiled lazily, reused over checkpoints).

    ``certifier`` and ``measurement``: compiled objects to share with other runs (a certifier fits
    every ReLU MLP of the same kind, masks folded in; a measurement every run of the same model),
    built here when not given."""
    model = run_cfg.model
    quad = model.arch == "quad"
    if model.squeeze_bits:
        certifier = None
    elif certifier is None:
        certifier = certify.make_certifier(certify.CertifyConfig(method="lipschitz" if quad else "crown",
                                                                 bisections=bisections), quadratic=quad)
    stable = None
    if not quad:
        def masks(variables, xs):
            affines = relu_stability.batch_norm_affines(variables, model)
            return jax.vmap(lambda x: relu_stability.stable_mask(variables, model, affines, x, rs_eps))(xs)

        stable = jax.jit(jax.vmap(masks, in_axes=(0, None)))
    if measurement is None:
        measurement = make_run_measurement(run_cfg, mcfg)
    return RunCertification(certifier=certifier, stable_masks=stable, attack_models=measurement.attack_models,
                            logit_fn=measurement.logit_fn)


def certify_step(run: Any, step: int, mcfg: MeasureConfig, rc: RunCertification,
                 check_points: bool = False) -> list[dict[str, Any]]:
    """Certified radii of every member at one checkpoint on both spheres' attacked points, and the
    provably stable ReLUs on ``B(x, rs_epsilon)`` around the inner points (one dict per member).

    With ``check_points`` the pipeline's first-pass attack is rerun on both spheres' points and every
    point with a found error is checked: certified radius <= attack distance (the certificate is
    a lower bound of the distance to the nearest error in R^d, the attack's chord an upper bound
    of the on-sphere one, which is at least the former)."""
    cfg = run.config
    n = len(run.members)
    empty = dict(certified=None, certified_se=None, certified_points=None, certified_outer=None,
                 certified_outer_se=None, certified_method="", certify_seconds_per_point=None,
                 stable_fraction=None, stable_fraction_se=None, unstable_relus=None, hidden_units=None,
                 point_checks=None, point_violations=None)
    rows = [dict(empty) for _ in range(n)]
    if rc.certifier is None:
        return [dict(r, certified_method="not applicable (squeezing front end)") for r in rows]
    variables = jax.tree.map(jnp.asarray, run.load_variables(step))
    folded = fold_masks(variables)
    (xs, labels), (xo, lo) = attack_points(cfg, mcfg, step, "inner"), attack_points(cfg, mcfg, step, "outer")
    inner = rc.certifier.models(jax.random.key(0), folded, xs, labels)
    outer = rc.certifier.models(jax.random.key(0), folded, xo, lo)
    seconds = (inner.seconds_per_point + outer.seconds_per_point) / 2.0
    for i in range(n):
        rows[i].update(certified=float(inner.mean[i]), certified_se=float(inner.se[i]), certified_points=inner.points,
                       certified_outer=float(outer.mean[i]), certified_outer_se=float(outer.se[i]),
                       certified_method=inner.method, certify_seconds_per_point=seconds)
    if rc.stable_masks is not None:
        masks = np.asarray(rc.stable_masks(variables, xs))  # (M, n, depth, h)
        units = int(np.prod(masks.shape[2:]))
        per_point = masks.reshape(n, masks.shape[1], -1)
        for i in range(n):
            frac = stats.mean_and_se(per_point[i].mean(axis=1))
            rows[i].update(stable_fraction=frac.mean, stable_fraction_se=frac.se, hidden_units=units,
                           unstable_relus=float(np.mean(units - per_point[i].sum(axis=1))))
    if check_points:
        checks, bad = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for cert, (pts, labs) in ((inner, (xs, labels)), (outer, (xo, lo))):
            res = jax.tree.map(np.asarray, rc.attack_models(variables, pts, labs))
            for i in range(n):
                found = res.found[i]
                checks[i] += int(found.sum())
                bad[i] += int(np.sum(cert.radii[i][found] > res.distance[i][found] * (1 + 1e-5) + 1e-6))
        for i in range(n):
            rows[i].update(point_checks=int(checks[i]), point_violations=int(bad[i]))
    return rows


class Detection(NamedTuple):
    """The two squeezing detectors of one net (:func:`squeeze_detection`): ``flip`` and ``score``,
    each a :class:`spheres.nets.defences.DetectionReport`."""

    flip: defences.DetectionReport
    score: defences.DetectionReport


def squeeze_detection(flips_adv: np.ndarray, flips_clean: np.ndarray, scores_adv: np.ndarray,
                      scores_cal: np.ndarray, scores_clean: np.ndarray, false_alarm: float) -> Detection:
    """Detection and false-alarm rates of the flip detector (flag iff the prediction changes; no
    threshold) and of the score detector (flag iff score > the threshold that flags at most
    ``false_alarm`` of the calibration scores ``scores_cal``, points disjoint from ``scores_clean``).

    Args:
      flips_adv, scores_adv: ``(n_adv,)`` on the attack's outputs; flips_clean, scores_clean:
        ``(n_clean,)`` on clean points; scores_cal: ``(n_cal,)`` on other clean points.
    """
    flip = defences.detection_report(np.asarray(flips_adv, np.float64), np.asarray(flips_clean, np.float64), 0.5)
    threshold = defences.calibrate_threshold(scores_cal, false_alarm)
    return Detection(flip=flip, score=defences.detection_report(scores_adv, scores_clean, threshold))


def make_detector_scores(logit_fn: Callable, bits: int, half_range: float) -> Callable:
    """``(variables (M, ...), xs (M, n, d)) -> (flip bool (M, n), score (M, n))`` of the squeezing
    detector with ``bits``, each member on its own points (:func:`spheres.nets.defences.squeeze_flip`,
    :func:`~spheres.nets.defences.squeeze_score`)."""
    def one(v, x):
        return (defences.squeeze_flip(logit_fn, v, x, bits, half_range),
                defences.squeeze_score(logit_fn, v, x, bits, half_range))

    return jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, 0)))


def detector_rows(run: Any, spec_run: str, step: int, cfg: "DefencesConfig", rc: RunCertification,
                  programs: dict[int, Callable]) -> list[DetectorRow]:
    """The squeezing detectors guarding every member of ``run`` at ``step``: adversarial points are the
    first-pass attack's found errors on both spheres (the pipeline's points; points already
    misclassified left out), clean points fresh uniform points of both spheres (half calibrate
    the score detector's threshold, half count false alarms)."""
    rcfg, mcfg = run.config, cfg.measure
    variables = jax.tree.map(jnp.asarray, run.load_variables(step))
    advs = []
    for sphere in ("inner", "outer"):
        xs, labels = attack_points(rcfg, mcfg, step, sphere)
        res = jax.tree.map(np.asarray, rc.attack_models(variables, xs, labels))
        advs.append((res.point, res.found & ~res.initially_wrong))
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(mcfg.seed), step), 7)
    k_cal, k_eval = jax.random.split(key)
    n = len(run.members)
    cal, clean = (jnp.broadcast_to(p, (n,) + p.shape) for p, _ in
                  (clean_points(k, rcfg.task.dim, cfg.detector_clean_points, rcfg.task.outer_radius)
                   for k in (k_cal, k_eval)))
    out = []
    for bits, program in programs.items():
        per_sphere = [program(variables, jnp.asarray(points)) for points, _ in advs]
        _, s_cal = program(variables, cal)
        f_clean, s_clean = program(variables, clean)
        for i, member in enumerate(run.members):
            f_adv = np.concatenate([np.asarray(f)[i][m[i]] for (f, _), (_, m) in zip(per_sphere, advs)])
            s_adv = np.concatenate([np.asarray(s)[i][m[i]] for (_, s), (_, m) in zip(per_sphere, advs)])
            if f_adv.size == 0:
                continue
            det = squeeze_detection(f_adv, np.asarray(f_clean)[i], s_adv, np.asarray(s_cal)[i],
                                    np.asarray(s_clean)[i], cfg.detector_false_alarm)
            for name, rep, target in (("flip", det.flip, None), ("score", det.score, cfg.detector_false_alarm)):
                d, f = rep.detection, rep.false_alarm
                out.append(DetectorRow(
                    run=spec_run, model=rcfg.model.name, seed=int(member["seed"]), step=int(step), bits=int(bits),
                    detector=name, threshold=None if name == "flip" else rep.threshold, target_false_alarm=target,
                    adversarial=int(d.samples), detected=int(d.count), detection=float(d.value),
                    detection_lower=float(d.lower), detection_upper=float(d.upper), clean=int(f.samples),
                    false_alarms=int(f.count), false_alarm=float(f.value), false_alarm_lower=float(f.lower),
                    false_alarm_upper=float(f.upper)))
    return out


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def time_certification(cfg: DefencesConfig, out: Path, runs: list[Spec], shared: dict[str, Any],
                       repeats: int = 3) -> list[TimingRow]:
    """CROWN's time per point on the final checkpoint of each run of ``runs`` (both spheres' attacked
    points, members together), in ``repeats`` rounds that alternate between the runs."""
    jobs = []
    for spec in runs:
        run = load_run(out / "runs" / spec.run)
        rc = shared[spec.model][1]
        if rc.certifier is None or rc.certifier.quadratic:
            continue
        step = run.select_steps(cfg.measure.steps)[-1]
        variables = jax.tree.map(jnp.asarray, run.load_variables(step))
        (xs, labels), (xo, lo) = (attack_points(run.config, cfg.measure, step, sp) for sp in ("inner", "outer"))
        pts, lab = jnp.concatenate([xs, xo]), jnp.concatenate([labels, lo])
        masks = np.asarray(rc.stable_masks(variables, xs))
        units = int(np.prod(masks.shape[2:]))
        unstable = float(np.mean(units - masks.reshape(masks.shape[0], masks.shape[1], -1).sum(axis=2)))
        rc.certifier.radii_models(fold_masks(variables), pts, lab)  # compiled (a new shape), warmed up
        jobs.append((spec, run, step, fold_masks(variables), pts, lab, unstable, units, [], []))
    for _ in range(repeats):
        for spec, run, step, variables, pts, lab, _, _, walls, cpus in jobs:
            c0 = _cpu_seconds()
            _, wall = shared[spec.model][1].certifier.radii_models(variables, pts, lab)
            n = len(run.members) * pts.shape[0]
            walls.append(wall / n)
            cpus.append((_cpu_seconds() - c0) / n)
    return [TimingRow(run=spec.run, defence=spec.defence, step=int(step), members=len(run.members),
                      points=int(pts.shape[0]), repeats=repeats, seconds_per_point_min=float(min(walls)),
                      seconds_per_point_median=float(np.median(walls)), cpu_seconds_per_point_min=float(min(cpus)),
                      unstable_relus=unstable, hidden_units=units)
            for spec, run, step, _, pts, _, unstable, units, walls, cpus in jobs]


def certify_settings(cfg: DefencesConfig, bits: tuple[int, ...]) -> dict[str, Any]:
    """What a run's certificates and detector rows depend on beyond its training (the check on resume)."""
    return {**cfg.measure.settings(), "certify_bisections": cfg.certify_bisections, "rs_epsilon": cfg.rs_epsilon,
            "detector_bits": list(bits), "squeeze_range": cfg.squeeze_range,
            "detector_clean_points": cfg.detector_clean_points, "detector_false_alarm": cfg.detector_false_alarm}


def certify_cells(cfg: DefencesConfig, spec: Spec, run: Any, run_dir: Path, steps: list[int], rc: RunCertification,
                  programs: dict[int, Callable]) -> tuple[dict[int, list[dict[str, Any]]], list[DetectorRow]]:
    """Certificates (with the point checks) and detector rows of every checkpoint of one run, one
    resumable cell per step in ``run_dir/certify/`` (a resumed experiment certifies nothing twice;
    resuming with other settings is refused, naming the setting)."""
    root = run_dir / CERTIFY_DIR
    check_settings(root / "settings.json", certify_settings(cfg, tuple(programs)), cfg.measure.LATER_FIELDS,
                   cfg.measure.FLAGS)
    store = CellStore(root)
    cert, detections = {}, []
    for step in steps:
        res = json_restore(store.run(step_cell_id(step), lambda: json_safe({
            "members": certify_step(run, step, cfg.measure, rc, check_points=True),
            "detectors": [dataclasses.asdict(r) for r in detector_rows(run, spec.run, step, cfg, rc, programs)]})))
        cert[step] = res["members"]
        detections += [DetectorRow(**r) for r in res["detectors"]]
    return cert, detections


def _measure(cfg: DefencesConfig, spec: Spec, out: Path, progress: bool,
             shared: dict[str, Any]) -> tuple[list[DefenceRow], list[DetectorRow]]:
    """Train, measure, certify (and, for the baseline, run the squeezing detectors on) one spec's run.

    ``shared`` holds the compiled objects of earlier runs (the pipeline's measurements by model,
    the per-run certification by model, the certifier by architecture), so that runs of the same
    model compile once."""
    train = spec_train(cfg, spec)
    exp = ExperimentConfig(task=cfg.task, model=parse_model_name(spec.model), train=train)
    run_dir = out / "runs" / spec.run
    common.log(f"[defences] {spec.run}: {exp.train.ensemble_size} networks {spec.model} at d = {cfg.task.dim}")
    run_training(exp, run_dir, progress=progress)
    if spec.model not in shared:
        measurement = make_run_measurement(exp, cfg.measure)
        rc = make_run_certification(exp, cfg.measure, cfg.certify_bisections, cfg.rs_epsilon,
                                    shared.get(exp.model.arch), measurement)
        shared[spec.model] = (measurement, rc)
        if rc.certifier is not None:
            shared.setdefault(exp.model.arch, rc.certifier)
    measurement, rc = shared[spec.model]
    measured = measure_run(run_dir, cfg.measure, progress=progress, measurement=measurement)
    run = load_run(run_dir)
    baseline = spec.run == "baseline"
    key = ("detectors", spec.model)
    if baseline and key not in shared:
        shared[key] = {b: make_detector_scores(rc.logit_fn, b, cfg.squeeze_range) for b in cfg.squeeze_bits}
    programs = shared[key] if baseline else {}
    steps = list(dict.fromkeys(m["step"] for m in measured))
    cert, detections = certify_cells(cfg, spec, run, run_dir, steps, rc, programs)
    rows, seen = [], {step: 0 for step in steps}
    for m in measured:
        c = cert[m["step"]][seen[m["step"]]]
        seen[m["step"]] += 1
        strength = float(m[spec.strength_field]) if spec.strength_field else spec.strength
        defence = spec.zero_defence if spec.zero_defence and strength == 0 else spec.defence
        rows.append(DefenceRow.from_measurement(m, defence=defence, strength=strength, run=spec.run, **c))
    return rows, detections


def run(cfg: DefencesConfig, ctx: Context) -> dict[str, Any]:
    rows: list[DefenceRow] = []
    detections: list[DetectorRow] = []
    shared: dict[str, Any] = {}
    for spec in specs(cfg):
        r, d = _measure(cfg, spec, ctx.out, ctx.progress, shared)
        rows, detections = rows + r, detections + d
    timed = [s for s in specs(cfg) if s.run in ("baseline", "rs")]
    timing: list[TimingRow] = []
    if len(timed) == 2:  # measured once per configuration (a cell keyed by what the timing depends on:
        # the task, the settings, both trainings and models, and the devices it runs on)
        what = json.dumps([to_table(cfg.task), certify_settings(cfg, ()), [to_table(spec_train(cfg, s)) for s in timed],
                           [s.model for s in timed], jax.default_backend(), [d.device_kind for d in jax.devices()]],
                          sort_keys=True, default=str)
        cell = f"certify-timing-{hashlib.sha256(what.encode()).hexdigest()[:16]}"
        timing = [TimingRow(**r) for r in json_restore(CellStore(ctx.out).run(cell, lambda: json_safe({"rows": [
            dataclasses.asdict(r) for r in time_certification(cfg, ctx.out, timed, shared)]})))["rows"]]
    write_rows(ctx.out / TIMING, timing, TimingRow)
    rows = common.select(rows, cfg.select_max_error)
    write_rows(ctx.out / RESULTS, rows, DefenceRow)
    write_rows(ctx.out / DETECTOR, detections, DetectorRow)
    common.write_selection(ctx.out, cfg.select_max_error)
    return summarise(read_rows(ctx.out / RESULTS, DefenceRow), cfg.select_max_error,
                     read_rows(ctx.out / DETECTOR, DetectorRow), cfg.rs_epsilon,
                     read_rows(ctx.out / TIMING, TimingRow))


#: per sphere, the DefenceRow fields of d(E), its SE, failures, the bound, its low end over mu's
#: interval, the ratio and the certified lower end
_SPHERE_FIELDS = {
    "inner": ("distance", "distance_se", "distance_failures", "optimal_distance", "optimal_distance_low", "ratio",
              "certified"),
    "outer": ("distance_outer", "distance_outer_se", "distance_outer_failures", "optimal_distance_outer",
              "optimal_distance_outer_low", "ratio_outer", "certified_outer"),
}


def _sphere_summary(sub: list[DefenceRow], sphere: str) -> dict[str, Any]:
    """Over the selected rows with a complete d(E) on ``sphere``: the ratio d(E) / d_cap(mu) (median
    with its distribution-free 95% interval), the rows whose d(E) comes within 2 SE of the bound's low
    end over mu's interval, and the certified share of d(E)."""
    dist, se, fail, bound, low, ratio, cert = _SPHERE_FIELDS[sphere]
    g = getattr
    checked = [r for r in sub if r.selected and g(r, ratio) is not None and g(r, fail) == 0 and (g(r, dist) or 0) > 0]
    med = analysis.median_interval([g(r, ratio) for r in checked])
    near = [r for r in checked if g(r, low) is not None and g(r, dist) + 2 * (g(r, se) or 0.0) >= g(r, low)]
    shares = [g(r, cert) / g(r, dist) for r in checked if g(r, cert) is not None]
    share = analysis.median_interval(shares)
    return dict(checked=len(checked), within_2se_of_bound=len(near),
                ratio_median=None if med is None else med.median, ratio_lower=None if med is None else med.lower,
                ratio_upper=None if med is None else med.upper,
                ratio_min=min((g(r, ratio) for r in checked), default=None),
                ratio_max=max((g(r, ratio) for r in checked), default=None),
                certified_share=None if share is None else share.median, certified_share_points=len(shares),
                certified_share_lower=None if share is None else share.lower,
                certified_share_upper=None if share is None else share.upper)


def _reference(defence: str) -> str:
    """The undefended net a defence is compared with: the quad net's defences with the quad baseline
    (``eps = 0`` of its exact-training run), every other with the ReLU baseline."""
    return "none (quad)" if defence.endswith("quad)") else "none"


def _verdict(t: dict[str, Any], base: dict[str, Any], reference: str = "none") -> str:
    """Along / below / above the curve, against the baseline's median ratio interval (module ``report``)."""
    if t["ratio_median"] is None or base.get("ratio_median") is None:
        return f"has no verdict (its baseline, '{reference}', has no selected point with a complete d(E))"
    n_t, n_b = t.get("checked", 6), base.get("checked", 6)
    if min(n_t, n_b) < 3:
        return (f"has no verdict (on {n_t} against the baseline's {n_b} checkpoint(s): fewer than 3 on a side; the "
                "range of so few points is no interval for the median)")
    few = min(n_t, n_b) < 6
    caveat = (f"; on {t.get('checked')} against the baseline's {base.get('checked')} checkpoint(s): with fewer than 6 "
              "on a side its interval is that side's range, so this is weak evidence" if few else "")
    if t["ratio_upper"] < base["ratio_lower"]:
        return "falls below the curve (its ratio's interval lies under the baseline's" + caveat + ")"
    if t["ratio_lower"] > base["ratio_upper"]:
        return "moves towards the bound (its ratio's interval lies above the baseline's" + caveat + ")"
    return "moves along the curve (its ratio's interval overlaps the baseline's" + caveat + ")"


def _pooled(rows: list[DetectorRow]) -> dict[str, Any]:
    det = stats.rate_estimate(sum(r.detected for r in rows), sum(r.adversarial for r in rows))
    fa = stats.rate_estimate(sum(r.false_alarms for r in rows), sum(r.clean for r in rows))
    return dict(rows=len(rows), detected=int(det.count), adversarial=int(det.samples), detection=float(det.value),
                detection_lower=float(det.lower), detection_upper=float(det.upper), false_alarms=int(fa.count),
                clean=int(fa.samples), false_alarm=float(fa.value), false_alarm_lower=float(fa.lower),
                false_alarm_upper=float(fa.upper))


def summarise(rows: list[DefenceRow], max_error: float, detections: list[DetectorRow] = (),
              rs_epsilon: float | None = None, timing: list[TimingRow] = ()) -> dict[str, Any]:
    """Key numbers of the saved tables (:func:`report` states them).

    Per defence and sphere: :func:`_sphere_summary` over the rows that pass the rule; bracket checks
    (mean certified <= mean attack + 2 SE, every row with both) and the baseline's point checks;
    certification time per point and ReLU stability per run; the squeezing detectors at the last
    checkpoint, pooled over members."""
    out = {**common.summarise(rows, max_error), "defences": {}, "runs": {}, "detectors": {}, "rs_epsilon": rs_epsilon,
           "timing": {t.run: dataclasses.asdict(t) for t in timing}}
    brackets, violations = 0, 0
    for r in rows:
        for sphere in ("inner", "outer"):
            dist, se, fail, _, _, _, cert = _SPHERE_FIELDS[sphere]
            if getattr(r, cert) is not None and getattr(r, dist) is not None and getattr(r, fail) == 0:
                brackets += 1
                violations += getattr(r, cert) > getattr(r, dist) + 2 * (getattr(r, se) or 0.0)
    out["bracket_checks"], out["bracket_violations"] = brackets, int(violations)
    checked = [r for r in rows if r.point_checks is not None]
    out["point_checks"] = sum(r.point_checks for r in checked)
    out["point_violations"] = sum(r.point_violations for r in checked)
    out["point_rows"] = len(checked)
    for name in dict.fromkeys(r.defence for r in rows):
        sub = [r for r in rows if r.defence == name]
        out["defences"][name] = dict(points=len(sub), selected=sum(1 for r in sub if r.selected),
                                     strengths=sorted({r.strength for r in sub if r.strength is not None}),
                                     inner=_sphere_summary(sub, "inner"), outer=_sphere_summary(sub, "outer"))
    for run_name in dict.fromkeys(r.run for r in rows):
        sub = [r for r in rows if r.run == run_name]
        times = [r.certify_seconds_per_point for r in sub if r.certify_seconds_per_point is not None]
        stable = np.asarray([r.stable_fraction for r in sub if r.stable_fraction is not None])
        unstable = np.asarray([r.unstable_relus for r in sub if r.unstable_relus is not None])
        width = np.asarray([r.distance - r.certified for r in sub if r.certified is not None
                            and r.distance is not None and r.distance_failures == 0])
        cert = np.asarray([r.certified for r in sub if r.certified is not None])
        steps = sorted({r.step for r in sub})
        final = [r for r in sub if r.step == steps[-1]]
        out["runs"][run_name] = dict(
            final=[dict(strength=r.strength, seed=r.seed, stable_fraction=r.stable_fraction,
                        unstable_relus=r.unstable_relus, certified=r.certified, distance=r.distance,
                        share=None if r.certified is None or not r.distance else r.certified / r.distance)
                   for r in final],
            defence=sub[0].defence, rows=len(sub), checkpoints=len(steps),
            certify_seconds_per_point=float(np.median(times)) if times else None, timed_rows=len(times),
            seconds_per_point_min=min(times) if times else None, seconds_per_point_max=max(times) if times else None,
            stable_fraction=stats.mean_and_se(stable)._asdict() if stable.size > 1 else None,
            unstable_relus=stats.mean_and_se(unstable)._asdict() if unstable.size > 1 else None,
            hidden_units=next((r.hidden_units for r in sub if r.hidden_units), None),
            certified=stats.mean_and_se(cert)._asdict() if cert.size > 1 else None,
            bracket_width=stats.mean_and_se(width)._asdict() if width.size > 1 else None,
            last_step=steps[-1] if steps else None)
    if detections:
        last = max(d.step for d in detections)
        for bits in sorted({d.bits for d in detections}):
            for kind in ("flip", "score"):
                sub = [d for d in detections if d.bits == bits and d.detector == kind and d.step == last]
                if sub:
                    out["detectors"][f"{kind}-{bits}"] = dict(bits=bits, detector=kind, step=last, **_pooled(sub),
                                                              target_false_alarm=sub[0].target_false_alarm)
    return out


def draw(ctx: Context) -> list[Path]:
    rule = load_json(ctx.out / common.SELECTION, ("max_error",))
    return draw_defences(ctx.out / RESULTS, ctx.out / "defences.png", threshold=rule["max_error"])


def _bracket(lo: Any, hi: Any) -> str:
    return f"[{common.sci(lo)}, {common.sci(hi)}]"


def _ms(m: dict[str, Any] | None, scale: float = 1.0) -> str:
    return "-" if m is None else f"{common.sci(m['mean'] * scale)} +- {common.sci(m['se'] * scale)} (n = {m['n']})"


def report(s: dict[str, Any], ctx: Context) -> Report:
    sci = common.sci
    findings = common.bound_findings("defences", s)
    findings.append(f"defences: the mean certified radius is at most the mean attack distance + 2 SE on "
                    f"{s['bracket_checks'] - s['bracket_violations']} of {s['bracket_checks']} (checkpoint, sphere) "
                    f"pairs with both (every checkpoint of every certified net; {s['bracket_violations']} violations, "
                    f"0 expected); point by point, on both spheres of all {s['point_rows']} certified (net, "
                    f"checkpoint) rows (attack rerun), {s['point_checks'] - s['point_violations']} of "
                    f"{s['point_checks']} points with a found error have certified radius <= attack distance "
                    f"({s['point_violations']} violations).")
    findings.append("defences: verdict rule: a defence 'moves along the curve' when the 95% interval of its median "
                    "ratio d(E) / d_cap(mu) overlaps its baseline's on that sphere (the quad net's defences: the quad "
                    "baseline, eps = 0 of the same run; every other: the ReLU baseline), 'falls below' when the interval "
                    "lies under the baseline's, 'moves towards the bound' when above; a point is 'within its "
                    "uncertainty of the bound' when d(E) + 2 SE reaches the bound at the upper end of mu's interval. "
                    "Squeezed nets are attacked through the quantiser's straight-through gradient (every error the "
                    "attack reports is verified on the real net, so d(E) stays an upper bound) and have no "
                    "certificate (the quantiser is discontinuous).")
    for name, t in s["defences"].items():
        for sphere in ("inner", "outer"):
            u = t[sphere]
            if not u["checked"]:
                findings.append(f"defences, {name}, {sphere} sphere: none of its {t['points']} checkpoints passes the "
                                f"rule ({s['rule']}) with a complete d(E); no claim.")
                continue
            ref = _reference(name)
            verdict = ("is the reference" if name == ref else
                       _verdict(u, s["defences"].get(ref, {}).get(sphere, {}), ref))
            cert = ("" if u["certified_share"] is None else
                    f"; the certified radius is a median {sci(u['certified_share'])} "
                    f"{_bracket(u['certified_share_lower'], u['certified_share_upper'])} of the attack's d(E) "
                    f"({u['certified_share_points']} points)")
            findings.append(f"defences, {name} (strengths {', '.join(f'{v:g}' for v in t['strengths']) or '-'}), "
                            f"{sphere} sphere: over its {u['checked']} {s['rule']} with a complete d(E) (of its "
                            f"{t['points']} net x checkpoint rows), d(E) is a median {sci(u['ratio_median'])} ("
                            + (f"95% interval {_bracket(u['ratio_lower'], u['ratio_upper'])}; " if u["checked"] >= 6
                               else "too few points for a 95% interval; ")
                            + f"range {sci(u['ratio_min'])} to {sci(u['ratio_max'])}) of the cap bound at its error "
                            f"rate: it {verdict}; "
                            f"{u['within_2se_of_bound']} of {u['checked']} come within their uncertainty of the "
                            f"bound{cert}.")
    groups: dict[str, list[str]] = {}
    near = {"inner": [0, 0], "outer": [0, 0]}
    for name, t in s["defences"].items():
        for sphere in ("inner", "outer"):
            u = t[sphere]
            near[sphere][0] += u["within_2se_of_bound"]
            near[sphere][1] += u["checked"]
            ref = _reference(name)
            if name != ref and u["checked"]:
                full = _verdict(u, s["defences"].get(ref, {}).get(sphere, {}), ref)
                weak = "; weak: fewer than 6 checkpoints on a side" if "weak evidence" in full else ""
                groups.setdefault(full.split(" (")[0], []).append(f"{name} ({sphere}{weak})")
    summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items()) or "no defence has a selected point"
    findings.append(f"defences, in sum (rule above, over the {s['selected']} of {s['points']} net x checkpoint rows "
                    f"that pass it): {summary}; none falls below the curve unless listed so. Points within their "
                    f"uncertainty of the bound: {near['inner'][0]} of {near['inner'][1]} on the inner sphere, "
                    f"{near['outer'][0]} of {near['outer'][1]} on the outer one.")
    findings += _rs_findings(s)
    findings += _detector_findings(s)
    lines = common.bound_lines(s) + [
        "| defence | points | selected | inner ratio median [95%; a range where n < 6] (n) | within unc. of bound "
        "(inner) | outer ratio median [95%; a range where n < 6] (n) | within unc. of bound (outer) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, t in s["defences"].items():
        cells = [f"{sci(t[sp]['ratio_median'])} {'' if t[sp]['checked'] >= 6 else 'range '}"
                 f"{_bracket(t[sp]['ratio_lower'], t[sp]['ratio_upper'])} "
                 f"({t[sp]['checked']}) | {t[sp]['within_2se_of_bound']}" for sp in ("inner", "outer")]
        lines.append(f"| {name} | {t['points']} | {t['selected']} | {cells[0]} | {cells[1]} |")
    lines += ["", "| run | defence | CROWN s/point (median over rows, each timed once) | stable ReLUs on the RS ball "
              "(all checkpoints) | unstable ReLUs per point | mean certified radius (inner) | mean bracket width "
              "(inner) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in s["runs"].items():
        lines.append(f"| {name} | {r['defence']} | {sci(r['certify_seconds_per_point'])} ({r['timed_rows']}) | "
                     f"{_ms(r['stable_fraction'])} | {_ms(r['unstable_relus'])} | {_ms(r['certified'])} | "
                     f"{_ms(r['bracket_width'])} |")
    if s["timing"]:
        lines += ["", "| run (final checkpoint) | members x points | CROWN wall s/point (fastest, median of rounds) | "
                  "CPU s/point (fastest) | unstable ReLUs per point |", "| --- | --- | --- | --- | --- |"]
        for t in s["timing"].values():
            lines.append(f"| {t['run']} (step {t['step']}) | {t['members']} x {t['points']} | "
                         f"{sci(t['seconds_per_point_min'])}, {sci(t['seconds_per_point_median'])} ({t['repeats']}) | "
                         f"{sci(t['cpu_seconds_per_point_min'])} | {sci(t['unstable_relus'])} of {t['hidden_units']} |")
    if s["detectors"]:
        lines += ["", "| squeezing detector (bits) | checkpoint | detected / adversarial [95%] | false alarms / clean "
                  "[95%] | target false alarm |", "| --- | --- | --- | --- | --- |"]
        for t in s["detectors"].values():
            lines.append(f"| {t['detector']} ({t['bits']}) | {t['step']} | {t['detected']} / {t['adversarial']} "
                         f"{_bracket(t['detection_lower'], t['detection_upper'])} | {t['false_alarms']} / "
                         f"{t['clean']} {_bracket(t['false_alarm_lower'], t['false_alarm_upper'])} | "
                         f"{sci(t['target_false_alarm'])} |")
    return Report(tuple(findings), tuple(lines + [""]))


def _rs_findings(s: dict[str, Any]) -> list[str]:
    """The ReLU-stability claims: certification time (the alternating timing table), stable and unstable
    ReLUs, certified radius and its share of the attack's distance at the final checkpoint."""
    sci = common.sci
    b, rs = s["runs"].get("baseline"), s["runs"].get("rs")
    tb, trs = s["timing"].get("baseline"), s["timing"].get("rs")
    out = []
    if tb and trs:
        out.append(
            f"defences, ReLU stability: CROWN's certification time per point at the final checkpoint (both spheres' "
            f"{trs['points']} attacked points x {trs['members']} members; fastest of {trs['repeats']} rounds "
            f"alternating between the runs) is {sci(trs['seconds_per_point_min'])} s wall / "
            f"{sci(trs['cpu_seconds_per_point_min'])} s CPU for the RS-trained nets against "
            f"{sci(tb['seconds_per_point_min'])} s / {sci(tb['cpu_seconds_per_point_min'])} s for the baseline "
            f"({tb['members']} members): a wall-time speed-up of "
            f"{sci(tb['seconds_per_point_min'] / trs['seconds_per_point_min'])} (baseline / RS), while the unstable "
            f"ReLUs per point on the RS ball fall from {sci(tb['unstable_relus'])} to {sci(trs['unstable_relus'])} "
            f"(of {trs['hidden_units']}). No speed-up is expected here: this CROWN multiplies dense matrices through "
            "every ReLU, stable or not, with a fixed number of bisections, so its cost does not depend on stability. "
            "The speed-up Xiao et al. (2019) report is that of an exact MILP verifier, which needs one binary "
            "variable (a case split) per unstable ReLU, so its cost grows with their number; the unstable count "
            "above is that number for these nets.")
    if b and rs and b["final"] and rs["final"]:
        def cell(r):
            return (f"{sci(r['stable_fraction'])} stable, {sci(r['unstable_relus'])} unstable per point, certified "
                    f"{sci(r['certified'])} = {sci(r['share'])} of the attack's {sci(r['distance'])}")
        base = "; ".join(f"seed {r['seed']}: {cell(r)}" for r in b["final"])
        rsn = "; ".join(f"RS weight {r['strength']:g}: {cell(r)}" for r in sorted(rs["final"],
                                                                                  key=lambda r: r["strength"]))
        out.append(f"defences, ReLU stability, what RS training changes instead (final checkpoint, inner sphere, "
                   f"ReLUs provably stable on the ball of radius {sci(s.get('rs_epsilon'))} around each of the "
                   f"attacked points; certified = mean CROWN radius): {rsn}; baseline {base}.")
    return out


def _detector_findings(s: dict[str, Any]) -> list[str]:
    sci = common.sci
    out = []
    for t in s["detectors"].values():
        how = ("flags a point when the prediction on it and on its squeezed copy differ" if t["detector"] == "flip"
               else f"flags a point when the L1 change of the class probabilities exceeds a threshold set for a "
                    f"{sci(t['target_false_alarm'])} false-alarm rate on separate clean points")
        out.append(f"defences, feature-squeezing detector ({t['bits']} bits, guarding the baseline; {how}): at the "
                   "last "
                   f"checkpoint (step {t['step']}), pooled over {t['rows']} members, it detects {t['detected']} of "
                   f"{t['adversarial']} attack outputs (rate {sci(t['detection'])}, 95% "
                   f"{_bracket(t['detection_lower'], t['detection_upper'])}) and raises {t['false_alarms']} false "
                   f"alarms on {t['clean']} clean points (rate {sci(t['false_alarm'])}, 95% "
                   f"{_bracket(t['false_alarm_lower'], t['false_alarm_upper'])}). The attack was not adapted to "
                   "the detector: an attack on the squeezed net (the feature-squeezing rows above) measures what "
                   "squeezing buys against an adaptive adversary.")
    return out


EXPERIMENT = Experiment(
    name="defences", rank=60,
    description="Defences cannot beat geometry: adversarial training, gradient penalty, feature squeezing, random "
                "masks and ReLU stability, each at several strengths, placed on the Fig. 4 plane against the cap "
                "bound, with d(E) bracketed by CROWN's certified radius and the attack.",
    config=DefencesConfig, run=run, draw=draw, report=report,
    tables=(RESULTS, DETECTOR, TIMING, common.SELECTION),
    figures=(("defences.png", "Every net at every checkpoint with a positive error rate and a d(E), on each sphere "
              "(the others are counted under the figure): error rate mu(E) against d(E) (attack, marker, hollow "
              "where it failed on some points; CROWN's certified lower end, bar bottom), one marker per defence, "
              "colour by strength rank within the defence, against the exact cap bound; faded when either sphere's "
              "error exceeds the selection threshold; rates below 1e-15 drawn at the edge with an arrow."),),
)
