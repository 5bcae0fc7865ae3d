"""ReLU stability (Xiao, Tjeng, Shafiullah & Madry, ICLR 2019): interval bounds, the RS loss, L1 sparsity.

A hidden ReLU unit is *stable* on a set ``S`` of inputs when its pre-activation has one sign on
all of ``S``: then it is linear there and a verifier needs no case split. Over the ball
``B(x, eps)`` (L2 or L-inf) of a relu model (layout: :mod:`spheres.nets.models`) interval bound
propagation (IBP; Gowal et al. 2018) gives per-unit bounds ``[l, u]`` on the pre-activation
(after batch norm, which is an affine map per unit):

    layer 0:  centre W_0^T x + b_0,  radius eps ||W_0[:, j]||_q   (q = 2 for L2, 1 for L-inf)
    then      BN: centre a * c + s, radius |a| * rad   (a = scale / sqrt(var + 1e-5), s = bias - mean a)
    ReLU and mask:  [l, u] -> mask * [relu(l), relu(u)]  (centre and radius of that box)
    layer l:  centre W_l^T c + b_l,  radius |W_l|^T rad

The bounds hold on the whole ball in R^d, hence on the cap of the sphere inside it. A unit is
*provably* stable iff ``l >= 0`` or ``u <= 0`` (or its mask is 0: its output is 0 regardless).

**RS loss.** Xiao et al. use ``-tanh(1 + l u)`` per unit. Here it is shifted and clipped so
that it is exactly zero for a stable unit (``l u >= 0``) and positive for an unstable one:

    rs(l, u) = tanh(1) - tanh(1 + min(l u, 0))  in [0, 1 + tanh 1),

averaged over the unmasked hidden units of every layer and over the batch. For unstable units
the gradient is Xiao et al.'s; for stable ones it is zero (theirs pushes them further from 0,
a small effect as tanh saturates). **L1 sparsity**: ``sum |W|`` over every dense kernel (not
biases, batch-norm parameters or the quad net).

The bounds are those of the network behind any squeezing front end, centred at the raw point
(the squeezer maps a ball to a finite set of points, which interval bounds do not describe).

In training, batch norm normalises with the statistics of the CLEAN batch (as the forward pass
does), so the bounds are those of the very function being trained; at evaluation it uses the
running averages (:func:`batch_norm_affines`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spheres.core.errors import InputError
from spheres.maths.stats import MeanEstimate, mean_and_se
from spheres.nets.config import ModelConfig

#: nnx.BatchNorm's epsilon (models module docstring)
BN_EPSILON = 1e-5

Affine = tuple[jax.Array, jax.Array]  # per-unit (scale a, shift s): z -> a z + s, each (h,)


def _check(model_cfg: ModelConfig, norm: str) -> None:
    if model_cfg.arch != "relu":
        raise InputError("model.arch", "ReLU stability needs a relu model")
    if norm not in ("l2", "linf"):
        raise InputError("norm", f"must be 'l2' or 'linf', got {norm!r}")


def _dense(params, layer: int, h: jax.Array, batch_norm: bool) -> jax.Array:
    p = params[f"dense{layer}"]
    z = h @ p["kernel"]
    return z if batch_norm else z + p["bias"]


def _mask(variables, layer: int, width: int) -> jax.Array:
    masks = variables.get("masks")
    return masks[f"mask{layer}"] if masks else jnp.ones((width,), jnp.float32)


def batch_norm_affines(variables, model_cfg: ModelConfig, xs: ArrayLike | None = None) -> list[Affine]:
    """Per-layer affine maps of the pre-activations after the dense layer.

    Without batch norm every map is the identity (``a = 1``, ``s = 0``; the dense bias is part of
    the dense layer). With batch norm: the running averages (``xs = None``, evaluation) or the
    statistics of the batch ``xs`` ``(B, d)`` (training; as ``nnx.BatchNorm``:
    ``var = max(mean(z^2) - mean(z)^2, 0)``), differentiable in the parameters.
    """
    params, width = variables["params"], model_cfg.width
    if not model_cfg.batch_norm:
        one = (jnp.ones((width,), jnp.float32), jnp.zeros((width,), jnp.float32))
        return [one] * model_cfg.depth
    affines = []
    h = None if xs is None else jnp.asarray(xs)
    for layer in range(model_cfg.depth):
        norm = params[f"norm{layer}"]
        if h is None:
            stats = variables["batch_stats"][f"norm{layer}"]
            mean, var = stats["mean"], stats["var"]
        else:
            z = _dense(params, layer, h, True)
            mean = jnp.mean(z, axis=0)
            var = jnp.maximum(jnp.mean(z * z, axis=0) - mean * mean, 0.0)
        a = norm["scale"] * jax.lax.rsqrt(var + BN_EPSILON)
        s = norm["bias"] - mean * a
        affines.append((a, s))
        if h is not None:
            h = jax.nn.relu(a[None, :] * z + s[None, :]) * _mask(variables, layer, width)[None, :]
    return affines


def preactivation_bounds(variables, model_cfg: ModelConfig, affines: list[Affine], x: ArrayLike,
                         eps: ArrayLike, norm: str = "l2") -> list[tuple[jax.Array, jax.Array]]:
    """Interval bounds ``[(l, u)]`` (each ``(h,)``, one pair per hidden layer) on the
    pre-activations of ONE point's ball ``B(x, eps)`` (module docstring).

    Args:
      variables: one relu model's variables.
      model_cfg: its architecture.
      affines: :func:`batch_norm_affines`.
      x: centre, ``(d,)``; eps: radius ``>= 0`` (scalar, may be traced); norm: "l2" or "linf".
    Returns:
      ``depth`` pairs ``(lower, upper)``; with ``eps = 0`` both equal the pre-activations at ``x``.
    """
    _check(model_cfg, norm)
    params = variables["params"]
    x = jnp.asarray(x)
    eps = jnp.asarray(eps, x.dtype)
    kernel0 = params["dense0"]["kernel"]
    if norm == "l2":
        col = jnp.sqrt(jnp.sum(kernel0 * kernel0, axis=0))
    else:
        col = jnp.sum(jnp.abs(kernel0), axis=0)
    centre, radius = _dense(params, 0, x, model_cfg.batch_norm), eps * col
    bounds = []
    for layer in range(model_cfg.depth):
        if layer > 0:
            centre = _dense(params, layer, centre, model_cfg.batch_norm)
            radius = radius @ jnp.abs(params[f"dense{layer}"]["kernel"])
        a, s = affines[layer]
        centre, radius = a * centre + s, jnp.abs(a) * radius
        lower, upper = centre - radius, centre + radius
        bounds.append((lower, upper))
        mask = _mask(variables, layer, model_cfg.width)
        lo, hi = jax.nn.relu(lower) * mask, jax.nn.relu(upper) * mask
        centre, radius = 0.5 * (lo + hi), 0.5 * (hi - lo)
    return bounds


def rs_unit_loss(lower: ArrayLike, upper: ArrayLike) -> jax.Array:
    """``tanh(1) - tanh(1 + min(l u, 0))`` elementwise: 0 iff stable, positive iff ``l < 0 < u``."""
    lu = jnp.minimum(jnp.asarray(lower) * jnp.asarray(upper), 0.0)
    return jnp.tanh(1.0) - jnp.tanh(1.0 + lu)


def rs_loss(variables, model_cfg: ModelConfig, affines: list[Affine], x: ArrayLike, eps: ArrayLike,
            norm: str = "l2") -> jax.Array:
    """RS loss of ONE point: :func:`rs_unit_loss` averaged over the unmasked hidden units (scalar)."""
    total, count = 0.0, 0.0
    for layer, (lo, hi) in enumerate(preactivation_bounds(variables, model_cfg, affines, x, eps, norm)):
        mask = _mask(variables, layer, model_cfg.width)
        total = total + jnp.sum(mask * rs_unit_loss(lo, hi))
        count = count + jnp.sum(mask)
    return total / jnp.maximum(count, 1.0)


def l1_penalty(params) -> jax.Array:
    """``sum |W|`` over every dense kernel of a relu model's params (head included)."""
    kernels = [v["kernel"] for k, v in params.items() if isinstance(v, dict) and "kernel" in v]
    return sum(jnp.sum(jnp.abs(k)) for k in kernels)


def stable_mask(variables, model_cfg: ModelConfig, affines: list[Affine], x: ArrayLike, eps: ArrayLike,
                norm: str = "l2") -> jax.Array:
    """Bool ``(depth, h)``: which hidden units of ONE point are provably stable on ``B(x, eps)``
    (``l >= 0`` or ``u <= 0``, or masked out)."""
    rows = []
    for layer, (lo, hi) in enumerate(preactivation_bounds(variables, model_cfg, affines, x, eps, norm)):
        rows.append((lo >= 0) | (hi <= 0) | (_mask(variables, layer, model_cfg.width) == 0))
    return jnp.stack(rows)


class StableFraction(NamedTuple):
    """Fraction of provably stable ReLUs over points (:func:`stable_fraction`).

    Fields:
      overall: :class:`~spheres.maths.stats.MeanEstimate` over the ``n`` points of each point's
        stable fraction (all hidden units), with its standard error.
      per_layer: float64 ``(depth,)``, mean stable fraction of each hidden layer.
      stable: int, stable (point, unit) pairs; units: int, all pairs (``n * depth * h``).
      eps: float, the ball radius; norm: str.
    """

    overall: MeanEstimate
    per_layer: np.ndarray
    stable: int
    units: int
    eps: float
    norm: str


def stable_fraction(variables, model_cfg: ModelConfig, xs: ArrayLike, eps: float,
                    norm: str = "l2") -> StableFraction:
    """Fraction of the hidden ReLUs that are provably stable on the ball of radius ``eps`` around
    each of the points ``xs`` (``(n, d)``), batch norm at its running averages (evaluation)."""
    affines = batch_norm_affines(variables, model_cfg)
    masks = jax.jit(jax.vmap(lambda x: stable_mask(variables, model_cfg, affines, x, eps, norm)))(jnp.asarray(xs))
    masks = np.asarray(masks)
    per_point = masks.reshape(masks.shape[0], -1).mean(axis=1)
    return StableFraction(overall=mean_and_se(per_point), per_layer=masks.mean(axis=(0, 2)),
                          stable=int(masks.sum()), units=int(masks.size), eps=float(eps), norm=norm)
