"""The training engine: a whole run as ONE pure function, ensembles as vmapped, sharded axes.

``make_trainer(cfg)`` (purejaxrl's ``make_train``, STYLE.md practice 1) closes over the STATIC
part of an experiment (dimension, radius, architecture, batch size, steps, checkpoint steps) and
returns pure functions of the SWEPT part, a :class:`Hyper` of traced scalars (learning rate and
training-set size). Seeds enter as keys. Nothing in the loop touches the host.

One optimisation step (docs/science.md section 4):

1. draw a batch of ``B`` labelled points: online (``train_size = 0``) ``B`` fresh points of the
   two-sphere task; otherwise ``B`` indices uniform in ``[0, N)`` (with replacement) whose points
   are REGENERATED as ``geometry.dataset_point(data_key, i)``, so the set is never stored;
2. the loss is the mean sigmoid cross-entropy of the logit, ``log(1 + e^f) - y f``;
3. Adam (Kingma & Ba 2015; optax defaults beta1 0.9, beta2 0.999, eps 1e-8) scaled by the traced
   learning rate; batch norm uses the batch statistics and updates its running averages.

Recipes and defences (:class:`~spheres.nets.config.TrainConfig`). The traced rate is the PEAK
rate; a schedule (:func:`make_schedule`, static) multiplies it by its factor at update
``step + 1``; the constant schedule multiplies by nothing, so the default program is the one
above, bit for bit (``tests/data/train_reference.npz``). Defences switched on in the static
config add terms to the loss (``Trainer.objective``): the adversarial batch
(:mod:`spheres.nets.defences`: on-sphere PGD through the training-mode forward pass, or the quad
net's exact worst case; no gradient flows through the points) mixed in with weight
``adv_weight``; the tangent input-gradient penalty; the RS loss over interval bounds and the L1
kernel penalty (:mod:`spheres.nets.relu_stability`). Their strengths are :class:`Hyper` fields,
so a sweep is one program. Random masks are drawn at :func:`init` from
``fold_in(key, "mask")`` (the other keys are unchanged) with the traced keep rate and stay in
the variables; the squeezing front end lives in the model functions.

Keys: a member's key is ``fold_in(key(0), seed)`` (:func:`member_keys`); :func:`init` splits it
into the initial weights, the training set's identity and the batch stream. So members that
share a seed share initial weights and training points (the sets of sizes N < N' are nested),
whatever their learning rates: sweeps compare like with like.

Ensembles (``Trainer.ensemble_*``) run the single-model functions over a leading member axis
in ONE jitted program whose member axis is sharded over a 1-D device mesh (axis ``"ensemble"``,
``shard_map``: members never communicate). The mesh uses the largest number of devices that
divides the ensemble size E (all of them when E is a multiple of the device count; make it one
for full use). Each device handles its block of members either one after another (``lax.map``:
every member runs exactly the single-model program, so member i is BITWISE the single run with
key i and hyper i, and a member's weights and Adam moments stay in cache through a chunk) or all
at once (``vmap``: batched matmuls, better for small models; equal to the single run up to float32
rounding, as the batched dot sums in another order). ``make_trainer(..., ensemble_loop=)``
chooses; the default picks by the cost of one step.

Several hosts (or several processes on one host): every process calls
:func:`initialize_distributed` (``jax.distributed.initialize`` from the environment variables
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``) before any other JAX call,
then runs the same program. ``jax.devices()`` lists every process's devices, the ensemble mesh
spans them (each process computes the members on its own devices; the members need no
communication), and ``spheres.nets.rundir.to_host`` gathers the results (a collective: call it on
every process).
Inputs built identically on every process (``member_keys``, ``member_hypers``) need no special
handling. ``tests/test_train.py`` checks that 2 processes x 2 devices give the 1-process result.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from spheres.maths import geometry
from spheres.nets import defences, models, relu_stability
from spheres.nets.config import SWEPT_DEFENCES, ExperimentConfig, TrainConfig
from spheres.core.errors import InputError

#: fold_in tag deriving the evaluation stream from the state's key (distinct from split's outputs).
_EVAL_STREAM = 0x65_76_61_6C  # "eval"
#: fold_in tag deriving a member's random masks from its key (the other keys are unchanged).
_MASK_STREAM = 0x6D_61_73_6B  # "mask"

#: points used by :meth:`Trainer.evaluate` (the first EVAL_SIZE points of a finite training set;
#: all of it when N <= EVAL_SIZE; EVAL_SIZE fresh points online).
EVAL_SIZE = 1000


class Hyper(NamedTuple):
    """Swept (traced) hyperparameters of one model; stack them for an ensemble.

    The defence fields only act when their defence is switched on in the static config
    (``train.adversarial``, some weight > 0, ``model.random_masks``); otherwise they are unread.
    """

    learning_rate: jax.Array  # float32 (), PEAK Adam step size (times the schedule's factor)
    train_size: jax.Array  # int32 (), N > 0 points in the training set, 0 = online
    adv_eps: jax.Array  # float32 (), chord budget of the adversarial points
    adv_weight: jax.Array  # float32 (), lambda in (1 - lambda) L(x) + lambda L(x_adv)
    grad_penalty: jax.Array  # float32 (), weight of the tangent input-gradient penalty
    rs_weight: jax.Array  # float32 (), weight of the ReLU-stability loss
    rs_eps: jax.Array  # float32 (), radius of the ball of the RS loss's bounds
    l1_weight: jax.Array  # float32 (), weight of the L1 penalty on dense kernels
    mask_keep: jax.Array  # float32 (), keep rate of the random masks (drawn at init)


class TrainState(NamedTuple):
    """Everything a model's training needs to continue: a pure value, saved to resume.

    Ensembles stack every field on a leading member axis.
    """

    variables: models.Variables  # {"params": ..., "batch_stats": ...} float32 (models module docstring)
    opt_state: Any  # optax.ScaleByAdamState(count int32 (), mu and nu shaped like params)
    step: jax.Array  # int32 (), optimisation steps taken
    key: jax.Array  # key (), the batch stream; split once per step
    data_key: jax.Array  # key (), identifies the fixed training set (unused when online)


def member_keys(cfg: ExperimentConfig) -> jax.Array:
    """Stacked member keys ``fold_in(key(0), seed)`` in ``cfg.train.members`` order, shape ``(E,)``."""
    seeds = jnp.asarray([m["seed"] for m in cfg.train.members], dtype=jnp.uint32)
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(0), s))(seeds)


def member_hypers(cfg: ExperimentConfig) -> Hyper:
    """Stacked :class:`Hyper` in ``cfg.train.members`` order: fields of shape ``(E,)``."""
    grid = cfg.train.grid
    floats = {key: jnp.asarray([m[key] for m in grid], dtype=jnp.float32) for key in SWEPT_DEFENCES.values()}
    return Hyper(learning_rate=jnp.asarray([m["learning_rate"] for m in grid], dtype=jnp.float32),
                 train_size=jnp.asarray([m["train_size"] for m in grid], dtype=jnp.int32), **floats)


def make_hyper(learning_rate: float, train_size: int = 0, **defences: float) -> Hyper:
    """One model's :class:`Hyper` from Python numbers; unnamed defence values take the
    :class:`~spheres.nets.config.TrainConfig` defaults (e.g. ``make_hyper(1e-3, adv_eps=0.1)``)."""
    defaults = TrainConfig().grid[0]
    unknown = sorted(set(defences) - set(SWEPT_DEFENCES.values()))
    if unknown:
        raise InputError(unknown[0], f"not a Hyper field; allowed: {', '.join(SWEPT_DEFENCES.values())}")
    values = {key: jnp.asarray(defences.get(key, defaults[key]), jnp.float32) for key in SWEPT_DEFENCES.values()}
    return Hyper(jnp.asarray(learning_rate, jnp.float32), jnp.asarray(train_size, jnp.int32), **values)


def ensemble_mesh(size: int, devices: list | None = None) -> Mesh:
    """1-D mesh (axis ``"ensemble"``) over the largest number of devices that divides ``size``."""
    devices = jax.devices() if devices is None else list(devices)
    n = max(k for k in range(1, len(devices) + 1) if size % k == 0)
    return Mesh(np.asarray(devices[:n]), ("ensemble",))


def initialize_distributed(environ=None) -> bool:
    """Join a multi-process JAX cluster if the environment asks for one.

    Reads ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``; when the address is unset this does nothing (one process). Must run before
    any other JAX computation. On CPU the processes talk through gloo (JAX's default).

    Returns:
      True if a cluster was joined.
    """
    env = os.environ if environ is None else environ
    address = env.get("JAX_COORDINATOR_ADDRESS")
    if not address:
        return False
    try:
        n, rank = int(env["JAX_NUM_PROCESSES"]), int(env["JAX_PROCESS_ID"])
    except (KeyError, ValueError):
        raise InputError("JAX_NUM_PROCESSES", "with JAX_COORDINATOR_ADDRESS set, JAX_NUM_PROCESSES and "
                         "JAX_PROCESS_ID must be integers (0 <= JAX_PROCESS_ID < JAX_NUM_PROCESSES)") from None
    if not 0 <= rank < n:
        raise InputError("JAX_PROCESS_ID", f"must be in [0, {n}), got {rank}")
    jax.distributed.initialize(coordinator_address=address, num_processes=n, process_id=rank)
    return True


def _select_keys(pred: jax.Array, on_true: jax.Array, on_false: jax.Array) -> jax.Array:
    """``on_true if pred else on_false`` for key arrays (``pred`` a traced bool scalar)."""
    data = jnp.where(pred, jax.random.key_data(on_true), jax.random.key_data(on_false))
    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(on_true))


@dataclass(frozen=True, eq=False)
class Trainer:
    """Pure training functions for one experiment (built by :func:`make_trainer`).

    Single model (pure; jit them yourself if needed):
      init(key, hyper) -> TrainState
      advance(state, hyper, n_steps) -> TrainState   (n_steps: traced int32; one while loop)
      evaluate(state, hyper) -> {"loss": f32 (), "accuracy": f32 ()}
      train(key, hyper) -> (final TrainState, metrics {"step", "loss", "accuracy"} each (C,),
                            variables with a leading (C,) checkpoint axis)
      step(state, hyper) -> (TrainState, loss f32 ())   one optimisation step
      draw_batch(key, data_key, train_size) -> (x (B, d), y (B,))   one step's batch
      objective(variables, x, y, hyper, x_adv=None) -> (loss f32 (), batch_stats)   what a step minimises
      adversarial_points(variables, x, y, hyper) -> x_adv (B, d)   (with ``train.adversarial`` on)
    Ensembles (jitted, ensemble axis sharded; leading axis E on every argument and result):
      ensemble_init(keys, hypers), ensemble_advance(states, hypers, n_steps),
      ensemble_evaluate(states, hypers), ensemble_train(keys, hypers)
    ``traces`` counts how often each jitted ensemble function was traced (each trace is a
    compilation): after the first call of a given ensemble size it must not grow.
    """

    cfg: ExperimentConfig
    init: Callable
    step: Callable
    draw_batch: Callable
    advance: Callable
    evaluate: Callable
    train: Callable
    logit_fn: Callable
    objective: Callable
    adversarial_points: Callable
    ensemble_loop: str = "map"
    traces: collections.Counter = field(default_factory=collections.Counter)
    _compiled: dict = field(default_factory=dict, repr=False)

    def _jitted(self, name: str, fn: Callable, size: int, n_sharded: int, n_replicated: int = 0):
        """``fn`` over the ensemble axis, sharded over devices (``shard_map``, no communication), each
        device looping over its members (``ensemble_loop``); one program per (function, E, devices)."""
        devices = tuple(jax.devices())
        cache_key = (name, size, devices)
        if cache_key not in self._compiled:
            mesh = ensemble_mesh(size, list(devices))
            sharded = NamedSharding(mesh, PartitionSpec("ensemble"))
            replicated = NamedSharding(mesh, PartitionSpec())
            traces = self.traces
            loop = self.ensemble_loop

            def per_device(*args):
                # This device's block of members (E / devices of them) and the replicated arguments.
                members, shared = args[:n_sharded], args[n_sharded:]
                if loop == "map":  # one member after another: each runs the single-model program
                    return jax.lax.map(lambda m: fn(*m, *shared), members)
                return jax.vmap(fn, in_axes=(0,) * n_sharded + (None,) * n_replicated)(*args)

            spec = PartitionSpec("ensemble")
            body = jax.shard_map(per_device, mesh=mesh, in_specs=(spec,) * n_sharded + (PartitionSpec(),) * n_replicated,
                                 out_specs=spec, check_vma=False)

            def traced(*args):
                traces[name] += 1  # Python side effect: runs once per trace, never per call
                return body(*args)

            self._compiled[cache_key] = jax.jit(
                traced, in_shardings=(sharded,) * n_sharded + (replicated,) * n_replicated, out_shardings=sharded)
        return self._compiled[cache_key]

    def ensemble_init(self, keys: jax.Array, hypers: Hyper) -> TrainState:
        """``vmap(init)``: keys ``(E,)``, hypers fields ``(E,)`` -> states with leading axis E."""
        return self._jitted("init", self.init, keys.shape[0], 2)(keys, hypers)

    def ensemble_advance(self, states: TrainState, hypers: Hyper, n_steps) -> TrainState:
        """``vmap(advance)`` over members; ``n_steps`` is one traced int shared by all members."""
        size = hypers.learning_rate.shape[0]
        return self._jitted("advance", self.advance, size, 2, 1)(states, hypers, jnp.asarray(n_steps, jnp.int32))

    def ensemble_evaluate(self, states: TrainState, hypers: Hyper) -> dict[str, jax.Array]:
        """``vmap(evaluate)``: ``{"loss": (E,), "accuracy": (E,)}``."""
        size = hypers.learning_rate.shape[0]
        return self._jitted("evaluate", self.evaluate, size, 2)(states, hypers)

    def ensemble_train(self, keys: jax.Array, hypers: Hyper):
        """``vmap(train)``: the whole ensemble run as one compiled program."""
        return self._jitted("train", self.train, keys.shape[0], 2)(keys, hypers)


def make_schedule(train_cfg: TrainConfig) -> Callable[[jax.Array], jax.Array] | None:
    """The learning-rate factor of update ``k = 1..steps`` (``TrainConfig.schedule``), or None for
    the constant schedule (the step then multiplies by the peak rate alone, as it always did).

    Built from optax schedules: ``linear_schedule(0, 1, W)`` for the warm-up, then
    ``cosine_decay_schedule(1, S - W, a)`` or ``linear_schedule(1, a, S - W)``, joined at ``W``.

    >>> f = make_schedule(TrainConfig(steps=10, schedule="linear", warmup_steps=2, final_lr_fraction=0.2))
    >>> [round(float(f(k)), 2) for k in range(1, 11)]
    [0.5, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    """
    kind, warm, steps, end = train_cfg.schedule, train_cfg.warmup_steps, train_cfg.steps, train_cfg.final_lr_fraction
    if kind == "constant":
        return None
    warmup = optax.linear_schedule(0.0, 1.0, warm) if warm else None
    if kind == "warmup":
        return warmup if warmup is not None else (lambda k: jnp.ones((), jnp.float32))
    decay = (optax.cosine_decay_schedule(1.0, steps - warm, end) if kind == "cosine"
             else optax.linear_schedule(1.0, end, steps - warm))
    return decay if warmup is None else optax.join_schedules([warmup, decay], [warm])


#: "auto" picks "map" when one member's training step costs at least this many matmul FLOPs
#: (the paper's models at d = 500: 1e8 to 9e9), "vmap" below it (small models, short steps).
MAP_MIN_FLOPS = 10**8


def make_trainer(cfg: ExperimentConfig, eval_size: int = EVAL_SIZE, ensemble_loop: str = "auto") -> Trainer:
    """Build the pure training functions of ``cfg`` (see :class:`Trainer`).

    Args:
      cfg: the experiment; its task, model and ``train.steps``/``batch_size``/``checkpoint_steps``
        are static; learning rates and training-set sizes are the traced :class:`Hyper`.
      eval_size: points per :meth:`Trainer.evaluate` (static).
      ensemble_loop: how a device runs its block of members: ``"map"`` one after another
        (``lax.map``: every member runs exactly the single-model program, and its weights and
        Adam moments stay in cache through a chunk) or ``"vmap"`` all at once (batched
        matmuls: better for small models whose steps are too short to keep the cores busy);
        ``"auto"``: "map" if a step costs at least :data:`MAP_MIN_FLOPS` matmul FLOPs, else "vmap".
        With "map", member i is BITWISE the single run; with "vmap" equal to float32 rounding.
    """
    if ensemble_loop not in ("auto", "map", "vmap"):
        raise InputError("ensemble_loop", f"must be 'auto', 'map' or 'vmap', got {ensemble_loop!r}")
    if ensemble_loop == "auto":
        flops = models.count_matmul_flops(cfg.model, cfg.task.dim, cfg.train.batch_size, train=True)
        ensemble_loop = "map" if flops >= MAP_MIN_FLOPS else "vmap"
    dim = cfg.task.dim
    radius = cfg.task.outer_radius
    batch = cfg.train.batch_size
    model_cfg = cfg.model
    apply_train = models.make_apply_train(model_cfg, dim)
    logit_fn = models.make_logit_fn(model_cfg, dim)
    adam = optax.scale_by_adam()
    tcfg = cfg.train
    schedule = make_schedule(tcfg)

    def sample_points(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.vmap(lambda k: geometry.sample_labeled(k, dim, radius))(keys)

    def init(key: jax.Array, hyper: Hyper) -> TrainState:
        # The initial state depends on the seed only (and on the masks' keep rate).
        k_model, k_data, k_stream = jax.random.split(key, 3)
        variables = models.init_variables(k_model, model_cfg, dim)
        if model_cfg.random_masks:
            variables["masks"] = models.draw_masks(jax.random.fold_in(key, _MASK_STREAM), hyper.mask_keep, model_cfg)
        return TrainState(variables=variables, opt_state=adam.init(variables["params"]),
                          step=jnp.zeros((), jnp.int32), key=k_stream, data_key=k_data)

    def draw_batch(key: jax.Array, data_key: jax.Array, train_size: jax.Array):
        # One sample_labeled per example: its key is either fresh (online) or
        # fold_in(data_key, i) for a uniform index i < N, i.e. geometry.dataset_point(data_key, i).
        k_index, k_fresh = jax.random.split(key)
        index = jax.random.randint(k_index, (batch,), 0, jnp.maximum(train_size, 1))
        set_keys = jax.vmap(lambda i: jax.random.fold_in(data_key, i))(index)
        point_keys = _select_keys(train_size > 0, set_keys, jax.random.split(k_fresh, batch))
        return sample_points(point_keys)

    def step(state: TrainState, hyper: Hyper) -> tuple[TrainState, jax.Array]:
        key, k_batch = jax.random.split(state.key)
        x, y = draw_batch(k_batch, state.data_key, hyper.train_size)
        params = state.variables["params"]
        x_adv = adversarial_points(state.variables, x, y, hyper) if tcfg.uses_adversarial else None

        def loss_fn(params):
            variables = {**state.variables, "params": params}
            return objective(variables, x, y, hyper, x_adv)

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        direction, opt_state = adam.update(grads, state.opt_state, params)
        rate = hyper.learning_rate if schedule is None else hyper.learning_rate * schedule(state.step + 1)
        params = jax.tree.map(lambda p, u: p - rate * u, params, direction)
        new = TrainState(variables={**state.variables, "params": params, "batch_stats": stats}, opt_state=opt_state,
                         step=state.step + 1, key=key, data_key=state.data_key)
        return new, loss

    def batch_losses(variables, x, y):
        """Per-example cross-entropy ``(B,)`` of the training-mode forward pass, and the new batch stats."""
        logits, stats = apply_train(variables, x)
        return optax.sigmoid_binary_cross_entropy(logits, y.astype(logits.dtype)), stats

    def adversarial_points(variables, x, y, hyper):
        """The batch's adversarial points (no gradient flows through them)."""
        if tcfg.adversarial == "exact":
            params = variables["params"]
            lam, vecs = defences.quad_eigen(params["hidden"]["kernel"])
            worst = jax.vmap(defences.quad_worst_case, in_axes=(None, None, None, 0, 0, None))
            x_adv = worst(lam, vecs, params["w"], x, y, hyper.adv_eps)
        else:
            x_adv = defences.pgd_attack(lambda xb: batch_losses(variables, xb, y)[0], x, hyper.adv_eps,
                                        tcfg.adv_steps, tcfg.adv_step_factor).x_adv
        return jax.lax.stop_gradient(x_adv)

    def objective(variables, x, y, hyper, x_adv=None):
        """The training loss of one step and the new batch statistics (those of the clean batch).

        ``mean CE(x)``, mixed with ``mean CE(x_adv)`` by ``adv_weight``, plus ``grad_penalty *``
        :func:`~spheres.nets.defences.input_gradient_penalty`, ``rs_weight *`` the mean
        :func:`~spheres.nets.relu_stability.rs_loss` and ``l1_weight *`` the L1 norm of the
        kernels, each term present only when its defence is on (static).
        """
        losses, stats = batch_losses(variables, x, y)
        loss = jnp.mean(losses)
        if x_adv is not None:
            adv = jnp.mean(batch_losses(variables, x_adv, y)[0])
            loss = (1.0 - hyper.adv_weight) * loss + hyper.adv_weight * adv
        if tcfg.uses_grad_penalty:
            penalty = defences.input_gradient_penalty(lambda xb: batch_losses(variables, xb, y)[0], x)
            loss = loss + hyper.grad_penalty * penalty
        if tcfg.uses_rs:
            affines = relu_stability.batch_norm_affines(variables, model_cfg, x if model_cfg.batch_norm else None)
            rs = jax.vmap(lambda xi: relu_stability.rs_loss(variables, model_cfg, affines, xi, hyper.rs_eps,
                                                             tcfg.rs_norm))(x)
            loss = loss + hyper.rs_weight * jnp.mean(rs)
        if tcfg.uses_l1:
            loss = loss + hyper.l1_weight * relu_stability.l1_penalty(variables["params"])
        return loss, stats

    def advance(state: TrainState, hyper: Hyper, n_steps) -> TrainState:
        return jax.lax.fori_loop(0, jnp.asarray(n_steps, jnp.int32), lambda _, s: step(s, hyper)[0], state)

    def evaluate(state: TrainState, hyper: Hyper) -> dict[str, jax.Array]:
        finite = hyper.train_size > 0
        index = jnp.arange(eval_size, dtype=jnp.int32)
        set_keys = jax.vmap(lambda i: jax.random.fold_in(state.data_key, i))(index)
        fresh_keys = jax.random.split(jax.random.fold_in(state.key, _EVAL_STREAM), eval_size)
        x, y = sample_points(_select_keys(finite, set_keys, fresh_keys))
        weight = jnp.where(finite, (index < hyper.train_size).astype(jnp.float32), 1.0)
        logits = jax.vmap(logit_fn, in_axes=(None, 0))(state.variables, x)
        losses = optax.sigmoid_binary_cross_entropy(logits, y.astype(logits.dtype))
        correct = ((logits > 0) == (y == 1)).astype(jnp.float32)
        total = jnp.sum(weight)
        return {"loss": jnp.sum(weight * losses) / total, "accuracy": jnp.sum(weight * correct) / total}

    steps = np.asarray(cfg.train.checkpoint_steps, dtype=np.int32)
    lengths = np.diff(np.concatenate([[0], steps])).astype(np.int32)

    def train(key: jax.Array, hyper: Hyper):
        def segment(state, n):
            state = advance(state, hyper, n)
            metrics = {"step": state.step, **evaluate(state, hyper)}
            return state, (metrics, state.variables)

        state, (metrics, variables) = jax.lax.scan(segment, init(key, hyper), jnp.asarray(lengths))
        return state, metrics, variables

    return Trainer(cfg=cfg, init=init, step=step, draw_batch=draw_batch, advance=advance, evaluate=evaluate,
                   train=train, logit_fn=logit_fn, objective=objective, adversarial_points=adversarial_points,
                   ensemble_loop=ensemble_loop)
