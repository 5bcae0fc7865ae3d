"""``spheres quadratic`` through ``spheres.cli.main``: exact numbers, JSON contract, bad input."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from spheres.cli import main

KEYS = {"error_rate_inner", "error_rate_outer", "log10_error_rate_inner", "log10_error_rate_outer",
        "clt_error_rate_inner", "clt_error_rate_outer", "alphas_outside", "mean_distance", "mean_distance_se",
        "dim", "radius", "points"}


def _json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one object, one line
    return json.loads(out)


def test_two_level_spectrum_text_file(tmp_path, capsys):
    """150 alphas at 1.4, 350 at 0.7: inner error is an F tail (closed form); the outer sphere is
    error-free (every alpha >= 1/R^2)."""
    path = tmp_path / "alphas.txt"
    path.write_text(" ".join(["1.4"] * 150) + "\n" + "\n".join(["0.7"] * 350) + "\n")
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "40", "--seed", "3"])
    assert KEYS <= out.keys()
    assert (out["dim"], out["radius"], out["points"]) == (500, 1.3, 40)
    ref = stats.f.logsf(0.3 * 350 / (0.4 * 150), 150, 350) / math.log(10)
    assert out["log10_error_rate_inner"] == pytest.approx(ref, abs=1e-9)
    assert out["error_rate_inner"] == pytest.approx(10**ref, rel=1e-8)
    assert out["error_rate_outer"] == 0.0 and out["log10_error_rate_outer"] is None
    assert "log10_error_rate_outer" in out["notes"]
    assert out["alphas_outside"] == 150
    # the paper's estimate sits beside the exact value and differs from it (too low here)
    assert out["clt_error_rate_inner"] < 0.8 * out["error_rate_inner"]
    assert 0 < out["mean_distance"] < 2 and 0 < out["mean_distance_se"] < out["mean_distance"]


def test_npy_matches_text_and_seed_controls_points(tmp_path, capsys):
    alphas = np.linspace(0.3, 1.4, 30)
    np.save(tmp_path / "a.npy", alphas)
    (tmp_path / "a.txt").write_text("\n".join(repr(float(a)) for a in alphas))
    a = _json(capsys, ["quadratic", "--alphas", str(tmp_path / "a.npy"), "--points", "20"])
    b = _json(capsys, ["quadratic", "--alphas", str(tmp_path / "a.txt"), "--points", "20"])
    c = _json(capsys, ["quadratic", "--alphas", str(tmp_path / "a.txt"), "--points", "20", "--seed", "1"])
    assert a == b
    assert c["mean_distance"] != a["mean_distance"]
    assert c["error_rate_inner"] == a["error_rate_inner"]
    # two independent 20-point means of the same d(E) agree within their standard errors
    diff = abs(a["mean_distance"] - c["mean_distance"])
    assert diff < 5 * math.hypot(a["mean_distance_se"], c["mean_distance_se"])


def test_deep_tail_log10_stays_finite(tmp_path, capsys):
    """One alpha slightly above 1, the rest 0, d = 500: inner error ~1e-262 (Beta tail), far
    below what a float prints; log10 carries it."""
    from scipy import special

    path = tmp_path / "a.txt"
    path.write_text("1.1 " + "0 " * 499)
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "5"])
    ref = math.log10(special.betaincc(0.5, 249.5, 1 / 1.1))
    assert out["log10_error_rate_inner"] == pytest.approx(ref, abs=1e-8)
    assert out["alphas_outside"] == 500


def test_perfect_ellipsoid_reports_nulls_with_reasons(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.6, 1.0, 50)))
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "3"])
    assert out["error_rate_inner"] == out["error_rate_outer"] == 0.0
    assert out["alphas_outside"] == 0
    assert out["mean_distance"] is None and out["mean_distance_se"] is None
    assert {"mean_distance", "mean_distance_se", "log10_error_rate_inner"} <= out["notes"].keys()
    # the CLT still claims errors: it is an estimate, reported as such
    assert out["clt_error_rate_inner"] > 0


def test_orientation_less_swaps_right_and_wrong(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.3, 1.4, 20)))
    g = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "2"])
    less = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "2", "--orientation", "outer_if_less"])
    assert less["error_rate_inner"] == pytest.approx(1 - g["error_rate_inner"], abs=1e-12)
    assert less["error_rate_outer"] == pytest.approx(1 - g["error_rate_outer"], abs=1e-12)


def test_text_summary_labels_the_paper_estimate(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text("1.2 0.5 0.8 0.9")
    assert main(["quadratic", "--alphas", str(path), "--points", "4"]) == 0
    out = capsys.readouterr().out
    assert "paper's estimate" in out and "exact" in out and "d(E)" in out


@pytest.mark.parametrize("content,flag", [
    (None, "--alphas"),                 # missing file
    ("", "--alphas"),                   # empty
    ("0.5", "--alphas"),                # d = 1
    ("0.5 nan 0.7", "--alphas"),        # non-finite
    ("0.5 inf", "--alphas"),
    ("0.5 -0.1 0.7", "--alphas"),       # negative
    ("0.5 abc", "--alphas"),            # not a number
])
def test_bad_alphas_exit_2_with_one_line(tmp_path, capsys, content, flag):
    path = tmp_path / "a.txt"
    if content is not None:
        path.write_text(content)
    assert main(["quadratic", "--alphas", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err


def test_bad_npy_files(tmp_path, capsys):
    np.save(tmp_path / "m.npy", np.ones((2, 3)))
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY not really")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x01")
    for name in ("m.npy", "o.npy", "junk.npy", "bin.txt"):
        assert main(["quadratic", "--alphas", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--alphas" in err


@pytest.mark.parametrize("flag,value", [("--radius", "1"), ("--radius", "0.9"), ("--radius", "nan"),
                                        ("--radius", "inf"), ("--points", "0"), ("--points", "-3"),
                                        ("--points", "2.5"), ("--seed", "-1")])
def test_bad_numbers_exit_2(tmp_path, capsys, flag, value):
    path = tmp_path / "a.txt"
    path.write_text("0.5 1.2")
    with pytest.raises(SystemExit) as exc:
        main(["quadratic", "--alphas", str(path), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err


def test_attack_is_graded_on_the_same_points(tmp_path, capsys):
    """The attack's distances are upper bounds of the exact ones, point by point, so its mean
    cannot fall below the exact mean (beyond float32 rounding); it should come close."""
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.3, 1.4, 8)))
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "16", "--attack"])
    assert out["attack_failures"] == 0
    assert out["attack_mean_distance"] >= out["mean_distance"] - 1e-5
    assert out["attack_mean_distance"] == pytest.approx(out["mean_distance"], rel=0.02)
    assert out["attack_mean_distance_se"] > 0


@pytest.mark.slow
def test_splitting_estimates_sit_beside_the_exact_rates(tmp_path, capsys):
    """AMS intervals around the exact values; a sphere with no error region is not sampled."""
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.7, 1.6, 6)))  # no alpha < 1/R^2
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "2", "--method", "splitting"])
    lo, hi = out["splitting_log10_ci_inner"]
    half = (hi - lo) / 2
    assert out["splitting_status_inner"] == "reached"
    assert abs(out["splitting_log10_error_rate_inner"] - out["log10_error_rate_inner"]) < 2 * half + 0.02
    assert out["error_rate_outer"] == 0.0
    assert out["splitting_status_outer"] == "not_run" and out["splitting_error_rate_outer"] is None
    assert "splitting_error_rate_outer" in out["notes"]


# ---------------------------------------------------------------------------- round trips and the bound


def test_project_csv_round_trip(tmp_path, capsys):
    """figures/quadratic_alphas.csv (header ``alpha``) reads as the same alphas as a plain text file."""
    from pathlib import Path

    from spheres.cli.quadratic import load_alphas

    csv_path = Path(__file__).resolve().parents[1] / "figures" / "quadratic_alphas.csv"
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "alpha"
    text = tmp_path / "alphas.txt"
    text.write_text("\n".join(lines[1:]) + "\n")
    np.testing.assert_array_equal(load_alphas(csv_path), load_alphas(text))
    a = _json(capsys, ["quadratic", "--alphas", str(csv_path), "--points", "10"])
    b = _json(capsys, ["quadratic", "--alphas", str(text), "--points", "10"])
    assert a == b and a["dim"] == len(lines) - 1
    other = tmp_path / "other.csv"
    other.write_text("beta\n1\n2\n")
    assert main(["quadratic", "--alphas", str(other)]) == 2
    assert "without an 'alpha' column" in capsys.readouterr().err


def test_cap_bound_beside_the_exact_distance(tmp_path, capsys):
    from spheres.maths import theory

    path = tmp_path / "alphas.txt"
    path.write_text(" ".join(["1.4"] * 150 + ["0.7"] * 350))
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "40"])
    opt = float(theory.mean_distance_to_cap(out["error_rate_inner"], 500))
    assert out["optimal_distance"] == opt
    assert out["ratio"] == pytest.approx(out["mean_distance"] / opt, rel=1e-12)
    # a theorem: no error set of this measure has a larger mean distance
    assert out["consistent_with_bound"] == 1 and out["mean_distance"] - 2 * out["mean_distance_se"] <= opt
    assert main(["quadratic", "--alphas", str(path), "--points", "40"]) == 0
    assert f"{opt:.5g}" in capsys.readouterr().out
    perfect = tmp_path / "perfect.txt"
    perfect.write_text("0.8 0.9 0.95")
    out = _json(capsys, ["quadratic", "--alphas", str(perfect), "--points", "5"])
    assert out["optimal_distance"] is None and "optimal_distance" in out["notes"]


def test_garbage_npy_is_not_called_pickled(tmp_path, capsys):
    (tmp_path / "g.npy").write_bytes(b"this is not numpy at all")
    assert main(["quadratic", "--alphas", str(tmp_path / "g.npy")]) == 2
    err = capsys.readouterr().err
    assert "not a .npy file" in err and "pickle" not in err
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    assert main(["quadratic", "--alphas", str(tmp_path / "o.npy")]) == 2
    assert "pickled object array" in capsys.readouterr().err


@pytest.fixture(scope="module")
def quad_run(tmp_path_factory):
    from spheres.nets.config import config_from_dict
    from spheres.nets.runs import run_training

    cfg = config_from_dict({"task": {"dim": 8}, "model": {"name": "quad-w16"},
                            "train": {"steps": 300, "batch_size": 50, "learning_rates": [1e-2], "seeds": [0, 1],
                                      "train_sizes": [0], "checkpoints": 3, "chunk_steps": 300}})
    out = tmp_path_factory.mktemp("runs") / "quad"
    run_training(cfg, out, progress=False)
    return out


def test_run_directory_analysed_directly(quad_run, tmp_path, capsys):
    """--run decomposes each member: the same numbers as --alphas with that member's alphas."""
    from spheres.maths import quadratic as quad
    from spheres.nets.models import quadratic_weights
    from spheres.nets.rundir import load_run

    rows = _json(capsys, ["quadratic", "--run", str(quad_run), "--points", "10"])
    run = load_run(quad_run)
    assert [(r["member"], r["model_seed"], r["step"], r["seed"]) for r in rows] == [(0, 0, 300, 0), (1, 1, 300, 0)]
    variables = run.load_variables(300)
    for i, r in enumerate(rows):
        one = {"params": {k: ({n: np.asarray(a)[i] for n, a in v.items()} if isinstance(v, dict) else np.asarray(v)[i])
                          for k, v in variables["params"].items()}, "batch_stats": {}}
        dec = quad.alphas_from_weights(*quadratic_weights(one))
        assert r["orientation"] == dec.orientation.value and r["radius"] == 1.3 and r["dim"] == 8
        exact = quad.error_rates(dec.alphas, 1.3, dec.orientation)
        assert r["error_rate_inner"] == exact.inner and r["error_rate_outer"] == exact.outer
        path = tmp_path / f"m{i}.txt"
        path.write_text(" ".join(repr(float(a)) for a in dec.alphas))
        alone = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "10", "--orientation",
                               dec.orientation.value])
        assert {k: alone[k] for k in alone} == {k: r[k] for k in alone}
    first = _json(capsys, ["quadratic", "--run", str(quad_run), "--step", "1", "--points", "10"])
    assert {r["step"] for r in first} == {1} and first[0]["error_rate_inner"] != rows[0]["error_rate_inner"]
    assert main(["quadratic", "--run", str(quad_run)]) == 0
    assert capsys.readouterr().out.count("== member") == 2


@pytest.mark.parametrize("extra, needle", [
    (["--step", "7"], "no checkpoint at step 7"),
    (["--radius", "2"], "--radius"),
])
def test_run_errors(quad_run, capsys, extra, needle):
    assert main(["quadratic", "--run", str(quad_run), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_run_must_be_a_quad_net_and_step_needs_run(tmp_path, capsys):
    from spheres.nets.config import config_from_dict, dump_config

    relu = tmp_path / "relu"  # a run that has not saved anything yet: its config is enough
    relu.mkdir()
    (relu / "config.toml").write_text(dump_config(config_from_dict(
        {"task": {"dim": 3}, "model": {"arch": "relu", "width": 4, "depth": 1},
         "train": {"steps": 2, "batch_size": 4, "checkpoints": 1}})))
    assert main(["quadratic", "--run", str(relu)]) == 2
    assert "needs a quadratic network" in capsys.readouterr().err
    path = tmp_path / "a.txt"
    path.write_text("1 2")
    assert main(["quadratic", "--alphas", str(path), "--step", "3"]) == 2
    assert "--step: only applies with --run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quadratic", "--alphas", str(path), "--run", str(relu)])
    assert "not allowed with" in capsys.readouterr().err
