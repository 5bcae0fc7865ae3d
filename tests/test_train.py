"""Training engine: it learns, ensembles equal single runs, runs are deterministic, sharding is invisible.

Compilation dominates the cost here, so each config is compiled once (module fixtures) and
several properties are read off the same results.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from spheres.maths import geometry
from spheres.nets import train
from spheres.nets.config import config_from_dict
from spheres.core.errors import InputError

D = 20
FRESH = 20_000  # fresh points for the error-rate checks


def _cfg(model: dict, **train_table):
    table = dict(steps=1500, batch_size=50, learning_rates=[1e-3], train_sizes=[0], seeds=[0], checkpoints=4)
    table.update(train_table)
    return config_from_dict({"task": {"dim": D, "outer_radius": 1.3}, "model": model, "train": table})


#: d = 20 MLP; 4 members (2 seeds x {online, N = 100}) = the 4 forced host devices.
RELU = _cfg({"name": "relu", "width": 64, "depth": 2}, seeds=[0, 1], train_sizes=[0, 100])
#: batch-norm MLP for the chunked / sharded / statistics checks; 4 members.
BN = _cfg({"name": "relu", "width": 32, "depth": 2, "batch_norm": True}, steps=40, batch_size=16,
          learning_rates=[1e-3, 3e-3], train_sizes=[0, 30], seeds=[5])
QUAD = _cfg({"name": "quad", "width": 64, "depth": 1}, learning_rates=[1e-2])


def _leaves64(tree):
    def raw(a):
        return jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a

    return [np.asarray(raw(a), np.float64) for a in jax.tree.leaves(tree)]


def _member(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def _max_abs_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(_leaves64(a), _leaves64(b)))


def _fresh_error(logit_fn, variables, key):
    x, y = jax.jit(geometry.sample_batch, static_argnums=(1, 2))(key, FRESH, D, 1.3)
    logits = jax.jit(jax.vmap(logit_fn, (None, 0)))(variables, x)
    return int(jnp.sum((logits > 0) != (y == 1)))


def _upper_bound(errors, n, confidence=0.999):
    """One-sided Clopper-Pearson upper bound on the error rate."""
    return 1.0 if errors == n else float(stats.beta.ppf(confidence, errors + 1, n - errors))


@pytest.fixture(scope="module")
def relu_run():
    trainer = train.make_trainer(RELU, eval_size=500)
    keys, hypers = train.member_keys(RELU), train.member_hypers(RELU)
    final, metrics, variables = trainer.ensemble_train(keys, hypers)
    return trainer, keys, hypers, final, metrics, variables


@pytest.fixture(scope="module")
def bn_setup():
    trainer = train.make_trainer(BN, eval_size=64)
    keys, hypers = train.member_keys(BN), train.member_hypers(BN)
    return trainer, hypers, trainer.ensemble_init(keys, hypers)


# ---------------------------------------------------------------------------- learning


def test_relu_ensemble_learns_the_spheres(relu_run):
    """Online members reach < 1% error on fresh points (99.9% Clopper-Pearson upper bound)."""
    trainer, _, hypers, final, metrics, _ = relu_run
    online = [i for i, m in enumerate(RELU.train.members) if m["train_size"] == 0]
    assert len(online) == 2
    for i in online:
        errors = _fresh_error(trainer.logit_fn, _member(final.variables, i), jax.random.key(100 + i))
        assert _upper_bound(errors, FRESH) < 0.01, (i, errors)
    # metrics: at the checkpoint steps, loss falls from chance (log 2) and training accuracy ends high
    assert metrics["step"].shape == (4, len(RELU.train.checkpoint_steps))
    np.testing.assert_array_equal(metrics["step"][0], RELU.train.checkpoint_steps)
    assert np.all(metrics["loss"][:, 0] > 0.5) and np.all(metrics["loss"][:, -1] < 0.1)
    assert np.all(metrics["accuracy"][:, -1] > 0.97)


def test_quad_net_learns_the_spheres():
    trainer = train.make_trainer(QUAD, eval_size=500)
    final, metrics, _ = jax.jit(trainer.train)(train.member_keys(QUAD)[0], _member(train.member_hypers(QUAD), 0))
    errors = _fresh_error(trainer.logit_fn, final.variables, jax.random.key(7))
    assert _upper_bound(errors, FRESH) < 0.01, errors
    assert metrics["loss"][-1] < metrics["loss"][0]


def test_finite_training_set_is_fit(relu_run):
    """N = 100 members: evaluation is on the training set itself, which they fit perfectly."""
    _, _, hypers, _, metrics, _ = relu_run
    finite = np.asarray(hypers.train_size) == 100
    assert finite.sum() == 2
    np.testing.assert_array_equal(metrics["accuracy"][finite, -1], 1.0)


# ---------------------------------------------------------------------------- ensemble contract


def test_ensemble_member_equals_the_single_run(relu_run):
    """Member i of the sharded ensemble run == train(key_i, hyper_i) alone.

    RELU is small, so the trainer batches members with vmap ("auto"): equal to float32 rounding,
    not bitwise, because XLA computes a vmapped matmul as one batched dot whose summation order
    differs from the single dot's, and the last-bit differences propagate through 1500 Adam
    steps. The bound (1e-4 on weights of order 0.1-1) is far below the differences between
    members (checked too). The bitwise case ("map") is the next test.
    """
    trainer, keys, hypers, final, metrics, variables = relu_run
    assert trainer.ensemble_loop == "vmap"
    single = jax.jit(trainer.train)
    for i in (0, 3):
        s_final, s_metrics, s_vars = single(keys[i], _member(hypers, i))
        assert _max_abs_diff(s_vars, _member(variables, i)) < 1e-4
        np.testing.assert_allclose(s_metrics["loss"], metrics["loss"][i], rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(s_metrics["step"], metrics["step"][i])
        assert int(s_final.step) == RELU.train.steps
    assert _max_abs_diff(_member(variables, 0), _member(variables, 1)) > 0.1  # members do differ


def test_mapped_ensemble_member_is_bitwise_the_single_run():
    """With ensemble_loop="map" each member runs the single-model program: bit-for-bit equal."""
    trainer = train.make_trainer(BN, eval_size=64, ensemble_loop="map")
    keys, hypers = train.member_keys(BN), train.member_hypers(BN)
    states = trainer.ensemble_advance(trainer.ensemble_init(keys, hypers), hypers, 12)
    init, advance = jax.jit(trainer.init), jax.jit(trainer.advance)
    for i in range(len(BN.train.members)):
        hyper = _member(hypers, i)
        alone = advance(init(keys[i], hyper), hyper, 12)
        assert _max_abs_diff(alone, _member(states, i)) == 0.0


def test_auto_picks_map_for_the_paper_models():
    paper = config_from_dict({"model": {"name": "relu-w1000-d2"}, "train": {"batch_size": 50}})
    assert train.make_trainer(paper).ensemble_loop == "map"
    assert train.make_trainer(BN).ensemble_loop == "vmap"
    with pytest.raises(InputError, match="ensemble_loop"):
        train.make_trainer(BN, ensemble_loop="pmap")


def test_member_keys_and_hypers_follow_the_member_grid():
    keys, hypers = train.member_keys(BN), train.member_hypers(BN)
    members = BN.train.members
    assert keys.shape == (len(members),) and hypers.learning_rate.shape == (len(members),)
    for i, m in enumerate(members):
        np.testing.assert_array_equal(jax.random.key_data(keys[i]),
                                      jax.random.key_data(jax.random.fold_in(jax.random.key(0), m["seed"])))
        assert float(hypers.learning_rate[i]) == np.float32(m["learning_rate"])
        assert int(hypers.train_size[i]) == m["train_size"]
    assert hypers.learning_rate.dtype == jnp.float32 and hypers.train_size.dtype == jnp.int32


# ---------------------------------------------------------------------------- determinism, chunks, sharding


def test_same_config_and_seed_give_the_same_numbers(relu_run):
    trainer, keys, hypers, final, metrics, variables = relu_run
    final2, metrics2, variables2 = trainer.ensemble_train(keys, hypers)
    assert _max_abs_diff(variables, variables2) == 0.0
    np.testing.assert_array_equal(metrics["loss"], metrics2["loss"])
    assert trainer.traces["train"] == 1  # and the second call did not recompile


def test_chunked_advance_equals_one_advance_and_never_recompiles(bn_setup):
    """advance(20) then advance(20) is bit-for-bit advance(40) (what resuming relies on), and
    neither the chunk length nor a second call triggers another compilation."""
    trainer, hypers, states = bn_setup
    whole = trainer.ensemble_advance(states, hypers, 40)
    traces = trainer.traces["advance"]
    chunked = trainer.ensemble_advance(trainer.ensemble_advance(states, hypers, 20), hypers, 20)
    odd = trainer.ensemble_advance(trainer.ensemble_advance(states, hypers, 7), hypers, 33)
    assert trainer.traces["advance"] == traces == 1
    for other in (chunked, odd):
        assert _max_abs_diff(whole, other) == 0.0
        np.testing.assert_array_equal(other.step, 40)


def test_single_model_jit_does_not_recompile(bn_setup):
    trainer, hypers, states = bn_setup
    count = 0

    def advance(state, hyper, n):
        nonlocal count
        count += 1
        return trainer.advance(state, hyper, n)

    advance = jax.jit(advance)
    state, hyper = _member(states, 0), _member(hypers, 0)
    state = advance(advance(state, hyper, 2), hyper, 5)
    advance(state, _member(hypers, 1), 3)
    assert count == 1
    assert int(state.step) == 7


def test_sharded_run_equals_unsharded(bn_setup):
    """Sharded over 4 devices (one member each) == the same vmap on one device, to float32 rounding.

    Not bitwise: on one device the 4 members' matmuls are one batched dot, sharded each device
    runs a batch of 1, and XLA's CPU dot sums in a different order for the two shapes (the
    differences are a few ulps of the weights after 25 steps). Integer state (steps, keys) and
    anything not touched by a matmul agree exactly.
    """
    trainer, hypers, states = bn_setup
    assert len(jax.devices()) == 4
    sharded = trainer.ensemble_advance(states, hypers, 25)
    assert sharded.step.sharding.num_devices == 4
    one_device = jax.jit(jax.vmap(trainer.advance, in_axes=(0, 0, None)))
    host = jax.device_put((states, hypers), jax.devices()[0])
    plain = one_device(*host, 25)
    assert plain.step.sharding.num_devices == 1
    assert _max_abs_diff(sharded.variables, plain.variables) < 1e-5
    assert _max_abs_diff(sharded.opt_state, plain.opt_state) < 1e-5
    assert _max_abs_diff((sharded.step, sharded.key, sharded.data_key), (plain.step, plain.key, plain.data_key)) == 0


def test_mesh_uses_the_largest_device_count_dividing_the_ensemble():
    assert [train.ensemble_mesh(e).devices.size for e in (1, 2, 3, 4, 6, 8, 7)] == [1, 2, 3, 4, 3, 4, 1]


# ---------------------------------------------------------------------------- batch norm, data


def test_batch_norm_running_averages_move_per_member(bn_setup):
    trainer, hypers, states = bn_setup
    after = trainer.ensemble_advance(states, hypers, 5)
    before_mean = np.asarray(states.variables["batch_stats"]["norm0"]["mean"])
    after_mean = np.asarray(after.variables["batch_stats"]["norm0"]["mean"])
    np.testing.assert_array_equal(before_mean, 0.0)
    assert np.all(np.max(np.abs(after_mean), axis=1) > 1e-3)  # every member's statistics moved
    assert not np.allclose(after_mean[0], after_mean[1])  # different batches: different statistics


def test_batches_of_a_finite_set_are_its_points():
    """Batch points of an N-point set are rows of geometry.dataset(data_key, N), drawn uniformly."""
    trainer = train.make_trainer(BN)
    data_key = jax.random.key(3)
    points, labels = jax.jit(geometry.dataset, static_argnums=(1, 2))(data_key, 7, D, 1.3)
    draw = jax.jit(jax.vmap(trainer.draw_batch, in_axes=(0, None, None)))
    x, y = draw(jax.random.split(jax.random.key(4), 40), data_key, jnp.int32(7))  # 40 x 16 draws
    x, y = np.asarray(x).reshape(-1, D), np.asarray(y).reshape(-1)
    dist = np.linalg.norm(x[:, None, :] - np.asarray(points)[None, :, :], axis=-1)
    which = np.argmin(dist, axis=1)
    assert np.all(dist[np.arange(len(x)), which] < 1e-6)
    np.testing.assert_array_equal(y, np.asarray(labels)[which])
    counts = np.bincount(which, minlength=7)  # 640 uniform draws: chi-square test at level 1e-4
    chi2 = np.sum((counts - 640 / 7) ** 2 / (640 / 7))
    assert chi2 < stats.chi2.ppf(1 - 1e-4, 6)

    # online: fresh points on the two spheres, never repeated
    x, y = draw(jax.random.split(jax.random.key(5), 4), data_key, jnp.int32(0))
    x, y = np.asarray(x).reshape(-1, D), np.asarray(y).reshape(-1)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.where(y == 1, 1.3, 1.0), rtol=1e-5)
    assert len(np.unique(np.round(x[:, 0], 6))) == len(x)


def test_evaluate_on_a_finite_set_is_the_mean_over_its_points(bn_setup):
    trainer, hypers, states = bn_setup
    i = int(np.flatnonzero(np.asarray(hypers.train_size) == 30)[0])
    state, hyper = _member(states, i), _member(hypers, i)
    got = jax.jit(trainer.evaluate)(state, hyper)
    x, y = jax.jit(geometry.dataset, static_argnums=(1, 2))(state.data_key, 30, D, 1.3)
    logits = np.asarray(jax.jit(jax.vmap(trainer.logit_fn, (None, 0)))(state.variables, x), np.float64)
    y = np.asarray(y)
    loss = np.mean(np.logaddexp(0.0, logits) - y * logits)
    assert float(got["loss"]) == pytest.approx(loss, rel=1e-5)
    assert float(got["accuracy"]) == pytest.approx(np.mean((logits > 0) == (y == 1)), abs=1e-6)


# ---------------------------------------------------------------------------- several processes

_WORKER = """
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
from spheres.nets import config
from spheres.nets import rundir, train
assert train.initialize_distributed()
import jax, numpy as np
cfg = config.config_from_dict({config!r})
trainer = train.make_trainer(cfg, eval_size=32)
keys, hypers = train.member_keys(cfg), train.member_hypers(cfg)
states = trainer.ensemble_advance(trainer.ensemble_init(keys, hypers), hypers, 10)
assert len(jax.devices()) == 4 and len(jax.local_devices()) == 2
assert states.step.sharding.num_devices == 4
kernel = rundir.to_host(states.variables["params"]["dense1"]["kernel"])   # collective: every process
if jax.process_index() == 0:
    np.save(sys.argv[1], kernel)
"""

MULTI = {"task": {"dim": 8}, "model": {"name": "relu", "width": 16, "depth": 2},
         "train": {"steps": 10, "batch_size": 8, "seeds": [0, 1, 2, 3], "checkpoints": 2}}


def test_initialize_distributed_is_a_no_op_without_a_coordinator():
    assert train.initialize_distributed({}) is False
    with pytest.raises(InputError, match="JAX_PROCESS_ID"):
        train.initialize_distributed({"JAX_COORDINATOR_ADDRESS": "localhost:1", "JAX_NUM_PROCESSES": "2",
                                      "JAX_PROCESS_ID": "2"})


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    """jax.distributed with 2 processes x 2 CPU devices: the 4-member ensemble equals this process's run."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    out = tmp_path / "kernel.npy"
    code = _WORKER.format(config=MULTI)
    procs = []
    for rank in range(2):
        env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2",
                   JAX_PROCESS_ID=str(rank))
        procs.append(subprocess.Popen([sys.executable, "-c", code, str(out)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)

    cfg = config_from_dict(MULTI)
    trainer = train.make_trainer(cfg, eval_size=32)
    keys, hypers = train.member_keys(cfg), train.member_hypers(cfg)
    here = trainer.ensemble_advance(trainer.ensemble_init(keys, hypers), hypers, 10)
    # float32 rounding only (see test_sharded_run_equals_unsharded)
    np.testing.assert_allclose(np.load(out), here.variables["params"]["dense1"]["kernel"], rtol=0, atol=1e-6)
