"""Extrapolation: predictions at new points or along the compute-optimal path, with two intervals.

The parameter interval says where the law's mean could be; the predictive
interval adds the observation noise (the draws' noise model, at each point)
and, beyond the data, the extra error that rolling backtests inside the data
measured at that extrapolation distance (`scalejax.analysis.calibrate`):
it says where a new run's measured value could fall.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._draws import Draws, delta_sd, law_inputs, map_draws, tails, z_value
from .._errors import ScalejaxError
from .._noise import scale_by, scale_key
from ._calibrate import Calibration, _numeric_dict, calibration_of
from ._compute_optimal import _check_nd, _is_chinchilla, _positive_array, chinchilla_compute_optimal, optimal_split

__all__ = ["extra_noise", "extrapolate"]


def extrapolate(
    draws: Draws,
    new=None,
    *,
    compute=None,
    level: float = 0.95,
    noise: float | None = None,
    calibration="auto",
    flops_per_param_token: float = 6.0,
    n_noise: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted y with a parameter interval and a predictive interval, at new points or budgets.

    The predictive interval is calibrated for extrapolation by default: each
    point's noise (the draws' noise model: constant, or log-linear in log
    compute and log tokens per parameter, held at the ends of the data) plus,
    beyond the data, an independent extra error whose standard deviation
    `tau(d)` grows with the point's extrapolation distance `d` as measured by
    rolling-origin backtests inside the draws' own runs
    (`scalejax.analysis.calibrate`). The calibration is computed once per
    estimate (about as long as one fit from a few hundred starts) and reused
    by every analysis; `Draws.calibrated()` attaches it to the draws so that
    `sj.save` keeps it.

    Args:
        draws: a `Fit`, `Bootstrap` or posterior.
        new: the points, a DataFrame or dict with the law's inputs (by input or
            fitted column name). Give `new` or `compute`.
        compute: FLOP budget(s); predicts the loss at each draw's compute-optimal
            split (law of N and D), the best loss that budget buys.
        level: interval level.
        noise: standard deviation of the observation noise on the fitted scale
            (log y for the log-scale losses), the same at every point. Default: the
            draws' own noise draws at each point (`draws.noise_at`: a posterior's
            fitted scale, Student-t with its fitted degrees of freedom where it has
            them; each resample's own scale for a `Bootstrap`; the full-data fit's
            for a `Fit`).
        calibration: `"auto"` (default: `scalejax.analysis.calibration_of(draws)`, the
            draws' own calibration or one computed from their point fit and data,
            forecasts ordered by compute for laws of N and D, else by the law's first
            positive input, in the direction the new points leave the data; when it
            cannot be computed, e.g. too few runs, the interval is uncalibrated and
            `attrs["calibration_note"]` says why), None (uncalibrated), or a
            `Calibration`.
        flops_per_param_token: `k` in `C = k N D`, with `compute`.
        n_noise: at least this many simulated observations per point for the
            predictive interval of draws with several members.
        seed: seed of the simulated noise.

    Returns:
        One row per point: the inputs (or `compute`, `N`, `D` of the central
        estimate's optimum), `y` at the central estimate, `y_lo`, `y_hi` (the
        parameter interval: percentiles over the draws, or the delta method for
        a `Fit`), `y_pred_lo`, `y_pred_hi` (the predictive interval: each draw's
        prediction plus simulated noise and extra error, or the delta method's
        variance plus both variances for a `Fit`) and `distance` (decades of
        the ordering key beyond the outermost run of the data; NaN when the
        draws carry no data), and `distance_<input>` (decades of that input
        outside the fitted runs' range) when the calibration also widens by
        an input's own extrapolation (`Calibration.input`). `attrs`: `level`, `noise` (median noise sd),
        `calibration` (the `Calibration` used, or None), `calibration_note`.

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
        where = {**_numeric_dict(new), **x}
    else:
        _check_nd(law)
        budgets = _positive_array(compute, "compute")
        fn, args = _along_compute, (law, budgets, float(flops_per_param_token), _is_chinchilla(law))
        index = {"compute": budgets}
    if noise is not None and not (np.isfinite(noise) and noise >= 0):
        raise ScalejaxError(f"noise must be a finite standard deviation >= 0, got {noise}")
    log_scale = draws.log_scale

    out = {k: np.asarray(v, dtype=np.float64) for k, v in index.items()}
    if draws.is_point:
        central, sd = delta_sd(draws, fn, *args)
        values = None
    else:
        rows = np.vstack([draws.center_u[None, :], draws.u])
        mapped = map_draws(fn, law, rows, *args)
        central = {k: np.asarray(v)[0] for k, v in mapped.items()}
        values = np.asarray(mapped["y"])[1:]
        ok = np.all(np.isfinite(values), axis=1)
        if not ok.all():
            raise ScalejaxError(f"{int((~ok).sum())} of {draws.n_draws} draws predict no finite value at these points")
    if compute is not None:
        # Along the path the points are the central estimate's optima: noise and distance there.
        where = {"N": central["N"], "D": central["D"]}
        x = dict(where)
    m = np.asarray(central["y"]).shape[0]
    if noise is None:
        sigma = draws.noise_at(x)
        student_nu = draws.noise.get("nu")
    else:
        sigma = np.full((draws.n_draws, m), float(noise))
        student_nu = None
    extra, distance, cal, note = extra_noise(draws, where, calibration, flops_per_param_token=flops_per_param_token)

    y = central["y"]
    if draws.is_point:
        sd_y = sd["y"]
        z = z_value(level)
        if log_scale:
            sd_param = sd_y / y
            sd_pred = np.sqrt(sd_param**2 + sigma[0] ** 2 + extra**2)
            band = {"y_lo": y * np.exp(-z * sd_param), "y_hi": y * np.exp(z * sd_param)}
            band |= {"y_pred_lo": y * np.exp(-z * sd_pred), "y_pred_hi": y * np.exp(z * sd_pred)}
        else:
            sd_pred = np.sqrt(sd_y**2 + sigma[0] ** 2 + extra**2)
            band = {
                "y_lo": y - z * sd_y,
                "y_hi": y + z * sd_y,
                "y_pred_lo": y - z * sd_pred,
                "y_pred_hi": y + z * sd_pred,
            }
    else:
        v = values
        reps = max(1, -(-int(n_noise) // draws.n_draws))
        rng = np.random.default_rng(seed)
        if student_nu is not None:
            eps = rng.standard_t(student_nu[None, :, None], size=(reps, *v.shape))
        else:
            eps = rng.standard_normal((reps, *v.shape))
        eps = sigma[None] * eps
        if np.any(extra > 0):
            eps = eps + extra[None, None, :] * rng.standard_normal((reps, *v.shape))
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
    out["distance"] = distance
    if cal is not None and cal.input is not None:
        out[f"distance_{cal.input}"] = cal.input_distance(where)
    table = pd.DataFrame(out)
    table.attrs["level"] = level
    table.attrs["noise"] = float(np.median(sigma))
    table.attrs["calibration"] = cal
    table.attrs["calibration_note"] = note
    return table


def extra_noise(
    draws: Draws, new, calibration="auto", *, flops_per_param_token: float = 6.0
) -> tuple[np.ndarray, np.ndarray, Calibration | None, str]:
    """The calibration's extra standard deviation and the extrapolation distance at each point of `new`.

    Args:
        draws: the estimate.
        new: the points (a DataFrame or dict: law inputs by input or column name, or other columns).
        calibration: `"auto"`, None or a `Calibration` (see `extrapolate`).
        flops_per_param_token: `k` in `C = k N D`, for the distance without a calibration.

    Returns:
        `(extra, distance, calibration, note)`: `(m,)` arrays (extra 0 without a
        calibration; distance NaN when neither a calibration nor the draws' data
        give one), the `Calibration` used (or None) and why there is none.
    """
    x = _points(draws, new)
    m = np.atleast_1d(np.asarray(next(iter(x.values())))).shape[0]
    by = scale_by(draws.law)
    if isinstance(calibration, str) and calibration == "auto":
        cal, note = calibration_of(draws, direction=_direction(draws, x, by, flops_per_param_token))
    elif calibration is None or calibration is False:
        cal, note = None, "uncalibrated (calibration=None)"
    elif isinstance(calibration, Calibration):
        cal, note = calibration, ""
    else:
        raise ScalejaxError(f"calibration must be 'auto', None or a Calibration, got {type(calibration).__name__}")
    if cal is not None:
        distance = cal.distance(x)
        return cal.extra_sd(distance, cal.input_distance(x)), distance, cal, note
    return np.zeros(m), _data_distance(draws, x, by, flops_per_param_token), None, note


def _points(draws: Draws, new) -> dict[str, np.ndarray]:
    """The numeric columns of `new` with the law's inputs under their own names."""
    if isinstance(new, pd.DataFrame | Mapping):
        out = _numeric_dict(new)
        try:
            out |= law_inputs(draws.law, new, draws.columns)
        except ScalejaxError:
            pass  # a calibration by another column may still read its key
        if out:
            return out
    raise ScalejaxError(f"new points must be a DataFrame or a dict of arrays, got {type(new).__name__}")


def _data_keys(draws: Draws, by, k: float):
    if draws.data is None or by is None:
        return None
    live = draws.data.weights > 0
    try:
        return scale_key({name: v[live] for name, v in draws.data.x.items()}, by, flops_per_param_token=k)
    except ScalejaxError:  # runs where the key is not positive (an anchor at loss 0): no scale to measure from
        return None


def _direction(draws: Draws, x, by, k: float) -> int:
    """1 when the points leave the data towards larger keys (always for compute), -1 when only below it."""
    if by == "compute" or by is None:
        return 1
    keys = _data_keys(draws, by, k)
    try:
        new = scale_key(x, by, flops_per_param_token=k)
    except ScalejaxError:
        return 1
    if keys is None or np.any(new > keys.max()) or not np.any(new < keys.min()):
        return 1
    return -1


def _data_distance(draws: Draws, x, by, k: float) -> np.ndarray:
    """Decades of the key beyond the data's largest run (or below its smallest, when the points go that way)."""
    m = np.atleast_1d(np.asarray(next(iter(x.values())))).shape[0]
    keys = _data_keys(draws, by, k)
    if keys is None:
        return np.full(m, np.nan)
    try:
        new = scale_key(x, by, flops_per_param_token=k)
    except ScalejaxError:
        return np.full(m, np.nan)
    if _direction(draws, x, by, k) == 1:
        return new - keys.max()
    return keys.min() - new


def _at_points(p, law, x):
    return {"y": law.predict(p, x)}


def _along_compute(p, law, budgets, k, closed):
    out = chinchilla_compute_optimal(p, budgets, k) if closed else optimal_split(law, p, budgets, k)
    return {"N": out["N"], "D": out["D"], "y": out["loss"]}
