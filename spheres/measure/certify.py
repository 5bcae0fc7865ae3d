"""Certified lower bounds on the nearest-error distance: bound propagation over an L2 ball.

For a point ``x`` of class ``y`` a radius ``eps`` is *certified* when every point of the ball
``B(x, eps) = {x' : ||x' - x||_2 <= eps}`` of ``R^d`` is classified ``y``. The largest certified
radius is a LOWER bound on the distance from ``x`` to the nearest error in ``R^d``, hence on the
nearest error on the sphere through ``x`` (a chord is at least the straight-line distance to the
nearest error of ``R^d``). With an attack's distance (an UPPER bound, :mod:`spheres.measure.attacks`)
every nearest-error distance, and ``d(E)``, becomes a bracket ``[certified, attack]``.

**Networks.** Dense + ReLU MLPs (the ``relu-*`` nets of :mod:`spheres.nets.models`), written as a
tuple of layers ``((W_0, b_0), ..., (W_L, b_L))`` with ``W_k`` of shape ``(n_{k-1}, n_k)``
(``n_{-1} = d``, ``n_L = 1``): ``z_0 = x W_0 + b_0``, ``z_k = relu(z_{k-1}) W_k + b_k``, logit
``z_L``. Batch norm is folded in at evaluation (running averages): ``BN(h W) = h (W s) + (beta -
mean s)`` with ``s = scale / sqrt(var + 1e-5)`` (:func:`fold_layers`).

**Margin.** With ``sigma = +1`` for label 1 (correct iff ``logit > 0``) and ``-1`` for label 0,
the margin is ``m(x') = sigma z_L(x')``; the point is certified at ``eps`` when a lower bound of
``min_{B(x, eps)} m`` is positive. Multiplying the last layer by ``sigma`` turns this into a
lower bound of the network's output.

**Methods** (each returns a certified lower bound of the margin over the ball):

* ``"lipschitz"``: ``m(x) - eps L`` with ``L = prod_k ||W_k||_2`` (spectral norms; ReLU is
  1-Lipschitz), so the radius is ``m(x) / L`` in closed form. The loosest baseline.
* ``"ibp"`` (interval bound propagation; Gowal et al. 2018, Mirman et al. 2018): the first layer
  is bounded exactly over the L2 ball, ``z_0 in x W_0 + b_0 +- eps ||W_0[:, j]||_2``; later layers
  propagate boxes, ``centre W + b +- radius |W|``.
* ``"crown"`` (Zhang et al. 2018, "Efficient Neural Network Robustness Certification with
  General Activation Functions"; Wong & Kolter 2018 for the dual view): a linear lower bound
  ``m(x') >= A x' + c`` valid on the ball, built backwards through the net; each unstable ReLU
  (``l < 0 < u``) is replaced by the lower line ``alpha z`` (``alpha = 1`` if ``u > -l`` else 0,
  CROWN's adaptive choice) or the upper chord ``u (z - l) / (u - l)``, according to the sign of
  its coefficient. At the input, the minimum of a linear function over the L2 ball is
  ``A x + c - eps ||A||_2`` (the L2 norm is its own dual). The pre-activation bounds
  ``[l_k, u_k]`` that the relaxation needs come from the same backward pass applied to every
  neuron of layer ``k`` (lower bounds of ``z_k`` and of ``-z_k``), intersected with IBP's box
  (both are valid, so their intersection is). Cost per point: about ``4 n_k sum_{i<k} n_i n_{i-1}``
  FLOPs per hidden layer ``k >= 1``: 2 GFLOP for ``relu-w1000-d2`` at d = 500.

**Radius.** The largest certified radius is found by bisection on ``[0, cap]``: ``bisections``
halvings keep the largest ``eps`` seen certified (lower bound above ``tau = margin (1 + |m(x)|)``,
a guard against float32 rounding, :class:`CertifyConfig`), so every reported radius was itself certified
(sound even where a bound is not monotone in ``eps``; for IBP and Lipschitz it is). The cap is
``max_radius_factor ||x||`` (default 2, the diameter of the sphere through ``x``: no on-sphere
nearest error lies farther), optionally lowered per point by a known upper bound (e.g. an attack's
distance), which only narrows the bracket. Resolution: ``cap / 2^bisections``. Misclassified
points get radius 0 (an error at distance 0), as they get distance 0 from the attack.

**Quadratic net** (``f(x) = w ||W x||^2 + b``, no ReLU; its exact nearest errors on the sphere
come from :mod:`spheres.maths.quadratic`): on ``B(x, eps)``, ``|f(x + delta) - f(x)| =
|w| |2 x^T G delta + delta^T G delta| <= |w| sigma^2 (2 ||x|| eps + eps^2)`` with ``G = W^T W`` and
``sigma = ||W||_2``, so ``eps* = sqrt(||x||^2 + m(x) / (|w| sigma^2)) - ||x||`` is certified (method
``"lipschitz"`` on quad-net variables). For ``W = s I`` and a point inside the ball boundary this is
exactly the distance ``rho - ||x||`` to the spherical boundary of radius ``rho``.

**Rounding.** Bounds are computed in float32 with full-precision matmuls (no TF32 on
accelerators); they are sound up to float32 rounding (about 1e-6 of the logit's scale), the same
resolution at which the model's own verdicts are defined.

Everything acts on ONE point and is batched with ``vmap`` (points, in chunks under ``lax.map``)
and ``vmap`` (ensemble members) at the call site. :func:`make_certifier` builds the compiled
measurement of one model family (:class:`Certifier`: one model, or an ensemble's members at
once); keep it to certify many checkpoints without compiling again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spheres.core.errors import InputError
from spheres.maths import stats
from spheres.maths.classifiers import LogitFn
from spheres.maths.geometry import safe_norm

METHODS = ("lipschitz", "ibp", "crown")
MATMUL_PRECISION = "float32"
BN_EPSILON = 1e-5  # nnx.BatchNorm's default, used by spheres.nets.models
#: relative agreement required between the folded layers and the model's logit_fn
FOLD_RTOL = 1e-4

Layers = tuple[tuple[jax.Array, jax.Array], ...]


class CertifyConfig(NamedTuple):
    """Static certification schedule.

    Attributes:
      method: one of :data:`METHODS`.
      bisections: halvings of the bracket ``[0, cap]`` (resolution ``cap / 2^bisections``).
      max_radius_factor: the cap is ``max_radius_factor ||x||`` (2: the sphere's diameter).
      chunk_size: points per vmapped chunk (memory: CROWN holds ``2 n_k x n_{k-1}`` floats per point).
      margin: a radius counts as certified when the margin's lower bound exceeds
        ``tau = margin (1 + |m(x)|)`` rather than 0: the float32 rounding of a bound (a few 1e-7 of
        the logit's scale) must not certify a ball that touches the boundary. Measured: where CROWN
        is exact (every ReLU stable on the ball) a zero threshold certified radii 2e-7 beyond the
        exact nearest error.
    """

    method: str = "crown"
    bisections: int = 20
    max_radius_factor: float = 2.0
    chunk_size: int = 64
    margin: float = 1e-5

    def validate(self) -> "CertifyConfig":
        if self.method not in METHODS:
            raise InputError("method", f"must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name, lo in (("bisections", 1), ("chunk_size", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise InputError(name, f"must be an integer >= {lo}, got {v!r}")
        if self.bisections > 60:
            raise InputError("bisections", f"must be <= 60 (float32 resolution), got {self.bisections}")
        f = self.max_radius_factor
        if isinstance(f, bool) or not isinstance(f, (int, float, np.floating)) or not (0 < f < math.inf):
            raise InputError("max_radius_factor", f"must be a finite number > 0, got {f!r}")
        if not (isinstance(self.margin, (int, float, np.floating)) and 0 <= self.margin < 1e-2):
            raise InputError("margin", f"must lie in [0, 0.01), got {self.margin!r}")
        return self


class CertifiedRadii(NamedTuple):
    """Per-point certification outcome, ``(n,)`` arrays (``(M, n)`` for ``M`` models).

    Attributes:
      radius: float32, the largest radius certified (0 where the point is misclassified).
      margin: float32, ``sigma logit(x)``: positive iff the point is correctly classified.
    """

    radius: jax.Array
    margin: jax.Array


class CertifyEstimate(NamedTuple):
    """Mean certified radius over points, in the style of :class:`spheres.maths.stats.MeanEstimate`.

    Python numbers for one model; numpy arrays of shape ``(M,)`` (``radii``: ``(M, n)``) for an
    ensemble of ``M`` models.

    Attributes:
      mean: mean certified radius over all points (misclassified points count as 0), a LOWER
        bound on the mean nearest-error distance in ``R^d`` and on the sphere.
      se: its standard error ``s / sqrt(n)`` (NaN for one point).
      points: number of points ``n``.
      method: ``"lipschitz"``, ``"ibp"`` or ``"crown"``.
      seconds_per_point: compiled wall time per point (one model; shared by all members of an
        ensemble measured together), compilation excluded.
      radii: float64 ``(n,)``, the per-point radii (for brackets and certified fractions).
    """

    mean: Any
    se: Any
    points: int
    method: str
    seconds_per_point: float
    radii: np.ndarray


# ------------------------------------------------------------------------- layers from variables


def is_quadratic(variables: Any) -> bool:
    """Whether ``variables`` are a quad net's (``params`` keys ``hidden``, ``w``, ``b``)."""
    return isinstance(variables, dict) and set(variables.get("params", {})) == {"hidden", "w", "b"}


def fold_layers(variables: dict[str, Any]) -> Layers:
    """The dense layers ``((W_0, b_0), ..., (W_L, b_L))`` of a ReLU MLP, batch norm folded in.

    Batch norm at evaluation is affine: ``BN(z) = (z - mean) s + beta``, ``s = scale / sqrt(var +
    1e-5)``, so ``BN(h W + b) = h (W s) + ((b - mean) s + beta)`` (``b = 0`` where the dense layer
    has no bias). Works with or without a leading member axis on every leaf.

    Args:
      variables: ``{"params": {"dense<l>": ..., ["norm<l>": ...], "head": ...}, "batch_stats": ...}``
        (layout of :mod:`spheres.nets.models`).
    Returns:
      tuple of ``(W, b)``: ``W`` shape ``(..., n_in, n_out)``, ``b`` shape ``(..., n_out)``; the last
      layer has ``n_out = 1``.
    Raises:
      InputError: not ReLU-MLP variables.
    """
    params = variables.get("params", {}) if isinstance(variables, dict) else {}
    stats_ = variables.get("batch_stats", {}) or {}
    if "head" not in params or "dense0" not in params:
        raise InputError("params", f"not ReLU-MLP variables (params keys {sorted(params)})")
    layers = []
    depth = sum(1 for k in params if k.startswith("dense"))
    for l in range(depth):
        dense = params[f"dense{l}"]
        w = jnp.asarray(dense["kernel"], jnp.float32)
        b = jnp.asarray(dense["bias"], jnp.float32) if "bias" in dense else jnp.zeros(w.shape[:-2] + w.shape[-1:],
                                                                                      jnp.float32)
        if f"norm{l}" in params:
            norm, running = params[f"norm{l}"], stats_[f"norm{l}"]
            s = jnp.asarray(norm["scale"], jnp.float32) / jnp.sqrt(jnp.asarray(running["var"], jnp.float32)
                                                                   + BN_EPSILON)
            w = w * s[..., None, :]
            b = (b - running["mean"]) * s + norm["bias"]
        layers.append((w, b))
    head = params["head"]
    layers.append((jnp.asarray(head["kernel"], jnp.float32), jnp.asarray(head["bias"], jnp.float32)))
    return tuple(layers)


def layers_logit(layers: Layers, x: ArrayLike) -> jax.Array:
    """The logit of the MLP ``layers`` at ONE point ``x`` (shape ``(d,)``): a scalar."""
    h = jnp.asarray(x)
    for w, b in layers[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = layers[-1]
    return (h @ w + b)[0]


def _signed(layers: Layers, label: jax.Array) -> Layers:
    """Layers whose output is the margin ``sigma logit`` (``sigma = +1`` label 1, ``-1`` label 0)."""
    sigma = jnp.where(label == 1, 1.0, -1.0).astype(layers[-1][0].dtype)
    w, b = layers[-1]
    return layers[:-1] + ((w * sigma, b * sigma),)


# ------------------------------------------------------------------------------- the bounds


def lipschitz_constant(layers: Layers) -> jax.Array:
    """``prod_k ||W_k||_2``: a global L2 Lipschitz constant of the logit (ReLU is 1-Lipschitz)."""
    out = jnp.ones((), jnp.float32)
    for w, _ in layers:
        out = out * jnp.linalg.norm(w, ord=2)
    return out


def _first_layer_box(w: jax.Array, b: jax.Array, x: jax.Array, eps: jax.Array, colnorm: jax.Array):
    """Exact bounds of ``x' W + b`` over ``B(x, eps)``: ``x W + b -+ eps ||W[:, j]||_2``."""
    centre = x @ w + b
    return centre - eps * colnorm, centre + eps * colnorm


def _column_norms(w: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(w * w, axis=0))


def ibp_bounds(layers: Layers, x: ArrayLike, eps: ArrayLike) -> list[tuple[jax.Array, jax.Array]]:
    """Interval bounds ``[l_k, u_k]`` of every pre-activation ``z_k`` (and the output) over ``B(x, eps)``.

    Args:
      layers: MLP layers (one model), ``W_k`` ``(n_{k-1}, n_k)``.
      x: centre, shape ``(d,)``.
      eps: radius, scalar ``>= 0``.
    Returns:
      list of ``L + 1`` pairs ``(l_k, u_k)`` of shape ``(n_k,)``; the last is the output's ``(1,)``.
    """
    x = jnp.asarray(x)
    w0, b0 = layers[0]
    bounds = [_first_layer_box(w0, b0, x, eps, _column_norms(w0))]
    for w, b in layers[1:]:
        lo, hi = (jax.nn.relu(v) for v in bounds[-1])
        centre, radius = 0.5 * (hi + lo), 0.5 * (hi - lo)
        c = centre @ w + b
        r = radius @ jnp.abs(w)
        bounds.append((c - r, c + r))
    return bounds


def _relax(lower: jax.Array, upper: jax.Array):
    """CROWN's linear bounds of ``relu`` on ``[l, u]``: lower slope ``alpha``, upper slope ``s`` and
    upper intercept ``t`` (``alpha z <= relu(z) <= s z + t``), shapes ``(n,)``."""
    active = lower >= 0
    unstable = (lower < 0) & (upper > 0)
    gap = jnp.where(unstable, upper - lower, 1.0)  # > 0 where used
    s = jnp.where(active, 1.0, jnp.where(unstable, upper / gap, 0.0))
    t = jnp.where(unstable, -s * lower, 0.0)
    alpha = jnp.where(active, 1.0, jnp.where(unstable & (upper > -lower), 1.0, 0.0))
    return alpha, s, t


def _backward_lower(layers: Layers, k: int, rows: jax.Array, const: jax.Array, bounds, x, eps) -> jax.Array:
    """Lower bounds over ``B(x, eps)`` of ``rows . relu(z_{k-1}) + const`` (a linear function of the
    activations feeding layer ``k``), by CROWN's backward substitution through layers ``k-1..0``.

    Args:
      layers: MLP layers; ``bounds[i] = (l_i, u_i)`` for the pre-activations ``z_i``, ``i < k``.
      k: the layer whose inputs ``relu(z_{k-1})`` the rows act on (``1 <= k <= L``).
      rows: ``(m, n_{k-1})`` coefficients; ``const``: ``(m,)``.
    Returns:
      ``(m,)`` lower bounds.
    """
    lam = rows
    for i in range(k - 1, -1, -1):
        alpha, s, t = _relax(*bounds[i])
        pos = lam >= 0
        const = const + jnp.sum(jnp.where(pos, 0.0, lam * t[None, :]), axis=1)
        lam = lam * jnp.where(pos, alpha[None, :], s[None, :])  # coefficients on z_i
        w, b = layers[i]
        const = const + lam @ b
        lam = lam @ w.T  # coefficients on relu(z_{i-1}), or on x when i = 0
    norms = jnp.sqrt(jnp.sum(lam * lam, axis=1))
    return lam @ x + const - eps * norms


def crown_bounds(layers: Layers, x: ArrayLike, eps: ArrayLike) -> list[tuple[jax.Array, jax.Array]]:
    """CROWN bounds ``[l_k, u_k]`` of every pre-activation and of the output over ``B(x, eps)``.

    Layer 0 is bounded exactly; layer ``k >= 1`` by a backward pass with rows ``[W_k^T; -W_k^T]``
    (lower bounds of ``z_k`` and ``-z_k``), intersected with the IBP box built on the same bounds.

    Args / Returns: as :func:`ibp_bounds`.
    """
    x = jnp.asarray(x)
    w0, b0 = layers[0]
    bounds = [_first_layer_box(w0, b0, x, eps, _column_norms(w0))]
    for k in range(1, len(layers)):
        w, b = layers[k]
        n = w.shape[1]
        rows = jnp.concatenate([w.T, -w.T], axis=0)
        lower = _backward_lower(layers, k, rows, jnp.concatenate([b, -b]), bounds, x, eps)
        lo, hi = (jax.nn.relu(v) for v in bounds[-1])
        c = 0.5 * (hi + lo) @ w + b
        r = 0.5 * (hi - lo) @ jnp.abs(w)
        bounds.append((jnp.maximum(lower[:n], c - r), jnp.minimum(-lower[n:], c + r)))
    return bounds


def margin_lower_bound(layers: Layers, x: ArrayLike, label: ArrayLike, eps: ArrayLike,
                       method: str = "crown") -> jax.Array:
    """A certified lower bound of the margin ``sigma logit(x')`` over ``x' in B(x, eps)``.

    Positive means every point of the ball is classified ``label``. For the final layer CROWN
    needs only ONE backward row (the output), so its cost is that of the intermediate bounds.

    Args:
      layers: MLP layers of one model (:func:`fold_layers`).
      x: centre, shape ``(d,)``.
      label: int scalar, 0 (inner) or 1 (outer).
      eps: radius, scalar ``>= 0``.
      method: one of :data:`METHODS`.
    Returns:
      float32 scalar.
    """
    x = jnp.asarray(x)
    signed = _signed(layers, jnp.asarray(label))
    if method == "lipschitz":
        return layers_logit(signed, x) - eps * lipschitz_constant(layers)
    if method == "ibp":
        return ibp_bounds(signed, x, eps)[-1][0][0]
    if method == "crown":
        bounds = crown_bounds(signed[:-1], x, eps) if len(signed) > 1 else []
        w, b = signed[-1]
        crown = _backward_lower(signed, len(signed) - 1, w.T, b, bounds, x, eps)[0]
        return crown
    raise InputError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")


# ------------------------------------------------------------------------------ the radius


def _bisect(bound, margin: jax.Array, cap: jax.Array, bisections: int, tau: jax.Array) -> jax.Array:
    """Largest ``eps`` in ``{cap} U {bisection midpoints}`` with ``bound(eps) > tau`` seen, 0 if none.

    ``lo`` only ever moves to a radius whose bound was above ``tau``, so the result is certified."""
    at_cap = bound(cap) > tau

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        ok = bound(mid) > tau
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    lo, _ = jax.lax.fori_loop(0, bisections, body, (jnp.zeros_like(cap), cap))
    return jnp.where(margin > tau, jnp.where(at_cap, cap, lo), 0.0)


def certified_radius_point(layers: Layers, x: ArrayLike, label: ArrayLike, config: CertifyConfig = CertifyConfig(),
                           upper: ArrayLike = jnp.inf, lipschitz: ArrayLike | None = None) -> CertifiedRadii:
    """Largest certified radius of ONE point (see the module docstring for the bisection).

    Args:
      layers: MLP layers of one model (:func:`fold_layers`).
      x: the point, shape ``(d,)``.
      label: its class, int scalar 0 or 1.
      config: static schedule (method, bisections, cap).
      upper: scalar, a known upper bound on the nearest-error distance (``inf``: none); the
        bracket is ``[0, min(cap, upper)]``.
      lipschitz: :func:`lipschitz_constant` of ``layers`` if already computed (it is a per-model
        quantity: an SVD per layer, which batched callers compute once, outside the points' vmap).
    Returns:
      :class:`CertifiedRadii` of scalars.
    """
    x = jnp.asarray(x)
    label = jnp.asarray(label, jnp.int32)
    margin = layers_logit(_signed(layers, label), x)
    cap = jnp.minimum(config.max_radius_factor * safe_norm(x), jnp.asarray(upper, x.dtype))
    tau = config.margin * (1.0 + jnp.abs(margin))
    if config.method == "lipschitz":
        lip = lipschitz_constant(layers) if lipschitz is None else jnp.asarray(lipschitz)
        radius = jnp.where(margin > tau, jnp.minimum((margin - tau) / jnp.where(lip > 0, lip, 1.0), cap), 0.0)
        radius = jnp.where((margin > tau) & (lip == 0), cap, radius)
        return CertifiedRadii(radius=radius, margin=margin)
    radius = _bisect(lambda e: margin_lower_bound(layers, x, label, e, config.method), margin, cap,
                     config.bisections, tau)
    return CertifiedRadii(radius=radius, margin=margin)


def quad_curvature(variables: dict[str, Any]) -> jax.Array:
    """``|w| ||W||_2^2`` of a quad net: ``|f(x + delta) - f(x)| <= curvature (2 ||x|| eps + eps^2)``."""
    p = variables["params"]
    return jnp.abs(p["w"]) * jnp.linalg.norm(p["hidden"]["kernel"], ord=2) ** 2


def quad_certified_radius_point(variables: dict[str, Any], x: ArrayLike, label: ArrayLike,
                                config: CertifyConfig = CertifyConfig(), upper: ArrayLike = jnp.inf,
                                curvature: ArrayLike | None = None) -> CertifiedRadii:
    """Certified radius of ONE point for a quad net ``f = w ||W x||^2 + b`` (module docstring):
    ``eps* = sqrt(||x||^2 + m(x) / (|w| sigma^2)) - ||x||``, capped like :func:`certified_radius_point`."""
    x = jnp.asarray(x)
    p = variables["params"]
    kernel, w, b = p["hidden"]["kernel"], p["w"], p["b"]
    z = x @ kernel
    logit = w * jnp.sum(z * z) + b
    margin = jnp.where(jnp.asarray(label) == 1, logit, -logit)
    curv = quad_curvature(variables) if curvature is None else jnp.asarray(curvature)
    r = safe_norm(x)
    tau = config.margin * (1.0 + jnp.abs(margin))
    m = jnp.maximum(margin - tau, 0.0)
    eps = jnp.sqrt(r * r + m / jnp.where(curv > 0, curv, 1.0)) - r
    cap = jnp.minimum(config.max_radius_factor * r, jnp.asarray(upper, x.dtype))
    eps = jnp.where(curv > 0, jnp.minimum(eps, cap), cap)
    return CertifiedRadii(radius=jnp.where(margin > tau, eps, 0.0), margin=margin)


def _program(config: CertifyConfig, quadratic: bool) -> Callable:
    """The per-model program ``(params, xs (n, d), labels (n,), uppers (n,)) -> CertifiedRadii (n,)``."""

    def points(params, xs, labels, uppers):
        with jax.default_matmul_precision(MATMUL_PRECISION):
            # per-model work (folding, spectral norms) once, outside the map over points
            if quadratic:
                curv = quad_curvature(params)
                one = lambda x, y, u: quad_certified_radius_point(params, x, y, config, u, curv)  # noqa: E731
            else:
                layers = fold_layers(params)
                lip = lipschitz_constant(layers) if config.method == "lipschitz" else None
                one = lambda x, y, u: certified_radius_point(layers, x, y, config, u, lip)  # noqa: E731
            return jax.lax.map(lambda a: one(*a), (xs, labels, uppers), batch_size=config.chunk_size)

    return points


def _check_inputs(params, xs, labels, upper, member_axis: bool):
    xs = jnp.asarray(xs, jnp.float32)
    if xs.ndim != 2 or xs.shape[0] < 1 or xs.shape[1] < 1:
        raise InputError("points", f"need a batch of points of shape (n, d), got {xs.shape}")
    n, d = xs.shape
    labels, uppers = np.asarray(labels), np.asarray(np.inf if upper is None else upper, np.float64)
    for name, v in (("labels", labels), ("upper", uppers)):
        if v.shape not in ((), (n,)):
            raise InputError(name, f"must be a scalar or have shape ({n},) (one per point), got {v.shape}")
    labels, uppers = np.broadcast_to(labels, (n,)), np.broadcast_to(uppers, (n,))
    if not np.all(np.isin(labels, (0, 1))):
        raise InputError("labels", "every label must be 0 (inner) or 1 (outer)")
    if np.any(np.isnan(uppers)) or np.any(uppers < 0):
        raise InputError("upper", "upper bounds must be >= 0 (inf where unknown; NaN is not allowed)")
    if not is_quadratic(params):
        kernel = np.shape(fold_layers(params)[0][0])
        if kernel[-2] != d or len(kernel) != (3 if member_axis else 2):
            raise InputError("points", f"points of dimension {d} do not fit the first kernel of shape {kernel}"
                             f"{' (with a member axis)' if member_axis else ''}")
    return xs, jnp.asarray(labels, jnp.int32), jnp.asarray(uppers, jnp.float32)


def _estimate(radii: np.ndarray, method: str, seconds_per_point: float) -> CertifyEstimate:
    m = stats.mean_and_se(radii)
    return CertifyEstimate(mean=m.mean, se=m.se, points=m.n, method=method, seconds_per_point=seconds_per_point,
                           radii=radii)


@dataclass(frozen=True)
class Certifier:
    """The compiled certification of one model family and schedule, built by :func:`make_certifier`.

    Keep it and call it for every model and checkpoint: its programs are compiled once per input
    shape (ahead of time, so that the reported time per point excludes compilation).

    Attributes:
      config: the validated :class:`CertifyConfig`.
      quadratic: whether the models are quad nets (closed-form radius) rather than ReLU MLPs.
      logit_fn: the models' ``logit_fn(params, x)``, or ``None``; when given, every call first
        checks that the folded dense layers reproduce it on the points (:class:`InputError`
        otherwise: not a dense + ReLU MLP).
      program: the pure per-model program ``(params, xs (n, d), labels int32 (n,), uppers float32
        (n,)) -> CertifiedRadii`` of ``(n,)`` arrays.
      compiled: ``jax.jit(program)``, one model.
      compiled_models: ``jax.jit(jax.vmap(program, in_axes=(0, None, None, None)))``: a leading
        member axis on every leaf of ``params``, the same points for every member.
      executables: the ahead-of-time compiled executables of :attr:`compiled` and
        :attr:`compiled_models`, by input signature (filled by the calls; belongs to this object).
    """

    config: CertifyConfig
    quadratic: bool
    logit_fn: LogitFn | None
    program: Callable
    compiled: Callable
    compiled_models: Callable
    executables: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def method(self) -> str:
        return self.config.method

    def _run(self, fn: Callable, member_axis: bool, params: Any, xs: ArrayLike, labels: ArrayLike | int,
             upper: ArrayLike | None) -> tuple[CertifiedRadii, float]:
        if is_quadratic(params) != self.quadratic:
            raise InputError("params", f"this certifier is for {'quad' if self.quadratic else 'ReLU-MLP'} nets, "
                             f"got {'quad' if is_quadratic(params) else 'ReLU-MLP'} variables")
        xs, labels, uppers = _check_inputs(params, xs, labels, upper, member_axis)
        self._check_fold(params, xs, member_axis)
        params = jax.tree.map(jnp.asarray, params)
        signature = (member_axis, jax.tree.structure(params),
                     tuple((leaf.shape, leaf.dtype) for leaf in jax.tree.leaves(params)), xs.shape)
        executable = self.executables.get(signature)
        if executable is None:
            executable = self.executables[signature] = fn.lower(params, xs, labels, uppers).compile()
        t0 = time.perf_counter()
        out = jax.block_until_ready(executable(params, xs, labels, uppers))
        return out, time.perf_counter() - t0

    def _check_fold(self, params: Any, xs: jax.Array, member_axis: bool) -> None:
        """Raise unless the folded layers reproduce :attr:`logit_fn` on ``xs`` to float32 tolerance."""
        if self.logit_fn is None or self.quadratic:
            return
        logit_fn = self.logit_fn
        one = lambda p: jax.vmap(lambda x: layers_logit(fold_layers(p), x))(xs)  # noqa: E731
        ref = lambda p: jax.vmap(lambda x: logit_fn(p, x))(xs)  # noqa: E731
        if member_axis:
            one, ref = jax.vmap(one), jax.vmap(ref)
        with jax.default_matmul_precision(MATMUL_PRECISION):
            a, b = np.asarray(one(params)), np.asarray(ref(params))
        scale = 1.0 + np.max(np.abs(b))
        if not np.max(np.abs(a - b)) <= FOLD_RTOL * scale:
            raise InputError("params", f"the folded dense layers do not reproduce logit_fn (max difference "
                             f"{np.max(np.abs(a - b)):.3g} at logit scale {scale:.3g}): not a dense + ReLU MLP?")

    def radii(self, params: Any, xs: ArrayLike, labels: ArrayLike | int = 0,
              upper: ArrayLike | None = None) -> tuple[CertifiedRadii, float]:
        """Per-point certified radii of ONE model, and the compiled run time in seconds.

        Args:
          params: the model's variables (ReLU MLP or quad net layout of :mod:`spheres.nets.models`).
          xs: points, shape ``(n, d)``.
          labels: int or ``(n,)`` of 0/1.
          upper: ``None`` or ``(n,)`` known upper bounds on the nearest-error distances (e.g.
            attack distances; ``inf`` where unknown, never NaN): they narrow the bracket only.
        Returns:
          ``(CertifiedRadii of (n,) arrays, seconds)``, compilation excluded.
        """
        return self._run(self.compiled, False, params, xs, labels, upper)

    def radii_models(self, variables: Any, xs: ArrayLike, labels: ArrayLike | int = 0,
                     upper: ArrayLike | None = None) -> tuple[CertifiedRadii, float]:
        """:meth:`radii` of ``M`` models at once: every leaf of ``variables`` has a leading member
        axis ``M``; the points (and ``upper``) are shared. Fields ``(M, n)``; one time for all."""
        return self._run(self.compiled_models, True, variables, xs, labels, upper)

    def __call__(self, key: jax.Array, params: Any, xs: ArrayLike, labels: ArrayLike | int = 0,
                 upper: ArrayLike | None = None) -> CertifyEstimate:
        """Mean certified radius of ONE model over ``xs`` (a lower bound on ``d(E)``).

        Args:
          key: a ``jax.random.key``, for the uniform measurement signature; certification is
            deterministic and does not use it.
          params, xs, labels, upper: as :meth:`radii`.
        Returns:
          :class:`CertifyEstimate` with Python-number fields and ``radii`` of shape ``(n,)``.
        """
        del key
        out, seconds = self.radii(params, xs, labels, upper)
        radii = np.asarray(out.radius, np.float64)
        return _estimate(radii, self.method, seconds / radii.size)

    def models(self, key: jax.Array, variables: Any, xs: ArrayLike, labels: ArrayLike | int = 0,
               upper: ArrayLike | None = None) -> CertifyEstimate:
        """Per-member certified radii of a run's checkpoint: one program, members vmapped.

        Args:
          key: unused (uniform signature; certification is deterministic).
          variables: the checkpoint's variables, every leaf with a leading member axis ``M``
            (:meth:`spheres.nets.runs.Run.load_variables`).
          xs, labels, upper: as :meth:`radii`, shared by all members.
        Returns:
          :class:`CertifyEstimate` whose ``mean``, ``se`` are float64 arrays ``(M,)``, ``radii``
          ``(M, n)``; ``seconds_per_point`` is the ensemble's time divided by ``M n``.
        """
        del key
        out, seconds = self.radii_models(variables, xs, labels, upper)
        radii = np.asarray(out.radius, np.float64)
        rows = [stats.mean_and_se(r) for r in radii]
        return CertifyEstimate(mean=np.array([r.mean for r in rows]), se=np.array([r.se for r in rows]),
                               points=int(radii.shape[1]), method=self.method,
                               seconds_per_point=seconds / radii.size, radii=radii)


def make_certifier(config: CertifyConfig = CertifyConfig(), logit_fn: LogitFn | None = None,
                   quadratic: bool = False) -> Certifier:
    """Build the certification of one model family with the schedule ``config`` (compiled lazily).

    Args:
      config: the schedule; validated here.
      logit_fn: the models' ``logit_fn`` (:func:`spheres.nets.models.make_logit_fn`) or ``None``
        (no check that the folded layers reproduce it).
      quadratic: quad nets (only ``method = "lipschitz"`` applies: they have no ReLU).
    Raises:
      InputError: an invalid schedule, or a ReLU method for quad nets.
    """
    config = config.validate()
    if quadratic and config.method != "lipschitz":
        raise InputError("method", f"the quadratic net has no ReLU: only 'lipschitz' applies, got {config.method!r}")
    program = _program(config, bool(quadratic))
    return Certifier(config=config, quadratic=bool(quadratic), logit_fn=logit_fn, program=program,
                     compiled=jax.jit(program),
                     compiled_models=jax.jit(jax.vmap(program, in_axes=(0, None, None, None))))


def certified_radius(key: jax.Array, logit_fn: LogitFn | None, params: Any, xs: ArrayLike,
                     labels: ArrayLike | int = 0, config: CertifyConfig = CertifyConfig(),
                     upper: ArrayLike | None = None) -> CertifyEstimate:
    """Mean certified radius of ONE model over the points ``xs`` (a lower bound on ``d(E)``).

    ``make_certifier(config, logit_fn, is_quadratic(params))(key, params, xs, labels, upper)``:
    compiles on every call; build the :class:`Certifier` once to measure many models.
    """
    return make_certifier(config, logit_fn, is_quadratic(params))(key, params, xs, labels, upper)


def make_certifiers(config: CertifyConfig = CertifyConfig(), methods: Sequence[str] = METHODS,
                    logit_fn: LogitFn | None = None, quadratic: bool = False) -> dict[str, Certifier]:
    """One :class:`Certifier` per method of ``methods`` (``config`` with its method replaced); quad
    nets get ``"lipschitz"`` only."""
    if quadratic:
        methods = [m for m in methods if m == "lipschitz"]
    return {m: make_certifier(config._replace(method=m), logit_fn, quadratic) for m in methods}


def certify_checkpoint(key: jax.Array, certifiers: dict[str, Certifier], variables: Any, xs: ArrayLike,
                       labels: ArrayLike | int = 0, upper: ArrayLike | None = None) -> dict[str, CertifyEstimate]:
    """Every certifier of :func:`make_certifiers` on one checkpoint of an ensemble (leaves ``(M, ...)``):
    ``{method: certifier.models(...)}``."""
    keys = jax.random.split(key, max(len(certifiers), 1))
    return {m: c.models(k, variables, xs, labels, upper) for (m, c), k in zip(certifiers.items(), keys)}


def fraction_certified(radii: ArrayLike, radius: float, confidence: float = stats.DEFAULT_CONFIDENCE
                       ) -> stats.RateEstimate:
    """Fraction of points certified at ``radius`` (``radii >= radius``), with its exact interval.

    Args:
      radii: ``(n,)`` certified radii, or ``(M, n)`` for ``M`` models.
      radius: scalar ``>= 0``.
    Returns:
      :class:`spheres.maths.stats.RateEstimate`, method ``"certified"``, fields of shape ``()`` or ``(M,)``.
    """
    r = np.asarray(radii, np.float64)
    if r.ndim not in (1, 2) or r.shape[-1] < 1:
        raise InputError("radii", f"need shape (n,) or (M, n), got {r.shape}")
    if not (math.isfinite(radius) and radius >= 0):
        raise InputError("radius", f"must be a finite number >= 0, got {radius}")
    count = np.sum(r >= radius, axis=-1)
    return stats.rate_estimate(count, np.full_like(count, r.shape[-1]), confidence, method="certified")


def bound_flops(layers_shapes: Sequence[tuple[int, int]], method: str) -> int:
    """Matmul FLOPs of ONE margin bound at one point (one ``eps``), ``2 m k n`` per product.

    Args:
      layers_shapes: ``(n_in, n_out)`` of each dense layer, the last with ``n_out = 1``.
      method: one of :data:`METHODS`.
    Returns:
      ``lipschitz``: the forward pass; ``ibp``: centres and radii of every layer after the first
      (``4 n_in n_out``); ``crown``: the backward substitutions, ``2 rows n_i n_{i-1}`` for every
      row set and layer it passes, plus the IBP boxes it intersects with. The first layer's centre
      ``x W_0`` and column norms do not depend on ``eps``: computed once per point (XLA hoists them
      out of the bisection loop), they are not counted.
    """
    fwd = sum(2 * a * b for a, b in layers_shapes)
    if method == "lipschitz":
        return fwd
    if method == "ibp":
        return sum(4 * a * b for a, b in layers_shapes[1:])
    if method == "crown":
        total = 0
        for k in range(1, len(layers_shapes)):
            rows = 2 * layers_shapes[k][1] if k < len(layers_shapes) - 1 else 1
            # IBP intersection (hidden layers) + backward products through layers k-1..0 (+ the row norms)
            total += 4 * layers_shapes[k][0] * layers_shapes[k][1] if k < len(layers_shapes) - 1 else 0
            for i in range(k - 1, -1, -1):
                total += 2 * rows * layers_shapes[i][0] * layers_shapes[i][1]
            total += 2 * rows * layers_shapes[0][0]
        return total
    raise InputError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
