"""``spheres quadratic``: exact analysis of an ellipsoid classifier given its alphas, or of a trained quad net.

The classifier is "outer iff ``sum_i alpha_i z_i^2 > 1``" (the quadratic network in its
principal axes, docs/science.md section 5; ``--orientation outer_if_less`` flips the inequality, the
``w < 0 < b`` case). No training: it prints the exact inner and outer error rates (and their
log10, which stay finite far below float64's 1e-308), the paper's CLT estimate beside them, the
number of alphas outside ``[1/R^2, 1]``, and the exact ``d(E)`` on the inner sphere over
``--points`` uniform points (mean and standard error).

    spheres quadratic --alphas alphas.txt
    spheres quadratic --alphas figures/quadratic_alphas.csv          # the project's own table (header alpha)
    spheres quadratic --alphas alphas.npy --radius 1.3 --points 500 --seed 1 --json
    spheres quadratic --alphas alphas.txt --attack --method splitting
    spheres quadratic --run runs/quad --step 1000                     # every member of a trained quad-net run

Beside the exact d(E) it reports the cap bound at the exact inner error rate (``optimal_distance``,
the largest mean distance any error set of that measure can have, :mod:`spheres.maths.theory`),
the ratio ``d(E) / optimal_distance`` and ``consistent_with_bound`` (1 when
``d(E) - 2 SE <= optimal_distance``; the bound is a theorem, so 0 would be a bug), with the
column names of the reproduce tables.

``--attack`` adds the on-manifold attack's mean distance on the same points (``spheres.measure.attacks``,
an upper bound on each exact distance); ``--method splitting`` adds adaptive-multilevel-splitting
estimates of both error rates (``spheres.measure.splitting``) beside the exact ones. Both are checks of
those samplers against the exact answer.

``--alphas`` is a text file of whitespace-separated numbers, a ``.csv`` table with an ``alpha``
column (``figures/quadratic_alphas.csv``), or a ``.npy`` array (loaded with ``allow_pickle=False``);
it must hold at least 2 finite values, all ``>= 0`` (a quadratic network's alphas are
``|w| s_i^2 / |b| >= 0``). ``--run RUN_DIR`` instead decomposes every member of a trained quad-net
run at ``--step`` (default: the last checkpoint) with the run's outer radius and the orientation
given by the signs of its ``(w, b)``; with ``--json`` it prints one object per member: the member's
``member, model_seed, learning_rate, train_size, step, model`` and the keys of the ``--alphas``
report (whose ``seed`` is the seed of the points).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from spheres.core.errors import InputError

#: the default outer radius R (``spheres.nets.config.TaskConfig.outer_radius``, the paper's)
DEFAULT_RADIUS = 1.3

HELP = "exact error rates, the paper's CLT estimate and exact d(E) of the ellipsoid classifier with given alphas"

MAX_POINTS = 10**6
ORIENTATIONS = ("outer_if_greater", "outer_if_less")


def _positive_int(limit: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be an integer in [1, {limit}], got {text!r}")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2^63), got {text!r}")
    return value


def _radius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 1.0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 1 (the outer radius R), got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--alphas", metavar="FILE",
                        help="alpha_i: whitespace-separated numbers in a text file, a .csv with an 'alpha' "
                             "column, or a 1-D .npy array (at least 2 values, all finite and >= 0)")
    source.add_argument("--run", metavar="RUN_DIR",
                        help="a quad-net run directory written by `spheres train`: analyse every member")
    parser.add_argument("--step", type=_positive_int(2**62), default=None,
                        help="with --run: the checkpoint step (default: the last saved checkpoint)")
    parser.add_argument("--radius", type=_radius, default=None,
                        help=f"outer radius R (> 1; default {DEFAULT_RADIUS}, the paper's; with --run: the run's)")
    parser.add_argument("--points", type=_positive_int(MAX_POINTS), default=200,
                        help=f"uniform inner-sphere points for the exact d(E) (1..{MAX_POINTS}; default 200)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed for the points (integer >= 0; default 0)")
    parser.add_argument("--orientation", choices=ORIENTATIONS, default=None,
                        help="outer_if_greater: outer iff sum alpha z^2 > 1 (w > 0 > b, default); "
                             "outer_if_less: outer iff sum alpha z^2 < 1 (w < 0 < b); with --run: from the "
                             "net's signs")
    parser.add_argument("--attack", action="store_true",
                        help="also run the on-manifold attack on the same points (key attack_mean_distance)")
    parser.add_argument("--method", choices=("exact", "splitting"), default="exact",
                        help="exact (default): exact error rates only; splitting: also estimate both rates by "
                             "adaptive multilevel splitting, beside the exact values (keys splitting_*)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")


def _outer_if_less_logit(params: dict, x):
    """Logit of "outer iff sum_i alpha_i x_i^2 < 1": ``1 - sum_i alpha_i x_i^2``."""
    from spheres.maths.classifiers import ellipsoid_logit

    return -ellipsoid_logit(params, x)


def _logit_fn(orientation: str):
    from spheres.maths.classifiers import ellipsoid_logit

    return ellipsoid_logit if orientation == "outer_if_greater" else _outer_if_less_logit


_NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        magic = fh.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        raise InputError("--alphas", f"{str(path)!r} is not a .npy file (no NumPy header)")
    try:
        raw = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickled" in str(err) or "allow_pickle" in str(err):
            raise InputError("--alphas", f"{str(path)!r} holds Python objects (a pickled object array); need a "
                             "plain numeric array") from None
        raise InputError("--alphas", f"{str(path)!r} is a damaged or truncated .npy file ({err})") from None
    except EOFError:
        raise InputError("--alphas", f"{str(path)!r} is a truncated .npy file") from None
    if raw.ndim != 1:
        raise InputError("--alphas", f"{str(path)!r} holds an array of shape {raw.shape}; need a 1-D array")
    if raw.dtype.kind not in "iuf":
        raise InputError("--alphas", f"{str(path)!r} holds dtype {raw.dtype}; need real numbers")
    return raw.astype(np.float64)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("--alphas", f"{str(path)!r} is not a text file of numbers (nor a .npy file)") from None


def _numbers(tokens: list[str], path: Path, where: str = "value") -> np.ndarray:
    values = []
    for i, tok in enumerate(tokens):
        try:
            values.append(float(tok))
        except ValueError:
            raise InputError("--alphas", f"{where} {i + 1} in {str(path)!r} is not a number: {tok[:40]!r}") from None
    return np.asarray(values, dtype=np.float64)


def _load_csv(path: Path) -> np.ndarray:
    """The ``alpha`` column of a CSV table (header first), as written by ``spheres reproduce``."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(_text(path))))
    if not rows:
        return np.zeros(0)
    header = [h.strip() for h in rows[0]]
    if "alpha" not in header:
        raise InputError("--alphas", f"{str(path)!r} is a CSV table without an 'alpha' column (header: "
                         f"{','.join(header)[:80]})")
    col = header.index("alpha")
    tokens = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if col >= len(row):
            raise InputError("--alphas", f"line {lineno} of {str(path)!r} has no 'alpha' field")
        tokens.append(row[col].strip())
    return _numbers(tokens, path, "alpha in data row")


def load_alphas(path: str | Path) -> np.ndarray:
    """Read alphas from a text file (whitespace-separated numbers), a ``.csv`` table with an
    ``alpha`` column, or a ``.npy`` array.

    Returns:
      float64 array of shape ``(d,)``, ``d >= 2``, finite, ``>= 0``.
    Raises:
      InputError naming ``--alphas`` for a missing, unreadable, empty or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("--alphas", f"no such file (or not a regular file): {str(path)!r}")
    try:
        suffix = path.suffix.lower()
        if suffix == ".npy":
            alphas = _load_npy(path)
        elif suffix == ".csv":
            alphas = _load_csv(path)
        else:
            alphas = _numbers(_text(path).split(), path)
    except OSError as err:
        raise InputError("--alphas", f"cannot read {str(path)!r}: {err.strerror or err}") from None
    return check_alphas(alphas, f"{str(path)!r}")


def check_alphas(alphas: np.ndarray, source: str) -> np.ndarray:
    """Validate alphas (``(d,)``, ``d >= 2``, finite, ``>= 0``) read from ``source``."""
    if alphas.size < 2:
        raise InputError("--alphas", f"{source} holds {alphas.size} values; need at least 2 (dimension d >= 2)")
    bad = np.flatnonzero(~np.isfinite(alphas))
    if bad.size:
        raise InputError("--alphas", f"value {bad[0] + 1} is {alphas[bad[0]]}; all alphas must be finite")
    neg = np.flatnonzero(alphas < 0)
    if neg.size:
        raise InputError("--alphas", f"value {neg[0] + 1} is {alphas[neg[0]]}; alphas must be >= 0 "
                                     "(a quadratic network's alphas are |w| s_i^2 / |b|)")
    return alphas


def run_members(run_dir: str | Path, step: int | None = None) -> tuple[object, int, list[tuple[dict, np.ndarray, str]]]:
    """The members of a quad-net run at checkpoint ``step`` as (member dict, alphas, orientation).

    Returns:
      ``(run, step, members)``: the :class:`spheres.nets.rundir.Run`, the step used (default the
      last saved checkpoint) and, per member, its grid entry (member, seed, learning_rate,
      train_size), its alphas ``(d,)`` float64 and the orientation value from the signs of ``(w, b)``.
    Raises:
      InputError naming ``--run`` (not a quad-net run, no checkpoint) or ``--step``.
    """
    from spheres.maths import quadratic as quad
    from spheres.nets.models import quadratic_weights
    from spheres.nets.rundir import load_run

    run = load_run(run_dir)
    if run.config.model.arch != "quad":
        raise InputError("--run", f"{str(run_dir)!r} is a run of {run.config.model.name}; --run needs a quadratic "
                         "network (model arch quad)")
    if not run.checkpoint_steps:
        raise InputError("--run", f"{str(run_dir)!r} has no saved checkpoint yet; train it first")
    step = run.checkpoint_steps[-1] if step is None else step
    variables = run.load_variables(step)  # InputError naming --step if there is no such checkpoint
    members = []
    for i, member in enumerate(run.members):
        one = {"params": _index_tree(variables["params"], i), "batch_stats": {}}
        dec = quad.alphas_from_weights(*quadratic_weights(one))
        members.append((dict(member), np.asarray(dec.alphas, np.float64), dec.orientation.value))
    return run, step, members


def _index_tree(tree, i: int):
    if isinstance(tree, dict):
        return {k: _index_tree(v, i) for k, v in tree.items()}
    return np.asarray(tree)[i]


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def bound_columns(mu: float, distance: float | None, se: float | None, dim: int) -> dict:
    """The cap bound at an exact error rate ``mu`` (no interval: the rate is exact) beside a measured
    mean distance ``distance +- se`` in dimension ``dim``.

    Keys (the reproduce tables' names): ``optimal_distance`` = d_cap(mu, d), the largest mean
    chord distance to the nearest error of any error set of measure mu (docs/science.md section 3; None
    unless 0 < mu < 1); ``ratio`` = distance / optimal_distance; ``consistent_with_bound`` = 1 if
    ``distance - 2 se <= optimal_distance`` else 0 (None without a distance).
    """
    from spheres.maths import theory

    out = {"optimal_distance": None, "ratio": None, "consistent_with_bound": None}
    if not 0 < mu < 1:
        return out
    opt = float(theory.mean_distance_to_cap(mu, dim))
    out["optimal_distance"] = opt
    if distance is not None:
        out["ratio"] = distance / opt
        out["consistent_with_bound"] = int(distance - 2 * (se or 0.0) <= opt)
    return out


def quadratic_summary(alphas: np.ndarray, radius: float = DEFAULT_RADIUS, points: int = 200, seed: int = 0,
                      orientation: str = "outer_if_greater", attack: bool = False,
                      method: str = "exact") -> dict:
    """Everything ``spheres quadratic`` reports, as a JSON-ready dict (no NaN or infinity).

    Keys: ``dim, radius, points, seed, orientation``; ``error_rate_inner, error_rate_outer`` and
    ``log10_error_rate_inner, log10_error_rate_outer`` (exact; a rate below ~1e-308 prints as 0.0
    and its log10 carries it); ``clt_error_rate_*, clt_log10_error_rate_*`` (the paper's CLT
    estimate, Eq. 3: NOT exact); ``alphas_outside`` (count outside ``[1/R^2, 1]``);
    ``mean_distance, mean_distance_se`` (exact d(E) on the inner sphere over ``points`` uniform
    points, SE = std/sqrt(n)), ``points_misclassified`` (at distance 0), the cap bound at the exact
    inner rate (:func:`bound_columns`: ``optimal_distance, ratio, consistent_with_bound``) and
    ``notes``: for every key whose value is ``null``, why.

    With ``attack``: ``attack_mean_distance, attack_mean_distance_se`` (over the points where the
    attack found an error) and ``attack_failures`` (points where it found none), on the same
    points as the exact d(E). With ``method="splitting"``: for each sphere ``splitting_error_rate_*,
    splitting_log10_error_rate_*, splitting_log10_ci_*`` (95% interval, [low, high]) and
    ``splitting_status_*``.

    Randomness: ``key(seed)`` is split into (points, splitting inner, splitting outer).
    """
    import jax

    from spheres.maths import quadratic as quad

    exact = quad.error_rates(alphas, radius, orientation)
    clt = quad.clt_error_rates(alphas, radius, orientation)
    k_points, k_inner, k_outer = jax.random.split(jax.random.key(seed), 3)
    xs = quad._uniform_points(k_points, points, alphas.size, 1.0)
    est = quad.mean_nearest_error_distance(alphas, xs, 1.0, None, orientation, label=0)
    notes: dict[str, str] = {}
    for sphere, rate, log10 in (("inner", exact.inner, exact.log10_inner), ("outer", exact.outer, exact.log10_outer)):
        if log10 == -math.inf:
            notes[f"log10_error_rate_{sphere}"] = f"the {sphere} error rate is exactly 0: log10 is -infinity"
    for sphere, log10 in (("inner", clt.log10_inner), ("outer", clt.log10_outer)):
        if log10 == -math.inf:
            notes[f"clt_log10_error_rate_{sphere}"] = f"the CLT estimate is exactly 0 on the {sphere} sphere"
    if est.n_unreachable:
        notes["mean_distance"] = ("no point of the inner sphere is misclassified (exact inner error rate 0), "
                                  "so there is no nearest error: d(E) is infinite")
        notes["mean_distance_se"] = notes["mean_distance"]
    elif not math.isfinite(est.se):
        notes["mean_distance_se"] = "a standard error needs at least 2 points"
    if not 0 < exact.inner < 1:
        notes["optimal_distance"] = (f"the cap bound needs an inner error rate in (0, 1); it is {exact.inner:g}"
                                     + (" (or below float64 range)" if exact.inner == 0 else ""))
    extra: dict = {}
    if attack:
        extra.update(_attack_summary(alphas, xs, orientation, notes))
    if method == "splitting":
        for sphere, key, log10 in (("inner", k_inner, exact.log10_inner), ("outer", k_outer, exact.log10_outer)):
            extra.update(_splitting_summary(alphas, radius, orientation, sphere, key, log10, notes))
    return {
        "dim": int(alphas.size),
        "radius": float(radius),
        "points": int(points),
        "seed": int(seed),
        "orientation": orientation,
        "error_rate_inner": exact.inner,
        "error_rate_outer": exact.outer,
        "log10_error_rate_inner": _finite_or_none(exact.log10_inner),
        "log10_error_rate_outer": _finite_or_none(exact.log10_outer),
        "clt_error_rate_inner": clt.inner,
        "clt_error_rate_outer": clt.outer,
        "clt_log10_error_rate_inner": _finite_or_none(clt.log10_inner),
        "clt_log10_error_rate_outer": _finite_or_none(clt.log10_outer),
        "alphas_outside": quad.count_outside(alphas, radius),
        "mean_distance": _finite_or_none(est.mean),
        "mean_distance_se": _finite_or_none(est.se),
        "points_misclassified": est.n_misclassified,
        **bound_columns(exact.inner, _finite_or_none(est.mean), _finite_or_none(est.se), int(alphas.size)),
        **extra,
        "notes": notes,
    }


def _attack_summary(alphas: np.ndarray, xs: np.ndarray, orientation: str, notes: dict) -> dict:
    """On-manifold attack (``spheres.measure.attacks``, float32) on the points ``xs`` of the inner sphere."""
    import jax.numpy as jnp

    from spheres.measure import attacks

    result = attacks.attack(_logit_fn(orientation), {"alphas": jnp.asarray(alphas, jnp.float32)},
                            jnp.asarray(xs, jnp.float32), 0)
    summary = attacks.summarize(result)
    out = {"attack_mean_distance": _finite_or_none(summary.value),
           "attack_mean_distance_se": _finite_or_none(summary.se),
           "attack_failures": int(summary.failures)}
    if out["attack_mean_distance"] is None:
        notes["attack_mean_distance"] = "the attack found no error at any point"
    if out["attack_mean_distance_se"] is None and "attack_mean_distance_se" not in notes:
        notes["attack_mean_distance_se"] = "a standard error needs at least 2 points with an error found"
    return out


def _splitting_summary(alphas: np.ndarray, radius: float, orientation: str, sphere: str, key,
                       exact_log10: float, notes: dict) -> dict:
    """Adaptive multilevel splitting estimate of one sphere's error rate (``spheres.measure.splitting``)."""
    import jax.numpy as jnp

    from spheres.measure import splitting

    keys = [f"splitting_error_rate_{sphere}", f"splitting_log10_error_rate_{sphere}",
            f"splitting_log10_ci_{sphere}", f"splitting_status_{sphere}"]
    if exact_log10 == -math.inf:
        for k in keys[:3]:
            notes[k] = f"not run: the exact {sphere} error rate is 0, there is no error region to reach"
        return dict.fromkeys(keys[:3]) | {keys[3]: "not_run"}
    config = splitting.SplittingConfig(dim=int(alphas.size), sphere=sphere, outer_radius=radius)
    est = splitting.measure(key, _logit_fn(orientation), {"alphas": jnp.asarray(alphas, jnp.float32)}, config)
    # the command's status word for a run that reached the error region stays "reached"
    status = "reached" if est.status == "ok" else str(est.status)
    lo, hi = _finite_or_none(est.log10_lower), _finite_or_none(est.log10_upper)
    out = {keys[0]: _finite_or_none(est.value), keys[1]: _finite_or_none(est.log10_value),
           keys[2]: None if lo is None or hi is None else [lo, hi], keys[3]: status}
    for k in keys[:3]:
        if out[k] is None:
            notes[k] = f"splitting did not reach the error region (status {status})"
    return out


def _rate(rate: float, log10: float | None) -> str:
    if log10 is None:
        return "0 (exactly)"
    if rate == 0.0 or log10 < -300:
        return f"10^{log10:.3f}"
    return f"{rate:.4g} (log10 {log10:.3f})"


def format_summary(s: dict) -> str:
    """The human-readable summary of :func:`quadratic_summary`."""
    rule = ">" if s["orientation"] == "outer_if_greater" else "<"
    lines = [
        f"ellipsoid classifier: outer iff sum_i alpha_i z_i^2 {rule} 1; d = {s['dim']}, R = {s['radius']:g}",
        f"alphas outside [1/R^2, 1] = [{1 / s['radius'] ** 2:.4f}, 1]: {s['alphas_outside']} of {s['dim']}",
        "error rate      exact                               paper's estimate (CLT, its Eq. 3)",
    ]
    for sphere in ("inner", "outer"):
        lines.append(f"  {sphere} sphere  {_rate(s[f'error_rate_{sphere}'], s[f'log10_error_rate_{sphere}']):<36}"
                     f"{_rate(s[f'clt_error_rate_{sphere}'], s[f'clt_log10_error_rate_{sphere}'])}")
    if s["mean_distance"] is None:
        lines.append(f"d(E) inner sphere: none ({s['notes']['mean_distance']})")
    else:
        se = "n/a" if s["mean_distance_se"] is None else f"{s['mean_distance_se']:.4g}"
        lines.append(f"d(E) inner sphere (exact nearest errors, {s['points']} uniform points, seed {s['seed']}): "
                     f"{s['mean_distance']:.5g} +- {se} (SE); {s['points_misclassified']} points already misclassified")
    if s.get("optimal_distance") is not None:
        verdict = {1: "consistent with the bound", 0: "ABOVE the bound (a bug: the bound is a theorem)",
                   None: "no d(E) to compare"}[s["consistent_with_bound"]]
        ratio = "-" if s["ratio"] is None else f"{s['ratio']:.3g}"
        lines.append(f"optimal d(E) at the exact inner rate (cap bound): {s['optimal_distance']:.5g}; "
                     f"d(E) / optimal = {ratio}; {verdict} (within 2 SE)")
    if "attack_mean_distance" in s:
        if s["attack_mean_distance"] is None:
            lines.append("d(E) by the on-manifold attack, same points: no error found")
        else:
            se = "n/a" if s["attack_mean_distance_se"] is None else f"{s['attack_mean_distance_se']:.4g}"
            lines.append(f"d(E) by the on-manifold attack, same points: {s['attack_mean_distance']:.5g} +- {se} (SE); "
                         f"{s['attack_failures']} points with no error found")
    for sphere in ("inner", "outer"):
        key = f"splitting_log10_error_rate_{sphere}"
        if key in s:
            status = s[f"splitting_status_{sphere}"]
            if s[key] is None:
                lines.append(f"splitting estimate, {sphere} sphere: none (status {status})")
            else:
                lo, hi = s[f"splitting_log10_ci_{sphere}"] or (math.nan, math.nan)
                lines.append(f"splitting estimate, {sphere} sphere: log10 {s[key]:.3f} "
                             f"(95% interval {lo:.3f} .. {hi:.3f}; status {status})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.run is None:
        if args.step is not None:
            raise InputError("--step", "only applies with --run RUN_DIR")
        alphas = load_alphas(args.alphas)
        summary = quadratic_summary(alphas, args.radius or DEFAULT_RADIUS, args.points, args.seed,
                                    args.orientation or "outer_if_greater", args.attack, args.method)
        print(json.dumps(summary, allow_nan=False) if args.json else format_summary(summary))
        return 0
    run, step, members = run_members(args.run, args.step)
    radius = run.config.task.outer_radius
    if args.radius is not None and args.radius != radius:
        raise InputError("--radius", f"the run in {args.run!r} has outer radius {radius}; leave --radius out")
    results = []
    for member, alphas, orientation in members:
        if args.orientation is not None and args.orientation != orientation:
            raise InputError("--orientation", f"member {member['member']} of the run is {orientation} (from the "
                             "signs of its w and b); leave --orientation out")
        if orientation not in ORIENTATIONS and (args.attack or args.method != "exact"):
            raise InputError("--attack", f"member {member['member']} is degenerate ({orientation}): only the exact "
                             "analysis applies; drop --attack and --method")
        summary = quadratic_summary(alphas, radius, args.points, args.seed, orientation, args.attack, args.method)
        # "seed" is the summary's (the seed of the points); the net's own seed is "model_seed"
        results.append({"member": member["member"], "model_seed": member["seed"],
                        "learning_rate": member["learning_rate"], "train_size": member["train_size"],
                        "step": step, "model": run.config.model.name, **summary})
    if args.json:
        print(json.dumps(results, allow_nan=False))
        return 0
    for r in results:
        n = r["train_size"] or "online"
        print(f"== member {r['member']} (seed {r['model_seed']}, learning rate {r['learning_rate']:g}, N = {n}), "
              f"{r['model']} at step {step} of {run.path}")
        print(format_summary(r))
    return 0
