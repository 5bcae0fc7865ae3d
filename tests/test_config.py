"""Config: validation names the field; TOML round trip; derived values."""

import pytest

from spheres.nets.config import (PAPER_MODELS, ExperimentConfig, ModelConfig, TrainConfig, config_from_dict,
                            dump_config, load_config)
from spheres.core.errors import InputError
import tomllib


def test_round_trip():
    cfg = config_from_dict({"task": {"dim": 20}, "model": {"name": "relu-w1000-d2"},
                            "train": {"steps": 100, "learning_rates": [1e-3, 1e-4], "seeds": [0, 1]}})
    again = config_from_dict(tomllib.loads(dump_config(cfg)))
    assert again == cfg
    assert again.model == PAPER_MODELS["relu-w1000-d2"]
    assert cfg.train.ensemble_size == 4


def test_checkpoint_steps_log_spaced_and_include_last():
    steps = TrainConfig(steps=1000, checkpoints=5).checkpoint_steps
    assert steps[-1] == 1000 and steps[0] == 1
    assert list(steps) == sorted(set(steps))
    assert len(steps) == 5


def test_extra_checkpoints_join_the_log_spaced_ones():
    assert TrainConfig(steps=1000, checkpoints=3, extra_checkpoints=(250, 500)).checkpoint_steps == (
        1, 32, 250, 500, 1000)
    assert TrainConfig(steps=4000, checkpoints=0, extra_checkpoints=(1000, 2000)).checkpoint_steps == (
        1000, 2000, 4000)
    assert TrainConfig(steps=10, checkpoints=0).checkpoint_steps == (10,)
    for bad in ((0,), (11,), (2.5,), (5, 3), (3, 3)):
        with pytest.raises(InputError, match="train.extra_checkpoints"):
            TrainConfig(steps=10, extra_checkpoints=bad)
    with pytest.raises(InputError, match="train.checkpoints"):
        TrainConfig(checkpoints=-1)


def test_members_grid_order():
    m = TrainConfig(seeds=(3, 4), learning_rates=(0.1,), train_sizes=(0, 10)).members
    assert [(x["seed"], x["train_size"]) for x in m] == [(3, 0), (3, 10), (4, 0), (4, 10)]
    assert [x["member"] for x in m] == [0, 1, 2, 3]


@pytest.mark.parametrize("data, field", [
    ({"model": {"name": "resnet"}}, "model.name"),
    ({"model": {"arch": "relu", "width": 0}}, "model.width"),
    ({"model": {"arch": "relu", "width": 10, "depth": -1}}, "model.depth"),
    ({"train": {"steps": 0}}, "train.steps"),
    ({"train": {"batch_size": -5}}, "train.batch_size"),
    ({"train": {"learning_rates": [0.0]}}, "train.learning_rates"),
    ({"train": {"train_sizes": [-1]}}, "train.train_sizes"),
    ({"train": {"seeds": []}}, "train.seeds"),
    ({"task": {"dim": 1}}, "task.dim"),
    ({"task": {"dim": 2.5}}, "task.dim"),
    ({"task": {"outer_radius": 1.0}}, "task.outer_radius"),
    ({"task": {"outer_radius": float("nan")}}, "task.outer_radius"),
    ({"task": {"dims": 3}}, "task.dims"),
    ({"training": {}}, "training"),
])
def test_bad_values_name_the_field(data, field):
    with pytest.raises(InputError) as info:
        config_from_dict(data)
    assert info.value.field == field
    assert field in str(info.value)


def test_malformed_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[task\ndim = 3")
    with pytest.raises(InputError, match="malformed TOML"):
        load_config(p)
    with pytest.raises(InputError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_defaults_are_the_paper_recipe():
    cfg = ExperimentConfig()
    assert cfg.task.dim == 500 and cfg.task.outer_radius == 1.3
    assert cfg.train.batch_size == 50 and cfg.train.learning_rates == (1e-4,)
    assert ModelConfig("quad", 1000, 1).name == "quad-w1000"


@pytest.mark.parametrize("name", ["quad-w1000", "relu-w1000-d2", "relu-w2000-d8", "relu-w64-d3", "relu-w8-d1-bn", "relu-w1000-d2-nobn", "relu-w2000-d8-bn",
                                  "quad-w7"])
def test_model_names_round_trip(name):
    from spheres.nets.config import parse_model_name
    assert parse_model_name(name).name == name
    assert config_from_dict({"model": {"name": name}}).model.name == name


@pytest.mark.parametrize("name", ["relu-w0-d2", "quad-w10-d2", "relu-wx-d2", "mlp"])
def test_bad_model_names(name):
    with pytest.raises(InputError) as info:
        config_from_dict({"model": {"name": name}})
    assert info.value.field.startswith("model.")


def test_quad_needs_no_depth():
    assert config_from_dict({"model": {"name": "quad", "width": 64}}).model.name == "quad-w64"
    assert config_from_dict({"model": {"arch": "quad", "width": 8}}).model.depth == 1
