"""Extrapolation-aware calibration of predictive intervals, from rolling-origin backtests inside the user's own data.

A law's predictive interval (parameter uncertainty plus observation noise)
describes runs like the ones it was fitted on. Forecasts are made beyond
them, and there the errors grow with the distance: a law slightly
mis-specified, or exponents slightly off, cost more the further one goes.
`calibrate` measures that growth on the data at hand (fit the runs below
successive compute cut-offs, forecast the runs above) and returns a small
value, a `Calibration`, that widens any predictive interval by what it
measured at the target's distance.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._data import Data
from .._draws import law_inputs, tails
from .._errors import DataError, ScalejaxError
from .._fit import Fit, fit, make_data, solver_config
from .._law import Law
from .._noise import NoiseModel, fit_noise, scale_key
from .._objectives import Loss, make_loss
from ..laws import get as get_law
from ..solvers import CONVERGED, SolverConfig, solve_lanes

# Fold lanes start at optima of the full data, a short way from their own: the exact Huber
# curvature and light initial damping, as the bootstrap's warm-started lanes.
WARM = SolverConfig(curvature="exact", damping=1e-5)

__all__ = [
    "CUTOFFS",
    "Calibration",
    "calibrate",
    "chain_predictive",
    "fit_error_growth",
    "interval_score",
    "simulate_predictive",
]

# Fractions of the runs (ranked by the key) below each rolling cut-off: the first fold fits the
# smaller 40% and forecasts the rest, the last fits 90% and forecasts the top 10%.
CUTOFFS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Warm starts of each fold's fit besides the full-data optimum: converged optima of the full
# fit's start grid, spread over its ranking by objective (so other basins are tried too).
N_WARM_STARTS = 64


def _z(level: float) -> float:
    return NormalDist().inv_cdf(tails(level)[1])


def interval_score(y, lo, hi, level: float) -> np.ndarray:
    """The interval score of central `level` intervals `[lo, hi]` for observations `y` (lower is better).

    `S = (hi - lo) + (2 / a) (lo - y) 1{y < lo} + (2 / a) (y - hi) 1{y > hi}`,
    `a = 1 - level`: the width, plus a penalty for each miss proportional to
    how far it missed. It is a proper score: in expectation it is lowest
    for the true quantiles, so a wider interval pays for itself only where
    it catches misses.

    Example:
        >>> [round(float(interval_score(y, 0.5, 2.0, 0.9)), 6) for y in (1.0, 3.0)]
        [1.5, 21.5]

    References:
        Gneiting & Raftery 2007, Strictly Proper Scoring Rules, Prediction, and Estimation (JASA), eq. (43).
    """
    y, lo, hi = (np.asarray(v, dtype=np.float64) for v in (y, lo, hi))
    tails(level)  # validates the level
    alpha = 1.0 - level
    return (hi - lo) + (2.0 / alpha) * np.maximum(lo - y, 0.0) + (2.0 / alpha) * np.maximum(y - hi, 0.0)


def fit_error_growth(error, sd, distance, *, weights=None, grid: int = 61) -> tuple[float, float, float]:
    """Maximum-likelihood growth of forecast errors with extrapolation distance.

    The model: `error_i ~ Normal(0, sd_i^2 + tau(d_i)^2)`, `tau(d) = tau0 + slope * d`
    for `d > 0`, with `tau0, slope >= 0` (the extra error at the edge of the
    data and its growth per decade of distance), `sd_i` the uncalibrated
    predictive standard deviation of forecast `i`. Solved on a grid (zero
    included, so "no widening" is a candidate) refined twice around the best.

    Args:
        error: `(k,)` forecast errors on the fitted scale.
        sd: `(k,)` uncalibrated predictive standard deviations of those forecasts.
        distance: `(k,)` extrapolation distances (decades; clipped at 0).
        weights: `(k,)` weights of the errors in the log-likelihood (default 1).
        grid: points per axis of the search grid.

    Returns:
        `(tau0, slope, gain)`: the estimates and the log-likelihood gain over `tau = 0`.
    """
    e = np.asarray(error, dtype=np.float64)
    s2 = np.asarray(sd, dtype=np.float64) ** 2
    d = np.clip(np.asarray(distance, dtype=np.float64), 0.0, None)
    w = np.ones_like(e) if weights is None else np.asarray(weights, dtype=np.float64)
    scale = float(np.sqrt(np.mean(e**2))) or 1e-12

    def nll(t0, g):
        # One row of the grid at a time: a (len(g), k) block stays small for thousands of errors.
        out = np.empty((t0.size, g.size))
        for i, t in enumerate(t0):
            v = s2[None, :] + (t + g[:, None] * d[None, :]) ** 2
            out[i] = 0.5 * np.sum(w * (np.log(v) + e**2 / v), axis=-1)
        return out

    t0 = np.r_[0.0, np.geomspace(1e-3 * scale, 10 * scale, grid - 1)]
    g = np.r_[0.0, np.geomspace(1e-3 * scale, 30 * scale, grid - 1)]
    best = None
    for _ in range(3):
        values = nll(t0, g)
        i, j = np.unravel_index(np.argmin(values), values.shape)
        best = (float(t0[i]), float(g[j]), float(values[i, j]))
        # Zoom: the neighbours of the best point on each axis bound the next grid.
        t0 = _zoom(t0, i, grid)
        g = _zoom(g, j, grid)
    base = float(nll(np.zeros(1), np.zeros(1))[0, 0])
    return best[0], best[1], base - best[2]


def _gaussian_loglik(e, v, w) -> float:
    return float(-0.5 * np.sum(w * (np.log(2 * np.pi * v) + e**2 / v)))


def _leave_one_fold_out_gain(errors: pd.DataFrame, weights: np.ndarray) -> float:
    """Log-likelihood gain of the growth model over no widening, each fold scored by a model fitted without it."""
    e, s2, d = (errors[c].to_numpy() for c in ("error", "sd", "distance"))
    s2 = s2**2
    folds = errors["fold"].to_numpy()
    total = 0.0
    for f in np.unique(folds):
        out = folds == f
        t0, g, _ = fit_error_growth(e[~out], np.sqrt(s2[~out]), d[~out], weights=weights[~out], grid=41)
        extra = np.where(d[out] > 0, t0 + g * np.clip(d[out], 0.0, None), 0.0)
        total += _gaussian_loglik(e[out], s2[out] + extra**2, weights[out]) - _gaussian_loglik(
            e[out], s2[out], weights[out]
        )
    return total


def _zoom(axis: np.ndarray, i: int, n: int) -> np.ndarray:
    lo = axis[max(i - 1, 0)]
    hi = axis[min(i + 1, axis.size - 1)]
    if lo == 0.0:
        return np.r_[0.0, np.linspace(axis[1] * 1e-2 if axis.size > 1 else 0.0, hi, n - 1)] if hi > 0 else np.zeros(1)
    return np.linspace(lo, hi, n)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """How a law's forecast errors grow beyond the data, measured by rolling-origin backtests; widens predictive intervals.

    The calibrated predictive distribution of a forecast at distance `d`
    (decades of the key beyond the largest fitted run) is the uncalibrated one
    (parameter uncertainty plus observation noise) plus an independent normal
    error of standard deviation `tau(d) = tau0 + slope * d` on the fitted
    scale (log y for the log-scale losses), for `d > 0`. At or inside the
    data (`d <= 0`) the interval is left as it is: the backtests measure
    extrapolation only.

    Attributes:
        by: what runs are ordered by: `"compute"` (`k N D`) or an input or column name.
        edge: log10 of the largest key of the runs calibrated on (distance 0).
        tau0: extra standard deviation at the edge of the data (fitted scale).
        slope: growth of the extra standard deviation per decade of distance.
        log_scale: whether errors are on log y (else on y).
        noise: the `NoiseModel` of the full data (its kind was used in every fold).
        folds: one row per rolling fold: `cutoff` (log10 key of the first forecast
            run), `n_fit`, `n_forecast`, `converged`.
        errors: one row per (fold, forecast run): `fold`, `row`, `distance`,
            `error` (predicted minus observed), `sd_param`, `sigma`, `sd` (the
            uncalibrated predictive standard deviation), `sd_calibrated`.
        gain: log-likelihood gain of the growth model over no widening, on the backtest errors.
        cv_gain: the same gain when each fold's errors are forecast by the model fitted to
            the other folds (leave one fold out); the model is used only when it is positive,
            else `tau0 = slope = 0`.
        seconds: time taken by `calibrate`.
        columns: `(law input, the fitted data's column)` pairs, so that `distance` reads
            new points by input or by column name.
        flops_per_param_token: `k` in `C = k N D`.

    Compared and hashed by the model (every field but `folds`, `errors` and
    `seconds`), so it can travel as a static field of `Draws`.
    """

    by: str
    edge: float
    tau0: float
    slope: float
    log_scale: bool
    noise: NoiseModel
    gain: float
    cv_gain: float
    columns: tuple[tuple[str, str], ...] = ()
    flops_per_param_token: float = 6.0
    # The backtests behind the model: diagnostics, left out of equality and hashing.
    folds: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame, compare=False, repr=False)
    errors: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame, compare=False, repr=False)
    seconds: float = dataclasses.field(default=0.0, compare=False)

    def __post_init__(self):
        # A mapping given for `columns` is kept as sorted pairs: the value stays hashable.
        if isinstance(self.columns, Mapping):
            object.__setattr__(self, "columns", tuple(sorted((str(k), str(v)) for k, v in self.columns.items())))

    def distance(self, new) -> np.ndarray:
        """Extrapolation distance of each point of `new` (a DataFrame or dict): log10(key / largest fitted key).

        The key is read from `new` by law input name or by the fitted data's
        column name (`N` or `params`), or from a column named `by`.
        """
        if not isinstance(new, pd.DataFrame | Mapping):
            raise DataError(f"new points must be a DataFrame or a dict of arrays, got {type(new).__name__}")
        x = _numeric_dict(new)
        for name, column in self.columns:
            if name not in x and column in x:
                x[name] = x[column]
        return scale_key(x, self.by, flops_per_param_token=self.flops_per_param_token) - self.edge

    def extra_sd(self, distance) -> np.ndarray:
        """`tau(d)`: the extra standard deviation at distances `d` (0 at or inside the data)."""
        d = np.asarray(distance, dtype=np.float64)
        return np.where(d > 0, self.tau0 + self.slope * np.clip(d, 0.0, None), 0.0)

    def widen(self, y, lo, hi, distance, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Widen central `level` predictive intervals `[lo, hi]` around forecasts `y` (natural scale).

        Each side's half-width `h` on the fitted scale becomes
        `sqrt(h^2 + (z tau(d))^2)`: exact for a normal predictive distribution
        (a `Fit`'s delta method), and keeping the asymmetry of a percentile
        interval. Draws are widened exactly by `widen_draws`.

        Returns:
            `(lo, hi)` widened, natural scale.
        """
        z = _z(level)
        y, lo, hi = (np.asarray(v, dtype=np.float64) for v in (y, lo, hi))
        extra = z * self.extra_sd(distance)
        f = np.log if self.log_scale else (lambda v: v)
        inv = np.exp if self.log_scale else (lambda v: v)
        c, low, high = f(y), np.minimum(f(lo), f(y)), np.maximum(f(hi), f(y))
        new_lo = c - np.sqrt((c - low) ** 2 + extra**2)
        new_hi = c + np.sqrt((high - c) ** 2 + extra**2)
        keep = extra <= 0
        return np.where(keep, lo, inv(new_lo)), np.where(keep, hi, inv(new_hi))

    def widen_draws(self, values, distance, *, seed: int = 0) -> np.ndarray:
        """Add the extra error to simulated predictive values on the fitted scale: `(R, m)` in, `(R, m)` out."""
        values = np.asarray(values, dtype=np.float64)
        rng = np.random.default_rng(seed)
        return values + self.extra_sd(distance) * rng.standard_normal(values.shape)

    def table(self) -> pd.DataFrame:
        """The error-growth model and the rolling backtests behind it, one row per fold."""
        z = _z(0.95)
        e = self.errors
        out = self.folds.copy()
        out["cutoff"] = 10.0 ** out["cutoff"]
        grouped = e.groupby("fold")
        out["max_distance"] = grouped["distance"].max()
        out["rmse"] = grouped["error"].apply(lambda v: float(np.sqrt(np.mean(v**2))))
        out["coverage_95"] = (np.abs(e.error) <= z * e.sd).groupby(e.fold).mean()
        out["coverage_95_calibrated"] = (np.abs(e.error) <= z * e.sd_calibrated).groupby(e.fold).mean()
        return out

    def __repr__(self) -> str:
        return (
            f"Calibration(by {self.by}: extra sd {self.tau0:.3g} + {self.slope:.3g} per decade beyond "
            f"10^{self.edge:.3g}; {len(self.folds)} folds, {len(self.errors)} forecasts, cv gain {self.cv_gain:.3g}, {self.seconds:.1f} s)"
        )


def _numeric_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fold_jacobians(law: Law, loss: Loss, u, x):
    """Fitted-scale predictions `(K, n)` and their Jacobians `(K, n, p)` at each fold's optimum."""

    def pred(v):
        p = law.unpack(v)
        return law.log_predict(p, x) if loss.log_scale else law.predict(p, x)

    return jax.vmap(lambda v: (pred(v), jax.jacfwd(pred)(v)))(u)


def _resolve_key(by: str, data: Data, frame, flops_per_param_token: float) -> np.ndarray:
    """log10 of the ordering key of every run: from the law's inputs, else from same-named columns of `frame`."""
    source = dict(data.x)
    if isinstance(frame, pd.DataFrame):
        needed = ("N", "D") if by == "compute" else (by,)
        for name in needed:
            if name not in source and name in frame.columns:
                source[name] = frame.loc[data.index, name].to_numpy(dtype=np.float64)
    return scale_key(source, by, flops_per_param_token=flops_per_param_token)


def _warm_starts(base: Fit) -> np.ndarray:
    """The full fit's optimum, then up to `N_WARM_STARTS` distinct converged optima of its starts, spread by objective."""
    sol = base.solution
    ok = np.flatnonzero((sol.status == CONVERGED) & np.isfinite(sol.objective) & np.all(np.isfinite(sol.u), axis=1))
    ranked = ok[np.argsort(sol.objective[ok], kind="stable")]
    # Starts that reached the same optimum (to 1e-6 in the solver's space) are one start.
    _, first = np.unique(np.round(sol.u[ranked], 6), axis=0, return_index=True)
    distinct = ranked[np.sort(first)]
    pick = distinct[np.unique(np.linspace(0, distinct.size - 1, min(N_WARM_STARTS, distinct.size)).astype(int))]
    out = np.vstack([base.center_u[None, :], sol.u[pick]])
    # Always as many rows for a given number of fit starts (repeating some when there are fewer
    # distinct optima), so one compiled solve serves every data set of a shape.
    return np.resize(out, (1 + min(N_WARM_STARTS, sol.u.shape[0]), out.shape[1]))


def _fold_masks(key: np.ndarray, live: np.ndarray, cutoffs: Sequence[float], min_fit: int):
    """Weights masks of the rolling folds: fit `key < threshold`, forecast `key >= threshold`; duplicates dropped."""
    ranked = np.sort(key[live])
    n = ranked.size
    out, seen = [], set()
    for f in cutoffs:
        if not 0 < f < 1:
            raise ScalejaxError(f"cut-offs are fractions of the runs in (0, 1), got {f}")
        threshold = ranked[min(int(np.ceil(f * n)), n - 1)]
        fit_mask = live & (key < threshold)
        n_fit = int(fit_mask.sum())
        if n_fit < min_fit or n_fit == n or threshold in seen:
            continue
        seen.add(threshold)
        out.append((float(threshold), fit_mask, live & ~fit_mask))
    return out


def calibrate(
    law,
    frame=None,
    *,
    x: Mapping | None = None,
    y=None,
    by: str = "compute",
    cutoffs: Sequence[float] = CUTOFFS,
    noise: str = "auto",
    weights=None,
    loss: str = "huber",
    delta: float = 1e-3,
    over_weight: float = 1.0,
    starts=None,
    method: str = "lm",
    max_steps: int | None = None,
    solver: SolverConfig | None = None,
    flops_per_param_token: float = 6.0,
) -> Calibration:
    """Measure how forecast errors grow with extrapolation distance on the data itself (rolling-origin backtests).

    For each cut-off the law is refitted on the runs below it and forecasts
    every run above it; each forecast gives an error, the uncalibrated
    predictive standard deviation of that fold's fit (delta method plus the
    noise model refitted on the fold), and a distance: log10 of the run's key
    over the largest fitted key. A normal model whose extra standard deviation
    grows linearly with distance, `tau(d) = tau0 + slope d`, is fitted to those
    errors by maximum likelihood (`fit_error_growth`), each fold weighing the
    same (a fold's errors share one fitted parameter vector, so they are
    strongly correlated; unweighted, the early folds with many runs ahead
    would outvote the late ones, which are the most like the real forecast).
    The model is kept only if it forecasts each fold's errors, fitted on the
    other folds, better than no widening (`Calibration.cv_gain > 0`); a
    correctly specified law then keeps its intervals.

    Why a fitted variance and not split conformal prediction: conformal
    intervals are valid when the calibration scores and the new case are
    exchangeable (Vovk et al. 2005; Lei et al. 2018), and weighted variants
    need the covariate shift to keep overlapping support (Tibshirani et al.
    2019; Barber et al. 2023). Extrapolation is a shift beyond the support of
    all calibration cases, so the dependence on distance has to be modelled
    either way; once it is, a fitted variance uses the few dozen strongly
    correlated errors a backtest yields far better than an empirical 95%
    quantile (relative standard error about `1/sqrt(2k)` against about
    `3.8/sqrt(k)` for the quantile of `k` normal errors, i.e. 7% against 38%
    of the width at k = 100). A normal distribution matched in variance
    covers at least its nominal level for the heavy-tailed (leptokurtic) errors
    these data show (Student-t with 3 degrees of freedom: 95.7% for a nominal
    95%). This is the "empirical prediction interval" of forecasting practice
    (Williams & Goodman 1971; Lee & Scholtes 2014), with the rolling origin of
    Tashman 2000, and a variance model in the distance as in Carroll &
    Ruppert 1988.

    The folds' fits run as one batched solve (every fold times every start is
    a lane of `solve_lanes`), each warm-started from the full fit's optimum and
    up to 64 other distinct optima its start grid reached, so the cost is about
    that of one fit from a few hundred starts (on the 240 Chinchilla runs,
    0.5 s warm against 3 s for the 4,500-start fit; benchmarks/RESULTS.md).

    Args:
        law: a `Law`, a built-in law's name, or a `Fit` (its data, loss and optimum
            are reused; leave `frame`, `x`, `y`, `weights`, `loss`, `delta` out).
        frame, x, y, weights, loss, delta, over_weight, starts, method, max_steps: as in `scalejax.fit`.
        solver: a `SolverConfig` for the folds' lanes (default: warm lanes, exact Huber
            curvature and damping 1e-5, as the bootstrap's).
        by: what orders the runs by scale: `"compute"` (`k N D`, from the law's inputs
            N and D, or from columns `N` and `D` of `frame`), a law input, or a
            column of `frame` (e.g. a checkpoint's compute for a law of loss).
        cutoffs: fractions of the runs (ranked by the key) fitted in each fold.
        noise: the noise model's kind (`"auto"`, `"constant"`, `"log_linear"`; see `fit_noise`).
        flops_per_param_token: `k` in `C = k N D`.

    Returns:
        A `Calibration`. Raises `ScalejaxError` when fewer than two folds can be
        fitted (too few runs beyond `p + 2` below the cut-offs).

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> cal = sj.analysis.calibrate("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> bool(cal.extra_sd(1.0) >= cal.extra_sd(0.1) >= 0)
        True

    References:
        Tashman 2000, Out-of-sample tests of forecasting accuracy (Int. J. Forecasting): rolling origins;
        Williams & Goodman 1971, A simple method for the construction of empirical confidence limits for
        economic forecasts (JASA); Lee & Scholtes 2014, Empirical prediction intervals revisited
        (Int. J. Forecasting);
        Lei, G'Sell, Rinaldo, Tibshirani & Wasserman 2018, Distribution-free predictive inference for
        regression (JASA); Tibshirani, Barber, Candes & Ramdas 2019, Conformal prediction under covariate
        shift (NeurIPS); Barber, Candes, Ramdas & Tibshirani 2023, Conformal prediction beyond
        exchangeability (Ann. Statist.);
        Gneiting & Raftery 2007, Strictly Proper Scoring Rules, Prediction, and Estimation (JASA).
    """
    start_time = time.perf_counter()
    if isinstance(law, Fit):
        given = {"frame": frame, "x": x, "y": y, "weights": weights, "starts": starts}
        clash = [k for k, v in given.items() if v is not None and not (k == "frame" and isinstance(v, pd.DataFrame))]
        if clash:
            raise ScalejaxError(f"calibrate of a Fit reuses its data and loss; leave out {', '.join(clash)}")
        base = law
    else:
        law_ = get_law(law)
        loss_ = make_loss(loss, delta, over_weight)
        data = make_data(law_, frame, x, y, weights, None, loss_)
        base = fit(law_, data, loss=loss_, starts=starts, method=method, max_steps=max_steps)
    law_, loss_, data = base.law, base.loss, base.data
    p = law_.n_params
    key = _resolve_key(by, data, frame, flops_per_param_token)
    live = data.weights > 0
    target = data.target(loss_.log_scale)
    noise_model = fit_noise(
        base.residuals,
        key,
        weights=data.weights,
        n_params=p,
        kind=noise,
        by=by,
        flops_per_param_token=flops_per_param_token,
    )
    folds = _fold_masks(key, live, cutoffs, min_fit=p + 2)
    if len(folds) < 2:
        raise ScalejaxError(
            f"a rolling backtest needs at least two cut-offs with more than {p + 1} runs below them; "
            f"{int(live.sum())} runs give {len(folds)}: add runs, or leave the intervals uncalibrated"
        )

    fold_starts = _warm_starts(base)
    k = fold_starts.shape[0]
    # As many folds as cut-offs (repeating the last one), for the same compiled shapes every time.
    masks = [m for _, m, _ in folds] + [folds[-1][1]] * (len(cutoffs) - len(folds))
    lane_w = np.repeat(np.stack([np.where(m, data.weights, 0.0) for m in masks]), k, axis=0)
    with jax.enable_x64(True):
        sol = solve_lanes(
            law_,
            loss_,
            np.tile(fold_starts, (len(masks), 1)),
            lane_w,
            data.x,
            target,
            method=method,
            config=solver_config(solver, max_steps, base=WARM),
            progress=False,
            desc="calibration folds",
        )
    objective = np.where(sol.status == CONVERGED, sol.objective, np.inf).reshape(len(masks), k)
    pick = np.argmin(objective, axis=1)
    converged = np.isfinite(objective[np.arange(len(masks)), pick])
    u = sol.u.reshape(len(masks), k, -1)[np.arange(len(masks)), pick]
    with jax.enable_x64(True):
        xj = {name: jnp.asarray(v) for name, v in data.x.items()}
        pred, jac = (np.asarray(a) for a in _fold_jacobians(law_, loss_, jnp.asarray(u), xj))

    fold_rows, error_rows = [], []
    for i, (threshold, fit_mask, ahead) in enumerate(folds):
        fold_rows.append(
            {
                "cutoff": threshold,
                "n_fit": int(fit_mask.sum()),
                "n_forecast": int(ahead.sum()),
                "converged": bool(converged[i]),
            }
        )
        if not converged[i] or not np.all(np.isfinite(pred[i][live])):
            continue
        w = np.where(fit_mask, data.weights, 0.0)
        r = pred[i] - target
        j_fit = jac[i][fit_mask]
        info = j_fit.T @ (j_fit * w[fit_mask, None])
        s2 = float(np.sum(w[fit_mask] * r[fit_mask] ** 2) / (fit_mask.sum() - p))
        cov = s2 * np.linalg.pinv(info)
        fold_noise = fit_noise(r, key, weights=w, n_params=p, kind=noise_model.kind, by=by)
        idx = np.flatnonzero(ahead)
        sd_param = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", jac[i][idx], cov, jac[i][idx]), 0.0, None))
        sigma = fold_noise.scale(key[idx])
        for j, row in enumerate(idx):
            error_rows.append(
                {
                    "fold": i,
                    "row": data.index[row] if data.index is not None else row,
                    "distance": float(key[row] - key[fit_mask].max()),
                    "error": float(r[row]),
                    "sd_param": float(sd_param[j]),
                    "sigma": float(sigma[j]),
                }
            )
    errors = pd.DataFrame(error_rows)
    if errors.empty or errors["fold"].nunique() < 2:
        raise ScalejaxError("fewer than two rolling folds converged; the intervals cannot be calibrated on these data")
    errors["sd"] = np.sqrt(errors.sd_param**2 + errors.sigma**2)
    # Each fold counts once: its forecasts share one fitted parameter vector, so their errors are
    # strongly correlated, and the early folds (many runs ahead) would otherwise outvote the late ones.
    per_fold = errors.groupby("fold")["error"].transform("size").to_numpy()
    fold_weight = len(errors) / (errors["fold"].nunique() * per_fold)
    tau0, slope, gain = fit_error_growth(errors.error, errors.sd, errors.distance, weights=fold_weight)
    cv_gain = _leave_one_fold_out_gain(errors, fold_weight)
    if not cv_gain > 0:
        # The growth model does not forecast a left-out fold's errors better than no widening:
        # what it found is noise (a correctly specified law), and the intervals stay as they are.
        tau0 = slope = 0.0
    extra = np.where(errors.distance > 0, tau0 + slope * errors.distance.clip(lower=0), 0.0)
    errors["sd_calibrated"] = np.sqrt(errors.sd**2 + extra**2)
    return Calibration(
        by=by,
        edge=float(key[live].max()),
        tau0=tau0,
        slope=slope,
        log_scale=loss_.log_scale,
        noise=noise_model,
        folds=pd.DataFrame(fold_rows).rename_axis("fold"),
        errors=errors,
        gain=gain,
        cv_gain=cv_gain,
        seconds=time.perf_counter() - start_time,
        columns={k: v for k, v in data.columns.items() if k in law_.inputs and isinstance(v, str)},
        flops_per_param_token=flops_per_param_token,
    )


def simulate_predictive(values, sigma, *, log_scale: bool = True, extra=None, n_noise: int = 4000, seed: int = 0):
    """Simulated new observations on the fitted scale: each draw's prediction plus noise (plus the calibration's extra error).

    Args:
        values: `(S, m)` predictions of every draw (natural scale, > 0 when `log_scale`).
        sigma: noise standard deviation on the fitted scale: a scalar, `(S,)` per draw,
            `(m,)` per point or `(S, m)`.
        log_scale: noise on log y (else on y).
        extra: `(m,)` extra standard deviation per point (`Calibration.extra_sd`), or None.
        n_noise: at least this many simulated observations per point.
        seed: seed of the simulated noise.

    Returns:
        `(R, m)` simulated values on the fitted scale, `R = S * ceil(n_noise / S)`.
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    s, m = v.shape
    sig = np.asarray(sigma, dtype=np.float64)
    if sig.ndim == 1 and sig.shape[0] == s and s != m:
        sig = sig[:, None]
    sig = np.broadcast_to(sig, (s, m))
    reps = max(1, -(-int(n_noise) // s))
    rng = np.random.default_rng(seed)
    sd = sig if extra is None else np.sqrt(sig**2 + np.asarray(extra, dtype=np.float64)[None, :] ** 2)
    base = np.log(v) if log_scale else v
    return (base[None] + sd[None] * rng.standard_normal((reps, s, m))).reshape(-1, m)


def chain_predictive(
    first,
    second,
    new,
    *,
    link: str | None = None,
    first_sigma=None,
    second_sigma=None,
    first_log_scale: bool = True,
    second_log_scale: bool = True,
    first_calibration: Calibration | None = None,
    second_calibration: Calibration | None = None,
    level: float = 0.95,
    n_noise: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """Predictive intervals through two laws: a new run's step-1 value scatters, and step 2 maps *that* value.

    For draw `s` of each law (paired as in `chain_predict`) and a simulated
    replicate `r`:

        mid_sr = first_s(x) (.) e1_sr,   e1 ~ noise of step 1 (+ its calibrated extra error at d1)
        y_sr   = second_s(mid_sr, x2) (.) e2_sr,   e2 ~ noise of step 2 (+ its extra error at d2)

    where `(.)` adds on the fitted scale of each step (log for the log-scale
    losses, raw for `squared`). Step 1's noise is the scatter of the run's
    actual task loss around the law's mean: it goes through step 2, so a
    steep step 2 magnifies it; step 2's own noise is the scatter of
    accuracy around its law at a given task loss. Without noise this is
    `chain_predict`'s parameter interval.

    Args:
        first, second: draws of the two laws (a `Fit` counts as one draw).
        new: the first law's inputs, plus any other inputs of the second law.
        link: the second law's input fed by the first law (default: its only input).
        first_sigma, second_sigma: noise standard deviations on each step's fitted scale: a
            scalar, `(S,)` per draw, `(S, m)` per draw and point, or a `NoiseModel` (evaluated
            at `new`; step 2's at its own key).
        first_log_scale, second_log_scale: whether each step's noise is on the log scale.
        first_calibration, second_calibration: optional `Calibration`s of each step;
            their distances are read from `new` (so a step-2 calibration keyed by
            compute needs `N` and `D` in `new`).
        level: interval level.
        n_noise: simulated observations per point, at least.
        seed: seed of the simulated noise.

    Returns:
        One row per point: `mid`, `mid_lo`, `mid_hi` (step 1, parameters),
        `mid_pred_lo`, `mid_pred_hi` (step 1, predictive), `y`, `y_lo`, `y_hi`
        (through both steps, parameters only), `y_pred_lo`, `y_pred_hi` (through
        both steps, with both steps' noise and calibration), and `distance_first`,
        `distance_second` (NaN without a calibration).

    Example:
        >>> # step1 = sj.bootstrap("chinchilla", final_ckpts, ...); step2 = sj.bootstrap("sigmoid_floor", ..., loss="squared")
        >>> # chain_predictive(step1, step2, {"N": [7e9], "D": [4e12]}, first_sigma=noise_of(step1.fit),
        >>> #                  second_sigma=noise_of(step2.fit, by="L"), second_log_scale=False)

    References:
        Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders (two steps).
    """
    if link is None:
        if len(second.law.inputs) != 1:
            raise ScalejaxError(
                f"law {second.law.name!r} takes inputs {second.law.inputs}; name the one fed by the first law with link="
            )
        link = second.law.inputs[0]
    if link not in second.law.inputs:
        raise ScalejaxError(f"link {link!r} is not an input of law {second.law.name!r} {second.law.inputs}")
    lo_q, hi_q = tails(level)
    x1 = law_inputs(first.law, new, first.columns)
    probe = new.assign(**{link: 1.0}) if isinstance(new, pd.DataFrame) else {**dict(new), link: 1.0}
    x2 = {k: v for k, v in law_inputs(second.law, probe, second.columns).items() if k != link}
    s = min(first.n_draws, second.n_draws)
    m = next(iter(x1.values())).shape[0]
    reps = max(1, -(-int(n_noise) // s))
    rng = np.random.default_rng(seed)
    d1 = first_calibration.distance(new) if first_calibration is not None else np.full(m, np.nan)
    d2 = second_calibration.distance(new) if second_calibration is not None else np.full(m, np.nan)

    def noise_sd(sigma, x, calibration, distance):
        if sigma is None:
            sd = np.zeros((s, m))
        elif isinstance(sigma, NoiseModel):
            sd = np.broadcast_to(sigma.sigma(x), (s, m))
        else:
            sig = np.asarray(sigma, dtype=np.float64)
            # A scalar, one value per draw (S,), or per draw and point (S, m), as Draws.noise gives them.
            if sig.ndim == 1:
                sig = sig[:s, None]
            elif sig.ndim == 2:
                sig = sig[:s]
            sd = np.broadcast_to(sig, (s, m))
        if calibration is not None:
            sd = np.sqrt(sd**2 + calibration.extra_sd(distance)[None, :] ** 2)
        return sd

    sd1 = noise_sd(first_sigma, {**x1, **_numeric_dict(new)}, first_calibration, d1)
    with jax.enable_x64(True):
        x1j = {k: jnp.asarray(v) for k, v in x1.items()}
        u1, u2 = jnp.asarray(first.u[:s]), jnp.asarray(second.u[:s])
        mids = np.asarray(jax.jit(jax.vmap(lambda u: first.law.predict(first.law.unpack(u), x1j)))(u1))
        centre1 = np.asarray(first.law.predict(first.law.unpack(jnp.asarray(first.center_u)), x1j))
        eps1 = sd1[None] * rng.standard_normal((reps, s, m))
        mid_obs = mids[None] * np.exp(eps1) if first_log_scale else mids[None] + eps1

        def step2(u, mid):
            return second.law.predict(second.law.unpack(u), {**{k: jnp.asarray(v) for k, v in x2.items()}, link: mid})

        run2 = jax.jit(jax.vmap(step2))
        y_param = np.asarray(run2(u2, jnp.asarray(mids)))
        y_obs = np.asarray(run2(jnp.tile(u2, (reps, 1)), jnp.asarray(mid_obs.reshape(reps * s, m)))).reshape(reps, s, m)
        y_centre = np.asarray(step2(jnp.asarray(second.center_u), jnp.asarray(centre1)))
    x2_all = {**x2, link: centre1, **_numeric_dict(new)}
    sd2 = noise_sd(second_sigma, x2_all, second_calibration, d2)
    eps2 = sd2[None] * rng.standard_normal((reps, s, m))
    if second_log_scale:
        y_sim = np.log(y_obs) + eps2
        y_lo, y_hi = np.exp(np.quantile(y_sim.reshape(-1, m), [lo_q, hi_q], axis=0))
    else:
        y_lo, y_hi = np.quantile((y_obs + eps2).reshape(-1, m), [lo_q, hi_q], axis=0)
    mid_pred = mid_obs.reshape(-1, m)
    return pd.DataFrame(
        {
            "mid": centre1,
            "mid_lo": np.quantile(mids, lo_q, axis=0),
            "mid_hi": np.quantile(mids, hi_q, axis=0),
            "mid_pred_lo": np.quantile(mid_pred, lo_q, axis=0),
            "mid_pred_hi": np.quantile(mid_pred, hi_q, axis=0),
            "y": y_centre,
            "y_lo": np.quantile(y_param, lo_q, axis=0),
            "y_hi": np.quantile(y_param, hi_q, axis=0),
            "y_pred_lo": y_lo,
            "y_pred_hi": y_hi,
            "distance_first": d1,
            "distance_second": d2,
        }
    )


def _numeric_dict(new) -> dict[str, np.ndarray]:
    """The numeric columns of `new` (DataFrame or dict) as float arrays, for keys such as compute."""
    if isinstance(new, pd.DataFrame):
        return {c: new[c].to_numpy(dtype=np.float64) for c in new.columns if _numeric_column(new[c])}
    out = {}
    for k, v in dict(new).items():
        arr = np.atleast_1d(np.asarray(v))
        if np.issubdtype(arr.dtype, np.number):
            out[k] = arr.astype(np.float64)
    return out
