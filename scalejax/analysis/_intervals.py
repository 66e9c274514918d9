"""From draws to tables: a quantity written for one parameter set, evaluated on every draw, with intervals.

Draws with several members (a bootstrap, a posterior) give equal-tailed
percentile intervals. A `Fit` is one draw: its intervals come from the
delta method with the Gauss-Newton covariance of the unconstrained
parameters, on the log scale of positive quantities (so the interval of a
positive quantity stays positive).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._draws import Draws, _tails
from .._errors import ScalejaxError
from .._fit import Fit

__all__ = ["evaluate", "fit_of", "gauss_newton", "interval_table", "noise_scale", "z_value"]


def fit_of(draws: Draws) -> Fit | None:
    """The full-data `Fit` behind draws (itself for a Fit, `.fit` for a Bootstrap), or None."""
    if isinstance(draws, Fit):
        return draws
    inner = getattr(draws, "fit", None)
    return inner if isinstance(inner, Fit) else None


def z_value(level: float) -> float:
    """The standard normal quantile for a two-sided interval at `level`."""
    return NormalDist().inv_cdf(_tails(level)[1])


def _columns(out) -> dict[str, np.ndarray]:
    if isinstance(out, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in out.items()}
    return {"value": np.asarray(out, dtype=np.float64)}


def evaluate(draws: Draws, fn: Callable[[dict], object]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """`fn` at the central estimate and on every draw, in one compiled call.

    Returns:
        `(central, values)`: name -> `(m,)` at `draws.center`, and name -> `(S, m)`
        over the draws, in the order `fn` returns them.
    """
    order: list[str] = []

    def named(p):
        out = fn(p)
        if isinstance(out, Mapping):
            order[:] = [str(k) for k in out]
        return out

    single = isinstance(draws, Fit)
    u = draws.u if single else np.vstack([draws.center_u[None, :], draws.u])
    out = _columns(Draws(draws.law, u).map(named))
    out = {k: out[k] for k in order} if order else out
    out = {k: v.reshape(v.shape[0], -1) for k, v in out.items()}
    central = {k: v[0] for k, v in out.items()}
    values = out if single else {k: v[1:] for k, v in out.items()}
    return central, values


def gauss_newton(fit: Fit, u=None) -> tuple[np.ndarray, float]:
    """Gauss-Newton information `J^T W J` of the unconstrained parameters and the residual variance.

    `J` is the Jacobian of the fitted-scale residuals (log y for log-scale
    losses) with respect to the unconstrained parameters at `u` (default the
    optimum), `W` the point weights, and the variance `s^2 = sum(w r^2) / (n - p)`
    over weighted points, as in `Fit.covariance`.
    """
    law, data, loss = fit.law, fit.data, fit.loss
    u = fit.center_u if u is None else np.asarray(u, dtype=np.float64)
    with jax.enable_x64(True):
        x = {k: jnp.asarray(v) for k, v in data.x.items()}
        target = jnp.asarray(data.target(loss.log_scale))

        def resid(v):
            p = law.unpack(v)
            pred = law.log_predict(p, x) if loss.log_scale else law.predict(p, x)
            return pred - target

        jac = np.asarray(jax.jacfwd(resid)(jnp.asarray(u)))
        r = np.asarray(resid(jnp.asarray(u)))
    w = data.weights
    live = w > 0
    dof = int(live.sum()) - law.n_params
    info = jac[live].T @ (w[live, None] * jac[live])
    s2 = float(np.sum(w[live] * r[live] ** 2) / dof) if dof > 0 else np.nan
    return info, s2


def noise_scale(draws: Draws) -> np.ndarray:
    """Per-draw standard deviation of the observation noise on the fitted scale: `(S,)`.

    A draws object may supply its own (a posterior's fitted noise scale) with
    a method `noise_draws() -> (S,)`. Otherwise, for a `Fit` or a `Bootstrap`,
    it is the residual standard deviation of the full-data fit,
    `sqrt(sum(w r^2) / (n - p))` on the fitted scale (log y for the default
    losses), the same for every draw.
    """
    supplied = getattr(draws, "noise_draws", None)
    if callable(supplied):
        sigma = np.asarray(supplied(), dtype=np.float64).reshape(-1)
        if sigma.shape[0] != draws.n_draws:
            raise ScalejaxError(f"noise_draws() returned {sigma.shape[0]} values for {draws.n_draws} draws")
        return sigma
    fit = fit_of(draws)
    if fit is None:
        raise ScalejaxError(
            f"{type(draws).__name__} carries no noise scale; pass noise= (standard deviation of log y) "
            "or give the draws a noise_draws() method"
        )
    _, s2 = gauss_newton(fit)
    if not np.isfinite(s2):
        raise ScalejaxError("the fit has no residual degrees of freedom to estimate the noise; pass noise=")
    return np.full(draws.n_draws, np.sqrt(s2))


def delta_sd(fit: Fit, fn: Callable[[dict], object]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """`fn` at a fit and the delta-method standard deviation of each of its outputs: name -> `(m,)` each."""
    info, s2 = gauss_newton(fit)
    cov = s2 * np.linalg.pinv(info)
    law = fit.law
    order: list[str] = []

    def flat(u):
        out = fn(law.unpack(u))
        out = out if isinstance(out, Mapping) else {"value": out}
        order[:] = [str(k) for k in out]
        return {str(k): jnp.ravel(jnp.asarray(v)) for k, v in out.items()}

    with jax.enable_x64(True):
        value, jac = jax.jit(lambda u: (flat(u), jax.jacfwd(flat)(u)))(jnp.asarray(fit.center_u))
    central = {k: np.asarray(value[k], dtype=np.float64) for k in order}
    sd = {
        k: np.sqrt(np.clip(np.einsum("mi,ij,mj->m", np.asarray(jac[k]), cov, np.asarray(jac[k])), 0, None))
        for k in order
    }
    return central, sd


def interval_table(
    draws: Draws,
    fn: Callable[[dict], object],
    *,
    level: float = 0.95,
    index: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """A table of `fn`'s outputs: per output `name` the central value, `name_lo` and `name_hi`.

    Args:
        draws: a `Fit` (delta-method intervals) or draws with several members
            (percentile intervals over the draws that give a finite value).
        fn: `fn(params) -> dict of (m,) arrays` (or one array, named `value`).
        level: the interval level.
        index: columns to put first (the inputs the outputs were computed at).

    Returns:
        A DataFrame of `m` rows. `attrs["n_invalid"]` counts, per output, the
        draws that gave no finite value (excluded from its interval, with a warning).
    """
    lo_q, hi_q = _tails(level)
    delta = draws.n_draws == 1 and isinstance(draws, Fit)
    if delta:
        central, sd = delta_sd(draws, fn)
    else:
        central, values = evaluate(draws, fn)
    m = len(next(iter(central.values())))
    out = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (m,)) for k, v in (index or {}).items()}
    n_invalid = {}
    if delta:
        z = z_value(level)
        for name, c in central.items():
            if np.all(c > 0):
                lo, hi = c * np.exp(-z * sd[name] / c), c * np.exp(z * sd[name] / c)
            else:
                lo, hi = c - z * sd[name], c + z * sd[name]
            out |= {name: c, f"{name}_lo": lo, f"{name}_hi": hi}
    else:
        for name, c in central.items():
            v = values[name]
            bad = ~np.isfinite(v)
            n_invalid[name] = int(bad.any(axis=1).sum())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, hi = np.nanquantile(np.where(bad, np.nan, v), [lo_q, hi_q], axis=0)
            out |= {name: c, f"{name}_lo": lo, f"{name}_hi": hi}
        worst = max(n_invalid.values(), default=0)
        if worst:
            names = ", ".join(k for k, n in n_invalid.items() if n)
            warnings.warn(
                f"{worst} of {draws.n_draws} draws gave no finite value of {names}; their intervals use the other draws",
                RuntimeWarning,
                stacklevel=3,
            )
    table = pd.DataFrame(out)
    table.attrs["n_invalid"] = n_invalid
    table.attrs["level"] = level
    return table
