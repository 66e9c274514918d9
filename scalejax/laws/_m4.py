"""The M4 learning-curve law and estimator of Alabdulmohsin et al. (2022).

M4 defines the error `eps` at scale `x` implicitly, between its value at scale
0 (`eps_0`) and at infinite scale (`eps_inf`):

    (eps - eps_inf) / (eps_0 - eps)^alpha = beta x^-c.

`m4` is the law (a prediction solves the equation by safeguarded Newton steps);
`m4_fit` is the paper's estimator: the equation fitted in log-excess space
under data-dependent bounds, every curve at once.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._errors import DataError, ScalejaxError
from .._law import Law, Param

__all__ = ["m4", "m4_fit"]

# Newton steps of the prediction's solve (quadratic convergence from the asymptotic start; a bracket keeps each step safe).
NEWTON_STEPS = 24


def _m4_logit(log_k, alpha):
    """`s = logit(t)` with `t = k (1 - t)^alpha`, `t` in (0, 1): safeguarded Newton in `s`.

    In `s` the equation is `g(s) = log sigmoid(s) - alpha log sigmoid(-s) - log k = 0`,
    increasing with slope `1 - t + alpha t` (between min(1, alpha) and max(1, alpha)).
    Starting from the asymptote (`t = k` for small `k`, `1 - t = k^(-1/alpha)` for large
    `k`), a Newton step is taken when it stays inside the bracket `[lo, hi]` of the sign
    change, bisection otherwise.
    """
    alpha = jnp.maximum(alpha, 1e-12)
    lo = jnp.minimum(
        log_k - alpha - 1.0, -1.0
    )  # g(lo) < 0: log sigmoid(s) <= s, -alpha log sigmoid(-s) <= alpha for s < 0
    hi = jnp.minimum(jnp.maximum((1.0 + log_k) / alpha + 1.0, 1.0), 750.0)  # g(hi) > 0 (up to float range)
    s = jnp.clip(jnp.where(log_k < 0, log_k, log_k / alpha), lo, hi)

    def g(s):
        return jax.nn.log_sigmoid(s) - alpha * jax.nn.log_sigmoid(-s) - log_k

    def step(_, state):
        s, lo, hi = state
        value = g(s)
        lo = jnp.where(value < 0, s, lo)
        hi = jnp.where(value > 0, s, hi)
        t = jax.nn.sigmoid(s)
        newton = s - value / ((1.0 - t) + alpha * t)
        s = jnp.where(value == 0, s, jnp.where((newton > lo) & (newton < hi), newton, 0.5 * (lo + hi)))
        return s, lo, hi

    s, _, _ = jax.lax.fori_loop(0, NEWTON_STEPS, step, (s, lo, hi))
    return s


def _m4_log(p, x):
    """log eps: the solve carries no gradient; one Newton step on top gives the implicit-function derivatives."""
    alpha = p["alpha"]
    # With eps = eps_inf + delta0 t: t = k (1 - t)^alpha, k = beta x^-c delta0^(alpha - 1).
    log_k = jnp.log(p["beta"]) - p["c"] * jnp.log(x["x"]) + (alpha - 1.0) * jnp.log(p["delta0"])
    s0 = jax.lax.stop_gradient(_m4_logit(jax.lax.stop_gradient(log_k), jax.lax.stop_gradient(alpha)))
    t0 = jax.nn.sigmoid(s0)
    g0 = jax.nn.log_sigmoid(s0) - alpha * jax.nn.log_sigmoid(-s0) - log_k
    s = s0 - g0 / jax.lax.stop_gradient((1.0 - t0) + alpha * t0)
    log_excess = jnp.log(p["delta0"]) + jax.nn.log_sigmoid(s)
    implicit = jnp.logaddexp(jnp.log(p["eps_inf"]), log_excess)
    # alpha = 0 drops eps_0 from the equation: eps = eps_inf + beta x^-c (the estimator's bound alpha >= 0 can reach it).
    plain = jnp.logaddexp(jnp.log(p["eps_inf"]), jnp.log(p["beta"]) - p["c"] * jnp.log(x["x"]))
    return jnp.where(alpha == 0, plain, implicit)


m4 = Law(
    name="m4",
    fn=lambda p, x: jnp.exp(_m4_log(p, x)),
    log_fn=_m4_log,
    params=(
        Param("eps_inf", lower=0, grid=(1e-3, 0.1), doc="error at infinite scale"),
        Param("delta0", lower=0, grid=(0.5, 2.0), doc="eps_0 - eps_inf: the gap to the error at scale 0"),
        Param("beta", lower=0, grid=(1.0, 1e2, 1e4), doc="scale of the power law"),
        Param("c", lower=0, grid=(0.1, 0.3, 0.6), doc="power-law exponent (as x^-c)"),
        Param("alpha", lower=0, grid=(0.5, 1.0), doc="exponent of the approach to eps_0"),
    ),
    inputs=("x",),
    equation="(eps - eps_inf) / (eps_0 - eps)^alpha = beta x^-c, eps_0 = eps_inf + delta0",
    reference="Alabdulmohsin et al. 2022, 'Revisiting Neural Scaling Laws in Language and Vision', eq. (4) (M4)",
)
"""The M4 law: error between eps_0 (at scale 0) and eps_inf, a power law in x in between.

Defined implicitly; each prediction solves the equation for `t = (eps - eps_inf) / delta0`
by safeguarded Newton steps on `logit t` (24 steps, a bracket forcing bisection
when a step would leave it), with exact first derivatives from the
implicit-function theorem. `m4_fit` is the paper's estimator for it.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("m4").param_names
    ('eps_inf', 'delta0', 'beta', 'c', 'alpha')

References:
    Alabdulmohsin et al. 2022, Revisiting Neural Scaling Laws in Language and Vision, eq. (4).
"""


# ---------------------------------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------------------------------

MARGIN = 1e-3
_FREE_SETS = np.array(list(itertools.product((0.0, 1.0), repeat=3))[1:])  # the 7 non-empty sets of free coefficients


def _nnls3(design, target, w):
    """`min_{theta >= 0} sum_i w_i (design_i theta - target_i)^2` for 3 coefficients, exactly.

    The optimum solves the least-squares problem restricted to its free set with
    non-negative values, and has the lowest residual among such solutions: every
    free set is solved (7 systems of at most 3 unknowns) and the best feasible kept.
    """
    weighted = design * w[:, None]
    gram, moment = weighted.T @ design, weighted.T @ target

    def restricted(free):
        lhs = gram * free[:, None] * free[None, :] + jnp.diag(1.0 - free)
        theta = jnp.linalg.solve(lhs, free * moment) * free
        r = design @ theta - target
        feasible = jnp.all(theta >= 0)
        return jnp.where(feasible, jnp.sum(w * r * r), jnp.inf), theta

    objectives, thetas = jax.vmap(restricted)(jnp.asarray(_FREE_SETS))
    best = jnp.argmin(objectives)
    none = jnp.sum(w * target * target)  # every coefficient at 0
    return jnp.where(objectives[best] < none, thetas[best], jnp.zeros(3))


def _alternations(log_x, y, w, inf_low, inf_high, zero_low, zero_high, eps_0_start, frozen, schedule):
    """The estimator's steps for one curve (closures over its data and data-dependent bounds)."""
    first_order, first_order_steps, lr, newton_steps, newton_lr, _, stop = schedule
    n = jnp.sum(w)

    def mean(v):
        return jnp.sum(w * v) / n

    def project(e_inf, e_0):
        e_inf = jnp.minimum(jnp.maximum(e_inf, inf_low), inf_high)
        e_0 = jnp.minimum(jnp.maximum(e_0, zero_low), zero_high)
        return e_inf, e_0

    def least_squares(e_inf, e_0):
        design_0 = jnp.where(frozen, eps_0_start, e_0)
        design = jnp.stack([jnp.ones_like(log_x), -log_x, jnp.log(jnp.where(w > 0, design_0 - y, 1.0))], axis=1)
        return _nnls3(design, jnp.log(jnp.where(w > 0, y - e_inf, 1.0)), w)  # log beta, -c, alpha

    def residual(e_inf, e_0, theta):
        # log(y - eps_inf) - alpha log(eps_0 - y) - log beta - c log x, with c = -theta[1] <= 0
        gap_inf = jnp.where(w > 0, y - e_inf, 1.0)
        gap_0 = jnp.where(w > 0, e_0 - y, 1.0)
        return jnp.log(gap_inf) - theta[2] * jnp.log(gap_0) - theta[0] + theta[1] * log_x, gap_inf, gap_0

    def first_order_step(_, e):
        e_inf, e_0, theta = e
        r, gap_inf, gap_0 = residual(e_inf, e_0, theta)
        g_inf, g_0 = -mean(r / gap_inf), -theta[2] * mean(r / gap_0)
        return (*project(e_inf - lr * g_inf, e_0 - lr * g_0), theta)

    def newton_step(_, e):
        e_inf, e_0, theta = e
        r, gap_inf, gap_0 = residual(e_inf, e_0, theta)
        alpha = theta[2]
        inv_inf, inv_0 = 1.0 / gap_inf, 1.0 / gap_0
        g_inf, g_0 = -mean(r * inv_inf), -alpha * mean(r * inv_0)
        h_inf, h_0 = mean((1.0 - r) * inv_inf * inv_inf), alpha * mean((alpha + r) * inv_0 * inv_0)
        e_inf = jnp.where(jnp.abs(h_inf) > 1e-5, e_inf - newton_lr * g_inf / h_inf, e_inf)
        e_0 = jnp.where(jnp.abs(h_0) > 1e-5, e_0 - newton_lr * g_0 / h_0, e_0)
        return (*project(e_inf, e_0), theta)

    def first_order_alternation(_, state):
        e_inf, e_0, _ = state
        theta = least_squares(e_inf, e_0)
        return jax.lax.fori_loop(0, first_order_steps, first_order_step, (e_inf, e_0, theta))

    def newton_alternation(state):
        k, e_inf, e_0, theta, previous_beta, _ = state
        theta = least_squares(e_inf, e_0)
        e_inf, e_0, _ = jax.lax.fori_loop(0, newton_steps, newton_step, (e_inf, e_0, theta))
        beta = jnp.exp(theta[0])
        done = (jnp.abs(beta - previous_beta) < stop) & (k > first_order + 1)
        return k + 1, e_inf, e_0, theta, beta, done

    return project, first_order_alternation, newton_alternation, residual


def _first_phase(*curve, schedule):
    """The first-order alternations (the same number for every curve): the state the Newton phase starts from."""
    project, first_order_alternation, _, _ = _alternations(*curve, schedule)
    inf_high, eps_0_start = curve[4], curve[7]
    e_inf, e_0 = project(inf_high, eps_0_start)
    e_inf, e_0, theta = jax.lax.fori_loop(0, schedule[0], first_order_alternation, (e_inf, e_0, jnp.zeros(3)))
    return jnp.asarray(schedule[0]), e_inf, e_0, theta, jnp.exp(theta[0]), jnp.asarray(False)


def _newton_phase(*args, schedule):
    """Newton alternations until the curve converges, or `k_end`, or the schedule's last alternation.

    `args` are the curve's 9 arrays, the 6 parts of its state, then `k_end`.
    """
    curve, state, k_end = args[:9], args[9:15], args[15]
    _, _, newton_alternation, _ = _alternations(*curve, schedule)

    def going(state):
        k, *_, done = state
        return (~done) & (k < jnp.minimum(k_end, schedule[5]))

    return jax.lax.while_loop(going, newton_alternation, tuple(state))


def _objective(*curve_and_state, schedule):
    curve, (_, e_inf, e_0, theta, _, _) = curve_and_state[:9], curve_and_state[9:]
    _, _, _, residual = _alternations(*curve, schedule)
    r, _, _ = residual(e_inf, e_0, theta)
    return 0.5 * jnp.sum(curve[2] * r * r)


@functools.lru_cache(maxsize=8)
def _compiled(schedule):
    first = jax.jit(jax.vmap(functools.partial(_first_phase, schedule=schedule)))
    newton = jax.jit(jax.vmap(functools.partial(_newton_phase, schedule=schedule), in_axes=(0,) * 15 + (None,)))
    objective = jax.jit(jax.vmap(functools.partial(_objective, schedule=schedule)))
    return first, newton, objective


# Newton alternations between compactions: converged curves leave the batch (a vmapped loop runs every lane as
# long as its slowest), and the rest continue in a batch padded to a power of two (a few compiled shapes).
SEGMENT = 250


def _run(curve, schedule):
    """The estimator over every curve: `curve` is a tuple of per-curve arrays; returns the final state."""
    first, newton, objective = _compiled(schedule)
    state = [np.array(v) for v in first(*curve)]  # writable copies: lanes are updated in place
    max_alternations = schedule[5]
    k_end = schedule[0]
    while True:
        active = np.flatnonzero(~state[5] & (state[0] < max_alternations))
        if active.size == 0:
            break
        k_end += SEGMENT
        size = max(8, 1 << int(np.ceil(np.log2(active.size))))
        take = np.concatenate([active, np.full(size - active.size, active[0])])
        out = newton(*(a[take] for a in curve), *(v[take] for v in state), jnp.asarray(k_end))
        for v, o in zip(state, out, strict=True):
            v[active] = np.asarray(o)[: active.size]
    return state, np.asarray(objective(*curve, *state))


def _per_curve(frame, value, curves, by, name):
    """A float or a column (constant within each curve) -> one value per curve; None -> NaN."""
    if value is None:
        return np.full(len(curves), np.nan)
    if isinstance(value, str):
        if value not in frame.columns:
            raise DataError(f"column {value!r} (for {name}) not found")
        per = frame.groupby(by, sort=True)[value].agg(["min", "max"])
        varying = per.index[(per["min"] != per["max"]) & per["min"].notna()]
        if len(varying):
            raise DataError(
                f"column {value!r} (for {name}) varies within curves {list(varying[:3])}; give one value per curve"
            )
        return per["min"].reindex(curves).to_numpy(dtype=np.float64)
    return np.full(len(curves), float(value))


def m4_fit(
    frame: pd.DataFrame,
    *,
    x: str | Mapping[str, str],
    y: str,
    by: str | None = None,
    upper=None,
    eps_0=1.0,
    least_squares_eps_0: str = "start",
    max_alternations: int = 10_000,
) -> pd.DataFrame:
    """Fit M4 to learning curves as Alabdulmohsin et al. define the estimator, every curve in one compiled call.

    The objective is the defining equation in log-excess space,
    `sum_i (log(y_i - eps_inf) - alpha log(eps_0 - y_i) - log beta + c log x_i)^2`,
    under data-dependent bounds: `0 <= eps_inf <= min(y) - 1e-3` (the limit
    lies below every observed loss) and `max(y) + 1e-3 <= eps_0` (the start
    lies above every observed loss), capped at `upper + 1e-3` for error rates
    (`upper=1`), with `log beta, c, alpha >= 0`. It is minimised the
    authors' way, from `eps_inf = min(y) - 1e-3` and `eps_0 = eps_0` (the
    `eps_0` argument): given (eps_inf, eps_0) the equation is linear in
    (log beta, c, alpha), solved exactly by non-negative least squares; given
    those, (eps_inf, eps_0) take projected first-order steps (step size 1e-8,
    1,000 per alternation, for the first 100 alternations) and then projected
    Newton steps on each (step 0.1, 100 per alternation), until beta moves by
    less than 1e-10 or after `max_alternations`. The estimate depends on this
    path (the objective has several minima, and its global minimum
    extrapolates worse on the revisiting benchmark), so the path is part of
    the estimator.

    Every curve is one lane of a vmapped `while_loop`: the data-dependent
    bounds are per-curve inputs, and a curve that has converged stops moving.

    Args:
        frame: one row per point of every curve.
        x: the column of scale (examples seen, parameters...); or `{"x": column}`.
        y: the column of loss or error (below `eps_0`).
        by: the column naming each row's curve; None for one curve.
        upper: the largest value `eps_0` may take, less the margin: a number
            (1 for error rates), a column (one value per curve; NaN for none),
            or None (no cap, e.g. for log-perplexity).
        eps_0: the starting `eps_0` (a number or a per-curve column); the paper
            uses 1 (1.001 for BIG-Bench).
        least_squares_eps_0: `"start"` (the default) builds the least-squares
            step's `log(eps_0 - y)` column once, from the starting `eps_0`, as
            the authors' released code does (its published numbers come from
            it; mean log RMSE 0.0350 on the revisiting benchmark); `"current"`
            uses the current `eps_0` at every alternation, the alternation as
            the paper's text describes it (0.0367 there, and slower to converge).
        max_alternations: the most alternations per curve.

    Returns:
        A DataFrame indexed by curve (sorted) with the `m4` law's parameters
        `eps_inf, delta0, beta, c, alpha` (so `sj.laws.get("m4").predict(row, ...)`
        predicts with them), `eps_0`, `objective` (half the sum of squared
        log-excess residuals), `alternations`, `status` (`"converged"` or
        `"max_alternations"`) and `n_points`.

    Example:
        >>> import numpy as np, pandas as pd, scalejax as sj
        >>> x = np.geomspace(1e3, 1e7, 30)
        >>> truth = {"eps_inf": 0.2, "delta0": 0.75, "beta": 40.0, "c": 0.45, "alpha": 0.8}
        >>> curve = pd.DataFrame({"x": x, "err": np.asarray(sj.laws.get("m4").predict(truth, {"x": x}))})
        >>> table = sj.laws.m4_fit(curve, x="x", y="err", upper=1.0)
        >>> bool(table["objective"].iloc[0] < 1e-3)
        True

    References:
        Alabdulmohsin, Neyshabur and Zhai 2022, Revisiting Neural Scaling Laws in Language and Vision
        (NeurIPS 2022), Section 4 (M4) and the released evaluation (bounds and starting values per domain).
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError("m4_fit needs a DataFrame of points")
    x_col = x["x"] if isinstance(x, Mapping) else x
    for role, column in (("x", x_col), ("y", y)) + ((("by", by),) if by is not None else ()):
        if column not in frame.columns:
            raise DataError(f"column {column!r} (for {role}) not found; the table has columns {list(frame.columns)}")
    if not (isinstance(max_alternations, int) and max_alternations > 0):
        raise ScalejaxError(f"max_alternations must be a positive integer, got {max_alternations!r}")
    frame = frame.assign(__curve=frame[by] if by is not None else 0)
    xs = pd.to_numeric(frame[x_col], errors="coerce").to_numpy(dtype=np.float64)
    ys = pd.to_numeric(frame[y], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(xs) & (xs > 0))
    if bad.any():
        raise DataError(f"column {x_col!r} has {bad.sum()} missing or non-positive values; M4 needs x > 0")
    bad = ~(np.isfinite(ys) & (ys > 0))
    if bad.any():
        raise DataError(f"column {y!r} has {bad.sum()} missing or non-positive values; M4 needs y > 0")
    curves = np.sort(frame["__curve"].unique())
    codes = pd.Index(curves).get_indexer(frame["__curve"])
    members = [np.flatnonzero(codes == i) for i in range(len(curves))]
    short = [curves[i] for i, m in enumerate(members) if m.size < 3]
    if short:
        raise DataError(f"curves {short[:5]} have fewer than 3 points; M4's least-squares step needs 3")
    n_max = max(m.size for m in members)
    rows = np.stack([np.concatenate([m, np.full(n_max - m.size, m[0])]) for m in members])
    w = np.stack([np.r_[np.ones(m.size), np.zeros(n_max - m.size)] for m in members])

    y_min = np.array([ys[m].min() for m in members])
    y_max = np.array([ys[m].max() for m in members])
    cap = _per_curve(frame, upper, curves, "__curve", "upper")
    start = _per_curve(frame, eps_0, curves, "__curve", "eps_0")
    if np.any(~np.isfinite(start)):
        raise DataError("eps_0 (the starting eps_0) must be a number for every curve")
    zero_high = np.where(np.isfinite(cap), cap + MARGIN, np.inf)
    if np.any(zero_high < y_max + MARGIN):
        bad = [curves[i] for i in np.flatnonzero(zero_high < y_max + MARGIN)[:3]]
        raise DataError(f"curves {bad} have losses above upper; M4 needs every loss below eps_0 <= upper + {MARGIN}")
    if least_squares_eps_0 not in ("start", "current"):
        raise ScalejaxError(f"least_squares_eps_0 must be 'start' or 'current', got {least_squares_eps_0!r}")
    frozen = least_squares_eps_0 == "start"
    if frozen and np.any(start <= y_max):
        bad = [curves[i] for i in np.flatnonzero(start <= y_max)[:3]]
        raise DataError(
            f"curves {bad} have losses at or above the starting eps_0; give a larger eps_0, or "
            "least_squares_eps_0='current'"
        )

    schedule = (100, 1000, 1e-8, 100, 0.1, int(max_alternations), 1e-10)
    with jax.enable_x64(True):
        curve = (
            np.log(xs[rows]),
            ys[rows],
            w,
            np.zeros(len(curves)),
            y_min - MARGIN,
            y_max + MARGIN,
            zero_high,
            start,
            np.full(len(curves), frozen),
        )
        (k, e_inf, e_0, theta, _, done), objective = _run(curve, schedule)
    beta, c, alpha = np.exp(theta[:, 0]), theta[:, 1], theta[:, 2]
    table = pd.DataFrame(
        {
            "eps_inf": e_inf,
            "delta0": e_0 - e_inf,
            "beta": beta,
            "c": c,
            "alpha": alpha,
            "eps_0": e_0,
            "objective": objective,
            "alternations": k.astype(int),
            "status": np.where(done, "converged", "max_alternations"),
            "n_points": [m.size for m in members],
        },
        index=pd.Index(curves, name=by),
    )
    return table
