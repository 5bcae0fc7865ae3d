"""Training recipes: the default recipe is bitwise the old engine; schedules follow their formulas; any batch size."""

import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spheres.core.errors import InputError
from spheres.nets import rundir, train
from spheres.nets.config import TrainConfig, config_from_dict

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
import make_train_reference as reference  # noqa: E402


def _off_reference(name, loop, table):
    """The leaves of the run of config ``table`` that differ from the reference's ``name/loop`` beyond
    float32 rounding: bitwise where the bits agree, else beyond 1e-3 of each value plus 1e-4 of the
    leaf's largest value."""
    ref = np.load(DATA / "train_reference.npz")
    cfg = config_from_dict(table)
    trainer = train.make_trainer(cfg, eval_size=32, ensemble_loop=loop)
    final, metrics, _ = trainer.ensemble_train(train.member_keys(cfg), train.member_hypers(cfg))
    got = {f"{name}/{loop}/{jax.tree_util.keystr(p)}": np.asarray(v)
           for p, v in jax.tree.leaves_with_path(rundir.to_host((final.variables, final.opt_state, metrics)))}
    want = sorted(k for k in ref.files if k.startswith(f"{name}/{loop}/"))
    assert sorted(got) == want
    off = []
    for k in want:
        if np.array_equal(got[k], ref[k]):
            continue
        scale = float(np.max(np.abs(ref[k]))) if ref[k].size else 0.0
        if got[k].dtype.kind != "f" or not np.allclose(got[k], ref[k], rtol=1e-3, atol=1e-4 * scale):
            off.append(k)
    return off


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the reference was recorded on CPU")
@pytest.mark.parametrize("name, loop", [("bn", "map"), ("quad", "vmap")])
def test_default_recipe_reproduces_the_reference_run(name, loop):
    """tests/data/train_reference.npz was written by the engine before schedules and defences
    existed; the default recipe must give the same weights, Adam moments and metrics. On the CPU that
    recorded it they are the same bits; on another x86-64 CPU (seen: one with AVX-512 FP16) XLA's
    float32 reductions round differently and the batch-norm net's leaves differ in the last bits (at
    most 6e-5 of a leaf's scale after 40 steps), so the check is to float32 rounding (_off_reference)."""
    assert _off_reference(name, loop, reference.CFGS[name]) == []


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the reference was recorded on CPU")
def test_the_reference_check_sees_a_one_percent_change_of_the_learning_rate():
    """The negative control of the tolerance: the batch-norm run with learning rates 1% higher is off."""
    import copy
    table = copy.deepcopy(reference.CFGS["bn"])
    table["train"]["learning_rates"] = [lr * 1.01 for lr in table["train"]["learning_rates"]]
    assert len(_off_reference("bn", "map", table)) >= 10


def _factor(kind, k, steps, warm, end):
    """The schedules' closed forms (TrainConfig docstring), update k = 1..steps."""
    if kind == "constant":
        return 1.0
    if warm and k <= warm:
        return k / warm
    if kind == "warmup":
        return 1.0
    frac = (k - warm) / (steps - warm)
    if kind == "cosine":
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * frac))
    return 1 - (1 - end) * frac


@pytest.mark.parametrize("kind, warm, end", [("warmup", 7, 0.0), ("cosine", 0, 0.0), ("cosine", 5, 0.1),
                                             ("linear", 0, 0.3), ("linear", 10, 0.0)])
def test_schedules_follow_their_formulas(kind, warm, end):
    steps = 40
    cfg = TrainConfig(steps=steps, schedule=kind, warmup_steps=warm, final_lr_fraction=end)
    f = train.make_schedule(cfg)
    got = np.asarray(jax.vmap(f)(jnp.arange(1, steps + 1)))
    want = np.array([_factor(kind, k, steps, warm, end) for k in range(1, steps + 1)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert train.make_schedule(TrainConfig()) is None


def test_the_step_scales_the_traced_peak_rate_by_the_schedule():
    """Adam's first update is lr * g / (|g| + 1e-8) ~ +-lr per weight; with a 4-step warm-up it is
    lr / 4, and the peak rate stays a traced value (two rates, one compilation)."""
    cfg = config_from_dict({"task": {"dim": 6}, "model": {"name": "relu", "width": 8, "depth": 1},
                            "train": {"steps": 20, "batch_size": 8, "schedule": "warmup", "warmup_steps": 4,
                                      "learning_rates": [1e-2, 3e-3]}})
    trainer = train.make_trainer(cfg, eval_size=8)
    keys, hypers = train.member_keys(cfg), train.member_hypers(cfg)
    states = trainer.ensemble_init(keys, hypers)
    after = trainer.ensemble_advance(states, hypers, 1)
    for i, lr in enumerate((1e-2, 3e-3)):
        move = np.abs(np.asarray(after.variables["params"]["dense0"]["kernel"][i])
                      - np.asarray(states.variables["params"]["dense0"]["kernel"][i]))
        assert np.max(move) == pytest.approx(lr / 4, rel=1e-3)
    assert trainer.traces["advance"] == 1


def test_batch_size_500_draws_500_points():
    cfg = config_from_dict({"task": {"dim": 10}, "model": {"name": "relu", "width": 8, "depth": 1},
                            "train": {"steps": 10, "batch_size": 500}})
    trainer = train.make_trainer(cfg, eval_size=8)
    x, y = jax.jit(trainer.draw_batch)(jax.random.key(1), jax.random.key(2), jnp.int32(0))
    assert x.shape == (500, 10) and y.shape == (500,)
    assert 200 < int(jnp.sum(y)) < 300  # fair labels (binomial(500, 1/2): +-5 sd)


@pytest.mark.slow
def test_batch_size_500_trains():
    cfg = config_from_dict({"task": {"dim": 10}, "model": {"name": "relu", "width": 32, "depth": 1},
                            "train": {"steps": 300, "batch_size": 500, "learning_rates": [1e-2], "checkpoints": 2,
                                      "schedule": "cosine", "warmup_steps": 5}})
    trainer = train.make_trainer(cfg, eval_size=500)
    x, y = jax.jit(trainer.draw_batch)(jax.random.key(1), jax.random.key(2), jnp.int32(0))
    assert x.shape == (500, 10) and y.shape == (500,)
    _, metrics, _ = jax.jit(trainer.train)(train.member_keys(cfg)[0], jax.tree.map(lambda a: a[0],
                                                                                   train.member_hypers(cfg)))
    assert metrics["loss"][0] > 0.6 and metrics["loss"][-1] < 0.4  # from chance (log 2 = 0.69)
    assert metrics["accuracy"][-1] > 0.95


@pytest.mark.parametrize("table, field", [
    ({"schedule": "step"}, "train.schedule"),
    ({"warmup_steps": 5}, "train.warmup_steps"),  # constant schedule has no warm-up
    ({"schedule": "cosine", "warmup_steps": 100}, "train.warmup_steps"),  # no decay left
    ({"schedule": "warmup", "warmup_steps": -1}, "train.warmup_steps"),
    ({"schedule": "linear", "final_lr_fraction": 1.5}, "train.final_lr_fraction"),
    ({"schedule": "warmup", "warmup_steps": 3, "final_lr_fraction": 0.1}, "train.final_lr_fraction"),
])
def test_bad_schedules_name_the_field(table, field):
    with pytest.raises(InputError) as info:
        config_from_dict({"train": {"steps": 100, **table}})
    assert info.value.field == field
