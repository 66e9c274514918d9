"""Extrapolation-aware calibration of predictive intervals, from rolling-origin backtests inside the user's own data.

A law's predictive interval (parameter uncertainty plus observation noise)
describes runs like the ones it was fitted on. Forecasts are made beyond
them, and there the errors grow with the distance: a law slightly
mis-specified, or exponents slightly off, cost more the further one goes.
`calibrate` measures that growth on the data at hand (fit the runs below
successive compute cut-offs, forecast the runs above) and returns a small
value, a `Calibration`, that widens any predictive interval by what it
measured at the target's distance. `calibration_of` computes it once per
estimate (cached by value) for the analyses' default predictive intervals.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import time
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._data import Data
from .._draws import tails
from .._errors import DataError, ScalejaxError
from .._fit import Fit, fit, make_data, solver_config
from .._joint import GROUP_INPUT
from .._law import Law
from .._noise import NoiseModel, fit_noise, noise_features, scale_by, scale_key
from .._objectives import Loss, make_loss
from ..laws import get as get_law
from ..solvers import CONVERGED, SolverConfig, solve_lanes

# Fold lanes start at optima of the full data, a short way from their own: the exact Huber
# curvature and light initial damping, as the bootstrap's warm-started lanes.
WARM = SolverConfig(curvature="exact", damping=1e-5)

__all__ = [
    "CUTOFFS",
    "MIN_CV_GAIN",
    "Calibration",
    "calibrate",
    "calibration_of",
    "fit_error_growth",
    "fit_input_growth",
    "interval_score",
]

# Fractions of the runs (ranked by the key) below each rolling cut-off: the first fold fits the
# smaller 40% and forecasts the rest, the last fits 90% and forecasts the top 10%.
CUTOFFS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Warm starts of each fold's fit besides the full-data optimum: converged optima of the full
# fit's start grid, spread over its ranking by objective (so other basins are tried too).
N_WARM_STARTS = 64
# The leave-one-fold-out log-likelihood gain (nats) the error-growth model needs before it widens
# intervals: "strong" evidence on Kass & Raftery's (1995) scale (2 ln B > 6); see `calibrate`.
MIN_CV_GAIN = 3.0
# A fold whose fitted runs span less than this share of the key's range (e.g. one isoFLOP
# budget) has no lever arm: the law of the key is not identified by it, and it is skipped.
MIN_LEVER_SHARE = 0.1
# How distance is measured for the growth model: decades of the key beyond the data, or those
# decades over the fitted runs' range of the key (the lever arm).
DISTANCE_SCALES = ("absolute", "relative")


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


def fit_error_growth(error, sd, distance, *, weights=None, dof=None, grid: int = 61) -> tuple[float, float, float]:
    """Maximum-likelihood growth of forecast errors with extrapolation distance.

    The model: `error_i = sqrt(sd_i^2 + tau(d_i)^2) t_i`, `tau(d) = tau0 + slope * d`
    for `d > 0`, with `tau0, slope >= 0` (the extra error at the edge of the
    data and its growth per unit of distance), `sd_i` the uncalibrated
    predictive standard deviation of forecast `i` and `t_i` standard normal,
    or Student-t with `dof_i` degrees of freedom when `dof` is given: a
    forecast's error over its predictive standard deviation, when that
    deviation rests on a noise scale estimated from `n - p` residuals, is
    `t_{n-p}` for a correct linear model (the classical prediction interval),
    so a fold fitted to a dozen runs does not pass its uncertain noise
    estimate off as error growth. Solved on a grid (zero included, so "no
    widening" is a candidate) refined twice around the best.

    Args:
        error: `(k,)` forecast errors on the fitted scale.
        sd: `(k,)` uncalibrated predictive standard deviations of those forecasts.
        distance: `(k,)` extrapolation distances (clipped at 0).
        weights: `(k,)` weights of the errors in the log-likelihood (default 1).
        dof: `(k,)` degrees of freedom of each forecast's noise estimate (default: normal errors).
        grid: points per axis of the search grid.

    Returns:
        `(tau0, slope, gain)`: the estimates and the log-likelihood gain over `tau = 0`.
    """
    return _grow(error, sd, 0.0, distance, weights, dof, grid, intercept=True)


def fit_input_growth(error, sd, base, distance, *, weights=None, dof=None, grid: int = 61) -> tuple[float, float]:
    """Maximum-likelihood growth of forecast errors with one input's extrapolation, on top of a distance model.

    The model: `error_i = sqrt(sd_i^2 + (base_i + slope * d_i)^2) t_i`, `slope >= 0`,
    with `base_i` the extra standard deviation the distance model already gives
    forecast `i` (`fit_error_growth`), `d_i` the decades of the input outside its
    fitted range, and `t_i` normal or Student-t as in `fit_error_growth`. Solved on
    a grid (zero included) refined twice around the best.

    Returns:
        `(slope, gain)`: the estimate and the log-likelihood gain over `slope = 0`.
    """
    _, slope, gain = _grow(error, sd, base, distance, weights, dof, grid, intercept=False)
    return slope, gain


def _grow(error, sd, base, distance, weights, dof, grid: int, *, intercept: bool) -> tuple[float, float, float]:
    """`(tau0, slope, gain)` of `tau_i = base_i + tau0 + slope * d_i` by maximum likelihood on a grid
    (zero included on each axis, refined twice around the best); `tau0 = 0` unless `intercept`."""
    e = np.asarray(error, dtype=np.float64)
    s2 = np.asarray(sd, dtype=np.float64) ** 2
    b = np.broadcast_to(np.asarray(base, dtype=np.float64), e.shape)
    d = np.clip(np.asarray(distance, dtype=np.float64), 0.0, None)
    w = np.ones_like(e) if weights is None else np.asarray(weights, dtype=np.float64)
    nu = None if dof is None else np.asarray(dof, dtype=np.float64)
    scale = float(np.sqrt(np.mean(e**2))) or 1e-12

    def nll(t0, g):
        # One row of the grid at a time: a (len(g), k) block stays small for thousands of errors.
        out = np.empty((t0.size, g.size))
        for i, t in enumerate(t0):
            v = s2[None, :] + (b[None, :] + t + g[:, None] * d[None, :]) ** 2
            out[i] = -np.sum(w * _loglik_terms(e, v, nu), axis=-1)
        return out

    t0 = np.r_[0.0, np.geomspace(1e-3 * scale, 10 * scale, grid - 1)] if intercept else np.zeros(1)
    g = np.r_[0.0, np.geomspace(1e-3 * scale, 30 * scale, grid - 1)]
    for _ in range(3):
        values = nll(t0, g)
        i, j = np.unravel_index(np.argmin(values), values.shape)
        best = (float(t0[i]), float(g[j]), float(values[i, j]))
        # Zoom: the neighbours of the best point on each axis bound the next grid.
        t0 = _zoom(t0, i, grid) if intercept else t0
        g = _zoom(g, j, grid)
    zero = float(nll(np.zeros(1), np.zeros(1))[0, 0])
    return best[0], best[1], zero - best[2]


def _loglik_terms(e, v, nu):
    """Log densities of errors `e` with scales `sqrt(v)`: normal, or Student-t with `nu` degrees of freedom
    (constants that do not depend on `v` left out: only differences between variance models are used)."""
    if nu is None:
        return -0.5 * (np.log(v) + e**2 / v)
    return -0.5 * np.log(v) - 0.5 * (nu + 1.0) * np.log1p(e**2 / (nu * v))


def _fold_growth(error, sd, distance, folds, weights, dof) -> dict:
    """The distance model fitted without each fold: fold -> `(tau0, slope)` (a coarser grid: 41 points)."""
    out = {}
    for f in np.unique(folds):
        keep = folds != f
        t0, g, _ = fit_error_growth(
            error[keep], sd[keep], distance[keep], weights=weights[keep], dof=dof[keep], grid=41
        )
        out[f] = (t0, g)
    return out


def _extra(growth: tuple[float, float], distance) -> np.ndarray:
    """The distance model's extra standard deviation: `tau0 + slope * d` beyond the data, 0 inside."""
    t0, g = growth
    return np.where(distance > 0, t0 + g * np.clip(distance, 0.0, None), 0.0)


def _leave_one_fold_out_gain(error, sd, distance, folds, weights, dof, growth: dict) -> float:
    """Log-likelihood gain of the growth model over no widening, each fold scored by the model fitted
    without it (`growth`, from `_fold_growth`)."""
    total = 0.0
    for f, model in growth.items():
        out = folds == f
        s2 = sd[out] ** 2
        widened = _loglik_terms(error[out], s2 + _extra(model, distance[out]) ** 2, dof[out])
        total += float(np.sum(weights[out] * (widened - _loglik_terms(error[out], s2, dof[out]))))
    return total


def _outside(values, log_range) -> np.ndarray:
    """Decades of positive `values` outside `log_range = (lo, hi)` (log10): 0 inside, else the distance to the nearer end."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.log10(np.atleast_1d(np.asarray(values, dtype=np.float64)))
    lo, hi = log_range
    return np.maximum(np.maximum(v - hi, lo - v), 0.0)


def _input_cv_gain(error, sd, units, distance, folds, weights, dof, growth: dict | None) -> float:
    """Leave-one-fold-out log-likelihood gain of an input term over the distance model alone.

    For each fold, the input term is fitted to the other folds on top of the distance model fitted
    without the fold (`growth`, from `_fold_growth`; None when no distance model is kept), and the
    fold's errors are scored with and without the input term.
    """
    total = 0.0
    for f in np.unique(folds):
        out = folds == f
        base = np.zeros_like(error) if growth is None else _extra(growth[f], units)
        slope, _ = fit_input_growth(
            error[~out], sd[~out], base[~out], distance[~out], weights=weights[~out], dof=dof[~out], grid=41
        )
        without = _loglik_terms(error[out], sd[out] ** 2 + base[out] ** 2, dof[out])
        with_input = _loglik_terms(error[out], sd[out] ** 2 + (base[out] + slope * distance[out]) ** 2, dof[out])
        total += float(np.sum(weights[out] * (with_input - without)))
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
    (decades of the key beyond the outermost fitted run) is the uncalibrated
    one (parameter uncertainty plus observation noise) plus an independent
    normal error of standard deviation `tau(d) = tau0 + slope * u(d)` on the
    fitted scale (log y for the log-scale losses), for `d > 0`, where `u = d`
    (`distance_scale="absolute"`) or `u = d / lever` (`"relative"`: distance
    in units of the fitted runs' range of the key, so a short ladder
    extrapolated far counts as far). At or inside the data (`d <= 0`) the
    interval is left as it is: the backtests measure extrapolation only.
    When the backtests show it, a second term grows with one input's own
    extrapolation: `tau = tau(d) + input_slope * d_in`, `d_in` the decades of
    that input (e.g. `N`) outside its range over the fitted runs (a model
    larger than any fitted one is an extrapolation in `N` even at a compute
    inside the data; see `calibrate`).

    Attributes:
        by: what runs are ordered by: `"compute"` (`k N D`) or an input or column name.
        edge: `direction * log10` key of the outermost run calibrated on (distance 0).
        tau0: extra standard deviation at the edge of the data (fitted scale).
        slope: growth of the extra standard deviation per unit of `u`.
        log_scale: whether errors are on log y (else on y).
        noise: the `NoiseModel` of the full data (its kind was used in every fold).
        gain: log-likelihood gain of the growth model over no widening, on the backtest errors.
        cv_gain: the same gain when each fold's errors are forecast by the model fitted to
            the other folds (leave one fold out); the model is used only when it is above
            `MIN_CV_GAIN` (3 nats), else `tau0 = slope = 0`.
        direction: `1` when forecasts go beyond the largest key (larger runs), `-1` beyond
            the smallest (e.g. a law of loss forecast at lower loss).
        distance_scale: `"absolute"` or `"relative"`, the one with the higher `cv_gains`.
        lever: log10 range of the key over the runs calibrated on (the unit of relative distance).
        cv_gains: `((distance_scale, leave-one-fold-out gain), ...)` of the scales compared.
        input: the law input whose own extrapolation adds error (None: none does).
        input_slope: the extra standard deviation per decade of `input` outside `input_range`.
        input_range: `(lo, hi)` log10 of `input` over the runs calibrated on.
        input_cv_gains: `((input, leave-one-fold-out gain over the distance model alone), ...)`
            of the inputs compared; an input is used only when its gain is above `MIN_CV_GAIN`.
        columns: `(law input, the fitted data's column)` pairs, so that `distance` reads
            new points by input or by column name.
        flops_per_param_token: `k` in `C = k N D`.
        folds: one row per rolling fold: `cutoff` (log10 key of the first forecast
            run), `n_fit`, `n_forecast`, `lever`, `converged`, `used`.
        errors: one row per (fold, forecast run): `fold`, `row`, `distance`, `lever`,
            `error` (predicted minus observed), `sd_param`, `sigma`, `sd` (the
            uncalibrated predictive standard deviation), `sd_calibrated`, and
            `distance_<input>` (decades outside the fold's fitted range) for each input compared.
        seconds: time taken by `calibrate`.

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
    direction: int = 1
    distance_scale: str = "absolute"
    lever: float = 1.0
    cv_gains: tuple[tuple[str, float], ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    flops_per_param_token: float = 6.0
    input: str | None = None
    input_slope: float = 0.0
    input_range: tuple[float, float] = (0.0, 0.0)
    input_cv_gains: tuple[tuple[str, float], ...] = ()
    # The backtests behind the model: diagnostics, left out of equality and hashing.
    folds: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame, compare=False, repr=False)
    errors: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame, compare=False, repr=False)
    seconds: float = dataclasses.field(default=0.0, compare=False)

    def __post_init__(self):
        # A mapping given for `columns` is kept as sorted pairs: the value stays hashable.
        if isinstance(self.columns, Mapping):
            object.__setattr__(self, "columns", tuple(sorted((str(k), str(v)) for k, v in self.columns.items())))
        if self.direction not in (1, -1):
            raise ScalejaxError(
                f"direction must be 1 (beyond the largest run) or -1 (the smallest), got {self.direction}"
            )
        if self.distance_scale not in DISTANCE_SCALES:
            raise ScalejaxError(f"distance_scale must be one of {', '.join(DISTANCE_SCALES)}")
        if self.input_slope and self.input is None:
            raise ScalejaxError("an input_slope needs the input it grows with (input=)")

    def distance(self, new) -> np.ndarray:
        """Extrapolation distance of each point of `new` (a DataFrame or dict), in decades of the key beyond the data.

        `log10(key / largest fitted key)` (or `log10(smallest / key)` for
        `direction=-1`). The key is read from `new` by law input name or by
        the fitted data's column name (`N` or `params`), or from a column named `by`.
        """
        if not isinstance(new, pd.DataFrame | Mapping):
            raise DataError(f"new points must be a DataFrame or a dict of arrays, got {type(new).__name__}")
        x = _numeric_dict(new)
        for name, column in self.columns:
            if name not in x and column in x:
                x[name] = x[column]
        return self.direction * scale_key(x, self.by, flops_per_param_token=self.flops_per_param_token) - self.edge

    def input_distance(self, new) -> np.ndarray:
        """Decades of the calibration's `input` outside its range over the fitted runs, at each point of `new`.

        0 inside the range, and everywhere when the calibration has no input term.
        The input is read from `new` by law input name or by the fitted data's column name.
        """
        if not isinstance(new, pd.DataFrame | Mapping):
            raise DataError(f"new points must be a DataFrame or a dict of arrays, got {type(new).__name__}")
        x = _numeric_dict(new)
        if self.input is None:
            return np.zeros(np.atleast_1d(np.asarray(next(iter(x.values()), 0.0))).shape[0])
        for name, column in self.columns:
            if name not in x and column in x:
                x[name] = x[column]
        if self.input not in x:
            raise DataError(
                f"this calibration widens by the extrapolation of input {self.input!r}: the points need {self.input}"
            )
        return _outside(x[self.input], self.input_range)

    def extra_sd(self, distance, input_distance=None) -> np.ndarray:
        """The extra standard deviation at distances `d` in decades: `tau(d)` (0 at or inside the data), plus
        `input_slope * input_distance` when the calibration has an input term (see `input_distance`)."""
        d = np.asarray(distance, dtype=np.float64)
        u = np.clip(d, 0.0, None) / (self.lever if self.distance_scale == "relative" else 1.0)
        with np.errstate(invalid="ignore"):
            out = np.where(d > 0, self.tau0 + self.slope * u, 0.0)
        if self.input_slope:
            if input_distance is None:
                raise ScalejaxError(
                    f"this calibration also widens by the extrapolation of input {self.input!r}: pass "
                    "input_distance=calibration.input_distance(new)"
                )
            out = out + self.input_slope * np.clip(np.asarray(input_distance, dtype=np.float64), 0.0, None)
        return out

    def widen(self, y, lo, hi, distance, *, level: float = 0.95, input_distance=None) -> tuple[np.ndarray, np.ndarray]:
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
        extra = z * self.extra_sd(distance, input_distance)
        f = np.log if self.log_scale else (lambda v: v)
        inv = np.exp if self.log_scale else (lambda v: v)
        c, low, high = f(y), np.minimum(f(lo), f(y)), np.maximum(f(hi), f(y))
        new_lo = c - np.sqrt((c - low) ** 2 + extra**2)
        new_hi = c + np.sqrt((high - c) ** 2 + extra**2)
        keep = extra <= 0
        return np.where(keep, lo, inv(new_lo)), np.where(keep, hi, inv(new_hi))

    def widen_draws(self, values, distance, *, seed: int = 0, input_distance=None) -> np.ndarray:
        """Add the extra error to simulated predictive values on the fitted scale: `(R, m)` in, `(R, m)` out."""
        values = np.asarray(values, dtype=np.float64)
        rng = np.random.default_rng(seed)
        return values + self.extra_sd(distance, input_distance) * rng.standard_normal(values.shape)

    def table(self) -> pd.DataFrame:
        """The error-growth model and the rolling backtests behind it, one row per fold."""
        z = _z(0.95)
        e = self.errors
        out = self.folds.copy()
        out["cutoff"] = 10.0 ** (self.direction * out["cutoff"])
        grouped = e.groupby("fold")
        out["max_distance"] = grouped["distance"].max()
        out["rmse"] = grouped["error"].apply(lambda v: float(np.sqrt(np.mean(v**2))))
        out["coverage_95"] = (np.abs(e.error) <= z * e.sd).groupby(e.fold).mean()
        out["coverage_95_calibrated"] = (np.abs(e.error) <= z * e.sd_calibrated).groupby(e.fold).mean()
        return out

    def summary(self) -> dict:
        """The model in plain numbers (for a result's `attrs` and reports)."""
        return {
            "by": self.by,
            "direction": self.direction,
            "edge": float(self.direction * self.edge),
            "tau0": self.tau0,
            "slope": self.slope,
            "distance_scale": self.distance_scale,
            "lever": self.lever,
            "cv_gain": self.cv_gain,
            "input": self.input,
            "input_slope": self.input_slope,
            "n_folds": int(self.folds["used"].sum()) if "used" in self.folds else len(self.folds),
            "noise": self.noise.kind,
        }

    def __repr__(self) -> str:
        unit = "per decade" if self.distance_scale == "absolute" else f"per lever ({self.lever:.3g} decades)"
        side = "beyond" if self.direction == 1 else "below"
        used = int(self.folds["used"].sum()) if "used" in self.folds else len(self.folds)
        term = f" + {self.input_slope:.3g} per decade of {self.input} outside the data" if self.input_slope else ""
        return (
            f"Calibration(by {self.by}: extra sd {self.tau0:.3g} + {self.slope:.3g} {unit} {side} "
            f"10^{self.direction * self.edge:.3g}{term}; {used} folds, {len(self.errors)} forecasts, "
            f"cv gain {self.cv_gain:.3g}, {self.seconds:.1f} s)"
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
    """log10 of the ordering key of every run: from the law's inputs, else from same-named columns of `frame`,
    else from the run sizes the data kept (`Data.sizes`). NaN on rows whose kept sizes are missing (an
    anchor row, which is no run)."""
    source = dict(data.x)
    needed = ("N", "D") if by == "compute" else (by,)
    if isinstance(frame, pd.DataFrame):
        for name in needed:
            if name not in source and name in frame.columns:
                source[name] = frame.loc[data.index, name].to_numpy(dtype=np.float64)
    missing = np.zeros(data.n, dtype=bool)
    for name in needed:
        if name not in source and name in data.sizes:
            source[name] = data.sizes[name]
            missing |= np.isnan(data.sizes[name])
    key = np.full(data.n, np.nan)
    known = {name: np.asarray(v)[~missing] for name, v in source.items()}
    key[~missing] = scale_key(known, by, flops_per_param_token=flops_per_param_token)
    return key


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
    direction: int = 1,
    cutoffs: Sequence[float] = CUTOFFS,
    noise: str = "auto",
    distance_scale: str = "auto",
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
    noise model refitted on the fold), a distance (decades of the key beyond
    the largest fitted run) and the fold's lever arm (the fitted runs' range
    of the key, in decades). A normal model whose extra standard deviation
    grows linearly with distance, `tau = tau0 + slope u`, is fitted to those
    errors by maximum likelihood (`fit_error_growth`), each fold weighing the
    same (a fold's errors share one fitted parameter vector, so they are
    strongly correlated; unweighted, the early folds with many runs ahead
    would outvote the late ones, which are the most like the real forecast).
    Distance enters as decades (`u = d`) or as decades per decade of lever
    arm (`u = d / lever`: a fit to a short range of scales extrapolates worse
    than one to a long range, so the early folds' large errors do not inflate
    the forecast of the full data); the data choose between the two by the
    leave-one-fold-out log-likelihood gain (each fold's errors forecast by the
    model fitted to the other folds), and the chosen model is kept only if
    that gain is above 3 nats (`Calibration.cv_gain > MIN_CV_GAIN`), so a
    correctly specified law keeps its intervals. That gain is a log
    pseudo-Bayes factor (Geisser & Eddy 1979) of the growth model against no
    widening; 3 is "strong" evidence on Kass & Raftery's (1995) scale, asked
    for because the folds are nested (each fold's fitted runs contain the
    previous fold's) and so give fewer independent checks than they count:
    on 40 synthetic data sets of a correctly specified law the gain exceeds
    3 on 5, while on the real backtests the calibrations that widen have
    gains from 5 to 15,000 (benchmarks/RESULTS.md). The errors are scored as
    Student-t with each fold's residual degrees of freedom (`n_fit - p`;
    see `fit_error_growth`), so a fold fitted to few runs does not pass its
    uncertain noise estimate off as error growth. Folds whose fitted runs
    span less than a tenth of the key's range (e.g. one isoFLOP budget) have
    no lever arm and are skipped.

    A forecast can also leave the data along one input while its compute
    does not: an isoFLOP study's largest budget holds models larger than any
    fitted one, and there a law such as Chinchilla's misfits first. So each
    error also records, for each positive input of the law (`N`, `D`...),
    the decades of that input outside the fold's fitted range (two-sided),
    and a second term `input_slope * d_in` for the input whose term best
    forecasts left-out folds' errors (`fit_input_growth`, on top of the
    distance model) is added under the same rule: only when its own
    leave-one-fold-out gain over the distance model alone exceeds 3 nats
    (`Calibration.input_cv_gains`). On Hoffmann et al.'s isoFLOP runs the
    rolling folds under-forecast the loss of their largest models two to
    three standard deviations off while compute distance explains nothing
    (gain -0.2); the `N` term gains 5.1 nats and covers the held-out
    budget's 12.6B and 11.5B models (benchmarks/RESULTS.md).

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
            are reused; leave `x`, `y`, `weights`, `loss`, `delta` out; `frame` may
            still give columns to order the runs by).
        frame, x, y, weights, loss, delta, over_weight, starts, method, max_steps: as in `scalejax.fit`.
        by: what orders the runs by scale: `"compute"` (`k N D`, from the law's inputs
            N and D, from columns `N` and `D` of `frame`, or from those the fit's data
            kept, `Data.sizes`), a law input, or a column of `frame` (e.g. a
            checkpoint's compute for a law of loss). Rows whose kept N or D is
            missing (an anchor row, which is no run) are fitted in every fold and
            never forecast.
        direction: `1` to forecast beyond the largest runs (fit the runs below each
            cut-off), `-1` beyond the smallest (fit the runs above; e.g. a law of
            accuracy in loss, forecast at lower loss).
        cutoffs: fractions of the runs (ranked by the key) fitted in each fold.
        noise: the noise model's kind (`"auto"` or one of `NOISE_KINDS`; see `fit_noise`).
        distance_scale: `"auto"` (chosen by leave-one-fold-out gain), `"absolute"` or `"relative"`.
        solver: a `SolverConfig` for the folds' lanes (default: warm lanes, exact Huber
            curvature and damping 1e-5, as the bootstrap's).
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
        Gneiting & Raftery 2007, Strictly Proper Scoring Rules, Prediction, and Estimation (JASA);
        Geisser & Eddy 1979, A predictive approach to model selection (JASA): pseudo-Bayes factors;
        Kass & Raftery 1995, Bayes factors (JASA).
    """
    start_time = time.perf_counter()
    if direction not in (1, -1):
        raise ScalejaxError(
            f"direction must be 1 (beyond the largest runs) or -1 (beyond the smallest), got {direction!r}"
        )
    if distance_scale not in (*DISTANCE_SCALES, "auto"):
        raise ScalejaxError(f"distance_scale must be 'auto', 'absolute' or 'relative', got {distance_scale!r}")
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
    # Rows without a key (an anchor row of a table whose runs have N and D) are no runs: every fold
    # fits them and none forecasts them; the noise models leave them out.
    keyed = np.isfinite(key)
    if not keyed.any():
        raise ScalejaxError(f"no run has a value of {by} to order the runs by; give N and D (or {by}) for the runs")
    key_or_any = np.where(keyed, key, np.nanmedian(key))
    tpp = noise_features(data.x, by=None).get("tokens_per_param")
    signed = direction * key
    live = data.weights > 0
    runs = live & keyed
    target = data.target(loss_.log_scale)
    noise_model = fit_noise(
        base.residuals,
        key_or_any,
        tokens_per_param=tpp,
        weights=np.where(keyed, data.weights, 0.0),
        n_params=p,
        kind=noise,
        by=by,
        flops_per_param_token=flops_per_param_token,
    )
    lever_all = float(np.ptp(key[runs]))
    # Inputs whose own extrapolation may add error (a model larger than any fitted one): positive on every run.
    inputs = [
        name
        for name in law_.inputs
        if name not in (by, GROUP_INPUT)  # a joint law's group codes are labels, not a scale
        and np.all(np.isfinite(data.x[name][runs]))
        and np.all(data.x[name][runs] > 0)
        and np.ptp(np.log10(data.x[name][runs])) > 0
    ]
    folds = [
        (threshold, fit_mask | (live & ~keyed), ahead)
        for threshold, fit_mask, ahead in _fold_masks(signed, runs, cutoffs, min_fit=p + 2)
        if np.ptp(key[fit_mask]) >= MIN_LEVER_SHARE * lever_all and lever_all > 0
    ]
    if len(folds) < 2:
        raise ScalejaxError(
            f"a rolling backtest needs at least two cut-offs with more than {p + 1} runs below them, spanning at "
            f"least a tenth of the range of {by}; {int(runs.sum())} runs give {len(folds)}: add runs, or leave the "
            "intervals uncalibrated (calibration=None)"
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
        lever = float(np.ptp(key[fit_mask & keyed]))
        row_info = {
            "cutoff": threshold,
            "n_fit": int(fit_mask.sum()),
            "n_forecast": int(ahead.sum()),
            "lever": lever,
            "converged": bool(converged[i]),
            "used": False,
        }
        fold_rows.append(row_info)
        if not converged[i] or not np.all(np.isfinite(pred[i][live])):
            continue
        w = np.where(fit_mask, data.weights, 0.0)
        r = pred[i] - target
        j_fit = jac[i][fit_mask]
        info = j_fit.T @ (j_fit * w[fit_mask, None])
        if not np.all(np.isfinite(info)) or fit_mask.sum() <= p:
            continue  # a fold whose fit has no finite curvature (or no residual freedom) gives no errors
        s2 = float(np.sum(w[fit_mask] * r[fit_mask] ** 2) / (fit_mask.sum() - p))
        try:
            cov = s2 * np.linalg.pinv(info)
        except np.linalg.LinAlgError:
            continue
        try:
            fold_noise = fit_noise(
                r,
                key_or_any,
                tokens_per_param=tpp,
                weights=np.where(keyed, w, 0.0),
                n_params=p,
                kind=noise_model.kind,
                by=by,
            )
        except ScalejaxError:  # an exact fit of the fold: no scatter to measure
            continue
        row_info["used"] = True
        idx = np.flatnonzero(ahead)
        sd_param = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", jac[i][idx], cov, jac[i][idx]), 0.0, None))
        sigma = fold_noise.scale(key[idx], None if tpp is None else tpp[idx])
        edge = signed[fit_mask & keyed].max()
        outside = {}
        for name in inputs:
            fitted = np.log10(data.x[name][fit_mask & keyed])
            outside[name] = _outside(data.x[name][idx], (fitted.min(), fitted.max()))
        for j, row in enumerate(idx):
            error_rows.append(
                {
                    **{f"distance_{name}": float(outside[name][j]) for name in inputs},
                    "fold": i,
                    "row": data.index[row] if data.index is not None else row,
                    "distance": float(signed[row] - edge),
                    "lever": lever,
                    "error": float(r[row]),
                    "sd_param": float(sd_param[j]),
                    "sigma": float(sigma[j]),
                    "dof": float(fit_mask.sum() - p),
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
    e, sd, d, fold, dof = (errors[c].to_numpy() for c in ("error", "sd", "distance", "fold", "dof"))
    units = {"absolute": d, "relative": d / errors["lever"].to_numpy()}
    scales = DISTANCE_SCALES if distance_scale == "auto" else (distance_scale,)
    growth = {s: _fold_growth(e, sd, units[s], fold, fold_weight, dof) for s in scales}
    cv_gains = {s: _leave_one_fold_out_gain(e, sd, units[s], fold, fold_weight, dof, growth[s]) for s in scales}
    # Ties (e.g. neither helps) go to the absolute distance.
    chosen = max(scales, key=lambda s: (cv_gains[s], s == "absolute"))
    tau0, slope, gain = fit_error_growth(e, sd, units[chosen], weights=fold_weight, dof=dof)
    cv_gain = cv_gains[chosen]
    grows = cv_gain > MIN_CV_GAIN
    if not grows:
        # The growth model does not forecast left-out folds' errors clearly better than no widening:
        # what it found may be chance (a correctly specified law), and the intervals stay as they are.
        tau0 = slope = 0.0
    u_chosen = units[chosen]
    extra = _extra((tau0, slope), u_chosen)
    # An input's own extrapolation (forecasts of models larger than any fitted one), on top of the
    # distance model, kept by the same leave-one-fold-out test.
    input_cv_gains = {
        name: _input_cv_gain(
            e,
            sd,
            u_chosen,
            errors[f"distance_{name}"].to_numpy(),
            fold,
            fold_weight,
            dof,
            growth[chosen] if grows else None,
        )
        for name in inputs
        if np.any(errors[f"distance_{name}"].to_numpy() > 0)
    }
    grown_input, input_slope, input_range = None, 0.0, (0.0, 0.0)
    if input_cv_gains:
        best = max(input_cv_gains, key=lambda name: input_cv_gains[name])
        if input_cv_gains[best] > MIN_CV_GAIN:
            d_in = errors[f"distance_{best}"].to_numpy()
            input_slope, _ = fit_input_growth(e, sd, extra, d_in, weights=fold_weight, dof=dof)
            if input_slope > 0:
                extra = extra + input_slope * d_in
                grown_input = best
                values = np.log10(data.x[best][runs])
                input_range = (float(values.min()), float(values.max()))
    errors["sd_calibrated"] = np.sqrt(errors.sd**2 + extra**2)
    return Calibration(
        by=by,
        edge=float(signed[runs].max()),
        tau0=tau0,
        slope=slope,
        log_scale=loss_.log_scale,
        noise=noise_model,
        gain=gain,
        cv_gain=cv_gain,
        direction=int(direction),
        distance_scale=chosen,
        lever=lever_all,
        cv_gains=tuple((s, float(v)) for s, v in cv_gains.items()),
        folds=pd.DataFrame(fold_rows).rename_axis("fold"),
        errors=errors,
        seconds=time.perf_counter() - start_time,
        columns={k: v for k, v in data.columns.items() if k in law_.inputs and isinstance(v, str)},
        flops_per_param_token=flops_per_param_token,
        input=grown_input,
        input_slope=float(input_slope) if grown_input is not None else 0.0,
        input_range=input_range,
        input_cv_gains=tuple((name, float(v)) for name, v in input_cv_gains.items()),
    )


# Calibrations computed for the analyses' default intervals, by the value of the estimate they
# belong to: an estimate is calibrated once per process, whatever analyses read it.
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_LIMIT = 64


def _fingerprint(base: Fit) -> str:
    """A digest of what a calibration of `base` depends on: its optimum, starts' optima and data."""
    digest = hashlib.blake2b(digest_size=16)
    data = base.data
    arrays = (*(data.x[k] for k in sorted(data.x)), *(data.sizes[k] for k in sorted(data.sizes)))
    for a in (base.center_u, base.solution.u, data.y, data.weights, *arrays):
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        digest.update(str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def calibration_of(draws, *, direction: int = 1, by: str | None = None) -> tuple[Calibration | None, str]:
    """The calibration of an estimate's predictive intervals, computed once per estimate and reused.

    The draws' own `calibration` when they carry one (and it looks the same
    way); else `calibrate` of the point fit they were made around
    (`Draws.point_fit`: a fit itself, a bootstrap's full-data fit, a
    posterior's Huber start) with the runs ordered by compute (laws of N and
    D) or by the law's first positive input, cached by the value of that fit
    (its optimum, its starts' optima and its data).

    Args:
        draws: a `Fit`, `Bootstrap`, `Posterior` or `Draws`.
        direction: `1` to calibrate forecasts beyond the largest runs, `-1` beyond the smallest.
        by: what to order the runs by instead of the law's own scale (e.g. `"compute"` for a
            law of accuracy from loss whose data kept the runs' N and D, `Data.sizes`).

    Returns:
        `(calibration, note)`: the `Calibration`, or None with the reason in `note`.
    """
    own = getattr(draws, "calibration", None)
    if own is not None and own.direction == direction and by in (None, own.by):
        return own, ""
    base = draws.point_fit
    if base is None or base.data is None:
        return None, "the draws carry no point fit with its data, so the rolling backtests cannot be run"
    by = by or scale_by(base.law)
    if by is None:
        return None, f"law {base.law.name!r} has no positive input to order runs by scale"
    key = (base.law, base.loss, by, int(direction), _fingerprint(base))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    try:
        value = (calibrate(base, by=by, direction=direction), "")
    except ScalejaxError as err:
        value = (None, str(err))
    _CACHE[key] = value
    if len(_CACHE) > _CACHE_LIMIT:
        _CACHE.popitem(last=False)
    return value


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
