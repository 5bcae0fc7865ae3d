"""A new experiment is one module with the standard interface: defined here, registered, run, drawn
and reported by ``reproduce`` with no edit anywhere else in the house."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from spheres.core.config import check_int
from spheres.core.errors import InputError
from spheres.core.io import read_csv, write_csv_atomic
from spheres.experiments import base
from spheres.experiments.reproduce import config_from_table, default_order, reproduce
from spheres.maths import theory


@dataclass(frozen=True)
class ToyConfig:
    samples: int = 2000
    dim: int = 7

    def __post_init__(self):
        check_int("samples", self.samples, 10)


def _run(cfg: ToyConfig, ctx: base.Context) -> dict:
    """The fraction of the unit sphere with x_1 >= 0.2, sampled, against the exact cap measure."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal((cfg.samples, cfg.dim))
    x1 = g[:, 0] / np.linalg.norm(g, axis=1)
    est = float(np.mean(x1 >= 0.2))
    write_csv_atomic(ctx.out / "toy.csv", [{"samples": cfg.samples, "estimate": est,
                                             "exact": float(theory.cap_measure(0.2, cfg.dim))}])
    return {"estimate": est, "samples": cfg.samples}


def _draw(ctx: base.Context) -> list[Path]:
    row = read_csv(ctx.out / "toy.csv")[0]
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().bar(["sampled", "exact"], [row["estimate"], row["exact"]])
    path = ctx.out / "toy.png"
    fig.savefig(path)
    return [path]


def _report(summary: dict, ctx: base.Context) -> base.Report:
    row = read_csv(ctx.out / "toy.csv")[0]
    return base.Report((f"toy: sampled cap measure {row['estimate']:.3f} ({row['samples']} samples), exact "
                        f"{row['exact']:.3f}",), ("| toy | value |",))


def _reader_run(cfg: ToyConfig, ctx: base.Context) -> dict:
    (ctx.out / "seen.json").write_text(json.dumps(read_csv(ctx.inputs["toy"] / "toy.csv")[0]))
    return {}


TOY = base.Experiment(name="toy", description="A toy experiment defined in a test.", config=ToyConfig, run=_run,
                      draw=_draw, report=_report, tables=("toy.csv",), figures=(("toy.png", "Sampled vs exact."),))
READER = base.Experiment(name="toyreader", description="Reads the toy's table.", config=ToyConfig, run=_reader_run,
                         draw=lambda ctx: [], report=lambda s, ctx: base.Report(), tables=("seen.json",), figures=(),
                         inputs=("toy",))


@pytest.fixture
def registered_toys():
    base.register(TOY)
    base.register(READER)
    yield
    base.unregister("toy")
    base.unregister("toyreader")


def test_a_toy_experiment_runs_draws_and_reports(tmp_path, registered_toys):
    cfg = config_from_table({"experiments": ["toy", "toyreader"], "toy": {"samples": 4000}})
    report = reproduce(cfg, tmp_path / "results", progress=False, figures_dir=tmp_path / "figures",
                       command="test", config_path="inline")
    assert report["toy"]["summary"]["samples"] == 4000
    exact = float(theory.cap_measure(0.2, 7))
    # the toy's own number, 4 binomial SE from the exact measure at most
    assert abs(report["toy"]["summary"]["estimate"] - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000)
    assert (tmp_path / "figures" / "toy.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "figures" / "toy.csv").is_file()
    readme = (tmp_path / "figures" / "README.md").read_text()
    assert "toy: sampled cap measure" in readme and "A toy experiment defined in a test." in readme
    assert "![toy.png](toy.png)" in readme
    # the reader saw the toy's table through its declared input, nothing else
    assert json.loads((tmp_path / "results" / "toyreader" / "seen.json").read_text())["samples"] == 4000


def test_a_toy_config_is_validated_with_its_full_path(registered_toys):
    with pytest.raises(InputError) as info:
        config_from_table({"experiments": ["toy"], "toy": {"samples": 3}})
    assert info.value.field == "toy.samples"
    with pytest.raises(InputError) as info:
        config_from_table({"experiments": ["toyreader", "toy"]})
    assert info.value.field == "experiments" and "list toy before toyreader" in str(info.value)


def test_default_order_puts_inputs_first(registered_toys):
    order = default_order()
    assert order.index("toy") < order.index("toyreader") and order.index("tradeoff") < order.index("slices")


def test_unknown_table_names_the_allowed_ones():
    with pytest.raises(InputError) as info:
        config_from_table({"nonsense": {}})
    assert info.value.field == "nonsense" and "tradeoff" in str(info.value)


def test_per_model_training_overrides():
    from spheres.experiments import common
    from spheres.nets.config import TaskConfig, TrainConfig

    train = TrainConfig(steps=100, learning_rates=(0.003,), schedule="cosine", warmup_steps=10)
    table = (("quad-w16", {"schedule": "constant", "warmup_steps": 0}),)
    quad = common.run_config(TaskConfig(dim=16), "quad-w16", common.train_of(train, table, "quad-w16"),
                             (("quad-w16", 0.01),))
    assert (quad.train.learning_rates, quad.train.schedule, quad.train.warmup_steps) == ((0.01,), "constant", 0)
    assert quad.train.steps == 100  # fields the override does not name are the section's
    assert common.train_of(train, table, "relu-w8-d2") == train  # a model the table does not name
    with pytest.raises(InputError, match="model_train.quad-w16.schedule"):
        common.check_model_train((("quad-w16", {"schedule": "exponential"}),), train, ("quad-w16",))
    with pytest.raises(InputError, match="model_train.quad-w16.warmup_steps"):  # constant has no warm-up
        common.check_model_train((("quad-w16", {"schedule": "constant"}),), train, ("quad-w16",))
    with pytest.raises(InputError, match="model_train.relu-w8-d2"):
        common.check_model_train((("relu-w8-d2", {}),), train, ("quad-w16",))


def _failing_run(cfg: ToyConfig, ctx: base.Context) -> dict:
    raise KeyboardInterrupt  # what a signal looks like inside an experiment


def test_time_is_kept_over_invocations_and_interruptions(tmp_path, registered_toys):
    cfg = config_from_table({"experiments": ["toy"]})
    out = tmp_path / "results"
    reproduce(cfg, out, progress=False)
    report = reproduce(cfg, out, progress=False, figures_dir=tmp_path / "figures")
    runs = json.loads((out / "toy" / "timing.json").read_text())["invocations"]
    assert len(runs) == 2 and all(r["seconds"] >= 0 and r["started"] for r in runs)
    assert report["toy"]["invocations"] == 2
    assert report["toy"]["total_seconds"] == pytest.approx(sum(r["seconds"] for r in runs), abs=0.11)
    assert "(2 invocations)" in (tmp_path / "figures" / "README.md").read_text()
    broken = base.Experiment(name="toy", description="fails", config=ToyConfig, run=_failing_run,
                             draw=_draw, report=_report, tables=("toy.csv",), figures=())
    base.unregister("toy")
    base.register(broken)
    with pytest.raises(KeyboardInterrupt):
        reproduce(cfg, out, progress=False)
    runs = json.loads((out / "toy" / "timing.json").read_text())["invocations"]
    assert len(runs) == 3 and runs[-1]["interrupted"] is True and runs[-1]["seconds"] >= 0
    # a process killed before it records its time leaves an entry without one: counted apart
    (out / "toy" / "timing.json").write_text(json.dumps({"invocations": runs + [{"started": "x", "seconds": None}]}))
    base.unregister("toy")
    base.register(TOY)
    report = reproduce(cfg, out, progress=False, figures_dir=tmp_path / "figures")
    assert (report["toy"]["invocations"], report["toy"]["unrecorded"]) == (4, 1)
    assert "1 killed before recording its time, not counted" in (tmp_path / "figures" / "README.md").read_text()
    (out / "toy" / "timing.json").write_text("[1, 2]")  # unreadable: moved aside, the run goes on
    report = reproduce(cfg, out, progress=False)
    assert report["toy"]["invocations"] == 1 and (out / "toy" / "timing.json.corrupt").read_text() == "[1, 2]"


def _infinite_run(cfg: ToyConfig, ctx: base.Context) -> dict:
    _run(cfg, ctx)
    return {"steps": float("inf"), "nested": [{"x": float("-inf"), "y": float("nan")}]}


def test_a_summary_with_infinite_numbers_is_written_as_strict_json(tmp_path, registered_toys):
    base.unregister("toy")
    base.register(base.Experiment(name="toy", description="inf", config=ToyConfig, run=_infinite_run, draw=_draw,
                                  report=_report, tables=("toy.csv",), figures=()))
    reproduce(config_from_table({"experiments": ["toy"]}), tmp_path, progress=False)
    saved = json.loads((tmp_path / "summary.json").read_text())["toy"]["summary"]
    assert saved == {"steps": "inf", "nested": [{"x": "-inf", "y": None}]}
