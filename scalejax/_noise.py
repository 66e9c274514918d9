"""Noise models of a law's residuals, and how the bootstrap resamples noise.

A noise model says how far a new run's measured value (log y for the
log-scale losses) scatters around the law: a constant scale, or a scale
log-linear in log10 of compute (or of one input), chosen by the data through
a cross-validated log score. The resampling helpers build the targets of the
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
    "distinct_runs",
    "fit_noise",
    "leverage",
    "noise_of",
    "resample_targets",
    "scale_key",
    "underdetermined",
]

NOISE_KINDS = ("constant", "log_linear")
# Fewest weighted runs for which a log-linear scale is considered at all: below this the
# cross-validated comparison of two scale models is noise itself.
MIN_RUNS_LOG_LINEAR = 20
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


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """The observation noise of a law's fitted-scale residuals, `sigma(key) = exp(log_sigma + slope (key - center))`.

    `key` is log10 of compute (or of the input named by `by`). Outside the
    range of keys it was fitted on, the scale is held at its value at the
    nearer end: the growth of forecast errors beyond the data is measured by
    `scalejax.analysis.calibrate`, not extrapolated from the residuals.

    A frozen value of plain numbers, compared and hashed by value, so it can
    be a static field of `Draws` and be saved as JSON.

    Attributes:
        kind: `"constant"` (slope 0) or `"log_linear"`.
        by: `"compute"` or the input the scale varies with.
        log_sigma: log of the scale at `center`.
        slope: change of log sigma per decade of the key (0 for `constant`).
        center: the weighted mean key of the fitted runs.
        key_range: `(lo, hi)` keys of the fitted runs.
        cov_entries: `((var, cov), (cov, var))` asymptotic covariance of `(log_sigma, slope)`
            (row and column of slope 0 for `constant`); `cov` as an array.
        n_runs: weighted runs the scale was estimated from.
        cv_scores: `((kind, mean cross-validated Gaussian log density per run), ...)` of the
            kinds compared (empty when only one was fitted); `scores` as a dict.
        flops_per_param_token: `k` in `C = k N D`, with `by="compute"`.
    """

    kind: str
    by: str
    log_sigma: float
    slope: float
    center: float
    key_range: tuple[float, float]
    cov_entries: tuple[tuple[float, float], tuple[float, float]]
    n_runs: int
    cv_scores: tuple[tuple[str, float], ...] = ()
    flops_per_param_token: float = 6.0

    @property
    def cov(self) -> np.ndarray:
        """`(2, 2)` asymptotic covariance of `(log_sigma, slope)`."""
        return np.array(self.cov_entries, dtype=np.float64)

    @property
    def scores(self) -> dict[str, float]:
        """Kind -> mean cross-validated log density per run (NaN for a kind not compared)."""
        return {k: dict(self.cv_scores).get(k, float("nan")) for k in NOISE_KINDS}

    def scale(self, key) -> np.ndarray:
        """Noise standard deviation at log10 keys `key`: `(m,)`."""
        key = np.clip(np.asarray(key, dtype=np.float64), *self.key_range)
        return np.exp(self.log_sigma + self.slope * (key - self.center))

    def sigma(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Noise standard deviation at the points `x` (law inputs, or columns, by name): `(m,)`."""
        return self.scale(scale_key(x, self.by, flops_per_param_token=self.flops_per_param_token))

    def sigma_draws(self, noise: Mapping[str, np.ndarray], x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per-draw noise scales at the points `x`: `(S, m)`, from draws of the form `draws()` returns.

        `noise["sigma"]` is each draw's scale at `center` and `noise["sigma_slope"]`
        (optional, 0 when absent) its slope per decade; keys are held in the fitted range.
        """
        key = np.clip(scale_key(x, self.by, flops_per_param_token=self.flops_per_param_token), *self.key_range)
        sigma = np.asarray(noise["sigma"], dtype=np.float64).reshape(-1, 1)
        slope = np.asarray(noise.get("sigma_slope", np.zeros(sigma.shape[0])), dtype=np.float64).reshape(-1, 1)
        return sigma * np.exp(slope * (key[None, :] - self.center))

    def draws(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """`n` draws of the noise parameters from their asymptotic normal distribution.

        Returns:
            `{"sigma": (n,), "sigma_slope": (n,)}`: the scale at `center` and the
            slope per decade, in the form `Draws.noise` carries them.
        """
        rng = np.random.default_rng(seed)
        z = rng.multivariate_normal(np.array([self.log_sigma, self.slope]), self.cov, size=int(n), method="eigh")
        return {"sigma": np.exp(z[:, 0]), "sigma_slope": z[:, 1] if self.kind == "log_linear" else np.zeros(int(n))}

    def table(self) -> pd.DataFrame:
        """One row per candidate kind: its cross-validated log score, and which was chosen."""
        rows = {k: {"cv_log_score": v, "chosen": k == self.kind} for k, v in self.scores.items()}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("kind")

    def __repr__(self) -> str:
        sigma = float(np.exp(self.log_sigma))
        if self.kind == "constant":
            return f"NoiseModel(constant, sigma={sigma:.4g}, {self.n_runs} runs)"
        return (
            f"NoiseModel(log_linear in log10 {self.by}, sigma={sigma:.4g} at {self.center:.3g}, "
            f"slope={self.slope:+.3g} per decade, {self.n_runs} runs)"
        )


def _fit_scale(
    r2: np.ndarray, z: np.ndarray, w: np.ndarray, kind: str, dof_ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood `(log_sigma, slope)` of zero-mean Gaussian residuals and their covariance.

    `r2` are squared residuals, `z` the centred keys, `w` weights. The
    negative log-likelihood of a log-linear scale is convex (a gamma GLM of
    `r^2` with a log link), so Newton's method from the constant fit converges.
    `dof_ratio = n / (n - p)` corrects the scale for the law's fitted parameters.
    """
    total = float(np.sum(w))
    a = 0.5 * np.log(np.sum(w * r2) / total)
    if kind == "constant":
        coef = np.array([a + 0.5 * np.log(dof_ratio), 0.0])
        return coef, np.diag([1.0 / (2.0 * total), 0.0])
    coef = np.array([a, 0.0])
    design = np.stack([np.ones_like(z), z], axis=1)
    for _ in range(100):
        ratio = r2 * np.exp(-2.0 * (design @ coef))
        grad = design.T @ (w * (1.0 - ratio))
        hess = 2.0 * design.T @ (design * (w * ratio)[:, None])
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        # Halve the step until the (convex) objective falls: robust to a first step that overshoots.
        obj = np.sum(w * ((design @ coef) + 0.5 * ratio))
        t = 1.0
        while t > 1e-8:
            trial = coef - t * step
            if np.sum(w * ((design @ trial) + 0.5 * r2 * np.exp(-2.0 * (design @ trial)))) <= obj:
                break
            t *= 0.5
        coef = coef - t * step
        if np.max(np.abs(t * step)) < 1e-12:
            break
    # Expected information of (log sigma, slope): 2 X^T W X.
    cov = np.linalg.pinv(2.0 * design.T @ (design * w[:, None]))
    coef[0] += 0.5 * np.log(dof_ratio)
    return coef, cov


def _log_density(r2, z, coef) -> np.ndarray:
    log_s = coef[0] + coef[1] * z
    return -0.5 * _LOG_2PI - log_s - 0.5 * r2 * np.exp(-2.0 * log_s)


def fit_noise(
    residuals,
    key,
    *,
    weights=None,
    n_params: int = 0,
    kind: str = "auto",
    by: str = "compute",
    n_folds: int = 5,
    flops_per_param_token: float = 6.0,
) -> NoiseModel:
    """Fit the noise scale of residuals, constant or log-linear in `key`, chosen by cross-validated log score.

    Args:
        residuals: `(n,)` fitted-scale residuals of a law (log y for the log-scale losses).
        key: `(n,)` log10 of the quantity the scale may vary with (see `scale_key`).
        weights: `(n,)` point weights (0 drops a point); default 1.
        n_params: parameters the law fitted to these residuals (a degrees-of-freedom correction).
        kind: `"constant"`, `"log_linear"` or `"auto"`: the kind with the higher mean
            Gaussian log density of held-out residuals over `n_folds` folds (runs dealt
            to folds by their rank in `key`, so that every fold spans the range). With
            fewer than 20 weighted runs `auto` keeps the constant scale.
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
    if not (r.shape == key.shape == w.shape):
        raise ScalejaxError(f"residuals, key and weights differ in length ({r.size}, {key.size}, {w.size})")
    if kind not in (*NOISE_KINDS, "auto"):
        raise ScalejaxError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)} or 'auto'")
    live = (w > 0) & np.isfinite(r) & np.isfinite(key)
    r, key, w = r[live], key[live], w[live]
    n = int(live.sum())
    if n - n_params <= 0:
        raise ScalejaxError(
            f"{n} weighted runs for {n_params} parameters leave no residual degrees of freedom to estimate the noise"
        )
    if not np.any(r != 0):
        raise ScalejaxError("every residual is zero: the noise scale is not identified (an exact fit)")
    r2 = np.maximum(r**2, 1e-300)
    center = float(np.average(key, weights=w))
    z = key - center
    dof_ratio = n / (n - n_params)
    candidates = NOISE_KINDS if kind == "auto" else (kind,)
    if kind == "auto" and (n < MIN_RUNS_LOG_LINEAR or np.ptp(key) == 0):
        candidates = ("constant",)
    scores = {k: float("nan") for k in NOISE_KINDS}
    if len(candidates) > 1:
        fold = np.empty(n, dtype=int)
        fold[np.argsort(key, kind="stable")] = np.arange(n) % n_folds
        for k in candidates:
            dens = np.empty(n)
            for f in range(n_folds):
                held = fold == f
                coef, _ = _fit_scale(r2[~held], z[~held], w[~held], k, dof_ratio)
                dens[held] = _log_density(r2[held], z[held], coef)
            scores[k] = float(np.average(dens, weights=w))
        chosen = max(candidates, key=lambda k: (scores[k], k == "constant"))
    else:
        chosen = candidates[0]
    coef, cov = _fit_scale(r2, z, w, chosen, dof_ratio)
    compared = tuple((k, scores[k]) for k in NOISE_KINDS if np.isfinite(scores[k]))
    return NoiseModel(
        kind=chosen,
        by=by,
        log_sigma=float(coef[0]),
        slope=float(coef[1]),
        center=center,
        key_range=(float(key.min()), float(key.max())),
        cov_entries=tuple(tuple(float(v) for v in row) for row in cov),
        n_runs=int(n),
        cv_scores=compared,
        flops_per_param_token=flops_per_param_token,
    )


def noise_of(fit, *, by: str = "compute", kind: str = "auto", flops_per_param_token: float = 6.0) -> NoiseModel:
    """The noise model of a `Fit`'s residuals (see `fit_noise`), keyed by compute or by one of its inputs.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> noise_of(fit).kind
        'constant'
    """
    key = scale_key(fit.data.x, by, flops_per_param_token=flops_per_param_token)
    return fit_noise(
        fit.residuals,
        key,
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
    mask = distinct < int(n_params)
    count = int(mask.sum())
    message = None
    if count:
        total = distinct.size
        n_runs = (
            int(np.atleast_2d(weights).shape[1])
            if groups is None
            else int(np.unique(np.asarray(groups).astype(str)).size)
        )
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
