"""``spheres bound`` and ``spheres demo``: JSON keys and values, the inverse problem, bad input, figures."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spheres.maths import theory as T
from spheres.cli import main
from spheres.plotting.bound import read_table_csv

REQUIRED_KEYS = {"dim", "error_rate", "threshold", "mean_distance", "mean_distance_geodesic",
                 "mean_distance_asymptotic"}


def _json(capsys, *argv):
    assert main(["bound", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1, "one JSON object on one line"
    return json.loads(out)


def test_json_keys_and_values(capsys):
    s = _json(capsys, "--dim", "500", "--error-rate", "1e-2")
    assert REQUIRED_KEYS <= set(s) and "expanded_measure" not in s
    assert s["dim"] == 500 and s["error_rate"] == 1e-2
    assert round(s["threshold"], 5) == 0.10391 and round(s["mean_distance"], 5) == 0.10418  # docs/science.md s.3
    assert s["mean_distance"] == T.mean_distance_to_cap(1e-2, 500, "chord")
    assert s["mean_distance_geodesic"] == T.mean_distance_to_cap(1e-2, 500, "geodesic")
    assert s["mean_distance_asymptotic"] == T.asymptotic_distance(1e-2, 500)
    # geodesic >= chord (2 sin(v/2) <= v), and both below the distance to a single point
    assert s["mean_distance"] < s["mean_distance_geodesic"] < s["max_mean_distance"]


def test_epsilon_adds_the_expanded_measure(capsys):
    s = _json(capsys, "--dim", "500", "--error-rate", "1e-4", "--epsilon", "0.1")
    assert s["expanded_measure"] == T.expanded_measure(1e-4, 0.1, 500)
    assert 1e-4 < s["expanded_measure"] < 1
    s0 = _json(capsys, "--dim", "50", "--error-rate", "0.2", "--epsilon", "0")
    assert math.isclose(s0["expanded_measure"], 0.2, rel_tol=1e-12)


def test_distance_solves_the_inverse_problem(capsys):
    target = float(T.mean_distance_to_cap(1e-3, 500))
    s = _json(capsys, "--dim", "500", "--distance", repr(target))
    assert s["mode"] == "inverse" and REQUIRED_KEYS <= set(s)
    assert math.isclose(s["error_rate"], 1e-3, rel_tol=1e-9)
    assert math.isclose(s["mean_distance"], target, rel_tol=1e-12)
    g = _json(capsys, "--dim", "500", "--distance", "0.2", "--metric", "geodesic")
    assert math.isclose(g["mean_distance_geodesic"], 0.2, rel_tol=1e-12)


def test_inverse_problem_below_float64_range(capsys):
    """A distance only reachable by an error rate below 1e-308 is reported in log10."""
    s = _json(capsys, "--dim", "500", "--distance", "1.3")
    assert s["error_rate"] is None and s["log10_error_rate"] < -308
    assert "below the smallest positive float64" in s["notes"]["error_rate"]
    assert f"10^{s['log10_error_rate']:.6g}" in s["notes"]["error_rate"]
    assert math.isclose(s["mean_distance"], 1.3, rel_tol=1e-10)
    assert math.isfinite(s["threshold"]) and s["threshold"] < 1
    assert main(["bound", "--dim", "500", "--distance", "1.3"]) == 0
    out = capsys.readouterr().out
    assert "mu(E) <= 10^-" in out and "below the smallest positive float64" in out


def test_no_negative_zero_in_json(capsys):
    """mu = 1/2: threshold and Phi^-1(1 - mu) are exactly 0, printed as 0.0, never -0.0."""
    assert main(["bound", "--dim", "500", "--error-rate", "0.5", "--json"]) == 0
    text = capsys.readouterr().out
    assert "-0.0," not in text and "-0.0}" not in text
    s = json.loads(text)
    assert s["threshold"] == 0.0 and s["mean_distance_asymptotic"] == 0.0 and s["notes"] == {}


def test_metric_is_honoured_in_forward_mode(capsys):
    chord = T.mean_distance_to_cap(1e-2, 500, "chord")
    geo = T.mean_distance_to_cap(1e-2, 500, "geodesic")
    assert main(["bound", "--dim", "500", "--error-rate", "1e-2", "--metric", "geodesic"]) == 0
    last = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Any error set")][0]
    assert "mean geodesic distance" in last and f"{geo:.6g}" in last and f"{chord:.6g}" not in last
    assert _json(capsys, "--dim", "500", "--error-rate", "1e-2", "--metric", "geodesic")["metric"] == "geodesic"
    assert _json(capsys, "--dim", "500", "--error-rate", "1e-2")["metric"] == "chord"


def test_expansion_statement_is_for_sets_at_least_that_large(capsys):
    """The cap's eps-expansion bounds sets of measure >= mu only: the statement must say so."""
    assert main(["bound", "--dim", "500", "--distance", "0.2", "--epsilon", "0.05"]) == 0
    out = capsys.readouterr().out
    s = _json(capsys, "--dim", "500", "--distance", "0.2", "--epsilon", "0.05")
    line = [ln for ln in out.splitlines() if ln.startswith("At least")][0]
    assert f"{100 * s['expanded_measure']:.4g}%" in line
    assert f"mu(E) >= {s['error_rate']:.4g}" in line and "any such error set" not in line
    # the reason: a smaller cap (a set of smaller measure) has a smaller expansion
    assert T.expanded_measure(s["error_rate"] / 10, 0.05, 500) < s["expanded_measure"]


def test_metrics_match_the_theory_module():
    from spheres.cli import bound

    assert bound.METRICS == T.METRICS


def test_readable_summary(capsys):
    assert main(["bound", "--dim", "500", "--error-rate", "1e-2", "--epsilon", "0.1"]) == 0
    out = capsys.readouterr().out
    for text in ("R^500", "0.103912", "0.104178", "0.104251", "0.104037", "eps-expansion"):
        assert text in out, text


@pytest.mark.parametrize("argv, flag, allowed", [
    (["--dim", "1", "--error-rate", "0.1"], "--dim", "[2, "),
    (["--dim", "2.5", "--error-rate", "0.1"], "--dim", "integer"),
    (["--dim", "ten", "--error-rate", "0.1"], "--dim", "integer"),
    (["--dim", "500", "--error-rate", "0"], "--error-rate", "(0, 1)"),
    (["--dim", "500", "--error-rate", "1"], "--error-rate", "(0, 1)"),
    (["--dim", "500", "--error-rate", "-0.5"], "--error-rate", "(0, 1)"),
    (["--dim", "500", "--error-rate", "nan"], "--error-rate", "finite"),
    (["--dim", "500", "--error-rate", "inf"], "--error-rate", "finite"),
    (["--dim", "500", "--distance", "-0.1"], "--distance", "> 0"),
    (["--dim", "500", "--distance", "nan"], "--distance", "finite"),
    (["--dim", "500", "--distance", "2"], "--distance", "(0, 1.41"),
    (["--dim", "500", "--error-rate", "0.1", "--epsilon", "-1"], "--epsilon", ">= 0"),
    (["--dim", "500", "--error-rate", "0.1", "--epsilon", "inf"], "--epsilon", "finite"),
    (["--dim", "500", "--error-rate", "0.1", "--distance", "0.1"], "--error-rate", "exactly one"),
    (["--dim", "500"], "--distance", "exactly one"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, flag, allowed):
    try:
        code = main(["bound", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert flag in lines[0] and allowed in lines[0], lines[0]
    assert "Traceback" not in err


def test_installed_console_script():
    exe = Path(sys.executable).parent / "spheres"
    ok = subprocess.run([str(exe), "bound", "--dim", "500", "--error-rate", "0.1", "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert round(json.loads(ok.stdout)["mean_distance"], 5) == 0.05948  # docs/science.md s.3
    bad = subprocess.run([str(exe), "bound", "--dim", "500", "--error-rate", "1.5"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and "--error-rate" in bad.stderr


def test_demo_prints_table_and_writes_figures(capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.104178" in out  # d = 500, mu = 1e-2
    for name in ("bound_vs_dim", "tradeoff_curve"):
        png, csv = tmp_path / f"{name}.png", tmp_path / f"{name}.csv"
        assert str(png) in out
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        table = read_table_csv(csv)
        d, mu = table["dim"].astype(int), table["error_rate"]
        np.testing.assert_allclose(table["mean_distance"], T.mean_distance_to_cap(mu, d), rtol=1e-15)
    dims = set(read_table_csv(tmp_path / "tradeoff_curve.csv")["dim"].astype(int))
    assert dims == {50, 500, 5000}
    rates = read_table_csv(tmp_path / "bound_vs_dim.csv")["error_rate"]
    assert set(rates) == {1e-2, 1e-4, 1e-8}
