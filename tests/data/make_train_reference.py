"""Generate tests/data/train_reference.npz: final states and metrics of two tiny ensembles.

Run from the repository root with the engine as it was BEFORE learning-rate schedules and
defences were added (commit 2258534); tests/test_recipes.py checks that the default recipe still
reproduces these numbers bit for bit. Importing it runs nothing."""
import os
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
import jax, numpy as np
jax.config.update("jax_numpy_rank_promotion", "raise")
from spheres.nets import rundir, train
from spheres.nets.config import config_from_dict

CFGS = {
    "bn": {"task": {"dim": 8}, "model": {"name": "relu", "width": 16, "depth": 2, "batch_norm": True},
           "train": {"steps": 40, "batch_size": 16, "learning_rates": [1e-3, 3e-3], "train_sizes": [0, 30],
                     "seeds": [5], "checkpoints": 3}},
    "quad": {"task": {"dim": 8}, "model": {"name": "quad", "width": 12},
             "train": {"steps": 40, "batch_size": 16, "learning_rates": [1e-2], "seeds": [2], "checkpoints": 3}},
}


def main():
    out = {}
    for name, table in CFGS.items():
        cfg = config_from_dict(table)
        for loop in ("map", "vmap"):
            trainer = train.make_trainer(cfg, eval_size=32, ensemble_loop=loop)
            keys, hypers = train.member_keys(cfg), train.member_hypers(cfg)
            final, metrics, variables = trainer.ensemble_train(keys, hypers)
            leaves = jax.tree.leaves_with_path(rundir.to_host((final.variables, final.opt_state, metrics)))
            for path, leaf in leaves:
                out[f"{name}/{loop}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
    np.savez("tests/data/train_reference.npz", **out)
    print(len(out), sorted(out)[:5])


if __name__ == "__main__":
    main()
