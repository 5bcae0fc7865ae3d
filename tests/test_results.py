"""Typed result rows: ``exact_distance`` tells "no error on this sphere" (inf) from "no exact value"
(empty), through the CSV and the JSON output."""

import json
import math

import numpy as np
import pytest

from spheres.core.io import read_csv
from spheres.maths import quadratic
from spheres.measure import pipeline
from spheres.measure.results import ResultRow, read_rows, write_rows

D, R, POINTS = 6, 1.3, 5


def quad_variables(alphas):
    """Variables of one quad net with ``logit = ||W x||^2 - 1``, ``W = diag(sqrt(alpha))``."""
    kernel = np.diag(np.sqrt(np.asarray(alphas, np.float64))).astype(np.float32)
    return {"params": {"hidden": {"kernel": kernel}, "w": np.float32(1.0), "b": np.float32(-1.0)}}


def sphere_points(radius, seed):
    g = np.random.default_rng(seed).normal(size=(POINTS, D))
    return radius * g / np.linalg.norm(g, axis=1, keepdims=True)


def measurement(alphas=None):
    """A measurement row as the pipeline writes it: Monte Carlo and attack columns, plus the exact
    columns of :func:`spheres.measure.pipeline._quadratic_columns` for a quad net (``alphas``)."""
    m = {"model": "quad-w6" if alphas is not None else "relu-w6-d1", "dim": D, "seed": 0, "learning_rate": 0.01,
         "train_size": 0, "step": 10, "loss": 0.5, "accuracy": 0.9, "outer_radius": R, "accuracy_samples": 1000}
    for prefix in ("mu_inner", "mu_outer"):
        m.update({prefix: 0.0, f"{prefix}_lower": 0.0, f"{prefix}_upper": 0.01, f"{prefix}_method": "monte_carlo",
                  f"{prefix}_status": "ok", f"{prefix}_samples": 300, f"{prefix}_mc_samples": 300,
                  f"{prefix}_log10": None})
    for prefix in ("attack", "attack_outer"):
        m.update({f"{prefix}_mean_distance": None, f"{prefix}_mean_distance_se": None, f"{prefix}_points": POINTS,
                  f"{prefix}_failures": POINTS, f"{prefix}_upper_bound": None})
    if alphas is not None:
        points = {"inner": sphere_points(1.0, 1), "outer": sphere_points(R, 2)}
        m.update(pipeline._quadratic_columns(quad_variables(alphas), points, R))
    return m


#: every alpha in [1/R^2, 1]: no error on either sphere; with one alpha of 1.5, errors on the inner sphere only
PERFECT = np.linspace(0.65, 0.95, D)
INNER_ERRORS = np.concatenate([[1.5], PERFECT[1:]])


def test_no_error_is_inf_and_not_a_quad_net_is_empty(tmp_path):
    rows = [ResultRow.from_measurement(measurement(PERFECT)), ResultRow.from_measurement(measurement(INNER_ERRORS)),
            ResultRow.from_measurement(measurement(None))]
    perfect, inner_only, relu = rows
    # the premise, from the exact analysis
    assert quadratic.error_rates(PERFECT, R).inner == 0 and quadratic.error_rates(PERFECT, R).outer == 0
    assert quadratic.error_rates(INNER_ERRORS, R).inner > 0 and quadratic.error_rates(INNER_ERRORS, R).outer == 0

    assert perfect.exact_distance == math.inf and perfect.exact_distance_outer == math.inf
    assert perfect.error_set == perfect.error_set_outer == "no errors (exact)"
    assert 0 < inner_only.exact_distance < 2 and inner_only.error_set == "errors"
    assert inner_only.exact_distance_outer == math.inf and inner_only.error_set_outer == "no errors (exact)"
    assert relu.exact_distance is None and relu.exact_distance_outer is None
    assert relu.error_set == "no errors found"  # Monte Carlo and the attack saw nothing: not an exact verdict

    path = write_rows(tmp_path / "rows.csv", rows)
    raw = read_csv(path)
    assert [r["exact_distance"] for r in raw] == [math.inf, inner_only.exact_distance, None]
    text = path.read_text().splitlines()
    col = text[0].split(",").index("exact_distance")
    assert [line.split(",")[col] for line in text[1:]] == ["inf", repr(inner_only.exact_distance), ""]
    assert read_rows(path) == rows  # the round trip keeps inf, the value and the empty field apart

    # strict JSON (``spheres measure --json``): inf as the string "inf", missing as null
    back = json.loads(json.dumps([r.as_json() for r in rows], allow_nan=False))
    assert [b["exact_distance"] for b in back] == ["inf", pytest.approx(inner_only.exact_distance), None]
    assert back[0]["exact_distance_outer"] == "inf" and back[2]["exact_distance_outer"] is None
