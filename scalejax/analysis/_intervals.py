"""From draws to tables: a quantity written for one parameter set, evaluated on every draw, with intervals.

Draws with several members (a bootstrap, a posterior) give equal-tailed
percentile intervals. A point fit is one draw with a covariance: its
intervals come from the delta method in the unconstrained parameters, on
the log scale of positive quantities (so the interval of a positive
quantity stays positive). Both go through `scalejax.Draws`' one cached mapper.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from .._draws import Draws, quantity_interval, tails, z_value
from .._errors import ScalejaxError

__all__ = ["interval_table", "noise_scale", "z_value"]


def noise_scale(draws: Draws) -> np.ndarray:
    """Per-draw standard deviation of the observation noise on the fitted scale: `(S,)`.

    It is the draws' own noise (`draws.noise["sigma"]`): a posterior's fitted
    scale, or the residual standard deviation of the full-data fit,
    `sqrt(sum(w r^2) / (n - p))` on the fitted scale (log y for the default
    losses), for a `Fit` or a `Bootstrap`.
    """
    if not isinstance(draws, Draws):
        raise ScalejaxError(f"expected draws (a Fit, Bootstrap or Posterior), got {type(draws).__name__}")
    return draws.noise_sigma()


def interval_table(
    draws: Draws,
    fn: Callable[..., object],
    *args,
    level: float = 0.95,
    index: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """A table of `fn`'s outputs: per output `name` the central value, `name_lo` and `name_hi`.

    Args:
        draws: a `Fit` (delta-method intervals) or draws with several members
            (percentile intervals over the draws that give a finite value).
        fn: `fn(params, *args) -> dict of (m,) arrays` (or one array, named
            `value`); a module-level function, so its compiled form is reused.
        args: passed to `fn` after the parameters (arrays are traced).
        level: the interval level.
        index: columns to put first (the inputs the outputs were computed at).

    Returns:
        A DataFrame of `m` rows. `attrs["n_invalid"]` counts, per output, the
        draws that gave no finite value (excluded from its interval, with a warning).
    """
    tails(level)
    if not isinstance(draws, Draws):
        raise ScalejaxError(f"expected draws (a Fit, Bootstrap or Posterior), got {type(draws).__name__}")
    central, lo, hi, n_invalid = quantity_interval(draws, fn, *args, level=level)
    m = len(next(iter(central.values())))
    out = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (m,)) for k, v in (index or {}).items()}
    for name, c in central.items():
        out |= {name: c, f"{name}_lo": lo[name], f"{name}_hi": hi[name]}
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
