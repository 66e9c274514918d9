"""bootstrap(): thousands of resampled fits as one batch of lanes, with intervals on anything derived.

Every scheme is a matrix of per-point weights (or, for `residual` and
`wild`, of targets), drawn on the host from the seed before any solving, so
the draws do not depend on how lanes are chunked. Each resample's own
residuals give its draw of the noise (the full fit's noise model refitted),
and resamples with fewer distinct runs than parameters are counted and warned
about. Each resample is solved from the
full-data optimum and from the best other distinct optima of the start
grid; the best converged lane wins, and resamples with no converged lane
are counted and excluded, never silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from statistics import NormalDist

import equinox as eqx
import jax
import numpy as np
import pandas as pd

from ._data import Data
from ._draws import Draws, map_draws, tails, with_roles
from ._errors import ScalejaxError
from ._fit import Fit, FitWarning, _residual_jacobian, best_lanes, fit, solver_config
from ._law import plain_method
from ._noise import distinct_runs, leverage, noise_draws, noise_features, shortfall
from ._resample import SCHEMES, Resampler, resample_weights
from .solvers import CONVERGED, SolverConfig, require_memory, solve_lanes

__all__ = ["SCHEMES", "Bootstrap", "bootstrap", "resample_weights"]

# Resamples whose weights are held at once while counting distinct runs and refitting the noise.
_CHUNK = 4096


class Bootstrap(Draws):
    """Resampled fits: one draw per resample whose best lane converged.

    The noise draws (`noise`) are each resample's own: the full fit's noise
    model (`noise_model`) refitted to the resample's residuals with its
    weights, so the predictive intervals carry the uncertainty of the noise
    scale too.

    Attributes (beyond those of `Draws`; the central estimate is the full-data fit):
        fit: the full-data `Fit`.
        scheme: the resampling scheme.
        seed: the seed of the resampling.
        n_resamples: resamples drawn.
        n_converged: resamples with a converged fit (the draws).
        n_failed: resamples excluded because no lane converged.
        objective: `(n_converged,)` objective of each draw on its resample.
        warm_starts: `(k, n_params)` unconstrained warm starts every resample ran from
            (the full-data optimum first).
        n_rescued: resamples where another warm start found a clearly better optimum (by more
            than 1e-6 relative) than the lane from the full-data optimum, or that lane failed.
        n_underdetermined: resamples (of `n_resamples`) with fewer distinct runs than the law's
            parameters: their fits are not determined by the data (`stats` and `warnings` say so).
    """

    fit: Fit
    scheme: str = eqx.field(static=True)
    seed: int
    n_resamples: int
    objective: np.ndarray
    warm_starts: np.ndarray
    n_rescued: int
    n_underdetermined: int

    def __init__(
        self,
        fit_: Fit,
        u,
        objective,
        *,
        scheme: str,
        seed: int,
        n_resamples: int,
        warm_starts,
        n_rescued: int,
        level: float,
        noise: Mapping | None = None,
        n_underdetermined: int = 0,
        underdetermined_note: str | None = None,
    ):
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        n_converged = int(u.shape[0])
        if noise is None:  # the full fit's noise for every draw
            noise = {k: np.full(n_converged, v[0]) for k, v in fit_.noise.items()}
        stats = {
            "scheme": scheme,
            "seed": int(seed),
            "n_resamples": int(n_resamples),
            "n_converged": n_converged,
            "n_failed": int(n_resamples) - n_converged,
            "n_rescued": int(n_rescued),
            "n_underdetermined": int(n_underdetermined),
            "noise_model": fit_.stats.get("noise_model"),
            "full_fit": dict(fit_.stats),
        }
        problems = list(fit_.warnings)
        if n_converged < n_resamples:
            problems.append(
                f"{n_resamples - n_converged} of {n_resamples} resamples did not converge and are excluded from the draws"
            )
        if underdetermined_note:
            problems.append(underdetermined_note)
        super().__init__(
            fit_.law,
            u,
            center_u=fit_.center_u,
            noise=noise,
            log_scale=fit_.log_scale,
            noise_model=fit_.noise_model,
            cov_u=None,
            data=fit_.data,
            loss=fit_.loss,
            columns=fit_.columns,
            level=level,
            stats=stats,
            warnings=problems,
        )
        self.fit = fit_
        self.scheme = str(scheme)
        self.seed = int(seed)
        self.n_resamples = int(n_resamples)
        self.objective = np.asarray(objective, dtype=np.float64)
        self.warm_starts = np.atleast_2d(np.asarray(warm_starts, dtype=np.float64))
        self.n_rescued = int(n_rescued)
        self.n_underdetermined = int(n_underdetermined)

    @property
    def n_converged(self) -> int:
        return self.n_draws

    @property
    def n_failed(self) -> int:
        return self.n_resamples - self.n_draws

    @plain_method
    def table(self, level: float | None = None, method: str = "percentile") -> pd.DataFrame:
        """Full-data value, bootstrap median and standard deviation, and interval of each parameter,
        then of each noise parameter (`sigma`, its slopes: each resample's own, see `noise_table`)."""
        samples = self.samples
        out = pd.DataFrame(
            {"value": pd.Series(self.fit.center), "median": samples.median(), "std": samples.std(ddof=1)}
        ).rename_axis("param")
        out = out.join(self.interval(level, method))
        noise = self.noise_table(level)
        if not len(noise):
            return with_roles(self.law, out)
        noise = noise.assign(median=[float(np.nanmedian(self.noise[k])) for k in noise.index]).rename(
            columns={"sd": "std"}
        )
        return with_roles(self.law, pd.concat([out, noise[list(out.columns)]]))

    @plain_method
    def refit(self, data: Data, *, n: int | None = None, seed: int = 0, level: float | None = None) -> Draws:
        """The same bootstrap (scheme, loss) on other data, with at most `n` resamples (0: a point fit)."""
        level = self.level if level is None else level
        starts = self.fit.distinct_optima()
        noise = self.fit.noise_kind
        if n == 0:
            return fit(self.law, data, loss=self.loss, starts=starts, level=level, noise=noise)
        count = self.n_resamples if n is None else min(int(n), self.n_resamples)
        return bootstrap(
            self.law,
            data,
            n=max(count, 2),
            seed=seed,
            scheme=self.scheme,
            loss=self.loss,
            starts=starts,
            level=level,
            noise=noise,
        )

    @plain_method
    def describe(self) -> str:
        return f"bootstrap, {self.scheme} scheme, {self.n_converged}/{self.n_resamples} resamples converged, seed {self.seed}"

    @plain_method
    def _other_interval(self, level: float, method: str) -> pd.DataFrame:
        out = self._other_derived(_identity, (), level, method)
        return out.loc[list(self.law.param_names), ["lo", "hi"]].rename_axis("param")

    @plain_method
    def _other_derived(self, fn, args, level, method):
        if method != "bca":
            raise ScalejaxError(f"unknown interval method {method!r}; choose 'percentile' or 'bca'")
        lo_q, hi_q = tails(level)
        draws = _as_columns(self.map(fn, *args))
        central = _as_columns(map_draws(fn, self.law, self.center_u[None, :], *args))
        jack = _as_columns(map_draws(fn, self.law, _jackknife_fits(self.fit, self.scheme), *args))
        rows = {}
        for name, values in draws.items():
            theta = float(central[name][0])
            lo, hi = _bca(values, theta, jack[name], lo_q, hi_q)
            rows[name] = {"value": theta, "lo": float(lo), "hi": float(hi)}
        return pd.DataFrame.from_dict(rows, orient="index")


def _identity(p):
    return p


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


def _log_prediction(p, law, x):
    return law.log_predict(p, x)


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
    rows = np.vstack([result.u[:1], sol.u[candidates]])
    preds = map_draws(_log_prediction, result.law, rows, result.law, dict(result.data.x))
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
    over_weight: float = 1.0,
    starts=None,
    n_warm_starts: int = 3,
    warm_gap: float = 0.5,
    method: str = "lm",
    max_steps: int | None = None,
    solver: SolverConfig | None = None,
    lanes_per_call: int | None = None,
    noise: str = "auto",
    fixed=None,
    tied=(),
    progress: bool | None = None,
) -> Bootstrap:
    """Fit `law` to `n` resamples of the data at once.

    Args:
        law: a `Law` or a built-in law's name; or a `Fit` to resample (its data,
            loss and optimum are reused, and `frame`, `x`, `y`, `weights`,
            `group`, `loss`, `delta` and `starts` must be left out).
        frame, x, y, weights, group, loss, delta, over_weight, starts, method, max_steps, fixed, tied:
            as in `scalejax.fit` (the full-data fit uses `starts`; every resample keeps `fixed` and `tied`).
        solver: a `SolverConfig` for the resample lanes (default: warm lanes, exact
            Huber curvature, light damping; the full-data fit uses the defaults).
        n: number of resamples.
        seed: seed of the resampling; the same seed gives the same draws
            whatever `lanes_per_call` and however many devices run them.
        scheme: `"rows"` (multinomial over runs), `"groups"` (whole groups of
            the `group` column move together), `"bayesian"` (Dirichlet
            weights), `"residual"` (fitted values plus residuals standardised by
            the noise model's scale, drawn with replacement and rescaled at
            their new run: valid when the scale varies with compute) or
            `"wild"` (each run keeps its own residual times a random sign:
            valid whatever the scale does; Wu 1986, Davidson & Flachaire 2008).
            Both correct residuals for their leverage (`r / sqrt(1 - h)`).
        level: default interval level.
        n_warm_starts: starts per resample: the full-data optimum and up to
            `n_warm_starts - 1` other distinct optima of the start grid.
        warm_gap: other optima are used only if their full-data objective is
            within a factor `1 + warm_gap` of the best (see `Bootstrap.warm_starts`).
        lanes_per_call: lanes stepped together on each device (see `solve_lanes`); results agree to rounding whatever it is.
        noise: the noise model of the full fit (see `scalejax.fit`); each resample refits it.
        progress: show a progress bar (None: only in a terminal or notebook, after 2 s).

    Returns:
        A `Bootstrap`. Warns (`FitWarning`) when some resamples have fewer distinct
        runs than the law has parameters (`n_underdetermined`), with the fix.

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
    tails(level)
    if isinstance(law, Fit):
        given = {
            "frame": frame,
            "x": x,
            "y": y,
            "weights": weights,
            "group": group,
            "starts": starts,
            "fixed": fixed or None,
            "tied": tied or None,
        }
        clash = [k for k, v in given.items() if v is not None]
        if clash:
            raise ScalejaxError(f"bootstrap of a Fit reuses its data and loss; leave out {', '.join(clash)}")
        result = law
        if noise != "auto" and noise != result.noise_kind:
            raise ScalejaxError(f"bootstrap of a Fit keeps its noise model ({result.noise_kind!r}); refit with noise=")
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
            over_weight=over_weight,
            starts=starts,
            method=method,
            max_steps=max_steps,
            level=level,
            noise=noise,
            fixed=fixed,
            tied=tied,
            progress=progress,
        )
    data, law = result.data, result.law
    target = data.target(result.loss.log_scale)
    warm = _warm_starts(result, max(1, int(n_warm_starts)), float(warm_gap))
    k = warm.shape[0]
    require_memory(n * k, law.n_params, what=f"a bootstrap of {n:,} resamples", unit="resamples", per_unit=k)
    # Resample weights (residual and wild schemes: targets) made from the seed for one block of lanes at a time.
    residual = scheme in ("residual", "wild")
    if residual:
        r, jac = _residual_jacobian(law, result.loss, result.center_u, data)
        scale = result.noise_at(data.x)[0] if scheme == "residual" and result.noise_model is not None else None
        # The targets are fitted values plus noise: residuals are predicted minus observed, so flip the sign.
        resamples = Resampler(
            data, scheme, seed, fitted=target + r, residuals=-r, scale=scale, leverage=leverage(jac, data.weights)
        )
    else:
        resamples = Resampler(data, scheme, seed)
    short = _underdetermined(resamples, n, law.n_params, data)
    if short["message"]:
        warnings.warn(f"law {law.name!r}: {short['message']}", FitWarning, stacklevel=2)

    u0 = np.tile(warm, (n, 1))
    with jax.enable_x64(True):
        sol = solve_lanes(
            law,
            result.loss,
            u0,
            data.weights if residual else resamples.weights,
            data.x,
            resamples.targets if residual else target,
            problem=np.repeat(np.arange(n), k),
            method=method,
            config=solver_config(solver, max_steps, base=WARM),
            lanes_per_call=lanes_per_call,
            progress=progress,
            desc="bootstrap lanes",
        )
    lanes, ok = best_lanes(law, sol, k)
    if not ok.any():
        raise ScalejaxError(
            f"no resample converged (of {n}); the full-data fit may be fragile, check fit.status_counts"
        )
    f = np.where(sol.status == CONVERGED, sol.objective, np.inf).reshape(n, k)
    best_f = sol.objective[lanes]
    # Rescued: the full-data optimum's lane failed, or another warm start found a clearly
    # better optimum (not a tie within the solver's tolerance).
    primary = f[:, 0]
    n_rescued = int(np.sum(ok & ~(primary <= best_f + 1e-6 * np.abs(best_f))))
    u = sol.u[lanes[ok]]
    return Bootstrap(
        result,
        u,
        best_f[ok],
        scheme=scheme,
        seed=int(seed),
        n_resamples=n,
        warm_starts=warm,
        n_rescued=n_rescued,
        level=level,
        noise=_resample_noise(result, u, resamples, np.flatnonzero(ok), target),
        n_underdetermined=short["n_underdetermined"],
        underdetermined_note=short["message"],
    )


def _prediction(p, law, x):
    return law.predict(p, x)


def _underdetermined(resamples: Resampler, n: int, n_params: int, data: Data) -> dict:
    """`underdetermined` over all `n` resamples, their weights made a chunk at a time."""
    groups = data.groups if resamples.scheme == "groups" else None
    distinct = np.concatenate(
        [distinct_runs(resamples.weights(s, min(n, s + _CHUNK)), groups) for s in range(0, n, _CHUNK)]
    )
    n_runs = data.n if groups is None else int(np.unique(np.asarray(groups).astype(str)).size)
    return shortfall(distinct, n_params, n_runs)


def _resample_noise(result: Fit, u, resamples: Resampler, kept: np.ndarray, target) -> dict:
    """Each resample's draw of the noise: the full fit's noise model refitted to its own residuals and weights.

    `kept` are the resamples that converged (the rows of `u`); their weights (and
    targets) are made again from the seed a chunk at a time. Resamples without
    residual degrees of freedom keep the full fit's values.
    """
    model = result.noise_model
    if model is None:
        return {k: np.full(u.shape[0], v[0]) for k, v in result.noise.items()}
    fn = _log_prediction if result.loss.log_scale else _prediction
    features = noise_features(result.data.x, model.by)
    parts = []
    for s in range(0, kept.size, _CHUNK):
        rows = kept[s : s + _CHUNK]
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        weights = resamples.weights(lo, hi)[rows - lo]
        tgt = resamples.targets(lo, hi)[rows - lo] if resamples.scheme in ("residual", "wild") else target
        pred = map_draws(fn, result.law, u[s : s + _CHUNK], result.law, dict(result.data.x))
        parts.append(noise_draws(model, pred - tgt, weights, features, result.law.n_params))
    draws = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {k: np.where(np.isfinite(v), v, result.noise[k][0]) for k, v in draws.items()}
