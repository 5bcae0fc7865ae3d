"""spheres reproduce: a smoke configuration of every experiment runs end to end and produces its
figures and tables; an interrupted sweep resumes to the same table; bad configs name the field."""

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from spheres import cli
from spheres.core.errors import InputError
from spheres.core.io import read_csv
from spheres.experiments.reproduce import ReproduceConfig, config_from_table, reproduce

SMOKE = """
experiments = ["bound", "quadratic", "tradeoff", "dimsweep", "slices"]
[quadratic]
width = 16
points = 20
[quadratic.task]
dim = 8
[quadratic.train]
steps = 300
learning_rates = [1e-2]
train_sizes = [1000]
checkpoints = 2
chunk_steps = 300
[tradeoff]
models = ["quad-w16", "relu-w16-d1"]
[tradeoff.task]
dim = 8
[tradeoff.train]
steps = 200
learning_rates = [1e-2]
train_sizes = [0, 100]
seeds = [0]
checkpoints = 3
chunk_steps = 200
[tradeoff.extra_runs.long]
model = "relu-w16-d1"
steps = 300
batch_size = 100
train_sizes = [0]
checkpoints = 2
chunk_steps = 300
[tradeoff.measure]
mc_samples = 4000
attack_points = 8
method = "monte_carlo"
attack_restarts = 0
[dimsweep]
dims = [6, 10]
models = ["quad-w{dim}"]
[dimsweep.train]
steps = 200
learning_rates = [1e-2]
seeds = [0, 1]
checkpoints = 2
chunk_steps = 200
[dimsweep.measure]
mc_samples = 4000
attack_points = 8
method = "monte_carlo"
attack_restarts = 0
[slices]
model = "relu-w16-d1"
resolution = 21
"""


def smoke_config() -> ReproduceConfig:
    return config_from_table(tomllib.loads(SMOKE))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    report = reproduce(smoke_config(), out / "results", progress=False, figures_dir=out / "figures")
    return out, report


def test_every_experiment_produces_its_figures_and_tables(smoke_run):
    out, report = smoke_run
    assert list(report) == ["bound", "quadratic", "tradeoff", "dimsweep", "slices"]
    for name, res in report.items():
        assert res["figures"], name
        for p in res["figures"]:
            assert p.endswith(".png")
            data = Path(p).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, p
    names = {p.name for p in (out / "figures").iterdir()}
    assert {"bound_vs_dim.png", "tradeoff_curve.png", "quadratic_alphas.png", "tradeoff.png", "tradeoff_results.csv",
            "dimsweep_collapse.png", "dimsweep_ratio.png", "dimsweep_results.csv", "dimsweep_fit.json",
            "slices.png"} <= names
    assert json.loads((out / "results" / "summary.json").read_text())["tradeoff"]["figures"]


def test_tradeoff_table_is_consistent_with_the_bound(smoke_run):
    out, _ = smoke_run
    rows = read_csv(out / "results" / "tradeoff" / "results.csv")
    assert len(rows) == 2 * 2 * 3 + 2  # models x sizes x checkpoints, and the extra run's 2 checkpoints
    extra = [r for r in rows if r["run"] is not None]
    assert [(r["run"], r["model"], r["train_size"], r["step"]) for r in extra] == [
        ("long", "relu-w16-d1", 0, 1), ("long", "relu-w16-d1", 0, 300)]
    assert (out / "results" / "tradeoff" / "runs" / "long").is_dir()
    from spheres.maths import theory
    checked = 0
    for r in rows:
        if r["model"].startswith("quad"):
            assert r["mu_method"] == "exact" and r["mu_lower"] == r["mu"] == r["mu_upper"]
        else:
            assert r["mu_method"] in ("monte_carlo", "splitting")
        if r["mu"] is not None and 0 < r["mu"] < 1:
            assert r["optimal_distance"] == pytest.approx(float(theory.mean_distance_to_cap(r["mu"], 8)))
        # the isoperimetric inequality is a theorem: d(E) <= d_cap(mu) for every error set. Checked
        # here from the row's numbers, not from the code's verdict: the bound at the low end of mu's
        # interval (the largest cap distance mu allows; the sphere's largest mean distance when the
        # interval reaches 0), against the attack's mean less 3 SE (an upper bound on d(E) up to noise)
        if r["mu"] is not None and 0 < r["mu"] < 1 and r["distance"] is not None and r["distance_failures"] == 0:
            lower = r["mu_lower"]
            generous = float(theory.mean_distance_to_cap(lower, 8) if lower and lower > 0
                             else theory.max_mean_distance(8))
            assert r["distance"] - 3 * (r["distance_se"] or 0.0) <= generous, r
            # and the verdict column says what the numbers say (2 SE, the documented rule)
            assert r["consistent_with_bound"] == int(r["distance"] - 2 * (r["distance_se"] or 0.0) <= generous), r
            checked += r["distance"] > 0  # non-trivial: d(E) = 0 (every attacked point already wrong) passes any bound
        elif r["distance_failures"]:
            assert r["consistent_with_bound"] is None, r  # a mean with failures enters no bound check
    assert checked >= 1, "no non-trivial bound check (0 < mu < 1, d(E) > 0) in the smoke table"


def test_quadratic_summary_is_exact(smoke_run):
    out, _ = smoke_run
    s = json.loads((out / "results" / "quadratic" / "summary.json").read_text())
    alphas = np.array([r["alpha"] for r in read_csv(out / "results" / "quadratic" / "alphas.csv")])
    assert alphas.size == 8
    assert s["alphas_outside"] == int(np.sum((alphas < 1 / 1.3**2) | (alphas > 1)))
    from spheres.maths import quadratic
    exact = quadratic.error_rates(alphas, 1.3, s["orientation"])
    assert s["exact_mu_inner"] == pytest.approx(exact.inner, rel=1e-9)


def test_interrupted_sweep_resumes_to_the_same_table(smoke_run, tmp_path, monkeypatch):
    out, _ = smoke_run
    cfg = smoke_config()
    cfg = cfg.only(["dimsweep"])
    import spheres.measure.pipeline as measure

    calls = {"n": 0}
    original = measure.measure_step

    def flaky(run, step, mcfg, *rest):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(run, step, mcfg, *rest)

    monkeypatch.setattr(measure, "measure_step", flaky)
    with pytest.raises(KeyboardInterrupt):
        reproduce(cfg, tmp_path, progress=False)
    monkeypatch.setattr(measure, "measure_step", original)
    reproduce(cfg, tmp_path, progress=False)
    assert (tmp_path / "dimsweep" / "results.csv").read_text() == \
        (out / "results" / "dimsweep" / "results.csv").read_text()


@pytest.mark.parametrize("text, field", [
    ('experiments = ["nope"]', "experiments"),
    ("[tradeoff.task]\ndim = 1", "tradeoff.task.dim"),
    ("[tradeoff.train]\nsteps = -3", "tradeoff.train.steps"),
    ("[tradeoff.recipe]\nsteps = 3", "tradeoff.recipe"),
    ("[tradeoff]\ndim = 500", "tradeoff.dim"),
    ("[dimsweep]\ndims = [16]", "dimsweep.dims"),
    ('[dimsweep]\nmodels = ["cnn"]', "dimsweep.models"),
    ("[dimsweep.measure]\nattack_points = 1", "dimsweep.measure.attack_points"),
    ("[quadratic]\nwidth = 0", "quadratic.width"),
    ('[slices]\nmodel = "relu-w7-d1"', "slices.model"),
    ("[tradeoff]\nunknown = 1", "tradeoff.unknown"),
])
def test_bad_config_names_the_field(text, field):
    with pytest.raises(InputError) as info:
        config_from_table(tomllib.loads(text))
    assert info.value.field == field


def test_cli_bad_config_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[tradeoff.task]\ndim = 1\n")
    assert cli.main(["reproduce", "--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "tradeoff.task.dim" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert cli.main(["reproduce", "--quick", "--only", "everything", "--out", str(tmp_path / "out")]) == 2
    assert "--only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_prior_schedule_law_is_tested_end_to_end(tmp_path):
    """A tradeoff with ``prior_law`` / ``prior_results`` (an earlier law of three schedules of the same
    net and batch size, written here) trains a longer schedule, sets its end point against the law's
    prediction (law_test.json), draws the test and reports it in the curated README."""
    from spheres.experiments import tradeoff
    from spheres.measure.results import ResultRow, write_rows
    from test_results import measurement
    import dataclasses
    prior = []
    for t in (50, 100, 200):
        mu = 0.2 * (t / 50) ** -0.5
        prior.append(dataclasses.replace(
            ResultRow.from_measurement(measurement()), model="relu-w16-d1", dim=8, step=t, run=f"s{t}", train_size=0,
            seed=0, learning_rate=1e-2, mu=mu, mu_lower=mu / 1.2, mu_upper=mu * 1.2, mu_method="monte_carlo",
            mu_outer=mu, mu_outer_lower=mu / 1.2, mu_outer_upper=mu * 1.2, mu_outer_method="monte_carlo"))
    law = tradeoff.schedule_law(prior, {"g": ([(f"s{t}", t) for t in (50, 100, 200)], 100)})
    (tmp_path / "law.json").write_text(json.dumps(law))
    write_rows(tmp_path / "prior.csv", prior)
    text = (f'experiments = ["tradeoff"]\n[tradeoff]\nmodels = ["relu-w16-d1"]\nprior_law = "{tmp_path / "law.json"}"\n'
            f'prior_results = "{tmp_path / "prior.csv"}"\n[tradeoff.task]\ndim = 8\n[tradeoff.train]\nsteps = 300\n'
            'batch_size = 100\nlearning_rates = [1e-2]\ntrain_sizes = [0]\ncheckpoints = 2\nchunk_steps = 300\n'
            '[tradeoff.measure]\nmc_samples = 4000\nattack_points = 8\nmethod = "monte_carlo"\nattack_restarts = 0\n')
    reproduce(config_from_table(tomllib.loads(text)), tmp_path / "results", progress=False,
              figures_dir=tmp_path / "figures")
    (t,) = json.loads((tmp_path / "results" / "tradeoff" / "law_test.json").read_text())
    assert t["length"] == 300 and t["prior_lengths"] == [50, 100, 200] and t["refit_lengths"] == [50, 100, 200, 300]
    assert t["predicted_inner"] == pytest.approx(0.2 * 6 ** -0.5, rel=1e-6)
    assert t["inside_inner"] is not None and len(t["band_inner"]) == 48
    assert (tmp_path / "figures" / "tradeoff_law_test.png").stat().st_size > 10_000
    readme = (tmp_path / "figures" / "README.md").read_text()
    assert "test of the earlier end-of-schedule law of relu-w16-d1" in readme and "tradeoff_law_test.png" in readme
