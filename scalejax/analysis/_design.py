"""Experiment design: which new runs shrink the interval of a target quantity most per FLOP.

Linearised around each draw: a new run at `x` with noise variance `s^2`
adds `j j^T / s^2` to the Gauss-Newton information of the unconstrained
parameters (`j` the gradient of the fitted-scale prediction at `x`), and the
target's delta-method variance `g^T I^-1 g` falls by
`(g^T S j)^2 / (s^2 + j^T S j)` with `S = I^-1` (Sherman-Morrison). The
expected variance averages over the draws, so parameter uncertainty enters
through where each draw puts the Jacobians. Runs are then picked greedily by
reduction of the target's standard deviation per FLOP, under a budget.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._draws import Draws, law_inputs, map_rows
from .._errors import ScalejaxError
from .._fit import covariance
from ._influence import target_function
from ._intervals import noise_scale, z_value

__all__ = ["design"]


def design(
    draws: Draws,
    candidates,
    target,
    *,
    budget: float | None = None,
    k: int | None = None,
    flops_per_param_token: float = 6.0,
    noise: float | None = None,
    level: float = 0.95,
    repeat: bool = False,
) -> pd.DataFrame:
    """Rank candidate runs by expected reduction of a target's interval width per FLOP, and pick the next ones.

    Args:
        draws: a `Fit` or `Bootstrap` (the data come from its full-data fit);
            with a bootstrap the expected variance averages over the draws.
        candidates: a DataFrame or dict with the law's inputs, one candidate run
            per row, and optionally a `cost` column in FLOPs.
        target: a scalar function of one parameter set (e.g. the compute-optimal
            `N` at 1e24 FLOPs), or one point as a dict of inputs (the predicted y there).
        budget: FLOPs to spend on the picks (default: no limit).
        k: the most runs to pick (default: as many as the budget allows; one
            without a budget).
        flops_per_param_token: cost `k N D` of a run when `candidates` has no `cost`.
        noise: noise standard deviation of a new run on the fitted scale
            (default: `noise_scale(draws)`).
        level: interval level of the reported widths.
        repeat: whether a candidate may be picked more than once (replicate runs).

    Returns:
        One row per candidate, picks first in order: the inputs, `cost`,
        `width_after` (the target's linearised interval width if this run alone
        were added), `reduction_per_flop`, `pick` (1, 2, ... in greedy order;
        0 when not picked; with `repeat` a run picked twice keeps its first)
        and `width_after_picks` (the width after all picks up to this one).
        `attrs` hold `width_now` and `spent`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> runs = {"N": [1e9, 1e10], "D": [2e10, 2e11]}
        >>> table = sj.analysis.design(fit, runs, {"N": 70e9, "D": 1.4e12}, k=1)
        >>> int(table.pick.max())
        1

    References:
        Chaloner and Verdinelli 1995, Bayesian Experimental Design: A Review (Statistical Science),
        Section 2 (c-optimality and its linearised form); Krause and Guestrin 2005, A Note on the
        Budgeted Maximization of Submodular Functions (CMU-CALD-05-103), for the budgeted greedy.
    """
    if not isinstance(draws, Draws) or draws.data is None:
        raise ScalejaxError(
            f"design needs draws that carry their data (a Fit, Bootstrap or Posterior), got {type(draws).__name__}"
        )
    law, data, log_scale = draws.law, draws.data, draws.log_scale
    target = target_function(draws, target)
    x_new = law_inputs(law, candidates, draws.columns)
    m = next(iter(x_new.values())).shape[0]
    if isinstance(candidates, pd.DataFrame | dict) and "cost" in candidates:
        cost = np.asarray(candidates["cost"], dtype=np.float64).reshape(-1)
    elif {"N", "D"} <= set(x_new):
        cost = flops_per_param_token * x_new["N"] * x_new["D"]
    else:
        raise ScalejaxError("candidates need a 'cost' column (FLOPs) unless the law has inputs N and D")
    if cost.shape != (m,) or not np.all(np.isfinite(cost) & (cost > 0)):
        raise ScalejaxError("candidate costs must be finite and > 0, one per candidate")
    sigma = noise_scale(draws) if noise is None else np.full(draws.n_draws, float(noise))
    s2 = sigma**2

    target_fn, target_args = target
    j_old, j_new, g = map_rows(_jacobians, draws.u, law, log_scale, dict(data.x), x_new, target_fn, target_args)
    w = data.weights
    live = w > 0
    info = np.einsum("snp,n,snq->spq", j_old[:, live], w[live], j_old[:, live])
    # The same Gauss-Newton covariance as a fit's: a draw whose information is singular or not finite
    # (a bootstrap draw far out) carries no information on what a run would add, and is left out.
    cov, reasons = covariance(info, s2, list(law.param_names))
    usable = (
        np.all(np.isfinite(cov), axis=(1, 2)) & np.all(np.isfinite(j_new), axis=(1, 2)) & np.all(np.isfinite(g), axis=1)
    )
    if not usable.any():
        reason = next((r for r in reasons if r), "no draw gives finite derivatives at the candidates")
        raise ScalejaxError(f"design needs the parameters' covariance at the draws: {reason}")
    cov, j_new, g, s2 = cov[usable], j_new[usable], g[usable], s2[usable]
    z = z_value(level)

    def variance(c):
        return float(np.mean(np.einsum("sp,spq,sq->s", g, c, g)))

    def after(c):
        """Mean target variance over draws after adding each candidate alone: (m,)."""
        a = np.einsum("spq,smq->smp", c, j_new)
        num = np.einsum("sp,smp->sm", g, a) ** 2
        den = s2[:, None] + np.einsum("smp,smp->sm", j_new, a)
        return np.mean(np.einsum("sp,spq,sq->s", g, c, g)[:, None] - num / den, axis=0)

    var_now = variance(cov)
    sd_now = np.sqrt(var_now)
    alone = after(cov)
    reduction = (sd_now - np.sqrt(np.clip(alone, 0, None))) / cost
    limit = np.inf if budget is None else float(budget)
    if k is None:
        k = 1 if budget is None else (10**6 if repeat else m)
    if not (isinstance(k, int | np.integer) and k >= 1):
        raise ScalejaxError(f"k must be a positive integer, got {k!r}")

    def greedy(per_flop: bool):
        pick = np.zeros(m, dtype=int)
        width_after_picks = np.full(m, np.nan)
        spent, current, var_cur = 0.0, cov, var_now
        for step in range(1, int(k) + 1):
            gain = np.sqrt(var_cur) - np.sqrt(np.clip(after(current), 0, None))
            score = gain / cost if per_flop else gain
            allowed = (cost <= limit - spent) & (gain > 0) & (repeat | (pick == 0))
            if not allowed.any():
                break
            best = int(np.argmax(np.where(allowed, score, -np.inf)))
            a = np.einsum("spq,sq->sp", current, j_new[:, best])
            den = s2 + np.einsum("sp,sp->s", j_new[:, best], a)
            current = current - np.einsum("sp,sq->spq", a, a) / den[:, None, None]
            var_cur = variance(current)
            spent += cost[best]
            if pick[best] == 0:
                pick[best] = step
                width_after_picks[best] = 2 * z * np.sqrt(var_cur)
        return var_cur, pick, width_after_picks, spent

    # Greedy by gain per FLOP can spend a budget on many cheap runs of small gain; greedy by
    # gain alone guards against that. Keeping the better of the two is the usual fix for
    # budgeted greedy selection (Krause and Guestrin 2005).
    runs = [greedy(True), greedy(False)] if np.isfinite(limit) else [greedy(True)]
    _, pick, width_after_picks, spent = min(runs, key=lambda r: r[0])
    table = pd.DataFrame(
        {
            **x_new,
            "cost": cost,
            "width_after": 2 * z * np.sqrt(np.clip(alone, 0, None)),
            "reduction_per_flop": 2 * z * reduction,
            "pick": pick,
            "width_after_picks": width_after_picks,
        }
    )
    order = np.lexsort((-table.reduction_per_flop.to_numpy(), np.where(pick > 0, pick, m + 1)))
    table = table.iloc[order]
    table.attrs["width_now"] = 2 * z * sd_now
    table.attrs["spent"] = spent
    return table


def _jacobians(u, law, log_scale, x_old, x_new, target_fn, target_args):
    """Per draw: the Jacobians of the fitted-scale predictions at the runs and the candidates, and the target's gradient."""

    def pred(v, x):
        p = law.unpack(v)
        return law.log_predict(p, x) if log_scale else law.predict(p, x)

    def target(v):
        return jnp.asarray(target_fn(law.unpack(v), *target_args), dtype=jnp.float64).reshape(())

    return jax.jacfwd(pred)(u, x_old), jax.jacfwd(pred)(u, x_new), jax.grad(target)(u)
