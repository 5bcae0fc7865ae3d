"""The bundled reproduction presets: each loads and validates; the standard preset holds what it promises
(d = 500, the paper's nets, 5 training-set sizes plus online, >= 200 attacked points, the sweep to 2048,
an estimate of at most 2 hours per its [estimate] table); ``--standard --dry-run`` prints that plan."""

from __future__ import annotations

import importlib.resources
import tomllib

import pytest

from spheres import cli
from spheres.cli.reproduce import PRESET_HELP
from spheres.core.errors import InputError
from spheres.experiments.reproduce import PRESETS, config_from_table, load_reproduce_config, plan_lines, preset_path

import spheres.experiments as experiments_package


def test_every_bundled_preset_is_listed_and_loads():
    files = sorted(p.name.removesuffix(".toml") for p in
                   (importlib.resources.files(experiments_package) / "presets").iterdir() if p.name.endswith(".toml"))
    assert files == sorted(PRESETS)
    assert tuple(PRESET_HELP) == PRESETS  # the CLI's flags (kept JAX-free for --help) agree with the registry
    for name in PRESETS:
        cfg = load_reproduce_config(preset_path(name))
        assert cfg.experiments


def test_standard_preset_holds_the_regime_it_promises():
    cfg = load_reproduce_config(preset_path("standard"))
    t = cfg.section("tradeoff")
    assert t.task.dim == 500 and {"quad-w1000", "relu-w1000-d2"} <= set(t.models)
    for model in ("quad-w1000", "relu-w1000-d2"):
        sizes = t.train_of(model).train_sizes
        assert 0 in sizes and len([n for n in sizes if n > 0]) == 5
    assert t.measure.attack_points >= 200 and t.measure.method == "auto"
    # the online relu net once more on the recipe study's fastest recipe, a long batch-500 schedule
    extra = {label: (model, train) for label, model, train in t.extra_run_trains()}
    model, long = extra["b500-long"]
    assert model == "relu-w1000-d2" and long.train_sizes == (0,) and long.batch_size == 500
    assert long.steps >= 50_000 and long.schedule == "cosine"
    # and as shorter schedules of the same recipe, for the end-of-schedule law (3 lengths at least)
    from spheres.experiments.tradeoff import schedule_groups
    ((members, batch),) = schedule_groups(t).values()
    assert len(members) >= 3 and ("b500-long", long.steps) in members and batch == 500
    assert cfg.section("recipes").task.dim == 500
    d = cfg.section("dimsweep")
    assert max(d.dims) >= 2048 and "quad-w{dim}" in d.models and d.measure.attack_points >= 200
    assert cfg.section("defences").task.dim == 500 and cfg.section("attributions").task.dim == 500
    minutes = dict(cfg.estimate.minutes)
    assert set(minutes) == set(cfg.experiments)
    assert sum(minutes.values()) <= 120


def test_estimate_table_is_validated():
    with pytest.raises(InputError) as info:
        config_from_table(tomllib.loads('[estimate]\nmachine = "m"\n[estimate.minutes]\nnope = 3\n'))
    assert info.value.field == "estimate.minutes.nope"
    with pytest.raises(InputError) as info:
        config_from_table(tomllib.loads('experiments = ["bound"]\n[estimate]\nmachine = "m"\n'
                                        '[estimate.minutes]\ntradeoff = 3\n'))
    assert info.value.field == "estimate.minutes.tradeoff"
    with pytest.raises(InputError) as info:
        config_from_table(tomllib.loads('[estimate]\nmachine = "m"\n[estimate.minutes]\nbound = -1\n'))
    assert info.value.field == "estimate.minutes.bound"
    cfg = config_from_table(tomllib.loads('experiments = ["bound", "quadratic"]\n[estimate]\nmachine = "m"\n'
                                          '[estimate.minutes]\nbound = 2\n'))
    lines = plan_lines(cfg)
    assert "no estimate" in lines[2] and "2 min on m (without quadratic" in lines[-1]


def test_tradeoff_model_train_overrides_one_model_and_names_bad_fields():
    cfg = config_from_table(tomllib.loads(
        'experiments = ["tradeoff"]\n[tradeoff]\nmodels = ["quad-w8", "relu-w8-d1"]\n'
        '[tradeoff.train]\nsteps = 100\ntrain_sizes = [0, 10]\n'
        '[tradeoff.model_train.relu-w8-d1]\nsteps = 7\ntrain_sizes = [0]\n'))
    t = cfg.section("tradeoff")
    assert t.train_of("quad-w8").steps == 100 and t.train_of("quad-w8").train_sizes == (0, 10)
    assert t.train_of("relu-w8-d1").steps == 7 and t.train_of("relu-w8-d1").train_sizes == (0,)
    for text, field in (('[tradeoff.model_train.relu-w8-d1]\nsteps = 0\n', "tradeoff.model_train.relu-w8-d1.steps"),
                        ('[tradeoff.model_train.quad-w9]\nsteps = 5\n', "tradeoff.model_train.quad-w9")):
        with pytest.raises(InputError) as info:
            config_from_table(tomllib.loads('experiments = ["tradeoff"]\n[tradeoff]\n'
                                            'models = ["quad-w8", "relu-w8-d1"]\n' + text))
        assert info.value.field == field


def test_tradeoff_extra_runs_train_a_model_on_its_own_recipe_and_name_bad_fields():
    base = ('experiments = ["tradeoff"]\n[tradeoff]\nmodels = ["quad-w8", "relu-w8-d1"]\n'
            '[tradeoff.model_learning_rates]\nrelu-w8-d1 = 0.02\n'
            '[tradeoff.train]\nsteps = 100\ntrain_sizes = [0, 10]\n'
            '[tradeoff.model_train.relu-w8-d1]\nsteps = 50\n')
    cfg = config_from_table(tomllib.loads(base + '[tradeoff.extra_runs.long]\nmodel = "relu-w8-d1"\n'
                                                 'steps = 300\nbatch_size = 20\ntrain_sizes = [0]\n'))
    (label, model, train), = cfg.section("tradeoff").extra_run_trains()
    assert (label, model, train.steps, train.batch_size, train.train_sizes) == ("long", "relu-w8-d1", 300, 20, (0,))
    assert train.learning_rates == (0.02,)  # the model's own rate unless the run sets one
    cfg = config_from_table(tomllib.loads(base + '[tradeoff.extra_runs.long]\nmodel = "relu-w8-d1"\n'
                                                 'learning_rates = [0.5]\n'))
    (_, _, train), = cfg.section("tradeoff").extra_run_trains()
    assert train.learning_rates == (0.5,) and train.steps == 50  # the model's model_train carries over
    for text, field in (('[tradeoff.extra_runs.long]\nmodel = "relu-w9-d1"\n', "tradeoff.extra_runs.long.model"),
                        ('[tradeoff.extra_runs.long]\nsteps = 5\n', "tradeoff.extra_runs.long.model"),
                        ('[tradeoff.extra_runs.long]\nmodel = "quad-w8"\nsteps = 0\n',
                         "tradeoff.extra_runs.long.steps"),
                        ('[tradeoff.extra_runs.long]\nmodel = "quad-w8"\nnope = 1\n',
                         "tradeoff.extra_runs.long.nope"),
                        ('[tradeoff.extra_runs."quad-w8"]\nmodel = "quad-w8"\n', "tradeoff.extra_runs.quad-w8"),
                        ('[tradeoff.extra_runs."../x"]\nmodel = "quad-w8"\n', "tradeoff.extra_runs.../x"),
                        ('[tradeoff.extra_runs.nan]\nmodel = "quad-w8"\n', "tradeoff.extra_runs.nan"),
                        ("extra_runs = 3\n", "tradeoff.extra_runs")):
        doc = base + text if text.startswith("[") else base.replace("[tradeoff]\n", "[tradeoff]\n" + text)
        with pytest.raises(InputError) as info:
            config_from_table(tomllib.loads(doc))
        assert info.value.field == field, text


def test_standard_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["reproduce", "--standard", "--dry-run"]) == 0
    out = capsys.readouterr().out
    cfg = load_reproduce_config(preset_path("standard"))
    minutes = dict(cfg.estimate.minutes)
    for name in cfg.experiments:
        assert any(line.split()[:3] == [name, f"{minutes[name]:.0f}", "min"] for line in out.splitlines()), name
    assert f"{sum(minutes.values()):.0f} min on {cfg.estimate.machine}" in out
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as info:  # argparse refuses two presets
        cli.main(["reproduce", "--standard", "--quick", "--dry-run"])
    assert info.value.code == 2


@pytest.mark.slow
def test_gpu_full_smoke_writes_its_record(tmp_path):
    """benchmarks/gpu_full.py --smoke (the CPU check of the GPU timing script): one record with the
    device, and per ensemble a rate and estimates that follow from it (a minute or two on 2 cores)."""
    import json
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        import gpu_full
    finally:
        sys.path.remove(str(root / "benchmarks"))
    out = tmp_path / "record.json"
    assert gpu_full.main(["--smoke", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["mode"] == "smoke" and rec["device"]["backend"] == "cpu" and rec["device"]["device_kind"]
    assert [e["run"].split("/")[0] for e in rec["ensembles"]] == ["tradeoff", "dimsweep"]
    for e in rec["ensembles"]:
        assert e["model_steps_per_s"] > 0 and e["steps_timed"] == 3
        assert e["train_estimate_s"] == pytest.approx(e["ensemble"] * e["preset_steps"] / e["model_steps_per_s"])
        assert e["measure_estimate_s"] == pytest.approx(e["measure_checkpoint_s"] * e["measure_checkpoints"])
    assert rec["train_estimate_s"] == pytest.approx(sum(e["train_estimate_s"] for e in rec["ensembles"]))


def test_the_regime_config_tests_the_curated_law_on_its_own_net(monkeypatch):
    """experiments/configs/regime_relu.toml (make regime) trains the net of the curated end-of-schedule
    law on the law's recipe (batch size, learning rate, online, seed) for a length the law lacks, so its
    law test has a prediction to compare with; its prior_* paths resolve from the repository root."""
    import json
    from pathlib import Path
    from spheres.experiments.reproduce import load_reproduce_config
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    cfg = load_reproduce_config(root / "experiments" / "configs" / "regime_relu.toml").section("tradeoff")
    (entry,) = json.loads(Path(cfg.prior_law).read_text())
    (model,) = cfg.models
    train = cfg.train_of(model)
    assert model == entry["model"] and cfg.task.dim == entry["dim"]
    assert (train.batch_size, train.learning_rates, train.train_sizes, train.seeds) == (
        entry["batch_size"], (entry["learning_rate"],), (entry["train_size"],), (entry["seed"],))
    assert train.steps > max(entry["lengths"]) and train.steps in train.checkpoint_steps
    # and the schedule's shape (optimiser, decay, warm-up, ...) is the one of the law's runs in the standard preset
    from spheres.core.config import to_table
    from spheres.experiments import tradeoff
    from spheres.experiments.reproduce import preset_path
    standard = load_reproduce_config(preset_path("standard")).section("tradeoff")
    law_runs = {label: t for label, _, t in standard.extra_run_trains() if label in entry["runs"]}
    assert sorted(law_runs) == sorted(entry["runs"])

    def shape(t):
        return {k: v for k, v in to_table(t).items() if k not in tradeoff.LENGTH_FIELDS}
    assert all(shape(t) == shape(train) for t in law_runs.values())
