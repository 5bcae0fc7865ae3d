"""Experiment ``slices``: two-dimensional sections through a trained net's decision boundary.

Input: the ``tradeoff`` experiment's training runs (declared in ``inputs``). For the net
``model`` trained on ``train_size`` points with ``seed``, at its last checkpoint: the plane of two
random directions; the plane of a random point and its adversarial direction (the on-manifold
attack's nearest error); the plane of two adversarial directions; each with the circles of radius
1, (1 + R)/2 and R.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spheres.core.cells import CellStore
from spheres.core.config import check_float, check_int
from spheres.core.errors import InputError
from spheres.core.io import write_bytes_atomic
from spheres.experiments.base import Context, Experiment, Report
from spheres.maths.geometry import sample_sphere
from spheres.measure import attacks
from spheres.measure.slices import decision_slice
from spheres.nets.models import make_logit_fn
from spheres.nets.runs import load_run
from spheres.plotting.slices import draw_slices

SOURCE = "tradeoff"
NPZ = "slices.npz"


@dataclass(frozen=True)
class SlicesConfig:
    """Slices through the ``tradeoff`` experiment's ``model`` trained on ``train_size`` points (0 = online)."""

    model: str = "relu-w1000-d2"
    train_size: int = 0
    seed: int = 0
    resolution: int = 201
    extent: float = 1.6

    def __post_init__(self):
        check_int("resolution", self.resolution, 3)
        check_float("extent", self.extent, 0.0, lo_open=True, hi=100.0, hi_open=True)


def check(cfg: SlicesConfig, configs: dict[str, Any]) -> None:
    """The net must be one the input experiment trains."""
    t = configs.get(SOURCE)
    if t is None:
        return  # not run now: its saved runs are looked up when slices runs
    if cfg.model not in t.models:
        raise InputError("slices.model", f"must be one of tradeoff.models {list(t.models)}")
    if cfg.train_size not in t.train.train_sizes:
        raise InputError("slices.train_size", f"must be one of tradeoff.train.train_sizes {list(t.train.train_sizes)}")
    if cfg.seed not in t.train.seeds:
        raise InputError("slices.seed", f"must be one of tradeoff.train.seeds {list(t.train.seeds)}")


def _compute(cfg: SlicesConfig, ctx: Context) -> dict[str, Any]:
    source = ctx.inputs[SOURCE] / "runs" / cfg.model
    if not (source / "config.toml").is_file():
        raise InputError("slices", f"no trained {cfg.model} in {source}; run the tradeoff experiment first")
    run = load_run(source)
    dim = run.config.task.dim
    member = next((m["member"] for m in run.members if m["train_size"] == cfg.train_size and m["seed"] == cfg.seed),
                  None)
    if member is None:
        raise InputError("slices", f"{source} has no net with train_size {cfg.train_size} and seed {cfg.seed}")
    step = run.checkpoint_steps[-1]
    variables = jax.tree.map(lambda a: jnp.asarray(a[member]), run.load_variables(step))
    logit_fn = make_logit_fn(run.config.model, dim)
    k_points, k_dirs = jax.random.split(jax.random.key(cfg.seed))
    # a few candidate starting points; keep the first two whose nearest error the attack finds
    xs = jax.vmap(lambda k: sample_sphere(k, dim))(jax.random.split(k_points, 16))
    res = attacks.attack(logit_fn, variables, xs, 0)
    found = np.flatnonzero(np.asarray(res.found) & ~np.asarray(res.initially_wrong))
    if found.size < 2:
        raise InputError("slices", f"the attack found errors from only {found.size} of 16 points of {cfg.model}; "
                                   "cannot draw the adversarial slices")
    i, j = found[:2]
    x1, y1, x2, y2 = xs[i], res.point[i], xs[j], res.point[j]
    g = jax.random.normal(k_dirs, (2, dim))
    planes = [
        ("two random directions", g[0], g[1], []),
        ("random point and its adversarial direction", x1, y1 - x1, [x1, y1]),
        ("two adversarial directions", y1 - x1, y2 - x2, []),
    ]
    arrays: dict[str, np.ndarray] = {"radius": np.asarray(run.config.task.outer_radius)}
    for k, (title, a, b, marks) in enumerate(planes):
        sl = decision_slice(logit_fn, variables, a, b, extent=cfg.extent, resolution=cfg.resolution)
        arrays[f"coords_{k}"] = np.asarray(sl.coords)
        arrays[f"logits_{k}"] = np.asarray(sl.logits)
        arrays[f"title_{k}"] = np.asarray(title)
        if marks:
            arrays[f"points_{k}"] = np.asarray(jnp.stack(marks) @ sl.basis.T)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(ctx.out / NPZ, buf.getvalue())
    return {"model": cfg.model, "member": int(member), "step": int(step),
            "attack_distances": [float(res.distance[i]), float(res.distance[j])]}


def run(cfg: SlicesConfig, ctx: Context) -> dict[str, Any]:
    CellStore(ctx.out).run("slices", lambda: _compute(cfg, ctx))
    return {}


def draw(ctx: Context) -> list[Path]:
    return draw_slices(ctx.out / NPZ, ctx.out / "slices.png")


def report(summary: dict[str, Any], ctx: Context) -> Report:
    return Report()


EXPERIMENT = Experiment(
    name="slices", rank=40,
    description="Two-dimensional slices through a trained net's decision boundary.",
    config=SlicesConfig, run=run, draw=draw, report=report, check=check, inputs=(SOURCE,),
    tables=(NPZ,),
    figures=(("slices.png", "Two-dimensional slices through a trained net's decision boundary: two random "
              "directions; a random point and its adversarial direction; two adversarial directions."),),
)
