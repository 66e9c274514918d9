"""Backtests and law comparison: fit on the small runs, check the forecast on the largest ones.

Held-out runs stay in the data with weight zero, so the backtest fit has the
same shapes (and reuses the same compiled solver) as the full fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._bootstrap import bootstrap
from .._errors import DataError, ScalejaxError
from .._fit import Fit, fit, make_data
from .._law import Law
from .._objectives import make_loss
from ..laws import get as get_law
from ._extrapolate import extrapolate

__all__ = ["backtest", "compare_laws", "information_criteria"]


def _holdout_mask(data, by: str, holdout, flops_per_param_token: float) -> tuple[np.ndarray, np.ndarray, float]:
    if by == "compute":
        if not {"N", "D"} <= set(data.x):
            raise DataError(f"by='compute' needs inputs N and D (C = k N D); the law has {', '.join(data.x)}")
        key = flops_per_param_token * data.x["N"] * data.x["D"]
    elif by in data.x:
        key = data.x[by]
    else:
        raise DataError(f"by={by!r} is neither 'compute' nor an input of the law ({', '.join(data.x)})")
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
    # The `count` largest by the key, with every run tied at the threshold held out too.
    threshold = np.sort(key[live])[::-1][count - 1]
    held = live & (key >= threshold)
    return held, key, float(threshold)


def backtest(
    law: str | Law,
    frame,
    *,
    x: Mapping,
    y,
    by: str = "compute",
    holdout: float | int = 0.2,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    flops_per_param_token: float = 6.0,
    weights=None,
    loss: str = "huber",
    delta: float = 1e-3,
    starts=None,
    method: str = "lm",
    max_steps: int = 500,
) -> pd.DataFrame:
    """Hold out the largest runs, fit the rest, and check the forecast of what was held out.

    Args:
        law, frame, x, y, weights, loss, delta, starts, method, max_steps: as in `scalejax.fit`.
        by: `"compute"` (`k N D`) or a law input (`"N"`) ranking the runs by scale.
        holdout: the fraction (float in (0, 1)) or number (int) of the largest
            runs to hold out; runs tied with the last one are held out too.
        n_boot: bootstrap resamples of the training runs for the intervals; 0
            for the delta method of the training fit.
        level: interval level.
        seed: seed of the bootstrap and of the predictive noise.
        flops_per_param_token: `k` in `C = k N D`, with `by="compute"`.

    Returns:
        One row per held-out run (indexed by its row label): the inputs, the
        observed `y`, the `extrapolate` columns (`y` renamed `y_hat`), `error`
        (`log(y_hat / y)`, or `y_hat - y` for the raw-scale loss), and
        `covered`, `covered_pred` (whether the parameter and predictive
        intervals contain the observed value). `attrs["summary"]` holds
        `n_train`, `n_holdout`, `by`, `threshold`, `rmse`, `mean_abs_error`,
        `coverage`, `coverage_pred`, `level`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> table = sj.analysis.backtest("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n_boot=0)
        >>> sorted(table.attrs["summary"])[:3]
        ['by', 'coverage', 'coverage_pred']
    """
    law = get_law(law)
    loss_ = make_loss(loss, delta)
    data = make_data(law, frame, x, y, weights, None, loss_)
    held, _, threshold = _holdout_mask(data, by, holdout, flops_per_param_token)
    train = dataclasses.replace(data, weights=np.where(held, 0.0, data.weights))
    train.check_size(law)
    options = dict(loss=loss_, delta=delta, starts=starts, method=method, max_steps=max_steps)
    if n_boot:
        draws = bootstrap(law, train, n=n_boot, seed=seed, level=level, **options)
    else:
        draws = fit(law, train, **options)
    points = {k: v[held] for k, v in data.x.items()}
    table = extrapolate(draws, points, level=level, seed=seed).rename(columns={"y": "y_hat"})
    observed = data.y[held]
    table.insert(len(points), "y", observed)
    table.index = data.index[held]
    error = np.log(table.y_hat / observed) if loss_.log_scale else table.y_hat - observed
    table["error"] = error
    table["covered"] = (table.y_lo <= observed) & (observed <= table.y_hi)
    table["covered_pred"] = (table.y_pred_lo <= observed) & (observed <= table.y_pred_hi)
    table.attrs["summary"] = {
        "n_train": int(np.sum(train.weights > 0)),
        "n_holdout": int(held.sum()),
        "by": by,
        "threshold": threshold,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mean_abs_error": float(np.mean(np.abs(error))),
        "coverage": float(table.covered.mean()),
        "coverage_pred": float(table.covered_pred.mean()),
        "level": level,
    }
    return table


def information_criteria(fit_: Fit) -> dict[str, float]:
    """AIC and BIC of a fit under a Gaussian likelihood of its fitted-scale residuals.

    Whatever loss the fit minimised (Huber by default), the criteria use the
    Gaussian log-likelihood of the residuals on the fitted scale (log y for
    the log-scale losses) at the fitted parameters, with the noise variance at
    its maximum-likelihood value `sum(w r^2) / sum(w)`; weights count as
    frequencies. `k` counts the law's parameters plus the noise scale.

    Returns:
        dict with `n` (sum of weights), `k`, `loglik`, `aic = 2k - 2 loglik`,
        `bic = k log n - 2 loglik`.
    """
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
    frame,
    *,
    x: Mapping,
    y,
    by: str = "compute",
    holdout: float | int = 0.2,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    starts: Mapping | None = None,
    **options,
) -> pd.DataFrame:
    """Rank laws by extrapolation error on the largest runs, beside AIC and BIC on all runs.

    Args:
        laws: laws or names of built-in laws.
        frame, y: as in `scalejax.fit`.
        x: input name -> column for all the laws together; each law takes its own inputs.
        by, holdout, n_boot, level, seed: as in `backtest`.
        starts: law name -> starts for that law (default: each law's grid).
        options: passed to `fit` and `backtest` (`loss`, `delta`, `weights`, ...).

    Returns:
        One row per law, best first (lowest backtest `rmse`): `n_params`,
        `rmse`, `mean_abs_error`, `coverage_pred` on the held-out runs, and
        `aic`, `bic`, `loglik` of the fit to all runs (`information_criteria`).
    """
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
