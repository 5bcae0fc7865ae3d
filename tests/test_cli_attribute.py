"""spheres attribute: a tiny trained run measured end to end; the CSV has every member x checkpoint,
every mean with its SE and count, the quad net's normals agree with the exact ones, Shapley efficiency
holds in every row, the run resumes, and bad input exits 2 naming the flag."""

import json
import math
import shutil

import pytest

from spheres import cli
from spheres.core.errors import InputError
from spheres.core.io import read_csv
from spheres.measure.attribution_run import AttributeConfig, attribute_run
from spheres.nets.config import config_from_dict
from spheres.nets.runs import load_run, run_training

ARGS = ["--points", "8", "--ig-steps", "4", "--starts", "2", "--bands", "2", "--shapley-samples", "256",
        "--no-progress"]


@pytest.fixture(scope="module")
def quad_run(tmp_path_factory):
    cfg = config_from_dict({"task": {"dim": 6}, "model": {"name": "quad-w16"},
                            "train": {"steps": 200, "batch_size": 50, "learning_rates": [1e-2], "seeds": [0, 1],
                                      "train_sizes": [0], "checkpoints": 2, "chunk_steps": 200}})
    out = tmp_path_factory.mktemp("runs") / "quad"
    run_training(cfg, out, progress=False)
    return out


@pytest.mark.slow
def test_attribute_cli_writes_the_table(quad_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(quad_run, run_dir)
    assert cli.main(["attribute", str(run_dir), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "rows (members x checkpoints)" in out
    rows = read_csv(run_dir / "attributions.csv")
    steps = load_run(run_dir).checkpoint_steps
    assert len(steps) == 2
    assert [(r["member"], r["step"]) for r in rows] == [(m, s) for s in steps for m in (0, 1)]
    for r in rows:
        means = [k for k in r if f"{k}_se" in r and f"{k}_n" in r]
        assert len(means) >= 30
        for k in means:  # a mean over no values is reported as missing, never as a number
            assert (r[k] is None) == (r[f"{k}_n"] == 0), k
        assert r["grad_radial_n"] == 8 and r["spread_starts"] == 16 and r["points"] == 8
        assert r["on_valid_count"] + r["on_initially_wrong_count"] <= 8
        # the attack's on-sphere normals are the exact ellipsoid normals
        if r["on_normal_exact_cos_n"]:
            assert r["on_normal_exact_cos"] > 0.999
            assert abs(r["on_radial"] - r["exact_on_radial"]) < 0.02 or r["on_radial_n"] != r["exact_on_radial_n"]
        for rep in ("same_sphere", "independent"):
            total = sum(r[f"shapley_{rep}_band{j}"] for j in range(2))
            assert abs(total - (r[f"worth_{rep}_all"] - r[f"worth_{rep}_none"])) < 1e-6
            assert r[f"shapley_{rep}_n"] == 256
        assert r["band0_size"] == 3 and r["band0_name"].startswith("alpha")
        # the k-coordinate Bayes error bounds the hybrid error of a single band (4 SE of slack)
        for j in range(2):
            p, n = r[f"hybrid_error_independent_band{j}_only"], r["shapley_independent_n"]
            assert p >= r[f"bayes_error_band{j}_only"] - 4 * math.sqrt(0.25 / n)

    # --json prints the same rows (resumed from the saved cells, nothing recomputed)
    assert cli.main(["attribute", str(run_dir), *ARGS, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4

    for argv, needle in [
        (["attribute", str(tmp_path / "missing")], "no such run directory"),
        (["attribute", str(run_dir), *ARGS, "--step", "7"], "--step"),
        (["attribute", str(run_dir), *ARGS, "--seed", "3"], "--seed"),
    ]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
    for argv in (["attribute", str(run_dir), "--bands", "11"], ["attribute", str(run_dir), "--points", "2"],
                 ["attribute", str(run_dir), "--start-angle", "2"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        assert "--" in capsys.readouterr().err


@pytest.mark.slow
def test_interrupted_attribution_resumes_to_the_same_table(quad_run, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(quad_run, a)
    shutil.copytree(quad_run, b)
    cfg = AttributeConfig(points=8, ig_steps=4, starts=2, bands=2, shapley_samples=256)  # as ARGS: no recompiling

    class Stop(Exception):
        pass

    def stop(step):
        raise Stop

    full = attribute_run(a, cfg, progress=False)
    with pytest.raises(Stop):
        attribute_run(b, cfg, progress=False, on_step=stop)
    assert len(read_csv(b / "attributions.csv")) == 2
    assert attribute_run(b, cfg, progress=False) == full
    assert (a / "attributions.csv").read_text() == (b / "attributions.csv").read_text()


def test_bad_budgets_name_the_flag():
    for kwargs, flag in [({"points": 1}, "--points"), ({"bands": 11}, "--bands"), ({"starts": 1}, "--starts"),
                         ({"start_angle": 0.0}, "--start-angle"), ({"shapley_samples": 1}, "--shapley-samples")]:
        with pytest.raises(InputError) as info:
            AttributeConfig(**kwargs)
        assert info.value.field == flag


@pytest.mark.slow
def test_relu_run_uses_coordinate_bands(tmp_path):
    cfg = config_from_dict({"task": {"dim": 6}, "model": {"arch": "relu", "width": 16, "depth": 2, "batch_norm": True},
                            "train": {"steps": 100, "batch_size": 32, "learning_rates": [3e-3], "seeds": [0],
                                      "train_sizes": [0], "checkpoints": 1, "chunk_steps": 100}})
    run_training(cfg, tmp_path / "relu", progress=False)
    rows = attribute_run(tmp_path / "relu", AttributeConfig(points=8, ig_steps=4, starts=2, bands=3,
                                                             shapley_samples=256), progress=False)
    assert len(rows) == len(load_run(tmp_path / "relu").checkpoint_steps)
    r = rows[-1]
    assert [r[f"band{j}_name"] for j in range(3)] == ["coords 0-1", "coords 2-3", "coords 4-5"]
    assert "exact_on_radial" not in r
    assert r["grad_radial_n"] == 8 and -1 <= r["grad_radial"] <= 1
    total = sum(r[f"shapley_independent_band{j}"] for j in range(3))
    assert abs(total - (r["worth_independent_all"] - r["worth_independent_none"])) < 1e-6
