"""bootstrap(): thousands of resampled fits as one batch of lanes, with intervals on anything derived.

Every scheme is a matrix of per-point weights (or, for `residual`, of
targets), drawn on the host from the seed before any solving, so the draws
do not depend on how lanes are chunked. Each resample is solved from the
full-data optimum and from the best other distinct optima of the start
grid; the best converged lane wins, and resamples with no converged lane
are counted and excluded, never silently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ._draws import Draws, _tails
from ._errors import ScalejaxError
from ._fit import Fit, fit
from ._resample import resample_weights
from .solvers import CONVERGED, SolverConfig, solve_lanes

__all__ = ["SCHEMES", "Bootstrap", "bootstrap", "resample_weights"]

SCHEMES = ("rows", "groups", "bayesian", "residual")


class Bootstrap(Draws):
    """Resampled fits: one draw per resample whose best lane converged.

    Attributes:
        fit: the full-data `Fit` (the central estimate).
        scheme: the resampling scheme.
        n_resamples: resamples drawn.
        n_converged: resamples with a converged fit (the draws).
        n_failed: resamples excluded because no lane converged.
        level: the default interval level.
        objective: `(n_converged,)` objective of each draw on its resample.
        warm_starts: `(k, n_params)` unconstrained warm starts every resample ran from
            (the full-data optimum first).
        n_rescued: resamples where another warm start found a clearly better optimum (by more
            than 1e-6 relative) than the lane from the full-data optimum, or that lane failed.
    """

    def __init__(self, fit_: Fit, u, objective, *, scheme, n_resamples, level, jackknife_u):
        super().__init__(fit_.law, u, columns=fit_.columns)
        self.fit = fit_
        self.scheme = scheme
        self.n_resamples = n_resamples
        self.n_converged = self.u.shape[0]
        self.n_failed = n_resamples - self.n_converged
        self.level = level
        self.objective = objective
        self._jackknife_u = jackknife_u

    @property
    def center(self) -> dict[str, float]:
        """The full-data fit's parameters."""
        return dict(self.fit.params)

    @property
    def center_u(self) -> np.ndarray:
        return np.asarray(self.fit.u[0])

    def __repr__(self) -> str:
        return f"Bootstrap({self.law.name}, scheme={self.scheme!r}: {self.n_converged}/{self.n_resamples} resamples converged)"

    def interval(self, level: float | None = None, method: str = "percentile") -> pd.DataFrame:
        """Interval of each parameter: columns `lo`, `hi` (`method` "percentile" or "bca")."""
        out = self.derived_interval(lambda p: p, level=level, method=method)
        return out.loc[list(self.law.param_names), ["lo", "hi"]].rename_axis("param")

    def table(self, level: float | None = None, method: str = "percentile") -> pd.DataFrame:
        """Full-data value, bootstrap median and standard deviation, and interval of each parameter."""
        samples = self.samples
        out = pd.DataFrame(
            {"value": pd.Series(self.fit.params), "median": samples.median(), "std": samples.std(ddof=1)}
        ).rename_axis("param")
        return out.join(self.interval(level, method))

    def derived_interval(
        self, fn: Callable[[dict], Mapping | object], *, level: float | None = None, method: str = "percentile"
    ) -> pd.DataFrame:
        """Interval of quantities derived from one parameter set by `fn(params) -> dict of scalars`.

        `fn` is vmapped over the draws. Returns a frame indexed by quantity with
        `value` (at the full-data fit), `lo` and `hi`.
        """
        level = self.level if level is None else level
        lo_q, hi_q = _tails(level)
        draws = _as_columns(self.map(fn))
        central = _as_columns(Draws(self.law, self.fit.u).map(fn))
        rows = {}
        for name, values in draws.items():
            theta = float(central[name][0])
            if method == "percentile":
                lo, hi = np.quantile(values, [lo_q, hi_q])
            elif method == "bca":
                jack = _as_columns(Draws(self.law, self._jackknife()).map(fn))[name]
                lo, hi = _bca(values, theta, jack, lo_q, hi_q)
            else:
                raise ScalejaxError(f"unknown interval method {method!r}; choose 'percentile' or 'bca'")
            rows[name] = {"value": theta, "lo": float(lo), "hi": float(hi)}
        return pd.DataFrame.from_dict(rows, orient="index")

    def predict(self, new, level: float | None = None) -> pd.DataFrame:
        """Predicted y at the rows of `new`: `y` from the full-data fit, `lo` and `hi` over the draws."""
        level = self.level if level is None else level
        lo_q, hi_q = _tails(level)
        draws = self.predict_draws(new)
        return pd.DataFrame(
            {"y": self.fit.predict(new), "lo": np.quantile(draws, lo_q, axis=0), "hi": np.quantile(draws, hi_q, axis=0)}
        )

    def _jackknife(self) -> np.ndarray:
        if self._jackknife_u is None:
            self._jackknife_u = _jackknife_fits(self.fit, self.scheme)
        return self._jackknife_u


def _as_columns(out) -> dict[str, np.ndarray]:
    if isinstance(out, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in out.items()}
    return {"value": np.asarray(out, dtype=np.float64).reshape(-1)}


def _bca(values, theta, jack, lo_q, hi_q):
    """Efron's bias-corrected and accelerated interval from draws and jackknife estimates."""
    normal = NormalDist()
    frac = np.clip(np.mean(values < theta) + 0.5 * np.mean(values == theta), 1e-6, 1 - 1e-6)
    z0 = normal.inv_cdf(float(frac))
    d = jack.mean() - jack
    denom = 6.0 * np.sum(d**2) ** 1.5
    a = float(np.sum(d**3) / denom) if denom > 0 else 0.0
    qs = []
    for q in (lo_q, hi_q):
        z = normal.inv_cdf(q)
        qs.append(normal.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    return np.quantile(values, qs)


_WARM_CANDIDATES = 256  # distinct objective levels scanned for distinct optima


@functools.partial(jax.jit, static_argnames="law")
def _log_predictions(law, u, x):
    return jax.vmap(lambda row: law.log_predict(law.unpack(row), x))(u)


def _warm_starts(result: Fit, k: int, gap: float) -> np.ndarray:
    """The full-data optimum and up to k-1 other distinct converged optima of the start grid, best first.

    Only optima whose full-data objective is within a factor `1 + gap` of the
    best are used: a resample moves a summed objective by a few percent, so an
    optimum twice as bad cannot become the best, and its lanes would only
    spend steps (boundary optima such as E -> 0 converge slowly).

    Two optima are the same when their predictions on the data agree within
    0.1%: lanes that stopped at different points of one flat valley (say E
    drifting towards 0 along a boundary) are one optimum, not several.
    """
    sol = result.solution
    ok = np.flatnonzero((sol.status == CONVERGED) & np.isfinite(sol.objective))
    order = ok[np.argsort(sol.objective[ok], kind="stable")]
    best = result.objective
    # One representative per objective level above the best, then compare predictions.
    levels = sol.objective[order]
    fresh = np.r_[True, np.diff(levels) > 1e-9 * np.abs(levels[1:])]
    fresh &= (levels > best + 1e-6 * abs(best)) & (levels <= best + gap * abs(best))
    candidates = order[fresh][:_WARM_CANDIDATES]
    # A fixed number of rows, so one compiled function serves every call for a law and data size.
    rows = np.vstack([result.u[:1], sol.u[candidates], np.repeat(result.u[:1], _WARM_CANDIDATES - len(candidates), 0)])
    with jax.enable_x64(True):
        x = {name: jnp.asarray(v) for name, v in result.data.x.items()}
        preds = np.asarray(_log_predictions(result.law, jnp.asarray(rows), x))
    chosen, chosen_pred = [result.u[0]], [preds[0]]
    for i, pred in zip(candidates, preds[1 : 1 + len(candidates)], strict=True):
        if len(chosen) >= k:
            break
        if np.all(np.isfinite(pred)) and all(np.max(np.abs(pred - c)) > 1e-3 for c in chosen_pred):
            chosen.append(sol.u[i])
            chosen_pred.append(pred)
    return np.array(chosen)


# Lanes that start at an optimum of the full data: exact Huber curvature, light initial damping.
WARM = SolverConfig(curvature="exact", damping=1e-5)


def _jackknife_fits(result: Fit, scheme: str) -> np.ndarray:
    """Leave-one-out (point, or group for the groups scheme) optima, warm-started at the full fit."""
    data = result.data
    if scheme == "groups":
        _, codes = np.unique(data.groups.astype(str), return_inverse=True)
        weights = (codes[None, :] != np.arange(codes.max() + 1)[:, None]) * data.weights
    else:
        weights = (1.0 - np.eye(data.n)) * data.weights
    with jax.enable_x64(True):
        sol = solve_lanes(
            result.law,
            result.loss,
            np.repeat(result.u, weights.shape[0], axis=0),
            weights,
            data.x,
            data.target(result.loss.log_scale),
            config=WARM,
        )
    return sol.u[sol.status == CONVERGED]


def bootstrap(
    law,
    frame=None,
    *,
    x=None,
    y=None,
    n: int = 4000,
    seed: int = 0,
    scheme: str = "rows",
    level: float = 0.95,
    weights=None,
    group=None,
    loss: str = "huber",
    delta: float = 1e-3,
    starts=None,
    n_warm_starts: int = 3,
    warm_gap: float = 0.5,
    method: str = "lm",
    max_steps: int = 500,
    lanes_per_call: int | None = None,
    progress: bool | None = None,
) -> Bootstrap:
    """Fit `law` to `n` resamples of the data at once.

    Args:
        law: a `Law` or a built-in law's name; or a `Fit` to resample (its data,
            loss and optimum are reused, and `frame`, `x`, `y`, `weights`,
            `group`, `loss`, `delta` and `starts` must be left out).
        frame, x, y, weights, group, loss, delta, starts, method, max_steps:
            as in `scalejax.fit` (the full-data fit uses `starts`).
        n: number of resamples.
        seed: seed of the resampling; the same seed gives the same draws
            whatever `lanes_per_call` and however many devices run them.
        scheme: `"rows"` (multinomial over runs), `"groups"` (whole groups of
            the `group` column move together), `"bayesian"` (Dirichlet
            weights) or `"residual"` (fitted values plus resampled residuals).
        level: default interval level.
        n_warm_starts: starts per resample: the full-data optimum and up to
            `n_warm_starts - 1` other distinct optima of the start grid.
        warm_gap: other optima are used only if their full-data objective is
            within a factor `1 + warm_gap` of the best (see `Bootstrap.warm_starts`).
        lanes_per_call: lanes stepped together on each device (see `solve_lanes`); results agree to rounding whatever it is.
        progress: show a progress bar (None: only in a terminal or notebook, after 2 s).

    Returns:
        A `Bootstrap`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200)
        >>> list(boot.interval(0.95).columns)
        ['lo', 'hi']
    """
    if not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 2):
        raise ScalejaxError(f"the number of resamples must be an integer >= 2, got {n!r}")
    if not (isinstance(seed, int | np.integer) and seed >= 0):
        raise ScalejaxError(f"seed must be a non-negative integer, got {seed!r}")
    if scheme not in SCHEMES:
        raise ScalejaxError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    _tails(level)
    if isinstance(law, Fit):
        given = {"frame": frame, "x": x, "y": y, "weights": weights, "group": group, "starts": starts}
        clash = [k for k, v in given.items() if v is not None]
        if clash:
            raise ScalejaxError(f"bootstrap of a Fit reuses its data and loss; leave out {', '.join(clash)}")
        result = law
    else:
        result = fit(
            law,
            frame,
            x=x,
            y=y,
            weights=weights,
            group=group,
            loss=loss,
            delta=delta,
            starts=starts,
            method=method,
            max_steps=max_steps,
            progress=progress,
        )
    data, law = result.data, result.law
    rng = np.random.default_rng(seed)
    target = data.target(result.loss.log_scale)
    if scheme == "residual":
        fitted = target - result.residuals
        live = np.flatnonzero(data.weights > 0)
        picks = rng.choice(result.residuals[live], size=(n, data.n), replace=True)
        lane_target = fitted[None, :] + picks
        lane_weights = np.broadcast_to(data.weights, (n, data.n))
    else:
        lane_target = target
        lane_weights = resample_weights(data, n, scheme, rng)

    warm = _warm_starts(result, max(1, int(n_warm_starts)), float(warm_gap))
    k = warm.shape[0]
    u0 = np.tile(warm, (n, 1))
    lane_w = np.repeat(lane_weights, k, axis=0)
    lane_t = lane_target if np.ndim(lane_target) == 1 else np.repeat(lane_target, k, axis=0)
    with jax.enable_x64(True):
        sol = solve_lanes(
            law,
            result.loss,
            u0,
            lane_w,
            data.x,
            lane_t,
            method=method,
            config=WARM._replace(max_steps=int(max_steps)),
            lanes_per_call=lanes_per_call,
            progress=progress,
            desc="bootstrap lanes",
        )
    f = np.where(sol.status == CONVERGED, sol.objective, np.inf).reshape(n, k)
    pick = np.argmin(f, axis=1)
    ok = np.isfinite(f[np.arange(n), pick])
    lanes = np.arange(n) * k + pick
    u = sol.u[lanes[ok]]
    if not ok.any():
        raise ScalejaxError(
            f"no resample converged (of {n}); the full-data fit may be fragile, check fit.status_counts"
        )
    out = Bootstrap(result, u, f[np.arange(n), pick][ok], scheme=scheme, n_resamples=n, level=level, jackknife_u=None)
    out.warm_starts = warm
    # Rescued: the full-data optimum's lane failed, or another warm start found a clearly
    # better optimum (not a tie within the solver's tolerance).
    primary = f[:, 0]
    best_f = f[np.arange(n), pick]
    out.n_rescued = int(np.sum(ok & ~(primary <= best_f + 1e-6 * np.abs(best_f))))
    return out
