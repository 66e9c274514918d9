"""Two-step prediction: a first law's output is a second law's input, with both steps' uncertainty carried by the draws."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._draws import Draws, law_inputs, map_draws, tails
from .._errors import ScalejaxError


def chain_predict(first: Draws, second: Draws, new, *, link: str | None = None, level: float = 0.95) -> pd.DataFrame:
    """Predict through two fitted laws: `y = second(first(new))`, e.g. (N, D) -> task loss -> accuracy.

    Draw i of `first` feeds draw i of `second` (both are independent fits, so
    any pairing is a draw from the joint uncertainty); with different numbers
    of draws the first min(S1, S2) of each are used. The central value chains
    the two central estimates (`Draws.center`).

    Args:
        first: draws of the first law (a `Fit`, `Bootstrap` or posterior).
        second: draws of the second law.
        new: the first law's inputs (a DataFrame or dict), plus any other
            inputs of the second law.
        link: the second law's input that receives the first law's output;
            by default its only input.
        level: interval level.

    Returns:
        A DataFrame, one row per row of `new`: `mid`, `mid_lo`, `mid_hi` (the
        first law's prediction) and `y`, `lo`, `hi` (the second's).

    Example:
        >>> import scalejax as sj
        >>> # step1 = sj.bootstrap("chinchilla", ladder, ...); step2 = sj.bootstrap("sigmoid_floor", ...)
        >>> # sj.analysis.chain_predict(step1, step2, {"N": [7e9], "D": [4e12]})

    References:
        Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders (two-step prediction).
    """
    if link is None:
        if len(second.law.inputs) != 1:
            raise ScalejaxError(
                f"law {second.law.name!r} takes inputs {second.law.inputs}; name the one fed by the first law with link="
            )
        link = second.law.inputs[0]
    if link not in second.law.inputs:
        raise ScalejaxError(f"link {link!r} is not an input of law {second.law.name!r} {second.law.inputs}")
    lo_q, hi_q = tails(level)
    x1 = law_inputs(first.law, new, first.columns)
    # The second law's other inputs come from `new`; the link is a placeholder until the first law fills it.
    probe = new.assign(**{link: 1.0}) if isinstance(new, pd.DataFrame) else {**dict(new), link: 1.0}
    x2 = {k: v for k, v in law_inputs(second.law, probe, second.columns).items() if k != link}
    s = min(first.n_draws, second.n_draws)
    u1 = np.vstack([first.center_u[None, :], first.u[:s]])
    u2 = np.vstack([second.center_u[None, :], second.u[:s]])
    out = map_draws(_chained, (first.law, second.law), (u1, u2), first.law, second.law, x1, x2, link)
    mid, y = np.asarray(out["mid"]), np.asarray(out["y"])
    return pd.DataFrame(
        {
            "mid": mid[0],
            "mid_lo": np.quantile(mid[1:], lo_q, axis=0),
            "mid_hi": np.quantile(mid[1:], hi_q, axis=0),
            "y": y[0],
            "lo": np.quantile(y[1:], lo_q, axis=0),
            "hi": np.quantile(y[1:], hi_q, axis=0),
        },
        index=new.index if isinstance(new, pd.DataFrame) else None,
    )


def _chained(p1, p2, law1, law2, x1, x2, link):
    mid = law1.predict(p1, x1)
    return {"mid": mid, "y": law2.predict(p2, {**x2, link: mid})}
