"""The paper's classifiers as Flax NNX modules, used through pure functions of plain variables.

Two architectures (docs/science.md section 4), each with ONE logit (``logit > 0`` predicts the outer
sphere, the contract of :mod:`spheres.maths.classifiers`):

- :class:`ReluMLP`: ``depth`` hidden layers ``h <- relu(W_l h + b_l)`` of ``width`` units, then
  an affine map to one logit. With batch norm, each hidden layer is ``h <- relu(BN(W_l h))``
  (BN's own shift replaces the bias, whose gradient would be identically zero).
  ``relu-w1000-d2`` (with batch norm) and ``relu-w2000-d8`` (without) are the paper's.
- :class:`QuadNet`: ``f(x) = w * sum_j (W x)_j^2 + b`` with ``W`` of shape ``(h, d)`` and scalars
  ``w``, ``b`` (no hidden bias). ``quad-w1000`` is the paper's. Its decision boundary is the
  quadric ``x^T (w W^T W) x + b = 0``, which is why :func:`quadratic_weights` exports
  ``(W, w, b)`` for the exact analysis of docs/science.md section 5.

Initialisation follows the library defaults (docs/science.md: "not stated"): dense kernels LeCun
normal (variance 1 / fan-in), biases zero, batch norm scale 1, shift 0, momentum 0.99,
epsilon 1e-5. The quadratic net's readout starts at ``w = 1 / h``, ``b = 0``: the initial logit is
the MEAN squared hidden unit, about ``||x||^2 / d``, near 0, an undecided classifier (with
``w = 1`` it would start at ``h ||x||^2 / d``, confidently wrong on the inner sphere).

The networks are NNX modules, but everything outside this file sees a model only through its
*variables*, a plain nested dict of float32 arrays::

    {"params": {"dense0": {"kernel": (d, h), "bias": (h,)}, "norm0": {"scale": (h,), "bias": (h,)},
                ..., "head": {"kernel": (h, 1), "bias": (1,)}},
     "batch_stats": {"norm0": {"mean": (h,), "var": (h,)}, ...}}      # {} without batch norm

A model with random masks (``ModelConfig.random_masks``) has a third collection
``"masks": {"mask0": (h,), ...}`` of fixed 0/1 float32 masks multiplying each hidden layer's
output (never trained: they are not parameters); the trainer draws them from the member's key.
A model with a squeezing front end (``ModelConfig.squeeze_bits``) applies
:func:`spheres.nets.defences.squeeze_ste` to its input in :func:`make_logit_fn` and
:func:`make_apply_train` (straight-through gradient with respect to the input).

(``dense<l>`` has no bias when batch norm follows it; quad net:
``{"params": {"hidden": {"kernel": (d, h)}, "w": (), "b": ()}, "batch_stats": {}}``, the stored
kernel is ``W^T``.) These dicts are what checkpoints store, what ensembles stack (a
leading model axis on every leaf) and what measurements load. :func:`make_logit_fn` and
:func:`make_apply_train` turn them back into functions with ``nnx.merge``, which costs nothing
at run time (it happens while tracing).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from spheres.nets import defences
from spheres.nets.config import ModelConfig

Variables = dict[str, dict[str, Any]]


class Mask(nnx.Variable):
    """A fixed 0/1 mask on a hidden layer's features (its own collection, never trained)."""


class ReluMLP(nnx.Module):
    """``depth`` hidden ReLU layers of ``width`` units (optional batch norm), one logit.

    Acts on a BATCH ``x`` of shape ``(B, dim)`` (batch norm needs the batch) and returns logits
    of shape ``(B,)``. Per-example use goes through :func:`make_logit_fn`.
    """

    def __init__(self, dim: int, width: int, depth: int, batch_norm: bool, *, rngs: nnx.Rngs,
                 random_masks: bool = False):
        self.depth = depth
        self.batch_norm = batch_norm
        self.random_masks = random_masks
        fan_in = dim
        for layer in range(depth):
            # Before batch norm a bias is redundant (BN subtracts the batch mean): its gradient is
            # exactly zero, and Adam would turn float rounding noise into steps of size lr.
            setattr(self, f"dense{layer}", nnx.Linear(fan_in, width, use_bias=not batch_norm, rngs=rngs))
            if batch_norm:
                setattr(self, f"norm{layer}", nnx.BatchNorm(width, rngs=rngs))
            if random_masks:  # all ones here; the trainer replaces them with draws (draw_masks)
                setattr(self, f"mask{layer}", Mask(jnp.ones((width,), jnp.float32)))
            fan_in = width
        self.head = nnx.Linear(fan_in, 1, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """Logits ``(B,)`` of ``x`` ``(B, dim)``; ``train`` selects batch statistics (and updates
        the running averages) versus running averages."""
        h = x
        for layer in range(self.depth):
            h = getattr(self, f"dense{layer}")(h)
            if self.batch_norm:
                h = getattr(self, f"norm{layer}")(h, use_running_average=not train)
            h = jax.nn.relu(h)
            if self.random_masks:
                h = h * getattr(self, f"mask{layer}")[...][None, :]
        return self.head(h)[:, 0]


class QuadNet(nnx.Module):
    """``f(x) = w * sum_j (W x)_j^2 + b``, ``W`` shape ``(width, dim)``, scalar ``w``, ``b``.

    Acts on a batch ``(B, dim)``, returns ``(B,)``. ``train`` is accepted for a uniform
    interface and ignored (no batch norm).
    """

    def __init__(self, dim: int, width: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(dim, width, use_bias=False, rngs=rngs)  # kernel = W^T, (dim, width)
        self.w = nnx.Param(jnp.asarray(1.0 / width, jnp.float32))
        self.b = nnx.Param(jnp.zeros((), jnp.float32))

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        del train
        z = self.hidden(x)
        return self.w[...] * jnp.sum(z * z, axis=-1) + self.b[...]


def build_module(key: jax.Array, model_cfg: ModelConfig, dim: int) -> nnx.Module:
    """A freshly initialised NNX module for ``model_cfg`` on inputs of dimension ``dim``."""
    rngs = nnx.Rngs(params=key)
    if model_cfg.arch == "quad":
        return QuadNet(dim, model_cfg.width, rngs=rngs)
    if model_cfg.arch == "relu":
        return ReluMLP(dim, model_cfg.width, model_cfg.depth, model_cfg.batch_norm, rngs=rngs,
                       random_masks=model_cfg.random_masks)
    raise ValueError(f"unknown architecture {model_cfg.arch!r}")  # unreachable: ModelConfig validates


def _has_masks(module: nnx.Module) -> bool:
    return bool(getattr(module, "random_masks", False))


def _split(module: nnx.Module) -> tuple[nnx.GraphDef, Variables]:
    if _has_masks(module):
        graphdef, params, stats, masks = nnx.split(module, nnx.Param, nnx.BatchStat, Mask)
        return graphdef, {"params": nnx.to_pure_dict(params), "batch_stats": nnx.to_pure_dict(stats),
                          "masks": nnx.to_pure_dict(masks)}
    graphdef, params, stats = nnx.split(module, nnx.Param, nnx.BatchStat)
    return graphdef, {"params": nnx.to_pure_dict(params), "batch_stats": nnx.to_pure_dict(stats)}


def _merge(graphdef: nnx.GraphDef, variables: Variables) -> nnx.Module:
    if "masks" in variables:
        return nnx.merge(graphdef, variables["params"], variables["batch_stats"], variables["masks"])
    return nnx.merge(graphdef, variables["params"], variables["batch_stats"])


def draw_masks(key: jax.Array, keep: jax.typing.ArrayLike, model_cfg: ModelConfig) -> dict[str, jax.Array]:
    """Random masks of one model: ``{"mask<l>": (width,) float32 in {0, 1}}``, each unit kept with
    probability ``keep`` independently; layer ``l`` uses ``fold_in(key, l)``.

    Args:
      key: a ``jax.random.key``.
      keep: keep rate in (0, 1] (may be traced).
      model_cfg: a relu architecture (its width and depth).
    """
    return {f"mask{layer}": jax.random.bernoulli(jax.random.fold_in(key, layer), keep,
                                                 (model_cfg.width,)).astype(jnp.float32)
            for layer in range(model_cfg.depth)}


def init_variables(key: jax.Array, model_cfg: ModelConfig, dim: int) -> Variables:
    """Initial variables of ONE model (see the module docstring for the layout).

    Args:
      key: a ``jax.random.key``; the initial weights are a deterministic function of it.
      model_cfg: the architecture.
      dim: input dimension ``d``.
    Returns:
      ``{"params": ..., "batch_stats": ...}``, float32 leaves.
    """
    return _split(build_module(key, model_cfg, dim))[1]


def _graphdef(model_cfg: ModelConfig, dim: int) -> nnx.GraphDef:
    # The structure only: built abstractly, no weights are computed.
    module = nnx.eval_shape(lambda: build_module(jax.random.key(0), model_cfg, dim))
    filters = (nnx.Param, nnx.BatchStat, Mask) if _has_masks(module) else (nnx.Param, nnx.BatchStat)
    return nnx.split(module, *filters)[0]


def _front_end(model_cfg: ModelConfig) -> Callable[[jax.Array], jax.Array] | None:
    """The per-example input transform of ``model_cfg`` (the squeezer), or None."""
    if not model_cfg.squeeze_bits:
        return None
    bits, rng = model_cfg.squeeze_bits, model_cfg.squeeze_range
    return lambda x: defences.squeeze_ste(x, bits, rng)


def make_apply_train(model_cfg: ModelConfig, dim: int) -> Callable[[Variables, jax.Array], tuple[jax.Array, dict]]:
    """The TRAINING-mode forward pass of one model on a batch.

    Returns:
      ``apply(variables, x) -> (logits, batch_stats)``: ``x`` shape ``(B, dim)``, logits ``(B,)``;
      batch norm normalises with the statistics of this batch and returns the updated running
      averages ``new = momentum * old + (1 - momentum) * batch`` (``batch_stats`` is ``{}``
      without batch norm). Differentiable in ``variables["params"]``.
    """
    graphdef = _graphdef(model_cfg, dim)
    front = _front_end(model_cfg)

    def apply(variables: Variables, x: jax.Array) -> tuple[jax.Array, dict]:
        module = _merge(graphdef, variables)
        logits = module(jax.vmap(front)(x) if front else x, train=True)
        return logits, nnx.to_pure_dict(nnx.state(module, nnx.BatchStat))

    return apply


def make_logit_fn(model_cfg: ModelConfig, dim: int | None = None) -> Callable[[Variables, jax.Array], jax.Array]:
    """The EVALUATION-mode logit of one model at one point.

    Args:
      model_cfg: the architecture.
      dim: input dimension; if ``None`` it is read from the variables' first kernel at trace time.
    Returns:
      ``logit_fn(variables, x) -> scalar float32``, ``x`` shape ``(d,)``; batch norm uses the
      running averages, so the logit of a point never depends on other points. Batch and
      ensembles with ``jax.vmap`` at the call site, e.g.
      ``jax.vmap(jax.vmap(logit_fn, (None, 0)), (0, None))(ensemble_variables, xs)``.
    """
    graphdefs: dict[int, nnx.GraphDef] = {}
    front = _front_end(model_cfg)

    def logit_fn(variables: Variables, x: jax.Array) -> jax.Array:
        d = x.shape[-1] if dim is None else dim
        if d not in graphdefs:
            graphdefs[d] = _graphdef(model_cfg, d)
        module = _merge(graphdefs[d], variables)
        return module((front(x) if front else x)[None, :], train=False)[0]

    return logit_fn


def quadratic_weights(variables: Variables) -> tuple[np.ndarray, float, float]:
    """``(W, w, b)`` of a quad net as float64: ``logit(x) = w * ||W x||^2 + b``.

    Args:
      variables: variables of ONE quad net (no leading model axis).
    Returns:
      ``W`` numpy float64 of shape ``(h, d)``; ``w``, ``b`` Python floats.
    """
    params = variables["params"]
    if set(params) != {"hidden", "w", "b"}:
        raise ValueError(f"not quadratic-network variables (params keys {sorted(params)})")
    kernel = np.asarray(params["hidden"]["kernel"], dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"expected one model's kernel of rank 2, got shape {kernel.shape}")
    return kernel.T.copy(), float(params["w"]), float(params["b"])


def count_matmul_flops(model_cfg: ModelConfig, dim: int, batch: int, train: bool = False) -> int:
    """Matmul FLOPs on ``batch`` points, ``2 m k n`` per ``(m, k) @ (k, n)`` product.

    Forward: ``2 B (d h + (depth - 1) h^2 + h)`` for the ReLU net, ``2 B d h`` for the quad net
    (elementwise work, batch norm and the squared sum are not counted). With ``train=True`` the
    backward pass is added exactly as reverse mode executes it: every layer's weight gradient
    ``h_in^T @ delta`` (same FLOPs as its forward product) and every layer's input gradient
    ``delta @ W^T`` EXCEPT the first layer's (nothing needs the gradient with respect to the
    data). So a step costs ``3 F - 2 B d h``, a little under the usual ``3 F`` rule of thumb.
    """
    h = model_cfg.width
    first = 2 * batch * dim * h
    if model_cfg.arch == "quad":
        forward = first
    else:
        forward = first + 2 * batch * ((model_cfg.depth - 1) * h * h + h)
    return 3 * forward - first if train else forward
