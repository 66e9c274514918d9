"""Noise models of a law's residuals, and how the bootstrap resamples noise.

A noise model says how far a new run's measured value (log y for the
log-scale losses) scatters around the law: a constant scale, or a scale
log-linear in log10 of compute (or of one input), and for laws of N and D also
in log10 of tokens per parameter, chosen by the data through a
cross-validated log score. The resampling helpers build the targets of the
residual and wild bootstrap schemes from a noise model, and count the distinct
runs of each resample so that under-determined resamples are reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._errors import DataError, ScalejaxError

__all__ = [
    "NOISE_KINDS",
    "NoiseModel",
    "default_by",
    "distinct_runs",
    "fit_noise",
    "leverage",
    "noise_draws",
    "noise_features",
    "noise_of",
    "resample_targets",
    "scale_by",
    "scale_key",
    "underdetermined",
]

NOISE_KINDS = ("constant", "log_linear", "log_linear_tpp")
# Fewest weighted runs per coefficient of a scale model for `kind="auto"` to consider it:
# below this the cross-validated comparison of scale models is noise itself.
MIN_RUNS_PER_COEFFICIENT = 10
_LOG_2PI = float(np.log(2 * np.pi))


def scale_key(x: Mapping[str, np.ndarray], by: str, *, flops_per_param_token: float = 6.0) -> np.ndarray:
    """log10 of the quantity runs are ordered by: compute `k N D`, or one input (or column) of `x`.

    Args:
        x: input (or column) name -> values.
        by: `"compute"` (needs `N` and `D` in `x`) or the name of a positive input or column.
        flops_per_param_token: `k` in `C = k N D`.

    Returns:
        `(m,)` float64 log10 values.
    """
    if by == "compute":
        if not {"N", "D"} <= set(x):
            raise DataError(f"by='compute' needs inputs N and D (C = k N D); got {', '.join(map(str, x))}")
        value = flops_per_param_token * np.asarray(x["N"], dtype=np.float64) * np.asarray(x["D"], dtype=np.float64)
    elif by in x:
        value = np.asarray(x[by], dtype=np.float64)
    else:
        raise DataError(f"by={by!r} is neither 'compute' nor one of {', '.join(map(str, x))}")
    value = np.atleast_1d(value)
    if not np.all(np.isfinite(value) & (value > 0)):
        raise DataError(f"by={by!r} needs finite positive values (its log10 measures scale); some are not")
    return np.log10(value)


# The covariates of each kind: log10 of the key (compute or an input) and, for laws of N and D,
# log10 of tokens per parameter D / N (where a law such as Chinchilla's misfits most: runs at about
# one token per parameter scatter two to four times as much as the rest in Hoffmann et al.'s runs).
KIND_COVARIATES = {"constant": (), "log_linear": ("key",), "log_linear_tpp": ("key", "tokens_per_param")}
# Names of the per-draw noise parameters that `Draws.noise` carries for each covariate.
SLOPE_NAMES = {"key": "sigma_slope", "tokens_per_param": "sigma_slope_tpp"}


def noise_features(x: Mapping[str, np.ndarray], by: str | None, *, flops_per_param_token: float = 6.0) -> dict:
    """The noise model's covariates at points `x`: `key` (log10 of compute or of `by`) and, when `x` has
    `N` and `D`, `tokens_per_param` (log10 D / N). Each `(m,)`."""
    if by is None:  # no key: a constant scale's covariates
        m = np.atleast_1d(np.asarray(next(iter(x.values())))).shape[0] if x else 1
        out = {"key": np.zeros(m)}
    else:
        out = {"key": scale_key(x, by, flops_per_param_token=flops_per_param_token)}
    if {"N", "D"} <= set(x):
        n, d = (np.atleast_1d(np.asarray(x[k], dtype=np.float64)) for k in ("N", "D"))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["tokens_per_param"] = np.log10(d) - np.log10(n)
    return out


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """The observation noise of a law's fitted-scale residuals: `log sigma(x) = coef[0] + sum_j coef[j] (z_j - center_j)`.

    The covariates `z` are log10 of compute (or of the input `by`) for
    `log_linear`, plus log10 of tokens per parameter `D / N` for
    `log_linear_tpp`; `constant` has none. Outside the range of each
    covariate it was fitted on, the covariate is held at the nearer end: the
    growth of forecast errors beyond the data is measured by
    `scalejax.analysis.calibrate`, not extrapolated from the residuals.

    A frozen value of plain numbers, compared and hashed by value, so it can
    be a static field of `Draws` and be saved as JSON.

    Attributes:
        kind: `"constant"`, `"log_linear"` or `"log_linear_tpp"` (see `KIND_COVARIATES`).
        by: `"compute"` or the input the key is (None: no key, a constant scale).
        coef: `(log sigma at the centres, slope per decade of each covariate...)`.
        centers: the weighted mean of each covariate (the key's first; the key's also for `constant`).
        ranges: `(lo, hi)` of each covariate over the fitted runs.
        cov_entries: the asymptotic covariance of `coef` (nested tuples); `cov` as an array.
        n_runs: weighted runs the scale was estimated from.
        cv_scores: `((kind, mean cross-validated Gaussian log density per run), ...)` of the
            kinds compared (empty when only one was fitted); `scores` as a dict.
        flops_per_param_token: `k` in `C = k N D`, with `by="compute"`.
    """

    kind: str
    by: str | None
    coef: tuple[float, ...]
    centers: tuple[float, ...]
    ranges: tuple[tuple[float, float], ...]
    cov_entries: tuple[tuple[float, ...], ...]
    n_runs: int
    cv_scores: tuple[tuple[str, float], ...] = ()
    flops_per_param_token: float = 6.0

    @property
    def covariates(self) -> tuple[str, ...]:
        return KIND_COVARIATES[self.kind]

    @property
    def log_sigma(self) -> float:
        """log of the scale at the centres of the covariates."""
        return self.coef[0]

    @property
    def slope(self) -> float:
        """Change of log sigma per decade of the key (0 for `constant`)."""
        return self.coef[1] if len(self.coef) > 1 else 0.0

    @property
    def center(self) -> float:
        """The weighted mean key of the fitted runs."""
        return self.centers[0]

    @property
    def key_range(self) -> tuple[float, float]:
        """`(lo, hi)` keys of the fitted runs."""
        return self.ranges[0]

    @property
    def cov(self) -> np.ndarray:
        """Asymptotic covariance of `coef`: `(1 + covariates, 1 + covariates)`."""
        return np.array(self.cov_entries, dtype=np.float64)

    @property
    def scores(self) -> dict[str, float]:
        """Kind -> mean cross-validated log density per run (NaN for a kind not compared)."""
        return {k: dict(self.cv_scores).get(k, float("nan")) for k in NOISE_KINDS}

    @property
    def draw_names(self) -> tuple[str, ...]:
        """The names of the noise parameters per draw: `sigma` and one slope per covariate."""
        return ("sigma", *(SLOPE_NAMES[c] for c in self.covariates))

    def _design(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """`(m, k)` covariates at points, each held in its fitted range and centred."""
        cols = []
        for j, name in enumerate(self.covariates):
            lo, hi = self.ranges[j]
            cols.append(np.clip(np.asarray(features[name], dtype=np.float64), lo, hi) - self.centers[j])
        m = np.atleast_1d(np.asarray(features["key"])).shape[0]
        return np.stack(cols, axis=1) if cols else np.zeros((m, 0))

    def scale(self, key, tokens_per_param=None) -> np.ndarray:
        """Noise standard deviation at log10 keys `key` (and log10 tokens per parameter): `(m,)`."""
        shape = np.shape(key)
        key = np.atleast_1d(np.asarray(key, dtype=np.float64)).reshape(-1)
        features = {"key": key}
        if "tokens_per_param" in self.covariates:
            if tokens_per_param is None:
                raise ScalejaxError("this noise model varies with tokens per parameter: pass tokens_per_param=")
            features["tokens_per_param"] = np.broadcast_to(np.asarray(tokens_per_param, dtype=np.float64), key.shape)
        return np.exp(self.coef[0] + self._design(features) @ np.asarray(self.coef[1:])).reshape(shape)

    def features(self, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The covariates at points `x` (law inputs, or columns, by name)."""
        out = noise_features(x, self.by, flops_per_param_token=self.flops_per_param_token)
        if "tokens_per_param" in self.covariates and "tokens_per_param" not in out:
            raise DataError("this noise model varies with tokens per parameter: the points need N and D")
        return out

    def sigma(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Noise standard deviation at the points `x` (law inputs, or columns, by name): `(m,)`."""
        return np.exp(self.coef[0] + self._design(self.features(x)) @ np.asarray(self.coef[1:]))

    def sigma_draws(self, noise: Mapping[str, np.ndarray], x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per-draw noise scales at the points `x`: `(S, m)`, from draws of the noise parameters.

        `noise["sigma"]` is each draw's scale at the centres and `noise["sigma_slope"]`,
        `noise["sigma_slope_tpp"]` (0 when absent) its slopes per decade of each covariate.
        """
        design = self._design(self.features(x))
        sigma = np.asarray(noise["sigma"], dtype=np.float64).reshape(-1, 1)
        log = np.zeros((sigma.shape[0], design.shape[0]))
        for j, name in enumerate(self.covariates):
            slope = np.asarray(noise.get(SLOPE_NAMES[name], np.zeros(sigma.shape[0])), dtype=np.float64)
            log = log + slope.reshape(-1, 1) * design[None, :, j]
        return sigma * np.exp(log)

    def draws(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """`n` draws of the noise parameters from their asymptotic normal distribution.

        Returns:
            `{"sigma": (n,), <slope name>: (n,) ...}`: the scale at the centres and each
            slope per decade, in the form `Draws.noise` carries them.
        """
        rng = np.random.default_rng(seed)
        z = rng.multivariate_normal(np.asarray(self.coef), self.cov, size=int(n), method="eigh")
        out = {"sigma": np.exp(z[:, 0])}
        for j, name in enumerate(self.covariates):
            out[SLOPE_NAMES[name]] = z[:, 1 + j]
        return out

    def at_draws(self, n: int) -> dict[str, np.ndarray]:
        """The estimate itself as `n` identical draws of the noise parameters."""
        out = {"sigma": np.full(int(n), float(np.exp(self.coef[0])))}
        for j, name in enumerate(self.covariates):
            out[SLOPE_NAMES[name]] = np.full(int(n), float(self.coef[1 + j]))
        return out

    def table(self) -> pd.DataFrame:
        """One row per candidate kind: its cross-validated log score, and which was chosen."""
        rows = {k: {"cv_log_score": v, "chosen": k == self.kind} for k, v in self.scores.items()}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("kind")

    def summary(self) -> dict:
        """The model in plain numbers (for `Draws.stats`): kind, by, sigma at the centres, slopes, scores."""
        out = {"kind": self.kind, "by": self.by, "sigma": float(np.exp(self.coef[0]))}
        for j, name in enumerate(self.covariates):
            out[SLOPE_NAMES[name]] = float(self.coef[1 + j])
        out["cv_scores"] = dict(self.cv_scores)
        return out

    def __repr__(self) -> str:
        sigma = float(np.exp(self.log_sigma))
        if self.kind == "constant":
            return f"NoiseModel(constant, sigma={sigma:.4g}, {self.n_runs} runs)"
        slopes = f"slope={self.slope:+.3g} per decade of {self.by}"
        if self.kind == "log_linear_tpp":
            slopes += f", {self.coef[2]:+.3g} per decade of tokens per parameter"
        return f"NoiseModel({self.kind}, sigma={sigma:.4g} at 10^{self.center:.3g}, {slopes}, {self.n_runs} runs)"


def _fit_scale(r2: np.ndarray, design: np.ndarray, w: np.ndarray, dof_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood coefficients of `log sigma = [1, design] coef` for zero-mean Gaussian residuals.

    `r2` are squared residuals, `design` the `(n, k)` centred covariates, `w`
    weights. The negative log-likelihood is convex (a gamma GLM of `r^2` with a
    log link), so Newton's method from the constant fit converges.
    `dof_ratio = n / (n - p)` corrects the scale for the law's fitted parameters.

    Returns:
        `(coef, cov)`: `(1 + k,)` and its expected-information covariance.
    """
    coef, _ = _fit_scale_batch(r2[None, :], design, w[None, :], np.atleast_1d(dof_ratio))
    x = np.column_stack([np.ones(design.shape[0]), design])
    # Expected information of the coefficients: 2 X^T W X.
    cov = np.linalg.pinv(2.0 * x.T @ (x * w[:, None]))
    return coef[0], cov


def _fit_scale_batch(r2, design, w, dof_ratio, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """`_fit_scale` for many residual vectors at once: `r2`, `w` `(S, n)`, `design` `(n, k)` -> `(S, 1 + k)`.

    Newton steps with step halving, per row; rows stop when their step is below 1e-12.
    Returns the coefficients and whether each row converged.
    """
    r2 = np.maximum(np.asarray(r2, dtype=np.float64), 1e-300)
    w = np.asarray(w, dtype=np.float64)
    x = np.column_stack([np.ones(design.shape[0]), design])
    total = np.sum(w, axis=1)
    coef = np.zeros((r2.shape[0], x.shape[1]))
    coef[:, 0] = 0.5 * np.log(np.sum(w * r2, axis=1) / total)
    done = np.ones(r2.shape[0], dtype=bool) if x.shape[1] == 1 else np.zeros(r2.shape[0], dtype=bool)

    eye = 1e-12 * np.eye(x.shape[1])
    for _ in range(max_iter):
        # Only the rows still moving are stepped (a bootstrap's thousands of rows mostly stop early).
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        c, wa, ra = coef[active], w[active], r2[active]
        eta = c @ x.T
        ratio = ra * np.exp(-2.0 * eta)
        grad = (wa * (1.0 - ratio)) @ x
        hess = 2.0 * np.matmul(((wa * ratio)[:, :, None] * x).transpose(0, 2, 1), x) + eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        # Halve each row's step until its (convex) objective falls: robust to a first step that overshoots.
        base = np.sum(wa * (eta + 0.5 * ratio), axis=1)
        t = np.ones(active.size)
        pending = np.ones(active.size, dtype=bool)
        for _ in range(30):
            rows = np.flatnonzero(pending)
            if rows.size == 0:
                break
            trial = (c[rows] - t[rows, None] * step[rows]) @ x.T
            worse = np.sum(wa[rows] * (trial + 0.5 * ra[rows] * np.exp(-2.0 * trial)), axis=1) > base[rows]
            t[rows[worse]] *= 0.5
            pending[rows[~worse]] = False
        moved = t[:, None] * step
        coef[active] = c - moved
        done[active] = np.max(np.abs(moved), axis=1) < 1e-12
    coef[:, 0] += 0.5 * np.log(np.asarray(dof_ratio, dtype=np.float64))
    return coef, done


def _log_density(r2, design, coef) -> np.ndarray:
    log_s = coef[0] + design @ coef[1:]
    return -0.5 * _LOG_2PI - log_s - 0.5 * r2 * np.exp(-2.0 * log_s)


def fit_noise(
    residuals,
    key,
    *,
    tokens_per_param=None,
    weights=None,
    n_params: int = 0,
    kind: str = "auto",
    by: str | None = "compute",
    n_folds: int = 5,
    flops_per_param_token: float = 6.0,
) -> NoiseModel:
    """Fit the noise scale of residuals, constant or log-linear in its covariates, chosen by cross-validated log score.

    Args:
        residuals: `(n,)` fitted-scale residuals of a law (log y for the log-scale losses).
        key: `(n,)` log10 of the quantity the scale may vary with (see `scale_key`).
        tokens_per_param: `(n,)` log10 of D / N (laws of N and D), or None: makes
            `log_linear_tpp` (log-linear in the key and in tokens per parameter) a candidate.
        weights: `(n,)` point weights (0 drops a point); default 1.
        n_params: parameters the law fitted to these residuals (a degrees-of-freedom correction).
        kind: one of `NOISE_KINDS` or `"auto"`: the candidate with the highest mean
            Gaussian log density of held-out residuals over `n_folds` folds (runs dealt
            to folds by their rank in `key`, so that every fold spans the range). A
            candidate needs at least 10 weighted runs per coefficient (`log_linear` 20,
            `log_linear_tpp` 30); with fewer `auto` does not consider it.
        by: what `key` is, recorded in the model (`"compute"` or an input name).
        n_folds: folds of the cross-validation.
        flops_per_param_token: `k` in `C = k N D`, recorded for `NoiseModel.sigma`.

    Returns:
        A `NoiseModel`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> key = np.linspace(18, 22, 400)
        >>> model = fit_noise(0.01 * 10 ** (0.2 * (key - 20)) * rng.standard_normal(400), key)
        >>> model.kind, round(float(model.slope / np.log(10)), 1)
        ('log_linear', 0.2)

    References:
        Carroll & Ruppert 1988, Transformation and Weighting in Regression (variance functions, ch. 3);
        Gneiting & Raftery 2007, Strictly Proper Scoring Rules, Prediction, and Estimation (the log score).
    """
    r = np.asarray(residuals, dtype=np.float64).reshape(-1)
    key = np.asarray(key, dtype=np.float64).reshape(-1)
    w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    tpp = None if tokens_per_param is None else np.asarray(tokens_per_param, dtype=np.float64).reshape(-1)
    if not (r.shape == key.shape == w.shape) or (tpp is not None and tpp.shape != r.shape):
        raise ScalejaxError(f"residuals, key and weights differ in length ({r.size}, {key.size}, {w.size})")
    if kind not in (*NOISE_KINDS, "auto"):
        raise ScalejaxError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)} or 'auto'")
    live = (w > 0) & np.isfinite(r) & np.isfinite(key)
    if tpp is not None:
        live &= np.isfinite(tpp)
    r, key, w = r[live], key[live], w[live]
    tpp = None if tpp is None else tpp[live]
    if kind == "log_linear_tpp" and tpp is None:
        raise ScalejaxError("noise kind 'log_linear_tpp' needs tokens per parameter (a law of N and D)")
    n = int(live.sum())
    if n - n_params <= 0:
        raise ScalejaxError(
            f"{n} weighted runs for {n_params} parameters leave no residual degrees of freedom to estimate the noise"
        )
    if not np.any(r != 0):
        raise ScalejaxError("every residual is zero: the noise scale is not identified (an exact fit)")
    r2 = np.maximum(r**2, 1e-300)
    columns = {"key": key} if tpp is None else {"key": key, "tokens_per_param": tpp}
    centers = {name: float(np.average(v, weights=w)) for name, v in columns.items()}

    def design(k, rows=slice(None)):
        names = KIND_COVARIATES[k]
        if not names:
            return np.zeros((r2[rows].shape[0], 0))
        return np.stack([columns[c][rows] - centers[c] for c in names], axis=1)

    dof_ratio = n / (n - n_params)
    if kind == "auto":
        candidates = tuple(
            k
            for k in NOISE_KINDS
            if k == "constant"
            or (
                all(c in columns and np.ptp(columns[c]) > 0 for c in KIND_COVARIATES[k])
                and n >= MIN_RUNS_PER_COEFFICIENT * (1 + len(KIND_COVARIATES[k]))
            )
        )
    else:
        candidates = (kind,)
    scores = {k: float("nan") for k in NOISE_KINDS}
    if len(candidates) > 1:
        fold = np.empty(n, dtype=int)
        fold[np.argsort(key, kind="stable")] = np.arange(n) % n_folds
        for k in candidates:
            dens = np.empty(n)
            for f in range(n_folds):
                held = fold == f
                coef, _ = _fit_scale(r2[~held], design(k, ~held), w[~held], dof_ratio)
                dens[held] = _log_density(r2[held], design(k, held), coef)
            scores[k] = float(np.average(dens, weights=w))
        # Ties go to the simpler model.
        chosen = max(candidates, key=lambda k: (scores[k], -len(KIND_COVARIATES[k])))
    else:
        chosen = candidates[0]
    coef, cov = _fit_scale(r2, design(chosen), w, dof_ratio)
    names = ("key", *(c for c in KIND_COVARIATES[chosen] if c != "key"))
    names = names if chosen != "constant" else ("key",)
    compared = tuple((k, scores[k]) for k in NOISE_KINDS if np.isfinite(scores[k]))
    return NoiseModel(
        kind=chosen,
        by=by,
        coef=tuple(float(v) for v in coef),
        centers=tuple(centers[c] for c in names),
        ranges=tuple((float(columns[c].min()), float(columns[c].max())) for c in names),
        cov_entries=tuple(tuple(float(v) for v in row) for row in cov),
        n_runs=int(n),
        cv_scores=compared,
        flops_per_param_token=flops_per_param_token,
    )


def noise_draws(model: NoiseModel, residuals, weights, features: Mapping[str, np.ndarray], n_params: int) -> dict:
    """The noise parameters of many residual vectors under `model`'s kind: one draw per row.

    Each row of `residuals` (`(S, n)`, fitted scale) with its `weights` (`(S, n)`, a
    resample's weights) gets the maximum-likelihood scale of `model`'s kind, with
    the covariates at the runs (`features`, see `noise_features`) centred as in
    `model`: the bootstrap's draws of the noise, one per resample.

    Returns:
        `{"sigma": (S,), <slope names>: (S,)}` (see `NoiseModel.draw_names`); NaN for a
        row without residual degrees of freedom.
    """
    r = np.atleast_2d(np.asarray(residuals, dtype=np.float64))
    w = np.broadcast_to(np.atleast_2d(np.asarray(weights, dtype=np.float64)), r.shape)
    live = (w > 0) & np.isfinite(r)
    w = np.where(live, w, 0.0)
    r = np.where(live, r, 0.0)
    total = np.sum(w, axis=1)
    ok = total > n_params
    out = {name: np.full(r.shape[0], np.nan) for name in model.draw_names}
    if ok.any():
        design = model._design(features)
        coef, _ = _fit_scale_batch(r[ok] ** 2, design, w[ok], total[ok] / (total[ok] - n_params))
        out["sigma"][ok] = np.exp(coef[:, 0])
        for j, name in enumerate(model.covariates):
            out[SLOPE_NAMES[name]][ok] = coef[:, 1 + j]
    return out


def noise_of(fit, *, by: str = "compute", kind: str = "auto", flops_per_param_token: float = 6.0) -> NoiseModel:
    """The noise model of a `Fit`'s residuals (see `fit_noise`), keyed by compute or by one of its inputs.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> noise_of(fit).kind
        'constant'
    """
    features = noise_features(fit.data.x, by, flops_per_param_token=flops_per_param_token)
    return fit_noise(
        fit.residuals,
        features["key"],
        tokens_per_param=features.get("tokens_per_param"),
        weights=fit.data.weights,
        n_params=fit.law.n_params,
        kind=kind,
        by=by,
        flops_per_param_token=flops_per_param_token,
    )


def leverage(jacobian: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Diagonal of the weighted Gauss-Newton hat matrix `W^1/2 J (J^T W J)^+ J^T W^1/2`: `(n,)` in [0, 1].

    `jacobian` is `(n, p)`, the derivative of the fitted-scale predictions with
    respect to the parameters at the optimum. Residuals shrink by about
    `sqrt(1 - h)` at points of leverage `h`; the bootstrap schemes undo it.
    """
    jac = np.asarray(jacobian, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    info = jac.T @ (jac * w[:, None])
    h = w * np.einsum("ij,jk,ik->i", jac, np.linalg.pinv(info), jac)
    return np.clip(h, 0.0, 1.0)


def resample_targets(
    fitted,
    residuals,
    weights,
    n: int,
    scheme: str,
    rng: np.random.Generator,
    *,
    scale=None,
    leverage=None,
    multipliers: str = "rademacher",
) -> np.ndarray:
    """`(n, n_points)` targets of the residual or wild bootstrap: fitted values plus resampled noise.

    Residuals are first divided by `sqrt(1 - h)` (leverage `h`, default 0),
    which undoes the shrinking of residuals at influential runs (the HC2
    correction of Davidson & Flachaire 2008).

    - `"residual"`: residuals standardised by the noise scale at their run
      (`scale`, default constant) and centred, drawn with replacement over the
      weighted runs and multiplied by the scale at the run they land on
      (heteroscedastic residual bootstrap; with a constant scale and no
      leverage, the classical residual bootstrap up to centring).
    - `"wild"`: each run keeps its own (corrected) residual, times an
      independent multiplier `v` with mean 0 and variance 1: Rademacher
      (+1 or -1, Liu 1988; Davidson & Flachaire 2008) or Mammen's two-point
      law (`multipliers="mammen"`, Mammen 1993, matching the third moment).
      The wild bootstrap needs no noise model: each run's scatter stays its own,
      which is what makes it valid when the scale varies with compute (Wu 1986).

    Args:
        fitted: `(n_points,)` fitted values on the fitted scale (target minus residual).
        residuals: `(n_points,)` fitted-scale residuals (target minus fitted).
        weights: `(n_points,)` point weights; runs of weight 0 keep their fitted value
            and contribute no residual.
        n: resamples.
        scheme: `"residual"` or `"wild"`.
        rng: the NumPy generator (drawn on the host from the bootstrap's seed).
        scale: `(n_points,)` noise scale per run (e.g. `NoiseModel.sigma`), or None for constant.
        leverage: `(n_points,)` leverages (see `leverage`), or None.
        multipliers: `"rademacher"` or `"mammen"`, for `"wild"`.

    Returns:
        `(n, n_points)` targets, one row per resample.

    Example:
        >>> import numpy as np
        >>> t = resample_targets(np.zeros(4), np.array([0.1, -0.1, 0.2, -0.2]), np.ones(4), 3, "wild", np.random.default_rng(0))
        >>> bool(np.all(np.abs(np.abs(t) - [0.1, 0.1, 0.2, 0.2]) < 1e-12))
        True

    References:
        Wu 1986, Jackknife, Bootstrap and Other Resampling Methods in Regression Analysis (Ann. Statist.);
        Liu 1988, Bootstrap Procedures under Some Non-I.I.D. Models (Ann. Statist.);
        Mammen 1993, Bootstrap and Wild Bootstrap for High Dimensional Linear Models (Ann. Statist.);
        Davidson & Flachaire 2008, The Wild Bootstrap, Tamed at Last (J. Econometrics).
    """
    fitted = np.asarray(fitted, dtype=np.float64)
    r = np.asarray(residuals, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    live = np.flatnonzero(w > 0)
    if live.size == 0:
        raise ScalejaxError("no run has positive weight: nothing to resample")
    h = np.zeros_like(r) if leverage is None else np.clip(np.asarray(leverage, dtype=np.float64), 0.0, 0.9999)
    corrected = r / np.sqrt(1.0 - h)
    out = np.broadcast_to(fitted, (int(n), fitted.size)).copy()
    if scheme == "residual":
        s = np.ones_like(r) if scale is None else np.asarray(scale, dtype=np.float64)
        standard = corrected[live] / s[live]
        standard = standard - standard.mean()
        picks = rng.choice(standard, size=(int(n), live.size), replace=True)
        out[:, live] += picks * s[live]
    elif scheme == "wild":
        if multipliers == "rademacher":
            v = rng.choice(np.array([-1.0, 1.0]), size=(int(n), live.size))
        elif multipliers == "mammen":
            root5 = np.sqrt(5.0)
            low, high = -(root5 - 1) / 2, (root5 + 1) / 2
            v = np.where(rng.random((int(n), live.size)) < (root5 + 1) / (2 * root5), low, high)
        else:
            raise ScalejaxError(f"unknown wild multipliers {multipliers!r}; choose 'rademacher' or 'mammen'")
        out[:, live] += v * corrected[live]
    else:
        raise ScalejaxError(f"resample_targets builds the 'residual' and 'wild' schemes, not {scheme!r}")
    return out


def distinct_runs(weights, groups=None) -> np.ndarray:
    """How many distinct runs (or groups) carry positive weight in each resample: `(n,)` integers.

    Args:
        weights: `(n, n_points)` resample weights (or `(n_points,)` for one).
        groups: `(n_points,)` run labels when several points belong to one run
            (checkpoints of one training run); None counts points.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    positive = w > 0
    if groups is None:
        return positive.sum(axis=1)
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    per_group = np.zeros((w.shape[0], codes.max() + 1), dtype=bool)
    for g in range(codes.max() + 1):
        per_group[:, g] = positive[:, codes == g].any(axis=1)
    return per_group.sum(axis=1)


def underdetermined(weights, n_params: int, *, groups=None) -> dict:
    """Resamples with fewer distinct runs than parameters, and the message that reports them.

    A resample of `k < p` distinct runs leaves a `p`-parameter law free along
    `p - k` directions: the solver stops somewhere on a valley floor and reports
    convergence, and the draw says nothing about the data. The bootstrap should
    warn when any resample is under-determined and report the count.

    Args:
        weights: `(n, n_points)` resample weights.
        n_params: free parameters of the law.
        groups: run labels when several points belong to one run.

    Returns:
        dict with `distinct` (`(n,)` counts), `mask` (`(n,)` under-determined),
        `n_underdetermined`, `fraction` and `message` (None when there are none).

    Example:
        >>> import numpy as np
        >>> underdetermined(np.array([[2.0, 0, 0, 3], [1, 1, 1, 1]]), 3)["n_underdetermined"]
        1
    """
    distinct = distinct_runs(weights, groups)
    n_runs = (
        int(np.atleast_2d(weights).shape[1]) if groups is None else int(np.unique(np.asarray(groups).astype(str)).size)
    )
    return shortfall(distinct, n_params, n_runs)


def shortfall(distinct, n_params: int, n_runs: int) -> dict:
    """`underdetermined`'s report from the distinct-run counts of every resample (`(n,)`) and the run count."""
    distinct = np.asarray(distinct)
    mask = distinct < int(n_params)
    count = int(mask.sum())
    message = None
    if count:
        total = distinct.size
        message = (
            f"{count} of {total} resamples ({count / total:.0%}) have fewer distinct runs than the law's "
            f"{n_params} parameters (as few as {int(distinct.min())} of {n_runs}); their fits are not determined "
            "by the data, so the intervals are not trustworthy: add runs, resample whole groups "
            "(scheme='groups' with group=), fix parameters (fixed={...}), or use the 'residual' or 'wild' scheme"
        )
    return {
        "distinct": distinct,
        "mask": mask,
        "n_underdetermined": count,
        "fraction": count / distinct.size,
        "message": message,
    }


def default_by(law) -> str | None:
    """What a law's runs are ordered by for noise models and calibration: compute for laws of N and D,
    else the law's first positive input (None when it has none)."""
    if {"N", "D"} <= set(law.inputs):
        return "compute"
    return next((name for name in law.inputs if name in law.positive_inputs), None)


def scale_by(law) -> str | None:
    """What runs are ordered by for calibration and extrapolation distance: `default_by`, else the law's
    first input (a law defined at 0, such as `sigmoid_floor` of task loss, still has a scale; runs where
    it is not positive make `calibrate` say so)."""
    return default_by(law) or (law.inputs[0] if law.inputs else None)
