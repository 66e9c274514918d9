"""Two-step prediction: a first law's output is a second law's input, with both steps' uncertainty carried by the draws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._draws import Draws, _tails, law_inputs
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
    lo_q, hi_q = _tails(level)
    x1 = law_inputs(first.law, new, first.columns)
    # The second law's other inputs come from `new`; the link is a placeholder until the first law fills it.
    probe = new.assign(**{link: 1.0}) if isinstance(new, pd.DataFrame) else {**dict(new), link: 1.0}
    x2 = {k: v for k, v in law_inputs(second.law, probe, second.columns).items() if k != link}
    s = min(first.n_draws, second.n_draws)

    with jax.enable_x64(True):
        x1j = {k: jnp.asarray(v) for k, v in x1.items()}
        x2j = {k: jnp.asarray(v) for k, v in x2.items()}

        def chained(u1, u2):
            mid = first.law.predict(first.law.unpack(u1), x1j)
            return mid, second.law.predict(second.law.unpack(u2), {**x2j, link: mid})

        run = jax.jit(jax.vmap(chained))
        mid, y = (np.asarray(a) for a in run(jnp.asarray(first.u[:s]), jnp.asarray(second.u[:s])))
        mid_c, y_c = (
            np.asarray(a)[0] for a in run(jnp.asarray(first.center_u)[None], jnp.asarray(second.center_u)[None])
        )
    return pd.DataFrame(
        {
            "mid": mid_c,
            "mid_lo": np.quantile(mid, lo_q, axis=0),
            "mid_hi": np.quantile(mid, hi_q, axis=0),
            "y": y_c,
            "lo": np.quantile(y, lo_q, axis=0),
            "hi": np.quantile(y, hi_q, axis=0),
        }
    )
