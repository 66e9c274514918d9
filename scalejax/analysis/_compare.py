"""Law comparison by PSIS-LOO: the expected log predictive density of each run left out, from posteriors.

Pareto-smoothed importance sampling and the comparison (differences, their
standard errors, stacking weights) are ArviZ's (`az.loo`, `az.compare`), the
reference implementation of Vehtari et al.; this module samples each law's
posterior, hands ArviZ the pointwise log-likelihood, and reports the points
whose Pareto k says the estimate cannot be trusted.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._errors import DataError, ScalejaxError, describe_rows
from .._law import Law
from ..laws import get as get_law

__all__ = ["LOOWarning", "compare_loo"]


class LOOWarning(UserWarning):
    """PSIS-LOO is unreliable for some points: their Pareto k exceeds the threshold for the number of draws."""


def _posteriors(laws, frame, x, y, seed, options) -> dict:
    from ..bayes import Posterior, posterior

    out = {}
    for item in laws:
        if isinstance(item, Posterior):
            if frame is not None or x is not None or y is not None:
                raise ScalejaxError("posteriors are compared on their own data; leave out frame, x and y")
            post = item
        else:
            law = get_law(item)
            if frame is None or x is None or y is None:
                raise ScalejaxError(f"law {law.name!r} needs frame=, x= and y= to sample its posterior")
            missing = [k for k in law.inputs if k not in x]
            if missing:
                raise DataError(f"law {law.name!r} needs inputs {missing}; add them to x")
            post = posterior(law, frame, x={k: x[k] for k in law.inputs}, y=y, seed=seed, **options)
        name = post.law.name
        if name in out:
            raise ScalejaxError(f"law {name!r} appears twice; compare different laws")
        out[name] = post
    if len(out) < 2:
        raise ScalejaxError("compare at least two laws")
    first = next(iter(out.values()))
    for name, post in out.items():
        if post.data is None:
            raise DataError(f"the posterior of {name!r} does not carry its data; LOO needs the pointwise likelihood")
        if post.data.n != first.data.n or not np.array_equal(post.data.y, first.data.y):
            raise DataError(
                f"the posteriors of {next(iter(out))!r} and {name!r} were fitted to different runs; "
                "LOO compares laws on the same data"
            )
    return out


def compare_loo(
    laws: Sequence[str | Law],
    frame=None,
    *,
    x: Mapping | None = None,
    y=None,
    seed: int = 0,
    warn: bool = True,
    **options,
) -> pd.DataFrame:
    """Rank laws by PSIS-LOO, the estimated log predictive density of each run when it is left out.

    Args:
        laws: laws, names of built-in laws, or `Posterior`s already sampled
            on the same runs (then leave out `frame`, `x`, `y`).
        frame, x, y: the runs, as in `scalejax.posterior` (`x` maps every
            law's inputs; each law takes its own).
        seed: the posteriors' seed.
        warn: warn (`LOOWarning`) when some points' Pareto k exceeds the
            threshold (those points' leave-one-out densities are unreliable:
            refit without them, or compare by backtest).
        options: passed to `scalejax.posterior` (`likelihood`, `draws`, `chains`, `priors`, ...).

    Returns:
        One row per law, best first (`az.compare`'s columns): `rank`,
        `elpd_loo` (higher is better), `p_loo` (effective number of
        parameters), `elpd_diff` (to the best), `weight` (stacking), `se`,
        `dse` (standard error of the difference), `warning`; and `n_params`,
        `k_max` (largest Pareto k), `n_high_k` (points above the threshold),
        `k_threshold`. `attrs["posteriors"]` holds each law's `Posterior`.

    References:
        Vehtari, Gelman and Gabry 2017, Practical Bayesian model evaluation using
        leave-one-out cross-validation and WAIC. Vehtari, Simpson, Gelman, Yao and
        Gabry 2024, Pareto smoothed importance sampling (the k threshold 1 - 1/log10(S)).
    """
    from ..bayes._arviz import require_arviz

    az = require_arviz("compare_laws(method='loo')")
    posts = _posteriors(laws, frame, x, y, seed, options)
    idata, extra = {}, {}
    for name, post in posts.items():
        idata[name] = post.to_arviz()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ArviZ's own Pareto-k warning: reported below, with the rows
            loo = az.loo(idata[name], pointwise=True)
        k = np.asarray(loo.pareto_k)
        threshold = float(getattr(loo, "good_k", 0.7))
        high = k > threshold
        extra[name] = {
            "n_params": post.law.n_params,
            "k_max": float(np.max(k)),
            "n_high_k": int(high.sum()),
            "k_threshold": threshold,
        }
        if warn and high.any():
            labels = idata[name].log_likelihood["obs"].to_numpy()
            warnings.warn(
                f"LOO of law {name!r} is unreliable at {int(high.sum())} of {k.size} points "
                f"({describe_rows(pd.Index(labels[high]))}: Pareto k up to {np.max(k):.2f} > {threshold:.2f}); "
                "their leave-one-out densities rest on a few draws: refit without them, use more draws, "
                "or compare by backtest",
                LOOWarning,
                stacklevel=3,
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare(idata, ic="loo")
    table = table.join(pd.DataFrame.from_dict(extra, orient="index"))
    table = table.drop(columns=[c for c in ("scale",) if c in table.columns]).rename_axis("law")
    table.attrs["posteriors"] = posts
    return table
