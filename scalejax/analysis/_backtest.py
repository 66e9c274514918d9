"""Backtests and law comparison: fit on the small runs, check the forecast on the largest ones.

Held-out runs stay in the data with weight zero, so the backtest fit has the
same shapes (and reuses the same compiled solver) as the full fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._bootstrap import bootstrap
from .._draws import Draws, tails
from .._errors import DataError, ScalejaxError
from .._fit import fit, make_data
from .._law import Law
from .._noise import scale_by
from .._objectives import make_loss
from ..laws import get as get_law
from ._calibrate import calibrate, interval_score
from ._extrapolate import extrapolate

__all__ = ["backtest", "compare_laws", "information_criteria"]


def scale_key(law, x: Mapping[str, np.ndarray], by: str, flops_per_param_token: float = 6.0) -> np.ndarray:
    """The quantity runs are ranked by: compute `k N D` (`by="compute"`) or one of the law's inputs."""
    if by == "compute":
        if not {"N", "D"} <= set(x):
            raise DataError(f"by='compute' needs inputs N and D (C = k N D); the law has {', '.join(x)}")
        return flops_per_param_token * np.asarray(x["N"]) * np.asarray(x["D"])
    if by in x:
        return np.asarray(x[by], dtype=np.float64)
    raise DataError(f"by={by!r} is neither 'compute' nor an input of the law ({', '.join(x)})")


def _holdout_mask(data, key: np.ndarray, holdout, tie_rtol: float) -> tuple[np.ndarray, float]:
    live = data.weights > 0
    n_live = int(live.sum())
    if isinstance(holdout, int | np.integer) and not isinstance(holdout, bool):
        count = int(holdout)
    elif isinstance(holdout, float) and 0 < holdout < 1:
        count = int(np.ceil(holdout * n_live))
    else:
        raise ScalejaxError(f"holdout must be a fraction in (0, 1) or a number of runs, got {holdout!r}")
    if not 1 <= count < n_live:
        raise ScalejaxError(f"holdout of {count} runs leaves nothing to fit or nothing to check ({n_live} runs)")
    # The `count` largest by the key, with every run tied at the threshold (within tie_rtol) held out too.
    threshold = np.sort(key[live])[::-1][count - 1]
    held = live & (key >= threshold - tie_rtol * abs(threshold))
    return held, float(threshold)


def _subset(data, keep: np.ndarray):
    """The runs in `keep` alone (resampling schemes then see only them, whole groups included)."""
    return data.replace(
        x={k: v[keep] for k, v in data.x.items()},
        y=data.y[keep],
        weights=data.weights[keep],
        groups=None if data.groups is None else data.groups[keep],
        index=None if data.index is None else data.index[keep],
    )


def backtest(
    law: str | Law | Draws,
    frame=None,
    *,
    x: Mapping | None = None,
    y=None,
    by: str = "compute",
    holdout: float | int = 0.2,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    flops_per_param_token: float = 6.0,
    tie_rtol: float = 0.0,
    weights=None,
    group=None,
    scheme: str = "rows",
    loss: str = "huber",
    delta: float = 1e-3,
    starts=None,
    method: str = "lm",
    max_steps: int | None = None,
    calibration="auto",
) -> pd.DataFrame:
    """Hold out the largest runs, fit the rest, and check the forecast of what was held out.

    Both predictive intervals are checked: the calibrated one (the default of
    `extrapolate`, calibrated by rolling backtests inside the *training* runs
    only) and the uncalibrated one (parameters plus noise), by coverage and
    by the interval score (Gneiting & Raftery 2007; lower is better: the
    width plus `2 / (1 - level)` times each miss's distance, on the fitted scale).

    Args:
        law: a `Law` or a built-in law's name; or draws (a `Fit`, `Bootstrap`
            or `Posterior`) to backtest as they were made (`draws.refit` on the
            smaller runs: the same loss, scheme and likelihood, warm-started from
            the full fit's distinct optima), with `frame` and `x`, `y` left out.
        frame, x, y, weights, group, loss, delta, starts, method, max_steps: as in `scalejax.fit`.
        by: `"compute"` (`k N D`) or a law input (`"N"`) ranking the runs by scale.
        holdout: the fraction (float in (0, 1)) or number (int) of the largest
            runs to hold out; runs tied with the last one are held out too.
        n_boot: bootstrap resamples of the training runs for the intervals; 0
            for the delta method of the training fit. For draws: at most this many.
        level: interval level.
        seed: seed of the bootstrap and of the predictive noise.
        flops_per_param_token: `k` in `C = k N D`, with `by="compute"`.
        tie_rtol: runs whose key is within this relative distance of the last
            held-out one count as tied (0: exact ties; a report uses 1%, since a
            budget's runs rarely have exactly equal `6 N D`).
        scheme: the bootstrap's resampling scheme.
        calibration: `"auto"` (calibrate on the training runs, ordered by `by`) or None (skip it:
            the calibrated columns are then the uncalibrated ones).

    Returns:
        One row per held-out run (indexed by its row label), by increasing
        scale: the inputs, `scale` (the ranking key), the observed `y`, the
        `extrapolate` columns (`y` renamed `y_hat`; `y_pred_lo`, `y_pred_hi`
        calibrated; `distance` beyond the largest training run), the
        uncalibrated `y_pred_lo_uncalibrated`, `y_pred_hi_uncalibrated`,
        `error` (`log(y_hat / y)`, or `y_hat - y` for the raw-scale loss),
        `rel_error` (`y_hat / y - 1`), `covered`, `covered_pred`,
        `covered_pred_uncalibrated` (whether the parameter and predictive
        intervals contain the observed value) and `score`, `score_uncalibrated`
        (interval scores). `attrs["summary"]` holds `n_train`, `n_holdout`,
        `by`, `threshold`, `train_scale`, `rmse`, `mean_abs_error`,
        `mean_abs_rel_error`, `max_abs_rel_error`, `coverage`, `coverage_pred`,
        `coverage_pred_uncalibrated`, `interval_score`, `interval_score_uncalibrated`,
        `width_pred`, `width_pred_uncalibrated` (mean widths on the fitted scale),
        `level`, `refit` (how the training runs were fitted, in words),
        `calibration` (the model's summary, or None) and `calibration_note`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> table = sj.analysis.backtest("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n_boot=0)
        >>> [k for k in sorted(table.attrs["summary"]) if k.startswith("coverage")]
        ['coverage', 'coverage_pred', 'coverage_pred_uncalibrated']
    """
    tails(level)
    if isinstance(law, Draws):
        draws = law
        given = {"frame": frame, "x": x, "y": y, "weights": weights, "group": group, "starts": starts}
        clash = [k for k, v in given.items() if v is not None]
        if clash:
            raise ScalejaxError(f"a backtest of draws reuses their data; leave out {', '.join(clash)}")
        if draws.data is None:
            raise DataError(f"these {type(draws).__name__} draws do not carry their data; backtest the law on a frame")
        data = draws.data
        law = draws.law
        log_scale = draws.log_scale
    else:
        draws = None
        law = get_law(law)
        loss_ = make_loss(loss, delta)
        data = make_data(law, frame, x, y, weights, group, loss_)
        log_scale = loss_.log_scale
    key = scale_key(law, data.x, by, flops_per_param_token)
    held, threshold = _holdout_mask(data, key, holdout, tie_rtol)
    train = _subset(data, (data.weights > 0) & ~held)
    train.check_size(law)
    if draws is not None:
        refit = draws.refit(train, n=n_boot, seed=seed, level=level)
    elif n_boot:
        refit = bootstrap(
            law,
            train,
            n=n_boot,
            seed=seed,
            level=level,
            scheme=scheme,
            loss=loss_,
            starts=starts,
            method=method,
            max_steps=max_steps,
        )
    else:
        refit = fit(law, train, loss=loss_, starts=starts, method=method, max_steps=max_steps, level=level)
    order = np.flatnonzero(held)[np.argsort(key[held], kind="stable")]
    points = {k: v[order] for k, v in data.x.items()}
    note = ""
    if calibration is None or by == scale_by(law):
        chosen = calibration
    elif calibration == "auto":
        # Forecasts ordered by another key than the default: calibrate the training runs by it.
        try:
            chosen = calibrate(refit.point_fit, by=by, flops_per_param_token=flops_per_param_token)
        except (ScalejaxError, AttributeError) as err:
            chosen, note = None, str(err)
    else:
        raise ScalejaxError(f"calibration must be 'auto' or None, got {calibration!r}")
    table = extrapolate(refit, points, level=level, seed=seed, calibration=chosen).rename(columns={"y": "y_hat"})
    note = note or table.attrs["calibration_note"]
    plain = extrapolate(refit, points, level=level, seed=seed, calibration=None)
    table.insert(table.columns.get_loc("y_pred_hi") + 1, "y_pred_lo_uncalibrated", plain["y_pred_lo"].to_numpy())
    table.insert(
        table.columns.get_loc("y_pred_lo_uncalibrated") + 1, "y_pred_hi_uncalibrated", plain["y_pred_hi"].to_numpy()
    )
    observed = data.y[order]
    table.insert(len(points), "scale", key[order])
    table.insert(len(points) + 1, "y", observed)
    table.index = data.index[order] if data.index is not None else pd.Index(order)
    error = np.log(table.y_hat / observed) if log_scale else table.y_hat - observed
    table["error"] = error
    table["rel_error"] = table.y_hat / observed - 1.0
    table["covered"] = (table.y_lo <= observed) & (observed <= table.y_hi)
    table["covered_pred"] = (table.y_pred_lo <= observed) & (observed <= table.y_pred_hi)
    table["covered_pred_uncalibrated"] = (table.y_pred_lo_uncalibrated <= observed) & (
        observed <= table.y_pred_hi_uncalibrated
    )
    f = np.log if log_scale else (lambda v: np.asarray(v, dtype=np.float64))
    widths, scores = {}, {}
    for label, suffix in (("", ""), ("_uncalibrated", "_uncalibrated")):
        lo, hi = (table[f"y_pred_{end}{suffix}"].to_numpy() for end in ("lo", "hi"))
        with np.errstate(divide="ignore", invalid="ignore"):
            table[f"score{label}"] = interval_score(f(observed), f(lo), f(hi), level)
            widths[label] = float(np.mean(f(hi) - f(lo)))
        scores[label] = float(table[f"score{label}"].mean())
    cal = table.attrs["calibration"]
    table.attrs["summary"] = {
        "n_train": int(np.sum(train.weights > 0)),
        "n_holdout": int(held.sum()),
        "by": by,
        "threshold": threshold,
        "train_scale": float(np.max(key[(data.weights > 0) & ~held])),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mean_abs_error": float(np.mean(np.abs(error))),
        "mean_abs_rel_error": float(np.mean(np.abs(table.rel_error))),
        "max_abs_rel_error": float(np.max(np.abs(table.rel_error))),
        "coverage": float(table.covered.mean()),
        "coverage_pred": float(table.covered_pred.mean()),
        "coverage_pred_uncalibrated": float(table.covered_pred_uncalibrated.mean()),
        "interval_score": scores[""],
        "interval_score_uncalibrated": scores["_uncalibrated"],
        "width_pred": widths[""],
        "width_pred_uncalibrated": widths["_uncalibrated"],
        "level": level,
        "refit": refit.describe(),
        "calibration": None if cal is None else cal.summary(),
        "calibration_note": note,
    }
    return table


def information_criteria(fit_: Draws) -> dict[str, float]:
    """AIC and BIC of a fit (the central estimate of any draws) under a Gaussian likelihood of its residuals.

    Whatever loss the fit minimised (Huber by default), the criteria use the
    Gaussian log-likelihood of the residuals on the fitted scale (log y for
    the log-scale losses) at the fitted parameters, with the noise variance at
    its maximum-likelihood value `sum(w r^2) / sum(w)`; weights count as
    frequencies. `k` counts the law's parameters plus the noise scale.

    Returns:
        dict with `n` (sum of weights), `k`, `loglik`, `aic = 2k - 2 loglik`,
        `bic = k log n - 2 loglik`.
    """
    if not isinstance(fit_, Draws):
        raise ScalejaxError(
            f"information_criteria needs draws (a Fit, Bootstrap or Posterior), got {type(fit_).__name__}"
        )
    r = fit_.residuals
    w = fit_.data.weights
    live = w > 0
    n = float(np.sum(w[live]))
    s2 = float(np.sum(w[live] * r[live] ** 2) / n)
    if not s2 > 0:
        raise ScalejaxError("the fit is exact (zero residuals): the Gaussian likelihood is unbounded")
    loglik = -0.5 * n * (np.log(2 * np.pi * s2) + 1.0)
    k = fit_.law.n_params + 1
    return {"n": n, "k": k, "loglik": float(loglik), "aic": 2 * k - 2 * loglik, "bic": k * np.log(n) - 2 * loglik}


def compare_laws(
    laws: Sequence[str | Law],
    frame=None,
    *,
    x: Mapping | None = None,
    y=None,
    method: str = "backtest",
    by: str = "compute",
    holdout: float | int = 0.2,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    starts: Mapping | None = None,
    **options,
) -> pd.DataFrame:
    """Rank laws by extrapolation error on the largest runs (beside AIC and BIC), or by PSIS-LOO.

    Args:
        laws: laws or names of built-in laws (with `method="loo"`, also
            `Posterior`s sampled on the same runs, with `frame`, `x`, `y` left out).
        frame, y: as in `scalejax.fit`.
        x: input name -> column for all the laws together; each law takes its own inputs.
        method: `"backtest"` (fit the smaller runs, forecast the largest) or
            `"loo"` (sample each law's posterior and compare by Pareto-smoothed
            importance-sampling leave-one-out, `az.loo` / `az.compare`; needs
            ArviZ, `pip install 'scalejax[arviz]'`; warns `LOOWarning` naming the
            runs whose Pareto k is too high).
        by, holdout, n_boot, level: as in `backtest` (method `"backtest"`).
        seed: the bootstrap's seed, or the posteriors'.
        starts: law name -> starts for that law (default: each law's grid).
        options: passed to `fit` and `backtest` (`loss`, `delta`, `weights`,
            ...), or to `scalejax.posterior` for `"loo"` (`likelihood`, `draws`, ...).

    Returns:
        One row per law, best first. Backtest: lowest `rmse` first, with
        `n_params`, `rmse`, `mean_abs_error`, `coverage_pred` on the held-out
        runs, and `aic`, `bic`, `loglik` of the fit to all runs
        (`information_criteria`). LOO: highest `elpd_loo` first, with
        `az.compare`'s columns (`rank`, `elpd_loo`, `p_loo`, `elpd_diff`,
        `weight`, `se`, `dse`, `warning`) and `n_params`, `k_max`, `n_high_k`,
        `k_threshold` (see `scalejax.analysis.compare_loo`).

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> table = sj.analysis.compare_laws(["chinchilla", "kaplan"], frame, x={"N": "N", "D": "D"}, y="loss", n_boot=0)
        >>> list(table.index)
        ['chinchilla', 'kaplan']
    """
    if method == "loo":
        from ._compare import compare_loo

        return compare_loo(laws, frame, x=x, y=y, seed=seed, **options)
    if method != "backtest":
        raise ScalejaxError(f"unknown comparison method {method!r}; choose 'backtest' or 'loo'")
    if frame is None or x is None or y is None:
        raise ScalejaxError("compare_laws needs frame=, x= and y= (the runs)")
    rows = {}
    for item in laws:
        law = get_law(item)
        missing = [k for k in law.inputs if k not in x]
        if missing:
            raise DataError(f"law {law.name!r} needs inputs {missing}; add them to x")
        law_x = {k: x[k] for k in law.inputs}
        law_starts = (starts or {}).get(law.name)
        summary = backtest(
            law,
            frame,
            x=law_x,
            y=y,
            by=by,
            holdout=holdout,
            n_boot=n_boot,
            level=level,
            seed=seed,
            starts=law_starts,
            **options,
        ).attrs["summary"]
        full = fit(law, frame, x=law_x, y=y, starts=law_starts, **options)
        ic = information_criteria(full)
        rows[law.name] = {
            "n_params": law.n_params,
            "rmse": summary["rmse"],
            "mean_abs_error": summary["mean_abs_error"],
            "coverage_pred": summary["coverage_pred"],
            "aic": ic["aic"],
            "bic": ic["bic"],
            "loglik": ic["loglik"],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("law").sort_values("rmse")
