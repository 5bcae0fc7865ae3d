"""Experiment ``defences``: robust training, squeezing, masks and ReLU stability against the cap bound.

The cap bound is a theorem about ANY classifier, so no defence can put a net above the curve
``d(E) <= d_cap(mu)``; a defence can only move a net along it (trading error rate for distance) or
below it. Each defence kind is ONE training run of the baseline model whose numeric strengths are
the ensemble axes of the run (traced ``Hyper`` fields: ``adv_eps``, ``grad_penalty``,
``mask_keep``, ``rs_weight``); the squeezing bit depth sets the model's front end (static), so it
is one run per bit depth. Every checkpoint is measured on both spheres by
:func:`spheres.measure.pipeline.measure_run`, and on the inner sphere's attacked points the
certified radius (CROWN over the L2 ball, :mod:`spheres.measure.certify`) gives the lower end of
the bracket ``[certified, attack]`` of ``d(E)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spheres.core.config import check_float, check_int
from spheres.core.errors import InputError

from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.maths import stats
from spheres.measure import attacks, certify
from spheres.measure.pipeline import MeasureConfig, measure_run
from spheres.measure.results import DefenceRow, read_rows, write_rows
from spheres.nets import relu_stability
from spheres.nets.config import ExperimentConfig, TaskConfig, TrainConfig, parse_model_name
from spheres.nets.runs import run_training
from spheres.nets.rundir import load_run
from spheres.plotting._common import load_json
from spheres.plotting.defences import draw_defences

RESULTS = "defences_results.csv"


@dataclass(frozen=True)
class DefencesConfig:
    """The baseline net and each defence at several strengths, at ``task.dim``.

    Attributes:
      task: the two spheres.
      model: the baseline ReLU model (no batch norm keeps the certified bracket simple).
      quad_model: the quadratic net trained with its exact worst case ("" = skip).
      train: the recipe shared by every run (its defence lists are ignored: set here).
      measure: measurement budgets.
      adv_epsilons: PGD-on-the-sphere chord budgets (one run, swept).
      quad_learning_rate: the quad net's learning rate.
      grad_penalties: input-gradient penalty weights (one run, swept).
      squeeze_bits: feature-squeezing bit depths (one run each: the front end is static).
      mask_keep_rates: random-mask keep rates (one run, swept).
      rs_weights: ReLU-stability weights (one run, swept), with ``rs_epsilon`` and ``l1_weight``.
      certify_bisections: bisection halvings of CROWN's certified radius.
      select_max_error: a point is faded when its error on either sphere exceeds this.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    model: str = "relu-w1000-d2-nobn"
    quad_model: str = "quad-w1000"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(checkpoints=6))
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    adv_epsilons: tuple[float, ...] = (0.05, 0.1, 0.2)
    quad_learning_rate: float = 1e-2
    grad_penalties: tuple[float, ...] = (0.1, 1.0)
    squeeze_bits: tuple[int, ...] = (2, 4, 6)
    mask_keep_rates: tuple[float, ...] = (0.5, 0.75, 0.9)
    rs_weights: tuple[float, ...] = (0.1, 1.0)
    rs_epsilon: float = 0.05
    l1_weight: float = 1e-5
    certify_bisections: int = 16
    select_max_error: float = 0.01

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
        check_int("certify_bisections", self.certify_bisections, 1, hi=60)
        check_float("select_max_error", self.select_max_error, 0.0, hi=1.0)


@dataclass(frozen=True)
class Spec:
    """One training run: its name, the defence kind, the model, the train overrides, the strength's member field."""

    run: str
    defence: str
    model: str
    train: dict[str, Any]
    strength_field: str | None
    strength: float | None = None


def specs(cfg: DefencesConfig) -> list[Spec]:
    """The runs of the experiment, baseline first."""
    out = [Spec("baseline", "none", cfg.model, {}, None, 0.0)]
    if cfg.adv_epsilons:
        out.append(Spec("pgd", "adversarial (PGD)", cfg.model, dict(adversarial="pgd", adv_epsilons=cfg.adv_epsilons),
                        "adv_eps"))
    if cfg.quad_model:
        out.append(Spec("quad-baseline", "none (quad)", cfg.quad_model, dict(learning_rates=(cfg.quad_learning_rate,)),
                        None, 0.0))
        if cfg.adv_epsilons:
            out.append(Spec("quad-exact", "adversarial (exact, quad)", cfg.quad_model,
                            dict(adversarial="exact", adv_epsilons=cfg.adv_epsilons,
                                 learning_rates=(cfg.quad_learning_rate,)), "adv_eps"))
    if cfg.grad_penalties:
        out.append(Spec("gradpen", "gradient penalty", cfg.model, dict(grad_penalties=cfg.grad_penalties),
                        "grad_penalty"))
    for b in cfg.squeeze_bits:
        out.append(Spec(f"squeeze{b}", "feature squeezing", f"{cfg.model}-sq{b}", {}, None, float(b)))
    if cfg.mask_keep_rates:
        out.append(Spec("masks", "random masks", f"{cfg.model}-masked", dict(mask_keep_rates=cfg.mask_keep_rates),
                        "mask_keep"))
    if cfg.rs_weights:
        out.append(Spec("rs", "ReLU stability + L1", cfg.model,
                        dict(rs_weights=cfg.rs_weights, rs_epsilons=(cfg.rs_epsilon,), l1_weights=(cfg.l1_weight,)),
                        "rs_weight"))
    return out


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


def attack_points(run_cfg: ExperimentConfig, mcfg: MeasureConfig, step: int) -> jax.Array:
    """The inner-sphere points the pipeline attacks at ``step`` (the same key derivation as
    :func:`spheres.measure.pipeline.measure_step`), shape ``(attack_points, d)``."""
    key = jax.random.fold_in(jax.random.key(mcfg.seed), step)
    _, k_attack, _ = jax.random.split(key, 3)
    acfg = attacks.AttackConfig(dim=run_cfg.task.dim, points=mcfg.attack_points, sphere="inner",
                                outer_radius=run_cfg.task.outer_radius)
    return attacks.start_points(k_attack, acfg)


def certify_step(run_dir: Path, step: int, mcfg: MeasureConfig, bisections: int,
                 rs_eps: float) -> list[dict[str, Any]]:
    """Certified radii (CROWN; the closed form for quad nets) of every member at one checkpoint, on the
    attacked points, and the fraction of provably stable ReLUs on ``B(x, rs_eps)``. Squeezed nets
    are not certified (the quantiser is discontinuous): their columns stay empty."""
    run = load_run(run_dir)
    cfg = run.config
    xs = attack_points(cfg, mcfg, step)
    n = len(run.members)
    empty = [dict(certified=None, certified_se=None, certified_points=None, certified_method="",
                  certify_seconds_per_point=None, stable_fraction=None, stable_fraction_se=None)] * n
    if cfg.model.squeeze_bits:
        return [dict(e, certified_method="not applicable (squeezing front end)") for e in empty]
    variables = jax.tree.map(jnp.asarray, run.load_variables(step))
    quad = cfg.model.arch == "quad"
    folded = variables if quad else fold_masks(variables)
    config = certify.CertifyConfig(method="lipschitz" if quad else "crown", bisections=bisections)
    est = certify.certify_ensemble(jax.random.key(0), None, folded, xs, 0, config)
    rows = []
    for i in range(n):
        sf = None
        if not quad:
            member = jax.tree.map(lambda a: a[i], variables)
            sf = relu_stability.stable_fraction(member, cfg.model, xs, rs_eps).overall
        rows.append(dict(certified=float(est.mean[i]), certified_se=float(est.se[i]), certified_points=est.points,
                         certified_method=est.method, certify_seconds_per_point=float(est.seconds_per_point),
                         stable_fraction=None if sf is None else float(sf.mean),
                         stable_fraction_se=None if sf is None else float(sf.se)))
    return rows


def _measure(cfg: DefencesConfig, spec: Spec, out: Path, progress: bool) -> list[DefenceRow]:
    train = dataclasses.replace(cfg.train, **spec.train)
    exp = ExperimentConfig(task=cfg.task, model=parse_model_name(spec.model), train=train)
    run_dir = out / "runs" / spec.run
    common.log(f"[defences] {spec.run}: {exp.train.ensemble_size} networks {spec.model} at d = {cfg.task.dim}")
    run_training(exp, run_dir, progress=progress)
    measured = measure_run(run_dir, cfg.measure, progress=progress)
    cert: dict[int, list[dict[str, Any]]] = {}
    rows = []
    member_index: dict[int, int] = {}
    for m in measured:
        step = m["step"]
        if step not in cert:
            cert[step] = certify_step(run_dir, step, cfg.measure, cfg.certify_bisections, cfg.rs_epsilon)
            member_index[step] = 0
        c = cert[step][member_index[step]]
        member_index[step] += 1
        strength = float(m[spec.strength_field]) if spec.strength_field else spec.strength
        rows.append(DefenceRow.from_measurement(m, defence=spec.defence, strength=strength, run=spec.run, **c))
    return rows


def run(cfg: DefencesConfig, ctx: Context) -> dict[str, Any]:
    rows: list[DefenceRow] = []
    for spec in specs(cfg):
        rows += _measure(cfg, spec, ctx.out, ctx.progress)
    rows = common.select(rows, cfg.select_max_error)
    write_rows(ctx.out / RESULTS, rows, DefenceRow)
    common.write_selection(ctx.out, cfg.select_max_error)
    return summarise(read_rows(ctx.out / RESULTS, DefenceRow), cfg.select_max_error)


def summarise(rows: list[DefenceRow], max_error: float) -> dict[str, Any]:
    """Per defence: points, selected, below the bound by more than 2 SE, within 2 SE of it; bracket
    checks (certified <= attack) over every point; certification time per point by run."""
    out = {**common.summarise(rows, max_error), "defences": {}}
    violations = [r for r in rows if r.certified is not None and r.distance is not None
                  and r.distance_failures == 0 and r.certified > r.distance + 2 * (r.distance_se or 0.0)]
    brackets = [r for r in rows if r.certified is not None and r.distance is not None and r.distance_failures == 0]
    out["bracket_checks"], out["bracket_violations"] = len(brackets), len(violations)
    for name in dict.fromkeys(r.defence for r in rows):
        sub = [r for r in rows if r.defence == name]
        checked = [r for r in sub if r.selected and r.ratio is not None and r.distance_failures == 0
                   and r.optimal_distance]
        near = [r for r in checked if r.distance + 2 * (r.distance_se or 0.0) >= r.optimal_distance]
        ratios = [r.ratio for r in checked]
        times = [r.certify_seconds_per_point for r in sub if r.certify_seconds_per_point is not None]
        stable = [r.stable_fraction for r in sub if r.stable_fraction is not None]
        width = [r.distance - r.certified for r in sub if r.certified is not None and r.distance is not None
                 and r.distance_failures == 0]
        med = None if not ratios else float(np.median(ratios))
        out["defences"][name] = dict(
            points=len(sub), selected=sum(1 for r in sub if r.selected), checked=len(checked),
            within_2se_of_bound=len(near), ratio_median=med,
            ratio_min=min(ratios) if ratios else None, ratio_max=max(ratios) if ratios else None,
            certify_seconds_per_point=float(np.median(times)) if times else None,
            stable_fraction=float(np.mean(stable)) if stable else None,
            bracket_width=stats.mean_and_se(np.asarray(width))._asdict() if len(width) > 1 else None)
    return out


def draw(ctx: Context) -> list[Path]:
    rule = load_json(ctx.out / common.SELECTION, ("max_error",))
    return draw_defences(ctx.out / RESULTS, ctx.out / "defences.png", threshold=rule["max_error"])


def report(s: dict[str, Any], ctx: Context) -> Report:
    sci = common.sci
    findings = common.bound_findings("defences", s)
    findings.append(f"defences: certified <= attack (within 2 SE of the attack's mean) on "
                    f"{s['bracket_checks'] - s['bracket_violations']} of {s['bracket_checks']} checkpoints with a "
                    f"certified radius and a complete attack ({s['bracket_violations']} violations; 0 expected).")
    base = s["defences"].get("none", {})
    for name, t in s["defences"].items():
        if not t["checked"]:
            findings.append(f"defences, {name}: none of its {t['points']} checkpoints passes the rule ({s['rule']}) "
                            "with a complete d(E); no claim about the curve.")
            continue
        where = ("moves along the curve" if t["ratio_median"] >= 0.5 else "falls below the curve")
        findings.append(f"defences, {name}: over its {t['checked']} {s['rule']} with a complete d(E) (of "
                        f"{t['points']}), d(E) is a median {sci(t['ratio_median'])} of the cap bound at its error rate "
                        f"(range {sci(t['ratio_min'])} to {sci(t['ratio_max'])}): it {where}; {t['within_2se_of_bound']} "
                        "of them come within 2 SE of the bound.")
    rs, b = s["defences"].get("ReLU stability + L1"), base
    if rs and b and rs.get("certify_seconds_per_point") and b.get("certify_seconds_per_point"):
        findings.append(f"defences: ReLU-stability training changes CROWN's certification time per point by a factor "
                        f"{sci(b['certify_seconds_per_point'] / rs['certify_seconds_per_point'])} (median over "
                        f"checkpoints, baseline / RS); mean stable-ReLU fraction {sci(rs['stable_fraction'])} against "
                        f"{sci(b['stable_fraction'])} for the baseline.")
    lines = common.bound_lines(s) + ["| defence | points | selected | ratio median | within 2 SE of bound | "
                                     "certify s/point | stable ReLUs |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, t in s["defences"].items():
        lines.append(f"| {name} | {t['points']} | {t['selected']} | {sci(t['ratio_median'])} | "
                     f"{t['within_2se_of_bound']} | {sci(t['certify_seconds_per_point'])} | {sci(t['stable_fraction'])} |")
    return Report(tuple(findings), tuple(lines + [""]))


EXPERIMENT = Experiment(
    name="defences", rank=60,
    description="Defences cannot beat geometry: adversarial training, gradient penalty, feature squeezing, random "
                "masks and ReLU stability, each at several strengths, placed on the Fig. 4 plane against the cap "
                "bound, with d(E) bracketed by CROWN's certified radius and the attack.",
    config=DefencesConfig, run=run, draw=draw, report=report,
    tables=(RESULTS, common.SELECTION),
    figures=(("defences.png", "Every defended net at every checkpoint: inner error rate mu(E) against d(E) (attack, "
              "marker; certified lower end, bracket bottom), one marker per defence, colour by strength, against "
              "the cap bound; faded when the other sphere's error exceeds the selection threshold."),),
)
