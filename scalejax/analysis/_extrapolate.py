"""Extrapolation: predictions at new points or along the compute-optimal path, with two intervals.

The parameter interval says where the law's mean could be; the predictive
interval adds the observation noise, and says where a new run's measured
value could fall.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._draws import Draws, delta_sd, law_inputs, map_draws, tails, z_value
from .._errors import ScalejaxError
from ._compute_optimal import _check_nd, _is_chinchilla, _positive_array, chinchilla_compute_optimal, optimal_split

__all__ = ["extrapolate"]


def extrapolate(
    draws: Draws,
    new=None,
    *,
    compute=None,
    level: float = 0.95,
    noise: float | None = None,
    flops_per_param_token: float = 6.0,
    n_noise: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted y with a parameter interval and a predictive interval, at new points or budgets.

    Args:
        draws: a `Fit`, `Bootstrap` or posterior.
        new: the points, a DataFrame or dict with the law's inputs (by input or
            fitted column name). Give `new` or `compute`.
        compute: FLOP budget(s); predicts the loss at each draw's compute-optimal
            split (law of N and D), the best loss that budget buys.
        level: interval level.
        noise: standard deviation of the observation noise on the fitted scale
            (log y for the log-scale losses). Default: the draws' own noise
            draws (`draws.noise`: a posterior's fitted scale, Student-t with its
            fitted degrees of freedom where it has them; the residual standard
            deviation of the full-data fit for a `Fit` or `Bootstrap`).
        flops_per_param_token: `k` in `C = k N D`, with `compute`.
        n_noise: at least this many simulated observations per point for the
            predictive interval of draws with several members.
        seed: seed of the simulated noise.

    Returns:
        One row per point: the inputs (or `compute`, `N`, `D` of the central
        estimate's optimum), `y` at the central estimate, `y_lo`, `y_hi` (the
        parameter interval: percentiles over the draws, or the delta method for
        a `Fit`), `y_pred_lo`, `y_pred_hi` (the predictive interval: each draw's
        prediction plus simulated noise, or the delta method's variance plus the
        noise variance for a `Fit`).

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> table = sj.analysis.extrapolate(fit, {"N": [70e9], "D": [1.4e12]})
        >>> bool(table.y_pred_lo[0] < table.y_lo[0] < table.y[0] < table.y_hi[0] < table.y_pred_hi[0])
        True
    """
    lo_q, hi_q = tails(level)
    if not isinstance(draws, Draws):
        raise ScalejaxError(f"extrapolate needs draws (a Fit, Bootstrap or Posterior), got {type(draws).__name__}")
    law = draws.law
    if (new is None) == (compute is None):
        raise ScalejaxError("give either new= (points to predict at) or compute= (FLOP budgets), not both")
    if new is not None:
        x = law_inputs(law, new, draws.columns)
        index = dict(x)
        fn, args = _at_points, (law, x)
    else:
        _check_nd(law)
        budgets = _positive_array(compute, "compute")
        fn, args = _along_compute, (law, budgets, float(flops_per_param_token), _is_chinchilla(law))
        index = {"compute": budgets}

    student_nu = None
    if noise is None:
        sigma = draws.noise_sigma()
        student_nu = draws.noise.get("nu")
    else:
        if not (np.isfinite(noise) and noise >= 0):
            raise ScalejaxError(f"noise must be a finite standard deviation >= 0, got {noise}")
        sigma = np.full(draws.n_draws, float(noise))
    log_scale = draws.log_scale

    out = {k: np.asarray(v, dtype=np.float64) for k, v in index.items()}
    if draws.is_point:
        central, sd = delta_sd(draws, fn, *args)
        y, sd_y = central["y"], sd["y"]
        z = z_value(level)
        if log_scale:
            sd_param = sd_y / y
            sd_pred = np.sqrt(sd_param**2 + sigma[0] ** 2)
            band = {"y_lo": y * np.exp(-z * sd_param), "y_hi": y * np.exp(z * sd_param)}
            band |= {"y_pred_lo": y * np.exp(-z * sd_pred), "y_pred_hi": y * np.exp(z * sd_pred)}
        else:
            sd_pred = np.sqrt(sd_y**2 + sigma[0] ** 2)
            band = {
                "y_lo": y - z * sd_y,
                "y_hi": y + z * sd_y,
                "y_pred_lo": y - z * sd_pred,
                "y_pred_hi": y + z * sd_pred,
            }
    else:
        rows = np.vstack([draws.center_u[None, :], draws.u])
        values = map_draws(fn, law, rows, *args)
        central = {k: np.asarray(v)[0] for k, v in values.items()}
        y, v = central["y"], np.asarray(values["y"])[1:]
        ok = np.all(np.isfinite(v), axis=1)
        if not ok.all():
            raise ScalejaxError(f"{int((~ok).sum())} of {draws.n_draws} draws predict no finite value at these points")
        reps = max(1, -(-int(n_noise) // draws.n_draws))
        rng = np.random.default_rng(seed)
        if student_nu is not None:
            eps = rng.standard_t(student_nu[None, :, None], size=(reps, *v.shape))
        else:
            eps = rng.standard_normal((reps, *v.shape))
        eps = sigma[None, :, None] * eps
        with np.errstate(divide="ignore", invalid="ignore"):
            simulated = np.log(v)[None] + eps if log_scale else v[None] + eps
        simulated = simulated.reshape(-1, v.shape[1])
        lo, hi = np.quantile(simulated, [lo_q, hi_q], axis=0)
        band = {"y_lo": np.quantile(v, lo_q, axis=0), "y_hi": np.quantile(v, hi_q, axis=0)}
        band |= {"y_pred_lo": np.exp(lo), "y_pred_hi": np.exp(hi)} if log_scale else {"y_pred_lo": lo, "y_pred_hi": hi}
    for name in ("N", "D"):
        if name in central:
            out[name] = central[name]
    out["y"] = y
    out |= band
    table = pd.DataFrame(out)
    table.attrs["level"] = level
    table.attrs["noise"] = float(np.median(sigma))
    return table


def _at_points(p, law, x):
    return {"y": law.predict(p, x)}


def _along_compute(p, law, budgets, k, closed):
    out = chinchilla_compute_optimal(p, budgets, k) if closed else optimal_split(law, p, budgets, k)
    return {"N": out["N"], "D": out["D"], "y": out["loss"]}
